"""Required jobs a filter skipped, the forgeflow/summary verdict, and on: merge_group."""

from __future__ import annotations

from service.events import Event, EventKind, PullRequest, Repository
from service.jobs.loader import load_job_file
from service.jobs.matcher import match_jobs
from service.jobs.required import skipped_required
from service.runs.summary import verdict
from service.store.models import Job

REPO = Repository("octo", "hello", "https://example.invalid/octo/hello.git")
JOBS = load_job_file("""\
version: 1
jobs:
  docs:
    on: [pull_request]
    paths: ["docs/**"]
    required: true
    steps: [x]
  release:
    on: [pull_request]
    branches: [release]
    required: true
    steps: [x]
  labelled:
    on: {pull_request: {labels: [run-me]}}
    required: true
    steps: [x]
  conditional:
    if: "event.pull_request.draft"
    required: true
    matrix: {py: ["3.12", "3.13"]}
    steps: [x]
  pushes:
    on: [push]
    required: true
    steps: [x]
  optional:
    on: [pull_request]
    paths: ["docs/**"]
    steps: [x]
  queue:
    on: {merge_group: {branches: [main]}}
    steps: [x]
""")


def pull_request(files: list[str]) -> tuple[Event, list[str]]:
    pr = PullRequest(7, target_branch="main")
    return Event("github", EventKind.PULL_REQUEST, REPO, "a" * 40, action="opened", pull_request=pr), files


def test_every_filter_that_skips_a_required_job_reports_it() -> None:
    event, files = pull_request(["src/x.c"])
    decisions = match_jobs(event, JOBS, lambda: files)
    filtered = {d.job for d in decisions if d.filtered}
    assert filtered == {"docs", "release", "labelled", "conditional", "optional"}
    skipped = skipped_required(JOBS, decisions, taken=["skip-docs"])
    contexts = {s.context: s for s in skipped}
    assert set(contexts) == {
        "forgeflow/docs",
        "forgeflow/release",
        "forgeflow/labelled",
        "forgeflow/conditional (py=3.12)",
        "forgeflow/conditional (py=3.13)",
    }
    assert contexts["forgeflow/docs"].reason.startswith("skipped: no changed file matches paths")
    assert contexts["forgeflow/docs"].task == "skip-docs-2", "task names stay unique in the run"
    assert (
        contexts["forgeflow/conditional (py=3.12)"].reason == "skipped: if: event.pull_request.draft is false"
    )
    assert len({s.task for s in skipped}) == len(skipped)


def test_a_policy_makes_a_job_required() -> None:
    event, files = pull_request(["src/x.c"])
    decisions = match_jobs(event, JOBS, lambda: files)
    assert "forgeflow/optional" in {
        s.context for s in skipped_required(JOBS, decisions, required=["optional"])
    }


def test_merge_group_jobs_match_the_queues_target_branch() -> None:
    into_main = Event(
        "github",
        EventKind.MERGE_GROUP,
        REPO,
        "b" * 40,
        action="checks_requested",
        extra={"base_branch": "main"},
    )
    assert {d.job for d in match_jobs(into_main, JOBS) if d.matched} == {"queue"}
    into_dev = Event("github", EventKind.MERGE_GROUP, REPO, "b" * 40, extra={"base_branch": "dev"})
    assert not any(d.matched for d in match_jobs(into_dev, JOBS))


def job(state: str, context: str = "forgeflow/x") -> Job:
    return Job(name="x", task="x", context=context, state=state, description="")


def test_the_summary_is_green_only_when_every_job_is() -> None:
    assert verdict([job("success"), job("running")])[0] == "pending"
    assert verdict([job("success"), job("success")]) == ("success", "all 2 jobs passed")
    state, description = verdict([job("success"), job("error", "forgeflow/lint")])
    assert state == "failure" and description == "1 of 2 jobs did not pass: lint"
    assert verdict([])[0] == "success"
