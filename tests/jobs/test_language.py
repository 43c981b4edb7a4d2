"""The job language: matrices, templates, conditions, raw Argo and runtime options, as loaded."""

from __future__ import annotations

import pytest

from service.events import Event, EventKind, Repository
from service.jobs.expressions import evaluate_condition
from service.jobs.loader import JobFileError, load_job_file
from service.jobs.matcher import match_jobs
from service.jobs.matrix import expand
from service.jobs.options import Matrix
from service.jobs.plan import PlanOptions, plan_workflow
from service.jobs.templates import TemplateDocument, TemplateSource, first_of, settings_source


def problems(text: str, templates: TemplateSource | None = None) -> list[str]:
    with pytest.raises(JobFileError) as caught:
        load_job_file(text, templates=templates)
    return [str(p) for p in caught.value.problems]


def repo_templates(**files: str) -> TemplateSource:
    def find(name: str) -> TemplateDocument | None:
        text = files.get(name.replace("-", "_"))
        return TemplateDocument(f".forgeflow/templates/{name}.yaml", text=text) if text is not None else None

    return find


# -- matrix ---------------------------------------------------------------------------------


def cells(**matrix: object) -> list[dict[str, str]]:
    return expand(Matrix.model_validate(matrix), 1000)


def test_matrix_product_exclude_and_include_like_github():
    assert cells(python=["3.11", 3.12], os=["a", "b"], exclude=[{"python": "3.11", "os": "b"}]) == [
        {"python": "3.11", "os": "a"},
        {"python": "3.12", "os": "a"},
        {"python": "3.12", "os": "b"},
    ]
    # an include that contradicts no original value extends the matching cells ...
    assert cells(os=["a", "b"], include=[{"os": "b", "extra": True}]) == [
        {"os": "a"},
        {"os": "b", "extra": "true"},
    ]
    # ... one that fits none is a cell of its own, and one without axis keys extends every cell
    assert cells(os=["a"], include=[{"os": "c"}, {"debug": 1}]) == [{"os": "a", "debug": "1"}, {"os": "c"}]
    assert cells(include=[{"only": "x"}]) == [{"only": "x"}]


def test_matrix_values_substitute_into_image_env_and_steps():
    job_file = load_job_file(
        "version: 1\njobs:\n  t:\n    matrix: {py: ['3.12']}\n    image: 'py:${{ matrix.py }}'\n"
        "    env: {PY: '${{matrix.py}}'}\n"
        "    steps: [{name: 'on ${{ matrix.py }}', run: 'tox -e py${{ matrix.py }}'}]\n"
    )
    repo = Repository("o", "r", "https://x/o/r.git")
    event = Event("github", EventKind.PUSH, repo, "a" * 40, branch="main")
    options = PlanOptions("ci", "runner", "fedora:41", 1800, 3600)
    [cell] = plan_workflow(event, job_file, match_jobs(event, job_file), options).tasks
    assert cell.image == "py:3.12"
    assert ("PY", "3.12") in cell.env
    assert cell.steps == (("on 3.12", "tox -e py3.12"),)


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ("matrix: {py: [a]}\n    steps: ['echo ${{ matrix.python }}']", "the job's matrix has no 'python'"),
        ("steps: ['echo ${{ matrix.py }}']", "the job's matrix has no 'py'"),
        ("steps: ['echo ${{ event.pull_request.title }}']", "only ${{ matrix.NAME }} can be used here"),
        ("image: '${{ event.branch }}'\n    steps: [x]", "steps read event data from $FORGEFLOW_BRANCH"),
        ("steps: [x]\n    branches: ['${{ matrix.x }}']", "only replaced in image, env, steps"),
        ("steps: [x]\n    if: '${{ event.branch }}'", "without ${{ }}"),
        ("steps: [x]\n    matrix: {}", "at least one axis"),
        ("steps: [x]\n    matrix: {'bad axis': [1]}", "matrix axis 'bad axis'"),
        ("steps: [x]\n    matrix: {a: []}", "has no values"),
    ],
)
def test_expression_and_matrix_mistakes_are_located(job: str, expected: str):
    found = problems(f"version: 1\njobs:\n  t:\n    {job}\n")
    assert any(expected in p and p.startswith(".forgeflow.yaml:") for p in found), found


