"""What the database forgets, and when: old rows go in small batches, so no sweep holds locks
for long or runs for minutes (a backlog is worked off over several sweeps).

- a delivery's replay key once its replay window has passed (``replay_window_seconds``): the
  same signed body is then accepted again (see :mod:`service.web.webhooks`);
- a delivery's raw body (up to 25 MiB, kept only to re-deliver it) after
  ``retention_delivery_body_days``;
- runs (with their jobs) created more than ``retention_run_days`` ago, then the deliveries of
  that age no run refers to any more;
- archived job logs (``workflow_logs``) stored more than ``retention_log_days`` ago;
- the local executor's kept artifacts of runs created more than ``artifact_retention_days``
  ago (:func:`expire_artifacts`): their files go, the run row remembers when.

A retention of 0 days keeps those rows for ever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, exists, select, update

from service.clock import now
from service.store.db import Database
from service.store.models import Delivery, DeliveryState, Job, Run, RunPhase, WorkflowLog

log = logging.getLogger(__name__)
BATCH = 500  # rows per statement
MAX_BATCHES = 4  # statements per kind and call
ARTIFACT_BATCH = 20  # runs whose artifact folders one sweep removes (files, not rows: slower)

ForgetWorkflow = Callable[[str, str], None]  # (namespace, name) of a deleted run's Workflow


@dataclass(frozen=True)
class Retention:
    """How long things are kept, in days (0: for ever)."""

    delivery_body_days: float = 7
    run_days: float = 90
    log_days: float = 90
    batch: int = BATCH  # rows per statement


@dataclass
class Forgotten:
    replay_keys: int = 0
    bodies: int = 0
    runs: int = 0
    deliveries: int = 0
    logs: int = 0


def forget_replay_keys(db: Database, window_seconds: float) -> int:
    """Clear the replay keys of deliveries received more than ``window_seconds`` ago."""
    cutoff = now() - timedelta(seconds=window_seconds)
    condition = (Delivery.replay_key.is_not(None), Delivery.received_at < cutoff)

    def batch() -> int:
        return _update(db, Delivery, condition, Delivery.received_at, BATCH, replay_key=None)

    return _batches(batch, BATCH, MAX_BATCHES * 5)  # a busy hour of deliveries per sweep


def forget(db: Database, retention: Retention, forget_workflow: ForgetWorkflow | None = None) -> Forgotten:
    """Apply ``retention``: what was forgotten."""
    done = Forgotten()
    moment, size = now(), retention.batch
    if retention.delivery_body_days > 0:
        body_cutoff = moment - timedelta(days=retention.delivery_body_days)
        done.bodies = _batches(lambda: _drop_bodies(db, body_cutoff, size), size)
    if retention.run_days > 0:
        cutoff = moment - timedelta(days=retention.run_days)
        done.runs = _batches(lambda: _drop_runs(db, cutoff, forget_workflow, size), size)
        done.deliveries = _batches(lambda: _drop_deliveries(db, cutoff, size), size)
    if retention.log_days > 0:
        log_cutoff = moment - timedelta(days=retention.log_days)
        done.logs = _batches(lambda: _drop_logs(db, log_cutoff, size), size)
    return done


def _batches(one: Callable[[], int], size: int = BATCH, limit: int = MAX_BATCHES) -> int:
    total = 0
    for _ in range(limit):
        count = one()
        total += count
        if count < size:
            break
    return total


Where = tuple[Any, ...]  # the conditions of a batch's rows


def _update(db: Database, model: Any, where: Where, order: Any, size: int, **values: object) -> int:
    """Set ``values`` on up to ``size`` rows matching ``where`` (first by ``order``); or delete
    them when no values are given."""
    with db.session() as session:
        ids = list(session.scalars(select(model.id).where(*where).order_by(order).limit(size)))
        if ids:
            chosen = model.id.in_(ids)
            statement = (
                update(model).where(chosen).values(**values) if values else delete(model).where(chosen)
            )
            session.execute(statement.execution_options(synchronize_session=False))
    return len(ids)


def _drop_bodies(db: Database, cutoff: object, size: int) -> int:
    condition = (Delivery.body.is_not(None), Delivery.received_at < cutoff)
    return _update(db, Delivery, condition, Delivery.received_at, size, body=None)


def _drop_runs(db: Database, cutoff: object, forget_workflow: ForgetWorkflow | None, size: int) -> int:
    with db.session() as session:
        rows = session.execute(
            select(Run.id, Run.namespace, Run.workflow_name)
            .where(Run.created_at < cutoff)
            .order_by(Run.id)
            .limit(size)
        ).all()
        ids = [row.id for row in rows]
        if ids:
            session.execute(
                delete(Job).where(Job.run_id.in_(ids)).execution_options(synchronize_session=False)
            )
            session.execute(delete(Run).where(Run.id.in_(ids)).execution_options(synchronize_session=False))
    if forget_workflow is not None:
        for row in rows:
            if row.workflow_name:
                forget_workflow(row.namespace, row.workflow_name)
    return len(ids)


def _drop_deliveries(db: Database, cutoff: object, size: int) -> int:
    done = Delivery.state.in_((DeliveryState.DONE, DeliveryState.FAILED))
    unreferenced = ~exists().where(Run.delivery_pk == Delivery.id)
    return _update(db, Delivery, (Delivery.received_at < cutoff, done, unreferenced), Delivery.id, size)


def _drop_logs(db: Database, cutoff: object, size: int) -> int:
    return _update(db, WorkflowLog, (WorkflowLog.stored_at < cutoff,), WorkflowLog.id, size)


def expire_artifacts(
    db: Database, days: float, remove: ForgetWorkflow, size: int = ARTIFACT_BATCH
) -> list[int]:
    """Remove the kept artifacts of up to ``size`` finished local runs created more than
    ``days`` ago (``remove(namespace, workflow)`` deletes the files), oldest first, and mark
    each run's ``artifacts_expired_at``; their ids. A run whose files could not be removed is
    logged, left unmarked and tried again at the next sweep. ``days`` 0 removes nothing."""
    if days <= 0:
        return []
    cutoff = now() - timedelta(days=days)
    with db.session() as session:
        rows = session.execute(
            select(Run.id, Run.namespace, Run.workflow_name)
            .where(
                Run.executor == "local",
                Run.artifacts_expired_at.is_(None),
                Run.created_at < cutoff,
                Run.phase.in_(RunPhase.FINAL),
            )
            .order_by(Run.created_at)
            .limit(size)
        ).all()
    expired: list[int] = []
    for row in rows:
        try:
            if row.workflow_name:
                remove(row.namespace, row.workflow_name)
        except Exception as exc:
            log.warning("run %s: its artifacts could not be removed yet: %s", row.id, exc)
            continue
        expired.append(row.id)
    if expired:
        with db.session() as session:
            session.execute(
                update(Run)
                .where(Run.id.in_(expired))
                .values(artifacts_expired_at=now())
                .execution_options(synchronize_session=False)
            )
    return expired
