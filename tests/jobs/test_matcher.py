from __future__ import annotations

import pytest

from service.events import Event, EventKind, PullRequest, Repository
from service.jobs.globs import glob_match, matches_any
from service.jobs.loader import JobFileError, load_job_file
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


# -- path filters, labels, tags, manual runs, conditions ------------------------------------

FILTERS = load_job_file("""\
version: 1
jobs:
  docs:
    paths: ["docs/**", "*.md"]
    steps: [x]
  code:
    on: {push: {paths-ignore: ["docs/**", "*.md"]}, pull_request: {}}
    steps: [x]
  anything:
    steps: [x]
  labelled:
    on: {pull_request: {types: [labeled, synchronize]}}
    labels: ["ci/*"]
    steps: [x]
  release-notes:
    on: [tag, release]
    tags: ["v*", "!v0.*"]
    steps: [x]
  deploy:
    on: [manual]
    steps: [x]
  smoke:
    on: [manual, push]
    if: "event.kind == 'manual' || event.branch == 'main'"
    steps: [x]
  not-drafts:
    on: [pull_request]
    if: "!event.pull_request.draft && event.sender != 'dependabot[bot]'"
    steps: [x]
""")


class Provider:
    def __init__(self, files: list[str] | None) -> None:
        self.files = files
        self.calls = 0

    def __call__(self) -> list[str] | None:
        self.calls += 1
        return self.files


def pull(
    action: str = "synchronize", labels: tuple[str, ...] = (), draft: bool = False, sender: str = "alice"
):
    return Event(
        "github",
        EventKind.PULL_REQUEST,
        REPO,
        "b" * 40,
        action=action,
        sender=sender,
        pull_request=PullRequest(7, target_branch="main", labels=labels, draft=draft),
    )


def decided(event: Event, files: list[str] | None = None) -> dict[str, tuple[bool, str]]:
    return {d.job: (d.matched, d.reason) for d in match_jobs(event, FILTERS, Provider(files))}


def test_paths_and_paths_ignore_over_the_changed_files():
    only_docs = decided(push("main"), ["docs/guide.md", "README.md"])
    assert only_docs["docs"][0] is True and "2 changed files match" in only_docs["docs"][1]
    assert only_docs["code"] == (
        False,
        "every changed file matches paths-ignore ['docs/**', '*.md'] (2 changed files)",
    )
    code = decided(push("main"), ["src/a.py", "docs/x.md"])
    assert code["docs"][0] is True and code["code"][0] is True
    assert decided(push("main"), ["src/a.py"])["docs"] == (
        False,
        "no changed file matches paths ['docs/**', '*.md'] (1 changed file)",
    )


def test_unknown_changed_files_let_the_job_run_and_say_why():
    unknown = decided(push("main"), None)
    assert unknown["docs"] == (
        True,
        "push to main; the forge could not list the changed files, so paths filters were not applied",
    )
    assert unknown["code"][0] is True


def test_the_provider_is_asked_once_and_only_when_a_path_filter_needs_it():
    provider = Provider(["src/a.py"])
    match_jobs(push("main"), FILTERS, provider)
    assert provider.calls == 1
    no_paths = load_job_file("version: 1\njobs:\n  a: {steps: [x]}\n")
    untouched = Provider(["x"])
    match_jobs(push("main"), no_paths, untouched)
    assert untouched.calls == 0
    tag = Event("github", EventKind.TAG, REPO, "a" * 40, tag="v1")
    match_jobs(tag, FILTERS, untouched)  # path filters do not apply to tags
    assert untouched.calls == 0


def test_labels_types_tags_and_release():
    assert decided(pull("labeled", labels=("ci/full",)), ["a"])["labelled"][0] is True
    assert decided(pull("labeled", labels=("wip",)), ["a"])["labelled"] == (
        False,
        "no label in labels ['ci/*'] (labels: ['wip'])",
    )
    assert decided(pull("opened", labels=("ci/full",)), ["a"])["labelled"][0] is False
    release = Event("github", EventKind.RELEASE, REPO, "a" * 40, tag="v2.0")
    assert decided(release)["release-notes"] == (True, "release v2.0")
    old = Event("github", EventKind.TAG, REPO, "a" * 40, tag="v0.9")
    assert decided(old)["release-notes"] == (False, "tag 'v0.9' is not in tags ['v*', '!v0.*']")


def test_manual_runs_start_on_manual_jobs_and_only_the_requested_ones():
    manual = Event("github", EventKind.MANUAL, REPO, "a" * 40, ref="refs/heads/dev", branch="dev")
    assert {j for j, (m, _) in decided(manual).items() if m} == {"deploy", "smoke"}
    assert decided(manual)["anything"] == (False, "not triggered manually (add 'manual' to on)")
    only = Event("github", EventKind.MANUAL, REPO, "a" * 40, branch="dev", extra={"jobs": "deploy"})
    assert decided(only)["smoke"] == (False, "not requested (the run asked for deploy)")


def test_conditions_are_cel_over_the_event():
    assert decided(push("main"), ["a"])["smoke"][0] is True
    assert decided(push("dev"), ["a"])["smoke"] == (
        False,
        "if: event.kind == 'manual' || event.branch == 'main' is false",
    )
    assert decided(pull(draft=True), ["a"])["not-drafts"][0] is False
    assert decided(pull(sender="dependabot[bot]"), ["a"])["not-drafts"][0] is False
    assert decided(pull(), ["a"])["not-drafts"][0] is True


def test_a_condition_that_fails_to_evaluate_is_a_config_error_with_its_line():
    # what the static check cannot know: a list's length, the type behind dyn()
    job_file = load_job_file(
        "version: 1\njobs:\n  a:\n    if: event.labels[2] == 'x'\n    steps: [x]\n"
        "  b:\n    if: dyn(event.branch)\n    steps: [x]\n"
    )
    with pytest.raises(JobFileError) as caught:
        match_jobs(push("main"), job_file)
    assert [str(p) for p in caught.value.problems] == [
        ".forgeflow.yaml:4:5: jobs.a.if: \"event.labels[2] == 'x'\" failed: invalid_argument",
        ".forgeflow.yaml:7:5: jobs.b.if: 'dyn(event.branch)' is 'main', not true or false",
    ]


def test_conditions_are_checked_against_the_event_before_any_event_arrives():
    with pytest.raises(JobFileError) as caught:
        load_job_file(
            "version: 1\njobs:\n  a:\n    if: event.nope == 1\n    steps: [x]\n"
            "  b:\n    if: event.branch\n    steps: [x]\n"
        )
    assert [str(p) for p in caught.value.problems] == [
        ".forgeflow.yaml:4:15: jobs.a.if: event has no field 'nope' (its fields: forge, kind, action, sha, "
        "short_sha, ref, branch, tag, before, sender, created, target_branch, labels, clone_url, jobs, "
        "files, inputs, schedule, repository, pull_request, comment)",
        ".forgeflow.yaml:7:9: jobs.b.if: event.branch is text, not true/false; an if: condition must be "
        "true or false: compare it, e.g. event.branch == 'main', or test it, e.g. "
        "event.branch.startsWith('release/')",
    ]