# -- conditions -----------------------------------------------------------------------------


def test_a_cel_syntax_error_is_a_config_error_with_file_and_line():
    found = problems(
        "version: 1\njobs:\n  a:\n    steps: [x]\n  b:\n    if: event.branch ==\n    steps: [x]\n"
    )
    assert found == [
        ".forgeflow.yaml:6:22: jobs.b.if: not a valid CEL expression (syntax error at character 14): "
        "'event.branch =='; the expression ends after '==': something is missing there"
    ]


def test_nested_comprehensions_are_refused_before_they_run():
    found = problems(
        "version: 1\njobs:\n  a:\n    if: '[1,2].all(x, [3,4].exists(y, x < y))'\n    steps: [x]\n"
    )
    assert "inside another one" in found[0]


@pytest.mark.parametrize(
    "condition",
    [
        r'event.pull_request.title.matches("(fix)\\1")',  # a backreference
        r'matches(event.branch, "(?!main)")',  # lookahead, as a function
        r'event.branch.matches(r"^(?<=x)y")',  # lookbehind, in a raw string
    ],
)
def test_a_pattern_re2_refuses_is_a_config_error_before_it_runs(condition: str):
    found = problems(f"version: 1\njobs:\n  a:\n    if: '{condition}'\n    steps: [x]\n")
    assert len(found) == 1 and found[0].startswith(".forgeflow.yaml:4:5: jobs.a.if: matches() pattern")
    assert "RE2 has no backreferences or lookaround" in found[0]


def test_matches_runs_in_linear_time_on_a_pattern_that_backtracks_elsewhere():
    # (a+)+$ against "aaa...a!" takes exponential time in a backtracking engine (Python's re
    # would not finish this in a day); RE2 answers at once, so the suite's timeout never hits
    hostile = {"event": {"title": "a" * 100_000 + "!"}}
    assert evaluate_condition("event.title.matches('^(a+)+$')", hostile) is False
    conventional = {"event": {"title": "fix(ui): x"}}
    assert evaluate_condition("event.title.matches('^fix(\\\\(.+\\\\))?:')", conventional)


# -- templates ------------------------------------------------------------------------------

PYTHON = """\
inputs:
  python: {default: "3.11"}
  target: {}
image: "python:${{ inputs.python }}"
timeout: 10m
env: {A: "1", B: "template"}
steps: ["make ${{ inputs.target }}"]
"""


def test_uses_fills_inputs_keeps_types_and_the_job_wins():
    with_retries = PYTHON.replace("  target: {}\n", "  target: {}\n  retries: {default: 2}\n")
    source = repo_templates(python=with_retries + 'retries: "${{ inputs.retries }}"\n')
    job_file = load_job_file(
        "version: 1\njobs:\n  t:\n    uses: python\n    with: {target: check}\n    env: {B: job}\n"
        "    timeout: 5m\n",
        templates=source,
    )
    job = job_file.jobs["t"]
    assert job.image == "python:3.11"
    assert [s.run for s in job.steps] == ["make check"]
    assert job.env == {"A": "1", "B": "job"}
    assert job.timeout == 300
    assert job.retries is not None and job.retries.limit == 2  # "${{ inputs.retries }}" kept its type


def test_repository_templates_come_before_the_service_config():
    source = first_of(
        repo_templates(lint="steps: [repo-lint]\n"),
        settings_source({"lint": {"steps": ["org-lint"]}, "audit": {"steps": ["org-audit"]}}),
    )
    job_file = load_job_file("version: 1\njobs:\n  a: {uses: lint}\n  b: {uses: audit}\n", templates=source)
    assert job_file.jobs["a"].steps[0].run == "repo-lint"
    assert job_file.jobs["b"].steps[0].run == "org-audit"


