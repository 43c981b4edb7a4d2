"""Golden manifests for what jobs hand each other (issue 16): skips, depends, artifacts,
outputs, caches, services, continue-on-error, schedules and manual inputs.

Regenerate with ``FORGEFLOW_UPDATE_GOLDEN=1`` and review the diff, as for ``test_compiler``.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import yaml

from service.argo.validation import validate_manifest
from service.compiler import compile_workflow
from service.events import Event, EventKind
from service.jobs.conditions import depends_expression, selected_outcomes, uses_status
from service.jobs.errors import JobFileError
from service.jobs.loader import load_job_file
from service.jobs.matcher import match_jobs
from service.jobs.plan import bind_run, plan_workflow
from tests.test_compiler import EVENTS, GOLDEN, OPTIONS, REPO, RUN_URL, SHA

RELEASE = """\
version: 1
jobs:
  build:
    on: [push, tag, pull_request]
    artifacts: [dist/]
    outputs: [version]
    steps: ["make dist", "echo version=$(cat VERSION) >> \\"$FORGEFLOW_OUTPUT\\""]
  test:
    on: [push, tag, pull_request]
    needs: [build]
    services: {db: {image: "postgres:16", env: {POSTGRES_PASSWORD: x}, ports: [5432]}}
    steps: [make test]
  publish:
    on: [tag]
    needs: [build, test]
    if: "!event.tag.contains('-rc')"
    env:
      VERSION: "${{ needs.build.outputs.version }}"
      CHANNEL: "v${{ needs.build.outputs.version }}-stable"
    steps: [make publish]
  smoke:
    on: [tag]
    needs: [publish]
    steps: [make smoke]
  announce:
    on: [tag]
    needs: [{job: publish, optional: true}, {job: build, artifacts: false}]
    steps: [make announce]
  cleanup:
    on: [push, tag, pull_request]
    needs: [test]
    if: "always()"
    steps: [make clean]
  report-failure:
    on: [push, tag, pull_request]
    needs: [test, build]
    if: "failure() && event.kind != 'pull_request'"
    steps: [make report]
  flaky:
    on: [push, tag, pull_request]
    continue-on-error: true
    steps: [make flaky]
  after-flaky:
    on: [push, tag, pull_request]
    needs: [flaky]
    steps: ["true"]
"""

CACHE = """\
version: 1
jobs:
  lint:
    cache:
      key: "pip-${{ hashFiles('requirements*.txt', '**/setup.cfg') }}"
      paths: [.cache/pip]
      restore-keys: [pip-]
    env: {PIP_CACHE_DIR: .cache/pip}
    steps: [pip install -r requirements.txt]
  tests:
    needs: [lint]
    matrix: {python: ["3.11", "3.12"]}
    cache: {key: "pip-${{ matrix.python }}-${{ hashFiles('requirements.txt') }}", paths: [.cache/pip, .tox]}
    services: {redis: {image: "redis:7", ports: [6379]}}
    steps: [tox]
