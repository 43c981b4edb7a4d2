"""Retention: old bodies, runs, deliveries and logs are forgotten by the sweep, in batches.

Before issue 18 nothing was ever deleted: delivery bodies of up to 25 MiB, runs and archived
logs piled up for ever.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from service.clock import now
from service.context import build_context
from service.runs.sweep import forget_old_rows
from service.store import retention
from service.store.db import Database
from service.store.models import Delivery, DeliveryState, Job, Run, WorkflowLog
from service.store.retention import Retention, forget


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'retention.sqlite'}")
    database.migrate()
    yield database
    database.dispose()


def add(db: Database, days_old: float, *, with_run: bool = True, state: str = DeliveryState.DONE) -> int:
    moment = now() - timedelta(days=days_old)
    with db.session() as session:
        delivery = Delivery(
            forge="github",
            delivery_id=f"d{days_old}-{with_run}",
            event_json="{}",
            body=b"x" * 100,
            state=state,
        )
        delivery.received_at = moment
        session.add(delivery)
        session.flush()
        if with_run:
            run = Run(
                trigger_key=f"delivery:{delivery.id}",
                delivery_pk=delivery.id,
                forge="github",
                repo="octo/hello",
                sha="a" * 40,
                event_kind="push",
                event_json="{}",
                namespace="ci",
                workflow_name=f"forgeflow-{delivery.id}",
                created_at=moment,
            )
            run.jobs.append(Job(name="lint", task="lint", context="forgeflow/lint"))
            session.add(run)
        session.add(
            WorkflowLog(namespace="ci", workflow=f"w{delivery.id}", task="lint", text="log", stored_at=moment)
        )
        return delivery.id


def count(db: Database, model) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def bodies(db: Database) -> int:
    with db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Delivery).where(Delivery.body.is_not(None))) or 0
        )


def test_bodies_go_after_a_week_runs_deliveries_and_logs_after_ninety_days(db):
    add(db, 1)
    add(db, 10)
    add(db, 100)
    add(db, 100, with_run=False)
    forgotten_workflows = []
    done = forget(db, Retention(), lambda namespace, name: forgotten_workflows.append((namespace, name)))
    assert (done.bodies, done.runs, done.deliveries, done.logs) == (3, 1, 2, 2)
    assert bodies(db) == 1  # only the day-old delivery keeps its body
    assert (
        count(db, Run) == 2
        and count(db, Job) == 2
        and count(db, Delivery) == 2
        and count(db, WorkflowLog) == 2
    )
    assert len(forgotten_workflows) == 1 and forgotten_workflows[0][0] == "ci"
    assert forget(db, Retention()) == retention.Forgotten()  # nothing left to do


def test_open_deliveries_and_deliveries_of_kept_runs_are_not_deleted(db):
    add(db, 100, with_run=False, state=DeliveryState.QUEUED)  # still on its way
    kept = add(db, 100)
    with db.session() as session:  # its run was made late (a long retry): it is kept
        session.execute(update(Run).where(Run.delivery_pk == kept).values(created_at=now()))
    forget(db, Retention())
    assert count(db, Delivery) == 2


def test_zero_days_keep_everything(db):
    add(db, 1000)
    assert forget(db, Retention(delivery_body_days=0, run_days=0, log_days=0)) == retention.Forgotten()
    assert bodies(db) == 1 and count(db, Run) == 1 and count(db, WorkflowLog) == 1


def test_a_backlog_goes_in_small_batches_over_several_sweeps(db):
    small = Retention(batch=2)
    for i in range(7):
        add(db, 200 + i, with_run=False)
    first = forget(db, small)
    assert first.deliveries == 7 and first.bodies == 7  # 4 batches of 2 per kind and call at most
    for i in range(12):
        add(db, 300 + i, with_run=False)
    second = forget(db, small)
    assert second.deliveries == 8 and count(db, Delivery) == 4  # the rest at the next sweep


def test_the_sweep_applies_the_settings(make_settings):
    ctx = build_context(make_settings(retention_run_days=30, retention_delivery_body_days=0))
    try:
        add(ctx.db, 40)
        add(ctx.db, 20)
        assert forget_old_rows(ctx) > 0
        assert count(ctx.db, Run) == 1 and bodies(ctx.db) == 1
    finally:
        ctx.close()