def test_template_errors_point_into_the_template_file():
    source = repo_templates(python="inputs: {}\nimage: x\nsteps:\n  - {rnu: make}\n")
    found = problems("version: 1\njobs:\n  t:\n    uses: python\n", source)
    assert found == [
        ".forgeflow/templates/python.yaml:4:6: jobs.t.steps[0].rnu: unknown key 'rnu'; did you mean 'run'?"
    ]


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ("uses: nope", "no template named 'nope'"),
        ("uses: python", "template 'python' needs input 'target'"),
        ("uses: python\n    with: {target: x, colour: red}", "template 'python' has no input 'colour'"),
        ("uses: python\n    with: {target: [1]}", "an input value is a string, number or boolean"),
        ("with: {a: b}\n    steps: [x]", "add uses"),
        ("uses: nested", "cannot use another template"),
        ("uses: undeclared", "no inputs value named 'x'; declare it under inputs"),
    ],
)
def test_template_mistakes(job: str, expected: str):
    source = repo_templates(python=PYTHON, nested="uses: python\n", undeclared="steps: ['${{ inputs.x }}']\n")
    found = problems(f"version: 1\njobs:\n  t:\n    {job}\n", source)
    assert any(expected in p for p in found), found
    assert not any("a job needs steps" in p for p in found)  # no follow-on noise


def test_anchors_and_merge_keys_work_with_templates():
    text = """\
version: 1
jobs:
  a: &base
    uses: python
    with: {target: a}
  b:
    <<: *base
    with: {target: b}
"""
    job_file = load_job_file(text, templates=repo_templates(python=PYTHON))
    assert [s.run for s in job_file.jobs["b"].steps] == ["make b"]


# -- raw Argo, workflowTemplate, options ------------------------------------------------------


def test_raw_argo_is_validated_as_strictly_as_generated_templates():
    text = """\
version: 1
jobs:
  raw:
    argo:
      entrypoint: main
      templates:
        - name: main
          container: {image: x, imagee: typo}
        - name: sneaky
          serviceAccountName: admin
          container: {image: x}
"""
    found = problems(text)
    assert any(
        p.startswith(".forgeflow.yaml:8:33: jobs.raw.argo.templates[0].container.imagee:") for p in found
    )
    # what raw Argo may reach depends on the repository's policy: checked when a run is
    # planned (tests/jobs/test_tenancy.py), not when the file is loaded
    assert not any("serviceAccountName" in p for p in found)
    missing = problems(
        "version: 1\njobs:\n  raw:\n"
        "    argo: {entrypoint: nope, templates: [{name: a, container: {image: x}}]}\n"
    )
    assert any("jobs.raw.argo.entrypoint: no template named 'nope'" in p for p in missing)


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ("workflowTemplate: rel\n    steps: [x]", "not steps and workflowTemplate"),
        ("workflowTemplate: rel\n    image: x", "workflowTemplate jobs set image in their Argo templates"),
        ("steps: [x]\n    arguments: {a: b}", "arguments are for argo and workflowTemplate jobs"),
        ("workflowTemplate: Not_A_Name", "not a Kubernetes object name"),
        ("steps: [x]\n    secrets: [Bad_Name]", "not a Kubernetes Secret name"),
        ("steps: [x]\n    resources: {cpu: lots}", "not a Kubernetes quantity"),
        ("steps: [x]\n    retries: 11", "must be at most 10, not 11"),
        ("steps: [x]\n    artifacts: [../etc/passwd]", "a path inside the checkout"),
        ("steps: [x]\n    artifacts: [/abs]", "a path inside the checkout"),
        ("steps: [x]\n    artifacts: [dist, {name: dist, path: other}]", "the same name"),
        ("workflowTemplate: rel\n    arguments: {'bad name': x}", "not an Argo parameter name"),
        ("{}", "a job needs steps (or argo, or workflowTemplate)"),
    ],
)
def test_option_mistakes(job: str, expected: str):
    found = problems(f"version: 1\njobs:\n  t:\n    {job}\n")
    assert any(expected in p for p in found), found


def test_runtime_options_load():
    job = load_job_file(
        "version: 1\njobs:\n  t:\n    steps: [x]\n    retries: 2\n    resources: {cpu: 1, memory: 2Gi}\n"
        "    secrets: pypi\n    artifacts: [dist/]\n"
    ).jobs["t"]
    assert job.retries is not None and (job.retries.limit, job.retries.backoff, job.retries.policy) == (
        2,
        10,
        "Always",
    )
    assert job.resources is not None and job.resources.requests is not None
    assert (job.resources.requests.cpu, job.resources.requests.memory) == ("1", "2Gi")
    assert job.secrets == ("pypi",)
    assert [(a.name, a.path) for a in job.artifacts] == [("dist", "dist")]
