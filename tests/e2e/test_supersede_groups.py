"""Stopping and queueing at the database level, with an executor that records what it is asked:
concurrency groups (cancel in progress, or wait for the group), late deliveries of an older
commit, and a stop that fails the first time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from service.context import Context
from service.events import Event, EventKind, PullRequest, Repository
from service.executors.base import Manifest, RunSecret, TransientExecutorError, WorkflowRef
from service.forges.local import local_statuses
from service.forges.registry import ForgeRegistry
from service.runs.start import resume_run
from service.runs.stopping import stop_superseded_runs
from service.runs.sweep import start_waiting_runs
from service.settings import Settings
from service.store.db import Database
from service.store.models import Delivery, Job, Run, RunPhase
from service.watcher import Watcher

REPO = Repository(namespace="octo", name="hello", clone_url="/nowhere.git")


class RecordingExecutor:
    name = "recording"

    def __init__(self) -> None:
        self.submitted: list[str] = []
        self.stopped: list[tuple[str, str]] = []
        self.fail_stops = 0

    def submit(self, manifest: Manifest, secrets: Sequence[RunSecret] = ()) -> WorkflowRef:
        ref = WorkflowRef.of(manifest)
        self.submitted.append(ref.name)
        return ref

    def stop(self, ref: WorkflowRef, message: str) -> None:
        self.stopped.append((ref.name, message))
        if self.fail_stops:
            self.fail_stops -= 1
            raise TransientExecutorError("503 from the API")

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)  # get/list/watch/annotate/logs are not used here


@pytest.fixture
def ctx(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[Context]:
    settings = make_settings()
    db = Database(settings.database)
    db.migrate()
    executor = RecordingExecutor()
    context = Context(settings, db, ForgeRegistry(settings, db), executor_factory=lambda _: executor)
    yield context
    context.close()


def event(sha: str, pr: int | None = 7, action: str = "synchronize") -> Event:
    kind = EventKind.PULL_REQUEST if pr else EventKind.PUSH
    pull = PullRequest(number=pr, head_sha=sha) if pr else None
    return Event(forge="local", kind=kind, repository=REPO, sha=sha, action=action, pull_request=pull)


def add_run(
    ctx: Context,
    sha: str,
    *,
    phase: str = RunPhase.CREATED,
    pr: int | None = 7,
    group: str = "",
    cancel: bool = False,
    delivery: int | None = None,
    repo: str = "octo/hello",
) -> int:
    with ctx.db.session() as session:
        if delivery is not None:
            session.add(Delivery(id=delivery, forge="local", delivery_id=f"d{delivery}", event_json="{}"))
            session.flush()
        run = Run(
            trigger_key=f"t-{sha}-{delivery}-{group}-{phase}",
            delivery_pk=delivery,
            forge="local",
            repo=repo,
            sha=sha,
            event_kind="pull_request" if pr else "push",
            pr_number=pr,
            event_json=event(sha, pr).to_json(),
            phase=phase,
            concurrency_group=group,
            cancel_in_progress=cancel,
            namespace="ci",
            manifest_json="{}",
        )
        session.add(run)
        session.flush()
        run.workflow_name = f"forgeflow-{run.id}-{sha[:7]}"
        run.manifest_json = json.dumps({"metadata": {"name": run.workflow_name, "namespace": "ci"}})
        started = phase in (RunPhase.SUBMITTED, RunPhase.RUNNING)
        build = ("running", "running") if started else ("pending", "queued")
        for task, (state, description) in (("build", build), ("test", ("pending", "queued"))):
            job = Job(name=task, task=task, context=f"forgeflow/{task}", state=state, description=description)
            run.jobs.append(job)
        return run.id


def run_of(ctx: Context, run_id: int) -> Run:
    with ctx.db.session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        _ = run.jobs
        return run


def executor(ctx: Context) -> RecordingExecutor:
    recording = ctx.executor
    assert isinstance(recording, RecordingExecutor)
    return recording


def workflow(ctx: Context, run_id: int, phase: str, **spec: Any) -> dict[str, Any]:
    run = run_of(ctx, run_id)
    return {
        "metadata": {
            "name": run.workflow_name,
            "namespace": "ci",
            "labels": {"forgeflow.dev/run": str(run_id)},
        },
        "spec": spec,
        "status": {"phase": phase, "finishedAt": "2026-01-01T00:00:00Z", "nodes": {}},
    }


def test_cancel_in_progress_stops_the_older_runs_of_the_group(ctx: Context):
    older = add_run(ctx, "a" * 40, phase=RunPhase.RUNNING, pr=None, group="deploy")
    waiting = add_run(ctx, "b" * 40, pr=None, group="deploy")
    other_group = add_run(ctx, "c" * 40, phase=RunPhase.RUNNING, pr=None, group="docs")
    other_repo = add_run(ctx, "d" * 40, phase=RunPhase.RUNNING, pr=None, group="deploy", repo="octo/other")
    new = add_run(ctx, "e" * 40, pr=None, group="deploy", cancel=True)

    stopped = stop_superseded_runs(ctx, event("e" * 40, pr=None, action=""), new)

    reason = "cancelled: a newer run in group deploy"
    assert stopped == [older, waiting]
    for run_id in (older, waiting):
        run = run_of(ctx, run_id)
        assert (run.phase, run.stop_reason) == (RunPhase.ERROR, reason)
        assert {(j.state, j.description) for j in run.jobs} == {("error", reason)}
    names = [run_of(ctx, older).workflow_name, run_of(ctx, waiting).workflow_name]
    assert [name for name, _ in executor(ctx).stopped] == names
    assert run_of(ctx, other_group).phase == run_of(ctx, other_repo).phase == RunPhase.RUNNING
    reported = {s.context: (s.state, s.description) for s in local_statuses(ctx.db, "octo/hello", "a" * 40)}
    assert reported == {"forgeflow/build": ("error", reason), "forgeflow/test": ("error", reason)}
    assert "already" not in resume_run(ctx, new).outcome  # the new run starts right away
    assert executor(ctx).submitted == [run_of(ctx, new).workflow_name]


def test_without_cancel_a_new_run_waits_for_its_group_oldest_first(ctx: Context):
    first = add_run(ctx, "a" * 40, phase=RunPhase.RUNNING, pr=None, group="deploy")
    second = add_run(ctx, "b" * 40, pr=None, group="deploy")
    third = add_run(ctx, "c" * 40, pr=None, group="deploy")
    assert stop_superseded_runs(ctx, event("b" * 40, pr=None, action=""), second) == []

    outcome = resume_run(ctx, second).outcome
    assert f"waiting for run {first} (concurrency group deploy)" in outcome
    assert resume_run(ctx, third).outcome.endswith(f"waiting for run {first} (concurrency group deploy)")
    assert executor(ctx).submitted == []
    assert run_of(ctx, second).phase == RunPhase.CREATED
    assert {j.state for j in run_of(ctx, second).jobs} == {"pending"}  # reported as queued

    # The first run ends: the watcher starts the next one, and only that one.
    Watcher(ctx, report_threads=0).handle(workflow(ctx, first, "Succeeded"))
    assert executor(ctx).submitted == [run_of(ctx, second).workflow_name]
    assert run_of(ctx, second).phase == RunPhase.SUBMITTED
    assert run_of(ctx, third).phase == RunPhase.CREATED
    assert "waiting for run" in run_of(ctx, third).message

    # If the watcher missed the moment, the sweep starts it.
    with ctx.db.session() as session:
        session.get(Run, second).phase = RunPhase.FAILED  # type: ignore[union-attr]
    assert start_waiting_runs(ctx) == [third]
    assert start_waiting_runs(ctx) == []


def test_a_new_commit_supersedes_only_older_runs_of_the_same_pull_request(ctx: Context):
    old = add_run(ctx, "a" * 40, phase=RunPhase.RUNNING, delivery=1)
    same_sha = add_run(ctx, "b" * 40, phase=RunPhase.RUNNING, delivery=2)
    other_pr = add_run(ctx, "c" * 40, phase=RunPhase.RUNNING, pr=8, delivery=3)
    new = add_run(ctx, "b" * 40, delivery=4)

    assert stop_superseded_runs(ctx, event("b" * 40), new) == [old]
    assert run_of(ctx, old).stop_reason == "superseded by bbbbbbb"
    assert run_of(ctx, same_sha).phase == run_of(ctx, other_pr).phase == RunPhase.RUNNING
    assert stop_superseded_runs(ctx, event("b" * 40, action="closed"), new) == []


def test_a_late_delivery_of_an_older_commit_is_superseded_at_once(ctx: Context):
    newer = add_run(ctx, "b" * 40, phase=RunPhase.RUNNING, delivery=5)
    late = add_run(ctx, "a" * 40, delivery=4)  # received earlier, processed after a retry

    assert stop_superseded_runs(ctx, event("a" * 40), late) == [late]
    assert run_of(ctx, late).stop_reason == "superseded by bbbbbbb"
    assert {j.state for j in run_of(ctx, late).jobs} == {"error"}
    assert run_of(ctx, newer).phase == RunPhase.RUNNING
    assert "already error" in resume_run(ctx, late).outcome
    assert executor(ctx).submitted == []
    assert executor(ctx).stopped == [(run_of(ctx, late).workflow_name, "superseded by bbbbbbb")]


def test_a_stop_that_failed_is_asked_again_by_the_watcher(ctx: Context):
    old = add_run(ctx, "a" * 40, phase=RunPhase.RUNNING, delivery=1)
    new = add_run(ctx, "b" * 40, delivery=2)
    executor(ctx).fail_stops = 1

    assert stop_superseded_runs(ctx, event("b" * 40), new) == [old]
    assert {j.state for j in run_of(ctx, old).jobs} == {"error"}  # the forge is told anyway

    watcher = Watcher(ctx, report_threads=0)
    watcher.handle(workflow(ctx, old, "Running"))  # still running, no spec.shutdown
    watcher.handle(workflow(ctx, old, "Running", shutdown="Terminate"))  # now stopping
    watcher.handle(workflow(ctx, old, "Failed", shutdown="Terminate"))
    name = run_of(ctx, old).workflow_name
    assert executor(ctx).stopped == [(name, "superseded by bbbbbbb")] * 2
    assert {(j.state, j.description) for j in run_of(ctx, old).jobs} == {("error", "superseded by bbbbbbb")}
