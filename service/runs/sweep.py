"""The periodic sweep: nothing stored is left unqueued, nothing known is left unreported.

- deliveries nobody holds that are stuck (never queued, or lost or dropped by the broker) are
  sent again, within a minute (:func:`service.relay.resend`, leases in
  :mod:`service.store.leases`; processing is idempotent);
- job states the forge was not told (a transient forge error) are reported;
- local workflows whose runner process died end as ``Error``;
- runs whose Workflow disappeared end as ``error`` instead of staying pending forever
  (checked against the watcher's full lists);
- scheduled jobs fire, each tick once across replicas (:mod:`service.runs.schedules`);
- runs waiting for their concurrency group are submitted once it is free (see
  :mod:`service.runs.stopping`; the watcher also does this as soon as a run ends);
- old rows are forgotten in small batches (:mod:`service.store.retention`);
- the local executor's kept artifacts of runs older than ``artifact_retention_days`` are
  removed, a few runs at a time (the run page then says they expired).

Each step runs on its own: one that fails (the database or the broker away) is logged once,
tried again at the next sweep, and does not keep the others from running.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from service.clock import now
from service.context import Context
from service.executors.base import TransientExecutorError, WorkflowRef
from service.forges.base import TransientForgeError
from service.logs import Trouble
from service.relay import local_wakeup, resend
from service.reporting.reporter import job_logs, report_run, unreported_run_ids
from service.runs.schedules import fire_schedules
from service.runs.stopping import concurrency_blocker, fail_run
from service.store.models import Run, RunPhase
from service.store.retention import Retention, expire_artifacts, forget, forget_replay_keys

log = logging.getLogger(__name__)
LOST_WORKFLOW_GRACE = timedelta(minutes=2)


def requeue_deliveries(ctx: Context, enqueue: Callable[[int], None] | None = None) -> int:
    """Send again the deliveries nobody holds that are stuck: how many went."""
    send = enqueue or ctx.enqueue
    if send is None:
        return 0
    waiting = ctx.queue_depth() if ctx.queue_depth is not None else 0  # raises: broker away
    return resend(ctx.db, send, waiting)


def report_leftovers(ctx: Context) -> int:
    reported = 0
    for run_id in unreported_run_ids(ctx.db):
        try:
            reported += report_run(ctx.db, ctx.forges, ctx.settings.public_url, run_id, job_logs(ctx)).posted
        except TransientForgeError as exc:
            log.warning("run %s: forge still failing: %s", run_id, exc)
    return reported


def fail_lost_runs(ctx: Context, present: set[tuple[str, str]]) -> list[int]:
    """Runs not final whose Workflow is not among ``present`` (a full list just taken)."""
    moment = now()
    with ctx.db.session() as session:
        runs = list(
            session.execute(
                select(Run.id, Run.namespace, Run.workflow_name).where(
                    Run.phase.in_([RunPhase.SUBMITTED, RunPhase.RUNNING]),
                    Run.updated_at < moment - LOST_WORKFLOW_GRACE,
                )
            )
        )
    failed = []
    for run_id, namespace, name in runs:
        if (namespace, name) not in present:
            fail_run(ctx, run_id, "the workflow disappeared before it finished")
            failed.append(run_id)
    return failed


def start_waiting_runs(ctx: Context) -> list[int]:
    """Submit the runs that waited for their concurrency group and may start now; their ids."""
    with ctx.db.session() as session:
        waiting = list(
            session.scalars(
                select(Run.id)
                .where(Run.phase == RunPhase.CREATED, Run.concurrency_group != "")
                .order_by(Run.id)
                .limit(200)
            )
        )
    started = []
    for run_id in waiting:
        if concurrency_blocker(ctx, run_id) is not None:
            continue
        if ctx.hand_off_run is not None:  # a worker submits it (the watcher may not)
            try:
                ctx.hand_off_run(run_id)
            except Exception as exc:
                log.warning("run %s: could not hand it to a worker yet: %s", run_id, exc)
                continue
            started.append(run_id)
            continue
        from service.runs.start import resume_run  # planning and compiling: not the watcher's

        try:
            resume_run(ctx, run_id)
        except (TransientExecutorError, TransientForgeError) as exc:
            log.warning("run %s: could not start it yet: %s", run_id, exc)
            continue
        except Exception as exc:  # a bad manifest or a forbidden namespace: tell the forge
            log.exception("run %s could not be submitted", run_id)
            fail_run(ctx, run_id, f"could not submit the workflow: {exc}"[:500])
            report_run(ctx.db, ctx.forges, ctx.settings.public_url, run_id, job_logs(ctx))
            continue
        started.append(run_id)
    return started


def fire_due_schedules(ctx: Context) -> int:
    fired = fire_schedules(ctx.db, now())
    if fired:
        local_wakeup.set()  # the relay queues them now rather than at its next poll
    return len(fired)


def reap_orphans(ctx: Context) -> int:
    reaper = getattr(ctx.executor, "reap_orphans", None)
    return len(reaper()) if callable(reaper) else 0


def forget_old_rows(ctx: Context) -> int:
    """Retention (see :mod:`service.store.retention`); how many rows were changed."""
    settings = ctx.settings
    forgotten = 0
    if settings.replay_window_seconds > 0:
        forgotten += forget_replay_keys(ctx.db, settings.replay_window_seconds)
    retention = Retention(
        delivery_body_days=settings.retention_delivery_body_days,
        run_days=settings.retention_run_days,
        log_days=settings.retention_log_days,
    )
    local = settings.executor == "local" and ctx.executor_factory is not None
    delete = getattr(ctx.executor, "delete", None) if local else None

    def forget_workflow(namespace: str, name: str) -> None:  # its files, logs and workspaces
        if callable(delete):
            delete(WorkflowRef(namespace, name))

    done = forget(ctx.db, retention, forget_workflow)
    return forgotten + done.bodies + done.runs + done.deliveries + done.logs


def expire_local_artifacts(ctx: Context) -> list[int]:
    """The runs whose kept artifacts went (only where this process runs the local executor:
    the files are on its machine)."""
    local = ctx.settings.executor == "local" and ctx.executor_factory is not None
    remove = getattr(ctx.executor, "forget_artifacts", None) if local else None
    if not callable(remove):
        return []
    return expire_artifacts(
        ctx.db, ctx.settings.artifact_retention_days, lambda ns, name: remove(WorkflowRef(ns, name))
    )


STEPS: tuple[tuple[str, Callable[[Context], object]], ...] = (
    ("firing scheduled jobs", fire_due_schedules),
    ("sending stuck deliveries again", requeue_deliveries),
    ("reaping orphaned local workflows", reap_orphans),
    ("starting runs that waited for their group", start_waiting_runs),
    ("reporting what the forge was not told", report_leftovers),
    ("forgetting old rows", forget_old_rows),
    ("removing expired artifacts", expire_local_artifacts),
)


class Sweeper:
    """Runs the sweep's steps, each on its own; a step's failure is logged when it starts
    failing and when it works again, not at every sweep."""

    def __init__(self) -> None:
        self.troubles = {name: Trouble(f"sweep: {name}", log) for name, _ in STEPS}

    def __call__(self, ctx: Context) -> None:
        for name, step in STEPS:
            trouble = self.troubles[name]
            try:
                step(ctx)
            except Exception as exc:
                if not trouble.failing:
                    log.debug("sweep: %s failed", name, exc_info=True)
                trouble.failed(exc)
            else:
                trouble.ok()


def sweep(ctx: Context) -> None:
    """One sweep (see :class:`Sweeper` for one that remembers what failed)."""
    Sweeper()(ctx)