"""

MATRIX_CONSUMER = """\
version: 1
jobs:
  build:
    artifacts: [{name: wheel, path: dist}]
    outputs: [version]
    steps: [make wheel]
  tests:
    needs: [build]
    matrix: {python: ["3.11", "3.12"]}
    env: {VERSION: "${{ needs.build.outputs.version }}", PY: "${{ matrix.python }}"}
    continue-on-error: true
    steps: [pip install dist/*.whl]
  docs:
    needs: [tests]
    steps: [make docs]
"""

SCHEDULED = """\
version: 1
jobs:
  nightly:
    on: {schedule: [{cron: "0 3 * * *", branch: main}]}
    steps: [make nightly]
  deploy:
    on:
      manual:
        inputs:
          target: {type: choice, options: [staging, prod], default: staging}
          dry-run: {type: boolean, default: true}
    steps: ["deploy --to \\"$FORGEFLOW_INPUT_TARGET\\""]
  push-only:
    steps: ["true"]
"""

TAG_RC = dataclasses.replace(EVENTS["tag"], ref="refs/tags/v1.2.3-rc1", tag="v1.2.3-rc1")
SCHEDULE = Event(
    "github",
    EventKind.SCHEDULE,
    REPO,
    SHA,
    ref="refs/heads/main",
    branch="main",
    sender="forgeflow",
    extra={"schedule": "0 3 * * *"},
)
MANUAL = Event(
    "github",
    EventKind.MANUAL,
    REPO,
    SHA,
    action="manual",
    ref="refs/heads/main",
    branch="main",
    sender="alice",
    extra={"jobs": "deploy", "inputs": json.dumps({"target": "prod", "dry-run": False})},
)
CASES = {
    "handoff-release-tag": (EVENTS["tag"], RELEASE),
    "handoff-release-rc": (TAG_RC, RELEASE),
    "handoff-release-push": (EVENTS["push"], RELEASE),
    "handoff-cache-push": (EVENTS["push"], CACHE),
    "handoff-cache-pr": (EVENTS["pr"], CACHE),
    "handoff-matrix-consumer": (EVENTS["push"], MATRIX_CONSUMER),
    "handoff-schedule": (SCHEDULE, SCHEDULED),
    "handoff-manual-inputs": (MANUAL, SCHEDULED),
}


def planned(case: str):
    event, text = CASES[case]
    job_file = load_job_file(text)
    return bind_run(plan_workflow(event, job_file, match_jobs(event, job_file), OPTIONS), 42, RUN_URL)


def tasks_of(manifest: dict) -> dict[str, dict]:
    return {t["name"]: t for t in manifest["spec"]["templates"][0]["dag"]["tasks"]}


def templates_of(manifest: dict) -> dict[str, dict]:
    return {t["name"]: t for t in manifest["spec"]["templates"]}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_manifest(case: str):
    manifest = compile_workflow(planned(case))
    validate_manifest(manifest)
    path = GOLDEN / f"{case}.yaml"
    text = yaml.safe_dump(manifest, sort_keys=False, width=1000)
    if os.environ.get("FORGEFLOW_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with FORGEFLOW_UPDATE_GOLDEN=1 once and review it"
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == manifest


def test_a_need_left_out_by_if_skips_its_dependents_with_the_reason():
    plan = planned("handoff-release-rc")
    skipped = {r.job: r for r in plan.refused}
    assert skipped["smoke"].state == "success"
    assert skipped["smoke"].reason == "skipped: publish did not run (if: !event.tag.contains('-rc') is false)"
    assert "publish" not in {t.job for t in plan.tasks}  # not matched: no status, as before
    # an optional need does not block; cleanup and report-failure do not need publish
    assert {"announce", "cleanup", "report-failure", "build", "test"} <= {t.job for t in plan.tasks}
    tasks = tasks_of(compile_workflow(plan))
    assert tasks["announce"]["depends"] == "build"


def test_status_functions_become_depends_expressions():
    tasks = tasks_of(compile_workflow(planned("handoff-release-tag")))
    assert tasks["cleanup"]["depends"] == "(test.Succeeded || !test.Succeeded)"
    assert (
        tasks["report-failure"]["depends"] == "(test.Failed || test.Errored || build.Failed || build.Errored)"
    )
    assert tasks["announce"]["depends"] == "build.Succeeded && (publish.Succeeded || !publish.Succeeded)"
    assert tasks["smoke"]["depends"] == "publish"
    assert tasks["flaky"]["continueOn"] == {"failed": True, "error": True}
    assert tasks["after-flaky"]["depends"] == "flaky"  # Argo lets a continueOn need through
    assert "arguments" not in tasks["announce"]  # artifacts: false


def test_failure_only_jobs_are_not_planned_for_pull_requests():
    plan = compile_workflow(planned("handoff-release-push"))
    assert "report-failure" in tasks_of(plan)
    pr_event, _ = EVENTS["pr"], RELEASE
    job_file = load_job_file(RELEASE)
    decisions = {d.job: d for d in match_jobs(pr_event, job_file)}
    assert not decisions["report-failure"].matched
    assert decisions["report-failure"].reason.startswith("if: ")


def test_outputs_reach_dependents_only_as_environment_values():
    manifest = compile_workflow(planned("handoff-release-tag"))
    publish = templates_of(manifest)["publish"]
    env = {e["name"]: e["value"] for e in publish["container"]["env"]}
    assert env["VERSION"] == "{{inputs.parameters.build-version}}"
    assert env["CHANNEL"] == "v{{inputs.parameters.build-version}}-stable"
    assert not any("{{" in arg for arg in publish["container"]["args"])
    assert tasks_of(manifest)["publish"]["arguments"]["parameters"] == [
        {"name": "build-version", "value": "{{tasks.build.outputs.parameters.version}}"}
    ]
    build = templates_of(manifest)["build"]
    assert build["outputs"]["parameters"] == [
        {
            "name": "version",
            "valueFrom": {"path": "/workspace/source/.forgeflow/outputs/version", "default": ""},
        }
    ]


def test_matrix_cells_take_artifacts_and_outputs_through_their_nested_dag():
    manifest = compile_workflow(planned("handoff-matrix-consumer"))
    templates = templates_of(manifest)
    group = tasks_of(manifest)["tests"]
    assert group["arguments"]["artifacts"] == [
        {"name": "build-wheel", "from": "{{tasks.build.outputs.artifacts.wheel}}", "optional": True}
    ]
    assert group["continueOn"] == {"failed": True, "error": True}
    assert templates["tests"]["inputs"]["artifacts"] == [{"name": "build-wheel", "optional": True}]
    cell = templates["tests"]["dag"]["tasks"][0]
    assert cell["arguments"]["artifacts"][0]["from"] == "{{inputs.artifacts.build-wheel}}"
    assert "continueOn" not in cell


def test_caches_are_scoped_per_branch_and_pull_requests_never_write():
    push = templates_of(compile_workflow(planned("handoff-cache-push")))["lint"]
    pr = templates_of(compile_workflow(planned("handoff-cache-pr")))["lint"]
    reads = [a["s3"]["key"] for a in push["inputs"]["artifacts"] if "s3" in a]
    assert len(reads) == 1 and reads[0].startswith("forgeflow-cache/github/octo%2Fhello/main/")
    assert push["outputs"]["artifacts"][0]["s3"]["key"] == reads[0]
    assert [a["s3"]["key"] for a in pr["inputs"]["artifacts"] if "s3" in a] == reads  # the target's
    assert "outputs" not in pr
    env = {e["name"]: e["value"] for e in push["container"]["env"]}
    assert env["FORGEFLOW_CACHE_KEY"] == "pip-@@hash1@@"
    assert env["FORGEFLOW_CACHE_HASH_1"] == "requirements*.txt\n**/setup.cfg"
    assert env["FORGEFLOW_CACHE_SAVE"] == "true"
    assert push["container"]["args"][2] == "restore cache"


def test_a_jobs_artifacts_go_with_the_workflow_and_caches_stay():
    manifest = compile_workflow(planned("handoff-release-tag"))
    validate_manifest(manifest)
    (dist,) = templates_of(manifest)["build"]["outputs"]["artifacts"]
    assert dist["artifactGC"] == {"strategy": "OnWorkflowDeletion"}  # the TTL deletes the Workflow
    # Argo's GC pod runs as the Workflow's account, and a failed deletion frees the Workflow
    assert manifest["spec"]["artifactGC"] == {
        "serviceAccountName": OPTIONS.service_account,
        "forceFinalizerRemoval": True,
    }
    assert "strategy" not in manifest["spec"]["artifactGC"]  # raw Argo's artifacts stay its own
    cache = compile_workflow(planned("handoff-cache-push"))
    (saved,) = templates_of(cache)["lint"]["outputs"]["artifacts"]
    assert "artifactGC" not in saved and "artifactGC" not in cache["spec"]  # caches outlive runs
    assert "artifactGC" not in compile_workflow(planned("handoff-schedule"))["spec"]  # no artifacts


def test_manual_inputs_and_schedules_reach_steps_as_environment():
    manual = templates_of(compile_workflow(planned("handoff-manual-inputs")))["deploy"]
    env = {e["name"]: e["value"] for e in manual["container"]["env"]}
    assert env["FORGEFLOW_INPUT_TARGET"] == "prod" and env["FORGEFLOW_INPUT_DRY_RUN"] == "false"
    scheduled = compile_workflow(planned("handoff-schedule"))
    assert set(tasks_of(scheduled)) == {"nightly"}


def test_event_files_can_be_used_in_if():
    text = """\
version: 1
jobs:
  docs: {if: "event.files.exists(f, f.startsWith('docs/'))", steps: [make docs]}
  code: {if: "!event.files.all(f, f.startsWith('docs/'))", steps: [make]}
"""
    job_file = load_job_file(text)
    decisions = {d.job: d.matched for d in match_jobs(EVENTS["push"], job_file, lambda: ["docs/index.md"])}
    assert decisions == {"docs": True, "code": False}


@pytest.mark.parametrize(
    ("condition", "outcomes"),
    [
        (None, {"S"}),
        ("always()", {"S", "F", "O"}),
        ("failure()", {"F"}),
        ("success() || failure()", {"S", "F"}),
        ("!success()", {"F", "O"}),
        ("cancelled()", set()),
        ("'always()' == event", set()),  # inside a string literal it is no call
    ],
)
def test_status_function_outcomes(condition, outcomes):
    variables = {"event": "x"}
    if condition and not uses_status(condition):
        assert selected_outcomes(condition, variables) == frozenset()
        return
    assert selected_outcomes(condition, variables) == frozenset(outcomes)


def test_depends_expressions_name_every_need():
    assert depends_expression(frozenset({"S", "O"}), ["a", "b"], ["c"]) == (
        "!(a.Failed || a.Errored || b.Failed || b.Errored) && (c.Succeeded || !c.Succeeded)"
    )
    assert depends_expression(frozenset({"O"}), ["a"], []) == "!(a.Succeeded) && !(a.Failed || a.Errored)"


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ("{needs: [a], env: {V: '${{ needs.b.outputs.v }}'}, steps: [x]}", "'b' is not in this job's needs"),
        ("{needs: [a], env: {V: '${{ needs.a.outputs.w }}'}, steps: [x]}", "declares no output 'w'"),
        ("{needs: [a], steps: ['echo ${{ needs.a.outputs.v }}']}", "only ${{ matrix.NAME }}"),
        ("{cache: {key: '${{ event.sha }}', paths: [x]}, steps: [x]}", "a cache key may only use"),
        ("{cache: {key: k, paths: [../x]}, steps: [x]}", "a path inside the checkout"),
        ("{services: {DB: {image: x}}, steps: [x]}", "service 'DB'"),
        ("{on: {schedule: [{cron: '0 3 * *'}]}, steps: [x]}", "five fields"),
        ("{on: [schedule], steps: [x]}", "schedule needs times"),
        ("{on: {manual: {inputs: {t: {type: choice}}}}, steps: [x]}", "a choice input needs options"),
        ("{needs: [a, a], steps: [x]}", "a job is needed twice"),
    ],
)
def test_bad_handoff_keys_are_config_errors(job: str, message: str):
    text = f"version: 1\njobs:\n  a: {{outputs: [v], steps: [x]}}\n  j: {job}\n"
    with pytest.raises(JobFileError) as caught:
        load_job_file(text)
    assert message in str(caught.value)


def test_manual_inputs_are_checked_against_the_declaration_and_get_defaults():
    from service.runs.recipe import with_inputs

    job_file = load_job_file(SCHEDULED)
    given = dataclasses.replace(MANUAL, extra={"jobs": "deploy", "inputs": json.dumps({"target": "prod"})})
    assert json.loads(with_inputs(given, job_file, ".forgeflow.yaml").extra["inputs"]) == {
        "target": "prod",
        "dry-run": True,
    }
    for inputs, message in [
        ({"target": "moon"}, "input 'target' is one of staging, prod, not 'moon'"),
        ({"dry-run": "perhaps"}, "input 'dry-run' is true or false"),
        ({"colour": "red"}, "unknown input 'colour'"),
    ]:
        wrong = dataclasses.replace(MANUAL, extra={"jobs": "deploy", "inputs": json.dumps(inputs)})
        with pytest.raises(JobFileError) as caught:
            with_inputs(wrong, job_file, ".forgeflow.yaml")
        assert message in str(caught.value)
