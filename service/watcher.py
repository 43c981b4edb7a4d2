"""The watcher: follows forgeflow's Workflows and hands each to its run (``runs.progress``).

It lists Workflows by forgeflow's label selector, then watches from the list's
``resourceVersion`` (with the argo executor a cursor over all of forgeflow's namespaces, see
``executors.argo.watch``), moving its position with every event and bookmark. On 410 Gone it
lists again; every ``resync_seconds`` it lists anyway, to catch anything a watch missed; API
errors and dropped streams are retried with backoff from the last position.

Each Workflow is applied to its run's rows by :func:`service.runs.progress.apply_workflow`
(under the run's lock; states only move forward). What changed is reported through the outbox
(``reporting.reporter``): the database knows what the forge was told, so a repeated event, a
relist after a restart or a second watcher replica never posts a transition twice. A job that
reaches a final state has its log archived (argo executor: the pods go with ``podGC``); a run
that ends lets the next run of its concurrency group start. The watcher also runs the periodic
sweep (``runs.sweep``).

On the argo executor it also copies the logs of running jobs into the database every
``live_log_seconds`` (a thread of its own), so the run pages can show them live without the web
tier holding Kubernetes credentials. Its loop beats a heartbeat (``/livez`` on ``health_port``,
:mod:`service.health`) and it counts what it does in :mod:`service.metrics`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from service import memory
from service.clock import now, parse_time
from service.context import Context
from service.executors.base import (
    ExecutorError,
    ResourceVersionExpired,
    TransientExecutorError,
    WatchEvent,
    WorkflowRef,
)
from service.executors.batches import EventPump
from service.forges.base import TransientForgeError
from service.health import Heartbeat
from service.jobs.plan_types import MANAGED_BY
from service.logs import log_context
from service.metrics import RESYNCS, RUN_DURATION, WATCH_EVENTS, WATCH_LAG
from service.reporting.reporter import job_logs, report_jobs, report_run
from service.runs.progress import Applied, apply_workflow, apply_workflows
from service.runs.sweep import Sweeper, fail_lost_runs, start_waiting_runs
from service.store.models import Job, JobState, Run

log = logging.getLogger(__name__)
SELECTOR = f"{MANAGED_BY[0]}={MANAGED_BY[1]}"

LIVE_LOG_JOBS = 100  # running jobs whose logs one round copies
MAX_LAG_SECONDS = 600  # older changes are a relist's or our own patches, not lag


def observe_lag(workflow: dict[str, Any]) -> None:
    """How long after its latest node change the watcher applied a Workflow."""
    status = workflow.get("status") or {}
    times = [parse_time(status.get("finishedAt")), parse_time(status.get("startedAt"))]
    for node in (status.get("nodes") or {}).values():
        if isinstance(node, dict):
            times += [parse_time(node.get("startedAt")), parse_time(node.get("finishedAt"))]
    latest = max((t for t in times if t is not None), default=None)
    if latest is not None:
        lag = (now() - latest).total_seconds()
        if 0 <= lag <= MAX_LAG_SECONDS:
            WATCH_LAG.observe(lag)


# How changes reach the forge: (context, run id, the jobs that changed or None for all).
Report = Callable[[Context, int, "list[int] | None"], None]
# ... and many runs' changed jobs at once (a watch batch's: leased and recorded together).
ReportMany = Callable[[Context, "list[int]"], None]

BATCH_SIZE = 500  # watch events applied in one transaction at most
BATCH_SECONDS = 0.05  # how long a batch waits for more events after its first


def report_many(ctx: Context, job_ids: list[int]) -> None:
    """Report these jobs' unreported states (many runs': one lease and one release for all)."""
    try:
        report_jobs(ctx.db, ctx.forges, ctx.settings.public_url, job_ids, job_logs(ctx))
    except TransientForgeError as exc:
        log.warning("reporting failed for now, the sweep retries: %s", exc)


def report_changes(ctx: Context, run_id: int, job_ids: list[int] | None = None) -> None:
    """Report a run's unreported jobs (``job_ids``: just these, known to have changed)."""
    try:
        if job_ids is None:
            report_run(ctx.db, ctx.forges, ctx.settings.public_url, run_id, job_logs(ctx))
        else:
            report_jobs(ctx.db, ctx.forges, ctx.settings.public_url, job_ids, job_logs(ctx))
    except TransientForgeError as exc:
        log.warning("run %s: reporting failed for now, the sweep retries: %s", run_id, exc)


