from __future__ import annotations

from service.events import Event, EventKind, PullRequest, Repository
from service.jobs.globs import glob_match, matches_any
from service.jobs.loader import load_job_file
from service.jobs.matcher import match_jobs

REPO = Repository("octo", "hello", "https://example.invalid/octo/hello.git")

JOBS = load_job_file("""\
version: 1
jobs:
  everywhere:
    steps: [x]
  main-push:
    on: {push: {branches: [main]}}
    steps: [x]
  release-branches:
    on: [push, pull_request]
    branches: ["release/**"]
    steps: [x]
  not-wip:
    on: {push: {branches-ignore: ["wip/*"]}}
    steps: [x]
  tags:
    on: {tag: ["v*", "!v0.*"]}
    steps: [x]
  closing:
    on: {pull_request: {types: [closed]}}
    steps: [x]
""")


def push(branch: str) -> Event:
    return Event("github", EventKind.PUSH, REPO, "a" * 40, ref=f"refs/heads/{branch}", branch=branch)


def matched(event: Event) -> set[str]:
    return {d.job for d in match_jobs(event, JOBS) if d.matched}


def test_push_branch_filters():
    assert matched(push("main")) == {"everywhere", "main-push", "not-wip"}
    assert matched(push("wip/x")) == {"everywhere"}
    assert matched(push("release/1.0/hotfix")) == {"everywhere", "release-branches", "not-wip"}


def test_tags_with_exclusions():
    tag = Event("github", EventKind.TAG, REPO, "a" * 40, ref="refs/tags/v1.2", tag="v1.2")
    assert matched(tag) == {"tags"}
    old = Event("github", EventKind.TAG, REPO, "a" * 40, ref="refs/tags/v0.9", tag="v0.9")
    assert matched(old) == set()


def test_pull_request_types_and_target_branch():
    def pr(action: str, target: str) -> Event:
        return Event(
            "github",
            EventKind.PULL_REQUEST,
            REPO,
            "b" * 40,
            action=action,
            pull_request=PullRequest(7, source_branch="feature", target_branch=target),
        )

    assert matched(pr("opened", "main")) == {"everywhere"}
    assert matched(pr("synchronize", "release/2")) == {"everywhere", "release-branches"}
    assert matched(pr("closed", "main")) == {"closing"}
    assert matched(pr("merged", "main")) == {"closing"}
    assert matched(pr("labeled", "main")) == set()


def test_every_job_gets_a_reason():
    decisions = match_jobs(push("wip/x"), JOBS)
    reasons = {d.job: d.reason for d in decisions}
    assert reasons["main-push"] == "branch 'wip/x' is not in on.branches ['main']"
    assert reasons["not-wip"] == "branch 'wip/x' is in on.branches-ignore ['wip/*']"
    assert reasons["tags"] == "not triggered by push"


def test_globs():
    assert glob_match("release/*", "release/1")
    assert not glob_match("release/*", "release/1/2")
    assert glob_match("release/**", "release/1/2")
    assert glob_match("src/**/*.py", "src/a.py")
    assert glob_match("src/**/*.py", "src/x/y/a.py")
    assert not glob_match("*.py", "src/a.py")
    assert glob_match("v[0-9]*", "v1")
    assert matches_any(["*", "!main"], "dev")
    assert not matches_any(["*", "!main"], "main")
