"""The watcher applies a batch of watch events in one transaction and reports it in bulk (issue 19).

Before, each Workflow transition cost about nine statements in six transactions (apply, lease,
post, release) and ~10 ms of CPU. A batch of transitions of many runs now costs a handful of
statements however many runs it holds, and every transition still reaches the forge once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select

from service.context import build_context
from service.events import Event, EventKind, Repository
from service.executors.base import ResourceVersionExpired, WatchEvent
from service.executors.batches import EventPump
from service.store.models import Job, Run, RunPhase
from service.watcher import Watcher
from tests.conftest import WEBHOOK_SECRET

REPO = "octo/hello"
RUNS = 40


class ScriptedExecutor:
    """An executor whose list is empty and whose watch yields what the test gives it."""

    name = "scripted"

    def __init__(self) -> None:
        self.events: list[WatchEvent] = []
        self.stopped: list[str] = []

    def list(self, label_selector: str) -> tuple[list[dict[str, Any]], str]:
        return [], "1"

    def watch(self, label_selector: str, resource_version: str, timeout_seconds: int) -> Iterator[WatchEvent]:
        yield from self.events

    def stop(self, ref: Any, reason: str) -> None:
        self.stopped.append(ref.name)


def workflow(run_id: int, phase: str, version: int) -> dict[str, Any]:
    name = f"wf-{run_id}"
    node = {"id": f"{name}-1", "name": f"{name}.unit", "displayName": "unit", "type": "Pod", "phase": phase}
    node["startedAt"] = "2026-12-01T10:00:00Z"
    status: dict[str, Any] = {"phase": phase, "nodes": {node["id"]: node}}
    if phase == "Succeeded":
        node["finishedAt"] = status["finishedAt"] = "2026-12-01T10:01:00Z"
    labels = {"app.kubernetes.io/managed-by": "forgeflow", "forgeflow.dev/run": str(run_id)}
    meta = {"name": name, "namespace": "ci", "labels": labels, "resourceVersion": str(version)}
    return {"metadata": meta, "status": status}


@pytest.fixture
def world(make_settings, fake_github, git_repo):
    fake_github.add_repo(REPO, git_repo)
    settings = make_settings(
        github_webhook_secret=WEBHOOK_SECRET, github_token="t", github_api_url=fake_github.api_url
    )
    executor = ScriptedExecutor()
    ctx = build_context(settings, executor_factory=lambda _: executor)  # type: ignore[arg-type,return-value]
    instance = settings.forge_instances()[0].name
    repo = Repository(namespace="octo", name="hello", clone_url=git_repo.url)
    ids = []
    with ctx.db.session() as session:
        for i in range(RUNS):
            sha = f"{i:040x}"
            run = Run(
                trigger_key=f"t{i}", forge="github", instance=instance, repo=REPO, sha=sha, event_kind="push"
            )
            run.event_json = Event(
                forge="github", kind=EventKind.PUSH, repository=repo, sha=sha, ref="r"
            ).to_json()
            run.phase, run.namespace, run.workflow_name = RunPhase.SUBMITTED, "ci", f"wf-{i + 1}"
            run.jobs.append(
                Job(
                    name="unit",
                    task="unit",
                    context="forgeflow/unit",
                    description="queued",
                    reported_state="pending",
                )
            )
            run.jobs[0].reported_description = "queued"
            session.add(run)
            session.flush()
            ids.append(run.id)
    assert ids == list(range(1, RUNS + 1))
    yield ctx, executor, fake_github
    ctx.close()


def statements(ctx) -> list[str]:
    seen: list[str] = []
    event.listen(ctx.db.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_a_batch_of_many_runs_transitions_costs_a_few_statements_and_reports_each_once(world):
    ctx, _, github = world
    watcher = Watcher(ctx, report_threads=0)
    seen = statements(ctx)
    running = [
        WatchEvent("MODIFIED", workflow(run_id, "Running", 100 + run_id)) for run_id in range(1, RUNS + 1)
    ]
    watcher.apply_events([*running, running[0]])  # a repeated event in the batch changes nothing
    assert len(seen) <= 12, "\n".join(seen)  # 12 on SQLite for 40 runs
    print(len(seen))  # one run at a time was about nine statements per run
    assert watcher.resource_version == "101"  # the last event's position
    done = [
        WatchEvent("MODIFIED", workflow(run_id, "Succeeded", 200 + run_id)) for run_id in range(1, RUNS + 1)
    ]
    watcher.apply_events(done)
    posted = Counter((p.sha, p.state, p.description.split(" ")[0]) for p in github.posted(REPO))
    assert len(posted) == 2 * RUNS, posted
    assert set(posted.values()) == {1}  # each transition once
    with ctx.db.session() as session:
        jobs = session.execute(select(Job.state, Job.reported_state, Job.report_lease_until)).all()
        phases = set(session.scalars(select(Run.phase)))
    assert set(jobs) == {("success", "success", None)}  # recorded, leases given back
    assert phases == {RunPhase.SUCCEEDED}


def test_the_watch_loop_applies_what_arrived_as_batches(world):
    ctx, executor, github = world
    executor.events = [
        WatchEvent("MODIFIED", workflow(run_id, "Running", run_id)) for run_id in range(1, RUNS + 1)
    ]
    watcher = Watcher(ctx, report_threads=2, watch_timeout=1)
    watcher.step()
    watcher.reporters.close()  # type: ignore[union-attr]
    assert watcher.resource_version == str(RUNS)
    assert len(github.posted(REPO)) == RUNS


def test_the_pump_hands_over_events_then_the_error_then_the_end():
    def stream() -> Iterator[WatchEvent]:
        yield WatchEvent("ADDED", {"metadata": {"name": "a"}})
        yield WatchEvent("MODIFIED", {"metadata": {"name": "b"}})
        raise ResourceVersionExpired("410 Gone")

    pump = EventPump(stream())
    first = pump.take(10, linger=0.5, wait=5)
    assert [e.object["metadata"]["name"] for e in first or []] == ["a", "b"]
    with pytest.raises(ResourceVersionExpired):
        pump.take(10, linger=0.5, wait=5)

    ended = EventPump(iter([WatchEvent("ADDED", {"metadata": {"name": "c"}})]))
    assert len(ended.take(1, linger=0, wait=5) or []) == 1
    assert ended.take(10, linger=0, wait=5) is None  # the stream ended


def test_take_waits_no_longer_than_asked_when_nothing_comes():
    release = threading.Event()

    def quiet() -> Iterator[WatchEvent]:
        release.wait(10)  # a watch with nothing to say
        yield WatchEvent("BOOKMARK", {"metadata": {"resourceVersion": "9"}})

    pump = EventPump(quiet())
    started = time.monotonic()
    assert pump.take(10, linger=0, wait=0.3) == []
    assert time.monotonic() - started < 2
    release.set()
    assert [e.type for e in pump.take(10, linger=0, wait=5) or []] == ["BOOKMARK"]
    pump.close()