class Reporters:
    """Threads that post what the watcher applied, so the watch goes on while the forge and
    the database answer. A run's changes always go to the same thread, in order; the outbox
    lease keeps any two posts of one job apart, and each post sends the job's latest state.
    A thread takes everything queued for it at once: with ``report_many`` all of it is leased
    and recorded together (else ``report`` is called per run)."""

    def __init__(
        self, ctx: Context, count: int, report: Report = report_changes, many: ReportMany | None = None
    ) -> None:
        self.ctx = ctx
        self.report = report
        self.many = many
        self.queues: list[queue.SimpleQueue[tuple[int, list[int]] | None]] = [
            queue.SimpleQueue() for _ in range(count)
        ]
        self.threads = [
            threading.Thread(target=self._serve, args=(q,), name=f"forgeflow-report-{i}", daemon=True)
            for i, q in enumerate(self.queues)
        ]
        for thread in self.threads:
            thread.start()

    def submit(self, run_id: int, job_ids: list[int]) -> None:
        self.queues[run_id % len(self.queues)].put((run_id, job_ids))

    def _serve(self, work: queue.SimpleQueue[tuple[int, list[int]] | None]) -> None:
        stopping = False
        while not stopping and (item := work.get()) is not None:
            items = [item]
            while True:  # what else is queued goes with it
                try:
                    more = work.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                items.append(more)
            if self.many is not None:
                try:
                    self.many(self.ctx, [job for _, jobs in items for job in jobs])
                except Exception:  # the sweep re-sends what is left unreported
                    log.exception("reporting runs %s failed", sorted({run_id for run_id, _ in items})[:10])
                continue
            for run_id, jobs in items:
                try:
                    self.report(self.ctx, run_id, jobs)
                except Exception:  # the sweep re-sends what is left unreported
                    log.exception("reporting run %s failed", run_id)

    def close(self, timeout: float = 30) -> None:
        """Post what is queued, then stop the threads."""
        for work in self.queues:
            work.put(None)
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class Watcher:
    """One watcher loop; several replicas may run, the run lock and the outbox keep reports
    single. ``report_threads`` (default: the settings') post statuses off the watch loop;
    0 posts them inline. ``report`` is how changes reach the forge (by default a batch's
    changes are leased and recorded together, :func:`report_many`). Watch events are applied
    in batches: what arrived within ``batch_seconds`` of the first, at most ``batch_size``,
    in one transaction."""

    def __init__(
        self,
        ctx: Context,
        *,
        watch_timeout: int | None = None,
        max_backoff: float = 30.0,
        report_threads: int | None = None,
        report: Report = report_changes,
        batch_size: int = BATCH_SIZE,
        batch_seconds: float = BATCH_SECONDS,
    ) -> None:
        self.ctx = ctx
        self.report = report
        self.many: ReportMany | None = report_many if report is report_changes else None
        threads = ctx.settings.watcher_report_threads if report_threads is None else report_threads
        self.reporters = Reporters(ctx, threads, report, self.many) if threads > 0 else None
        self.batch_size = max(1, batch_size)
        self.batch_seconds = batch_seconds
        self.watch_timeout = watch_timeout or ctx.settings.watch_timeout_seconds
        self.max_backoff = max_backoff
        self.resource_version = ""
        self.last_resync = 0.0
        self.last_sweep = 0.0
        self.sweeper = Sweeper()
        self.relists = 0  # lists taken (the first, resyncs, after 410 Gone): for operators and tests
        self.expired = 0  # 410 Gone answers seen
        self.heartbeat = Heartbeat("watcher", stale_after=max(3 * self.watch_timeout, 180))

    def handle(self, workflow: dict[str, Any], *, deleted: bool = False) -> None:
        self.handle_batch([(workflow, deleted)])

    def handle_batch(self, changes: list[tuple[dict[str, Any], bool]]) -> None:
        """Apply Workflows (watch events in order, or a page of a list) in one transaction,
        then report what changed, archive finished jobs' logs, stop again what forgeflow
        stopped, and let waiting runs start when a run ended."""
        try:
            batch = apply_workflows(self.ctx, changes)
        except Exception:
            if len(changes) == 1:
                raise
            log.warning("applying %d workflows together failed; one at a time", len(changes), exc_info=True)
            batch = [a for w, deleted in changes if (a := apply_workflow(self.ctx, w, deleted=deleted))]
        changed = [(applied.run_id, applied.changed_jobs) for applied in batch if applied.changed]
        if changed:  # the forge first: people wait for statuses, not for archives
            if self.reporters is not None:
                for run_id, jobs in changed:
                    self.reporters.submit(run_id, jobs)
            elif self.many is not None:
                self.many(self.ctx, [job for _, jobs in changed for job in jobs])
            else:
                for run_id, jobs in changed:
                    self.report(self.ctx, run_id, jobs)
        ended = False
        for applied in batch:
            with log_context(run=applied.run_id):
                ended |= self._after(applied)
        if ended:
            try:
                start_waiting_runs(self.ctx)
            except Exception:  # the sweep tries again
                log.exception("starting the runs that waited for a run that ended failed")

    def _after(self, applied: Applied) -> bool:
        """What follows applying one run's Workflow; whether the run just ended."""
        ref = WorkflowRef.of(applied.workflow)
        if applied.finished:
            self.archive_logs(ref, applied.finished, applied.workflow)
        if applied.restop:
            try:
                self.ctx.executor.stop(ref, applied.restop)
            except ExecutorError as exc:
                log.warning("run %s: could not stop %s yet: %s", applied.run_id, ref.name, exc)
        if applied.run_finished and applied.seconds is not None:
            RUN_DURATION.labels(applied.phase).observe(applied.seconds)
        return applied.run_finished

    def archive_logs(
        self, ref: WorkflowRef, tasks: list[str], workflow: dict[str, Any] | None = None
    ) -> None:
        """Keep finished jobs' logs where the run page finds them after pod GC (argo)."""
        archive = getattr(self.ctx.executor, "archive_log", None)
        if not callable(archive):
            return  # the local executor keeps its log files
        for task in tasks:
            try:
                archive(ref, task, workflow)
            except Exception as exc:  # best effort: never hold up the statuses
                log.warning("could not archive the log of %s/%s %s: %s", ref.namespace, ref.name, task, exc)

    def copy_running_logs(self) -> int:
        """Copy the logs of running jobs (argo) into the database for the run pages; how many."""
        archive = getattr(self.ctx.executor, "archive_log", None)
        if not callable(archive):
            return 0  # the local executor's log files are read as they grow
        with self.ctx.db.session() as session:
            rows = session.execute(
                select(Run.namespace, Run.workflow_name, Job.task)
                .join(Job)
                .where(Job.state == JobState.RUNNING, Run.executor == "argo", Run.workflow_name != "")
                .order_by(Run.id.desc())
                .limit(LIVE_LOG_JOBS)
            ).all()
        copied = 0
        for namespace, name, task in rows:
            try:
                copied += bool(archive(WorkflowRef(namespace, name), task, None, grow_only=True))
            except Exception as exc:  # best effort: the next round tries again
                log.debug("live log of %s/%s %s: %s", namespace, name, task, exc)
        return copied

    def _copy_logs_forever(self, stop: threading.Event) -> None:
        seconds = self.ctx.settings.live_log_seconds
        while not stop.wait(seconds):
            try:
                self.copy_running_logs()
            except Exception:
                log.exception("copying running jobs' logs failed")

    def resync(self, reason: str = "periodic") -> str:
        items, version = self.ctx.executor.list(SELECTOR)
        self.relists += 1
        RESYNCS.labels(reason).inc()
        present = set()
        for start in range(0, len(items), self.batch_size):
            self.handle_batch([(workflow, False) for workflow in items[start : start + self.batch_size]])
        for workflow in items:
            meta = workflow.get("metadata") or {}
            present.add((str(meta.get("namespace") or ""), str(meta.get("name") or "")))
        del items
        for run_id in fail_lost_runs(self.ctx, present):
            self.report(self.ctx, run_id, None)
        memory.trim()  # the list's objects (thousands of Workflows) are freed: give them back
        self.last_resync = time.monotonic()
        self.resource_version = version
        return version

    def step(self, stop: threading.Event | None = None) -> None:
        """One list-or-watch cycle, ending after at most ``watch_timeout`` seconds (or at the
        first event or bookmark after ``stop`` is set)."""
        settings = self.ctx.settings
        self.heartbeat.beat()
        if not self.resource_version or time.monotonic() - self.last_resync > settings.resync_seconds:
            self.resync("periodic" if self.relists else "start")
        deadline = time.monotonic() + self.watch_timeout
        pump = EventPump(self.ctx.executor.watch(SELECTOR, self.resource_version, self.watch_timeout))
        try:
            while True:
                wait = min(1.0, max(0.0, deadline - time.monotonic()))
                batch = pump.take(self.batch_size, self.batch_seconds, wait)
                if batch is None:
                    break  # the watch ended (its timeout): the next step opens another
                self.heartbeat.beat()
                if batch:
                    self.apply_events(batch)
                if time.monotonic() - self.last_sweep > settings.sweep_seconds:
                    self.sweep()
                if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                    break
        finally:
            pump.close()
        if time.monotonic() - self.last_sweep > settings.sweep_seconds:
            self.sweep()

    def apply_events(self, events: list[WatchEvent]) -> None:
        """Apply a batch of watch events, then move the position past the last of them."""
        for event in events:
            WATCH_EVENTS.labels(event.type).inc()
        changes = [(event.object, event.type == "DELETED") for event in events if event.type != "BOOKMARK"]
        if changes:
            self.handle_batch(changes)
            for workflow, _ in changes:
                observe_lag(workflow)
        # the position moves only once the events are applied: a crash replays them, harmlessly
        for event in reversed(events):
            if event.resource_version:
                self.resource_version = event.resource_version
                break

    def sweep(self) -> None:
        self.last_sweep = time.monotonic()
        self.sweeper(self.ctx)  # each step on its own; failures logged once

    def run(self, stop: threading.Event) -> None:
        if self.ctx.settings.live_log_seconds and self.ctx.settings.executor == "argo":
            threading.Thread(
                target=self._copy_logs_forever, args=(stop,), name="forgeflow-live-logs", daemon=True
            ).start()
        try:
            self._loop(stop)
        finally:
            if self.reporters is not None:
                self.reporters.close()

    def _loop(self, stop: threading.Event) -> None:
        first = backoff = min(1.0, self.max_backoff)
        while not stop.is_set():
            self.heartbeat.beat()  # backing off from a failing API is alive too: only a hang is not
            try:
                self.step(stop)
                backoff = first
            except ResourceVersionExpired:
                log.info("watch resourceVersion expired; listing again")
                self.expired += 1
                RESYNCS.labels("expired").inc()
                self.resource_version = ""
            except TransientExecutorError as exc:
                log.warning("watch failed, retrying in %.1fs: %s", backoff, exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            except Exception:
                log.exception("watcher cycle failed")
                stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
