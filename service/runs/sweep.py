"""The periodic sweep: nothing stored is left unqueued, nothing known is left unreported.

- deliveries queued long ago and never processed are queued again (processing is idempotent);
- job states the forge was not told (a transient forge error) are reported;
- local workflows whose runner process died end as ``Error``;
- runs whose Workflow disappeared end as ``error`` instead of staying pending forever
  (checked against the watcher's full lists);
- scheduled jobs fire, each tick once across replicas (:mod:`service.runs.schedules`);
- runs waiting for their concurrency group are submitted once it is free (see
  :mod:`service.runs.stopping`; the watcher also does this as soon as a run ends).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from service.clock import now
from service.context import Context
from service.executors.base import TransientExecutorError
from service.forges.base import TransientForgeError
from service.relay import local_wakeup
from service.reporting.reporter import job_logs, report_run, unreported_run_ids
from service.runs.schedules import fire_schedules
from service.runs.start import resume_run
from service.runs.stopping import concurrency_blocker, fail_run
from service.store.models import Delivery, DeliveryState, Run, RunPhase

log = logging.getLogger(__name__)
STALE_QUEUED = timedelta(minutes=10)
LOST_WORKFLOW_GRACE = timedelta(minutes=2)


def requeue_deliveries(ctx: Context, enqueue: Callable[[int], None] | None = None) -> int:
    """Queue again deliveries queued long ago and never processed (a broker that lost them).

    Deliveries the broker never got (``received``) are the relay's (service/relay.py)."""
    send = enqueue or ctx.enqueue
    if send is None:
        return 0
    moment = now()
    with ctx.db.session() as session:
        pks = list(
            session.scalars(
                select(Delivery.id)
                .where(Delivery.state == DeliveryState.QUEUED, Delivery.received_at < moment - STALE_QUEUED)
                .order_by(Delivery.id)
                .limit(500)
            )
        )
    queued = 0
    for pk in pks:
        try:
            send(pk)
        except Exception as exc:
            log.warning("broker still unreachable (%s); %d deliveries wait", exc, len(pks) - queued)
            break
        with ctx.db.session() as session:
            delivery = session.get(Delivery, pk)
            if delivery is not None and delivery.state == DeliveryState.QUEUED:
                delivery.received_at = now()  # restart the staleness clock
        queued += 1
    return queued


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


def sweep(ctx: Context) -> None:
    if fire_schedules(ctx.db, now()):
        local_wakeup.set()  # the relay queues them now rather than at its next poll
    requeue_deliveries(ctx)
    reaper = getattr(ctx.executor, "reap_orphans", None)
    if callable(reaper):
        reaper()
    start_waiting_runs(ctx)
    report_leftovers(ctx)
