"""The plan: what only the event and the service config decide (secrets, arguments, groups)."""

from __future__ import annotations

import dataclasses

import pytest

from service.events import Comment, Event, EventKind, PullRequest, Repository
from service.jobs.expressions import event_context, interpolate
from service.jobs.loader import JobFileError, load_job_file
from service.jobs.matcher import match_jobs
from service.jobs.plan import PlanOptions, WorkflowPlan, bind_run, plan_workflow

REPO = Repository("octo", "hello", "https://example.invalid/octo/hello.git", default_branch="main")
FORK = Repository("mallory", "hello", "https://example.invalid/mallory/hello.git")
ALL_EVENTS = ("push", "tag", "pull_request", "comment", "release", "manual")
OPTIONS = PlanOptions(
    "ci", "runner", "fedora:41", 1800, 3600, secrets=(("pypi", ALL_EVENTS), ("token", ALL_EVENTS))
)
RUN_URL = "https://ci.example/runs/5"
PUSH = Event("github", EventKind.PUSH, REPO, "a" * 40, ref="refs/heads/main", branch="main", sender="alice")
FORK_PR = Event(
    "github",
    EventKind.PULL_REQUEST,
    REPO,
    "b" * 40,
    action="opened",
    sender="mallory",
    pull_request=PullRequest(
        9, title="fix", author="mallory", target_branch="main", source_repo=FORK, fork=True
    ),
)

SECRETS = """\
version: 1
jobs:
  build:
    steps: [make]
  publish:
    needs: [build]
    secrets: [pypi]
    steps: [make publish]
  announce:
    needs: [publish]
    steps: [make announce]
  raw:
    argo:
      entrypoint: main
      templates:
        - name: main
          container:
            image: x
            env: [{name: T, valueFrom: {secretKeyRef: {name: token, key: t}}}]
"""


def plan(text: str, event: Event = PUSH, **options: object) -> WorkflowPlan:
    job_file = load_job_file(text)
    options_ = dataclasses.replace(OPTIONS, **options)
    return bind_run(plan_workflow(event, job_file, match_jobs(event, job_file), options_), 5, RUN_URL)


def test_a_secret_the_service_config_forbids_is_a_config_error_not_dropped():
    with pytest.raises(JobFileError) as caught:
        plan(SECRETS, allow_secrets=False)
    assert [str(p) for p in caught.value.problems] == [
        ".forgeflow.yaml:7:5: jobs.publish.secrets: the service config does not allow Kubernetes Secrets "
        "for octo/hello (asked for pypi)",
        ".forgeflow.yaml:13:5: jobs.raw.argo: the service config does not allow Kubernetes Secrets "
        "for octo/hello (asked for token)",
    ]


def test_untrusted_runs_never_get_secrets_and_their_dependents_say_so():
    result = plan(SECRETS, FORK_PR, trusted=False)
    assert [t.task for t in result.tasks] == ["build"]
    assert {r.context: r.reason for r in result.refused} == {
        "forgeflow/publish": "not run: untrusted runs never get secrets (pypi)",
        "forgeflow/announce": "not run: needs publish, which does not run",
        "forgeflow/raw": "not run: untrusted runs never get secrets (token)",
    }
    trusted = plan(SECRETS, FORK_PR, trusted=True)
    assert [t.task for t in trusted.tasks] == ["build", "publish", "announce", "raw"]
    assert trusted.tasks[1].secrets == ("pypi",)


def test_needs_on_a_matrix_job_wait_for_its_whole_group():
    result = plan(
        "version: 1\njobs:\n  t:\n    matrix: {a: [1, 2]}\n    steps: [x]\n"
        "  after:\n    needs: [t]\n    steps: [y]\n"
    )
    assert [(g.task, g.cells, g.fail_fast) for g in result.groups] == [("t", ("t.1", "t.2"), True)]
    assert [(t.task, t.group, t.dependencies) for t in result.tasks] == [
        ("t.1", "t", ()),
        ("t.2", "t", ()),
        ("after", "", ("t",)),
    ]
    assert result.main_tasks() == ["t", "after"]


def test_arguments_and_concurrency_evaluate_cel_over_the_event():
    text = """\
version: 1
concurrency: "deploy-${{ event.branch }}"
jobs:
  deploy:
    matrix: {region: [eu]}
    workflowTemplate: deploy
    arguments:
      ref: "${{ event.ref }}"
      where: "${{ matrix.region }}"
      pr: "${{ event.pull_request.number }}"
"""
    result = plan(text)
    assert dict(result.tasks[0].arguments) == {"ref": "refs/heads/main", "where": "eu", "pr": "0"}
    assert (result.concurrency_group, result.cancel_in_progress) == ("deploy-main", False)


def test_an_expression_that_fails_is_a_short_located_config_error():
    with pytest.raises(JobFileError) as caught:
        plan(
            "version: 1\njobs:\n  w:\n    workflowTemplate: w\n"
            "    arguments: {s: '${{ event.labels[3] }}'}\n"  # passes the static check, fails on a push
        )
    (problem,) = caught.value.problems
    assert str(problem) == (
        ".forgeflow.yaml:5:17: jobs.w.arguments.s: 'event.labels[3]' failed: invalid_argument"
    )


def test_argument_values_that_argo_would_read_as_expressions_are_refused():
    title = dataclasses.replace(
        FORK_PR, pull_request=dataclasses.replace(FORK_PR.pull_request, title="{{x}}")
    )
    with pytest.raises(JobFileError) as caught:
        plan(
            "version: 1\njobs:\n  w:\n    workflowTemplate: w\n"
            "    arguments: {t: '${{ event.pull_request.title }}'}\n",
            title,
        )
    assert "jobs.w.arguments.t: the value '{{x}}' contains '{{'" in str(caught.value)


def test_a_long_concurrency_group_is_shortened_deterministically():
    text = 'version: 1\nconcurrency: "${{ event.sender }}"\njobs:\n  a: {steps: [x]}\n'
    event = dataclasses.replace(PUSH, sender="x" * 400)
    first, second = plan(text, event).concurrency_group, plan(text, event).concurrency_group
    assert first == second and len(first) == 255


def test_the_cel_environment():
    comment = dataclasses.replace(
        FORK_PR, kind=EventKind.COMMENT, comment=Comment("1", "/forgeflow test", "bob")
    )
    context = event_context(comment)
    assert context["pull_request"]["fork"] is True and context["pull_request"]["number"] == 9
    assert context["comment"] == {"body": "/forgeflow test", "author": "bob"}
    assert context["clone_url"] == FORK.clone_url and context["repository"]["full_name"] == "octo/hello"
    push = event_context(PUSH)
    assert push["pull_request"]["number"] == 0 and push["pull_request"]["draft"] is False
    assert push["labels"] == [] and push["target_branch"] == "main"
    assert interpolate("${{ event.repository.name }}-${{ size(event.labels) }}", {"event": push}) == "hello-0"


def test_long_matrix_contexts_stay_within_the_column_and_unique():
    long = "x" * 150
    result = plan(f"version: 1\njobs:\n  t:\n    matrix: {{a: [{long}1, {long}2]}}\n    steps: [x]\n")
    contexts = [t.context for t in result.tasks]
    assert len(set(contexts)) == 2 and all(len(c) <= 255 for c in contexts)
    assert all(len(t.task) <= 101 for t in result.tasks)
