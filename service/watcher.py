"""The watcher: follows forgeflow's Workflows and turns their node phases into job states.

It lists, then watches from the list's ``resourceVersion``; on 410 Gone it lists again; every
``resync_seconds`` it lists anyway, to catch anything a watch missed. Each change is applied to
the job rows (never backwards: a final state stays final) and reported through the outbox, so
a restart, a repeated event or a second watcher replica never reports a transition twice.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from service.context import Context
from service.executors.base import ResourceVersionExpired, TransientExecutorError
from service.forges.base import TransientForgeError
from service.jobs.plan import LABEL_PREFIX, MANAGED_BY
from service.reporter import report_run
from service.status_mapping import WORKFLOW_FINAL, job_updates, now, parse_time
from service.store.models import JobState, Run, RunPhase
from service.sweep import fail_lost_runs, sweep

log = logging.getLogger(__name__)
SELECTOR = f"{MANAGED_BY[0]}={MANAGED_BY[1]}"
RUN_PHASES = {"Succeeded": RunPhase.SUCCEEDED, "Failed": RunPhase.FAILED, "Error": RunPhase.ERROR}


def run_id_of(workflow: dict[str, Any]) -> int | None:
    labels = (workflow.get("metadata") or {}).get("labels") or {}
    value = str(labels.get(f"{LABEL_PREFIX}/run") or "")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def apply_workflow(ctx: Context, workflow: dict[str, Any]) -> int | None:
    """Bring a run's job rows up to date with its Workflow. Returns the run id if jobs changed."""
    run_id = run_id_of(workflow)
    if run_id is None:
        return None
    name = (workflow.get("metadata") or {}).get("name")
    status = workflow.get("status") or {}
    wf_phase = str(status.get("phase") or "")
    changed = False
    with ctx.db.session() as session:
        run = session.get(Run, run_id)
        if run is None or (run.workflow_name and name and run.workflow_name != name):
            return None
        updates = job_updates(workflow, [job.task for job in run.jobs], run.stop_reason)
        for job in run.jobs:
            update = updates[job.task]
            if job.state in JobState.FINAL:
                continue
            if JobState.ORDER[update.state] < JobState.ORDER[job.state]:
                continue  # a stale event: states only move forward
            if (update.state, update.description) != (job.state, job.description):
                job.state, job.description = update.state, update.description
                changed = True
            job.started_at = job.started_at or update.started_at
            if update.state in JobState.FINAL:
                job.finished_at = update.finished_at or now()
        if wf_phase in WORKFLOW_FINAL and run.phase not in RunPhase.FINAL:
            run.phase = RUN_PHASES[wf_phase]
            run.message = str(status.get("message") or "")
            run.finished_at = parse_time(status.get("finishedAt")) or now()
        elif wf_phase == "Running" and run.phase in (RunPhase.CREATED, RunPhase.SUBMITTED):
            run.phase = RunPhase.RUNNING
    return run_id if changed else None


def report_changes(ctx: Context, run_id: int) -> None:
    try:
        report_run(ctx.db, ctx.forges, ctx.settings.public_url, run_id)
    except TransientForgeError as exc:
        log.warning("run %s: reporting failed for now, the sweep retries: %s", run_id, exc)


class Watcher:
    """One watcher loop; several replicas may run, the outbox keeps reports single."""

    def __init__(self, ctx: Context, *, watch_timeout: int | None = None) -> None:
        self.ctx = ctx
        self.watch_timeout = watch_timeout or ctx.settings.watch_timeout_seconds
        self.resource_version = ""
        self.last_resync = 0.0
        self.last_sweep = 0.0

    def handle(self, workflow: dict[str, Any]) -> None:
        run_id = apply_workflow(self.ctx, workflow)
        if run_id is not None:
            report_changes(self.ctx, run_id)

    def resync(self) -> str:
        items, version = self.ctx.executor.list(SELECTOR)
        present = set()
        for workflow in items:
            self.handle(workflow)
            meta = workflow.get("metadata") or {}
            present.add((str(meta.get("namespace") or ""), str(meta.get("name") or "")))
        for run_id in fail_lost_runs(self.ctx, present):
            report_changes(self.ctx, run_id)
        self.last_resync = time.monotonic()
        self.resource_version = version
        return version

    def step(self) -> None:
        """One list-or-watch cycle, ending after at most ``watch_timeout`` seconds."""
        settings = self.ctx.settings
        if not self.resource_version or time.monotonic() - self.last_resync > settings.resync_seconds:
            self.resync()
        deadline = time.monotonic() + self.watch_timeout
        for event in self.ctx.executor.watch(SELECTOR, self.resource_version, self.watch_timeout):
            if event.resource_version:
                self.resource_version = event.resource_version
            if event.type != "BOOKMARK":
                self.handle(event.object)
            if time.monotonic() - self.last_sweep > settings.sweep_seconds:
                self.sweep()
            if time.monotonic() > deadline:
                break
        if time.monotonic() - self.last_sweep > settings.sweep_seconds:
            self.sweep()

    def sweep(self) -> None:
        self.last_sweep = time.monotonic()
        try:
            sweep(self.ctx)
        except Exception:
            log.exception("sweep failed")

    def run(self, stop: threading.Event) -> None:
        backoff = 1.0
        while not stop.is_set():
            try:
                self.step()
                backoff = 1.0
            except ResourceVersionExpired:
                log.info("watch resourceVersion expired; listing again")
                self.resource_version = ""
            except TransientExecutorError as exc:
                log.warning("watch failed, retrying in %.0fs: %s", backoff, exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, 30)
            except Exception:
                log.exception("watcher cycle failed")
                stop.wait(backoff)
                backoff = min(backoff * 2, 30)
