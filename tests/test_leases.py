"""Stuck deliveries are noticed through leases in the database, within a minute (issue 18).

Before issue 18 the sweep sent a delivery again only after it had been ``queued`` for ten
minutes (and never a ``received`` one), and a killed worker's delivery came back after Redis'
one-hour visibility timeout. Now a worker holds a delivery under a lease it renews while it
works; a delivery nobody holds that the broker should have delivered is sent again by the sweep
once a short grace period has passed, and a second copy of a message finds it held or done.
Times are moved by writing the rows, never by sleeping.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from service.clock import now
from service.context import build_context
from service.relay import DeliveryRelay, resend
from service.runs.sweep import Sweeper, requeue_deliveries
from service.store.db import Database
from service.store.deliveries import NewDelivery, insert_delivery
from service.store.leases import GRACE, LEASE, DeliveryLeases, LeaseKeeper, stuck_deliveries
from service.store.models import Delivery, DeliveryState
from service.worker import process_delivery

EVENT = (
    '{"forge": "local", "kind": "push", "repository": {"namespace": "demo", "name": "none", '
    '"clone_url": "/nonexistent"}, "ref": "refs/heads/main", "sha": "' + "a" * 40 + '"}'
)


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'leases.sqlite'}")
    database.migrate()
    yield database
    database.dispose()


def store(db: Database, n: int) -> list[int]:
    pks = []
    for i in range(n):
        delivery = NewDelivery(
            "github", "github.com", f"d{i}", "push", EVENT, b"{}", "{}", DeliveryState.RECEIVED
        )
        pk = insert_delivery(db, delivery)
        assert pk is not None
        pks.append(pk)
    return pks


def age(db: Database, pks: list[int], seconds: float, **also) -> None:
    """Pretend these deliveries were received (and sent) ``seconds`` ago."""
    moment = now() - timedelta(seconds=seconds)
    with db.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(pks))
            .values(**{"received_at": moment, "sent_at": moment, **also})
        )


def states(db: Database) -> dict[int, str]:
    with db.session() as session:
        return dict(session.execute(select(Delivery.id, Delivery.state)).all())


class Broker:
    """Records what is sent; ``lose()`` forgets everything (a broker restarted empty)."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.waiting: list[int] = []
        self.down = False

    def __call__(self, pk: int) -> None:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.sent.append(pk)
        self.waiting.append(pk)

    def lose(self) -> None:
        self.waiting.clear()


def test_a_received_delivery_the_relay_never_queued_is_sent_by_the_sweep(db):
    [pk] = store(db, 1)
    broker = Broker()
    assert resend(db, broker, 0) == 0  # just received: the relay's job
    age(db, [pk], GRACE.total_seconds() + 1, sent_at=None)
    assert resend(db, broker, 0) == 1
    assert broker.sent == [pk] and states(db)[pk] == DeliveryState.QUEUED


def test_queued_deliveries_the_broker_lost_are_sent_again_within_a_minute(db):
    pks = store(db, 3)
    broker = Broker()
    assert DeliveryRelay(db, broker).relay_once() == 3
    assert resend(db, broker, len(broker.waiting)) == 0  # in the queue: not stuck
    broker.lose()  # the broker restarted without them
    assert resend(db, broker, 0) == 0  # within the grace period the broker may still deliver
    age(db, pks, GRACE.total_seconds() + 1)
    assert resend(db, broker, 0) == 3
    assert broker.sent == pks + pks
    assert resend(db, broker, 0) == 0, "sent again: the clock starts anew"


def test_a_backlog_in_the_broker_is_not_sent_again(db):
    """A queue is first in, first out: with 3 messages waiting, the 3 newest sent are there."""
    pks = store(db, 5)
    broker = Broker()
    DeliveryRelay(db, broker).relay_once()
    for offset, pk in enumerate(pks):  # sent a second apart, oldest first
        age(db, [pk], 60 - offset)
    received, late = stuck_deliveries(db, waiting_in_broker=3)
    assert received == [] and late == pks[:2]


def test_a_held_delivery_is_left_alone_and_a_lapsed_one_taken_over(db):
    [pk] = store(db, 1)
    broker = Broker()
    DeliveryRelay(db, broker).relay_once()
    age(db, [pk], 120)
    leases = DeliveryLeases(db, LeaseKeeper(db))
    assert leases.take(pk, owner="worker-1").held
    again = leases.take(pk, owner="worker-2")  # the broker handed the message over twice
    assert not again.held and "held by worker-1" in again.reason
    assert resend(db, broker, 0) == 0  # held: not stuck
    with db.session() as session:  # worker-1 was SIGKILLed: it stopped renewing
        session.execute(update(Delivery).values(lease_until=now() - LEASE))
    assert resend(db, broker, 0) == 1
    assert leases.take(pk, owner="worker-2").held


def test_a_retry_holds_its_delivery_until_it_is_due(db):
    [pk] = store(db, 1)
    DeliveryRelay(db, Broker()).relay_once()
    age(db, [pk], 120)
    leases = DeliveryLeases(db, LeaseKeeper(db))
    leases.hold_for(pk, 300)
    assert stuck_deliveries(db, 0) == ([], [])
    assert not leases.take(pk).held


def test_the_keeper_renews_a_lease_while_the_work_lasts_and_stops_after(db):
    [pk] = store(db, 1)
    keeper = LeaseKeeper(db, renew_every=0.05)
    leases = DeliveryLeases(db, keeper)
    assert leases.take(pk).held
    with db.session() as session:  # as if taken long ago
        session.execute(update(Delivery).values(lease_until=now() + timedelta(seconds=1)))
    renewed = threading.Event()
    with leases.keep(pk):
        for _ in range(200):
            with db.session() as session:
                until = session.scalar(select(Delivery.lease_until))
            if until > now() + timedelta(seconds=5):
                renewed.set()
                break
            renewed.wait(0.05)
        assert renewed.is_set(), "the lease was not renewed"
        assert keeper.held(Delivery) == [pk]
    assert keeper.held(Delivery) == []


def test_lease_seconds_sets_how_soon_a_dead_holders_rows_are_taken_over(make_settings):
    """Several replicas (issue 19): the lease a process takes, and renews, is lease_seconds
    long, so a SIGKILLed worker's deliveries (and a dead reporter's posts) go to another
    within seconds when the operator asks for it."""
    ctx = build_context(make_settings(lease_seconds=4))
    try:
        [pk] = store(ctx.db, 1)
        keeper = ctx.db.leases
        assert keeper.lease == timedelta(seconds=4) and keeper.renew_every == 1.0
        assert DeliveryLeases(ctx.db, keeper).take(pk, owner="worker-1").held
        with ctx.db.session() as session:
            until = session.scalar(select(Delivery.lease_until))
        assert now() < until <= now() + timedelta(seconds=4)
        with keeper.keep(Delivery, pk):
            keeper.renew()
        with ctx.db.session() as session:
            renewed = session.scalar(select(Delivery.lease_until))
        assert until <= renewed <= now() + timedelta(seconds=4)
    finally:
        ctx.close()


def test_a_second_copy_of_a_message_does_nothing(make_settings):
    ctx = build_context(make_settings())
    try:
        [pk] = store(ctx.db, 1)
        leases = DeliveryLeases(ctx.db, ctx.db.leases)
        assert leases.take(pk, owner="another-worker").held
        assert "held by another-worker" in process_delivery(ctx, pk).outcome
        with ctx.db.session() as session:
            assert session.get(Delivery, pk).attempts == 1
        with ctx.db.session() as session:
            session.execute(
                update(Delivery).values(state=DeliveryState.DONE, outcome="ran", lease_until=None)
            )
        assert process_delivery(ctx, pk).outcome == "already processed: ran"
    finally:
        ctx.close()


def test_the_sweep_goes_on_when_the_broker_is_away(make_settings, caplog):
    caplog.set_level(logging.INFO)
    ctx = build_context(make_settings())
    try:
        [pk] = store(ctx.db, 1)
        age(ctx.db, [pk], 120, sent_at=None)
        broker = Broker()
        broker.down = True
        ctx.enqueue = broker
        sweeper = Sweeper()
        for _ in range(3):
            sweeper(ctx)  # every step runs; the failing one is logged once
        warnings = [r for r in caplog.records if "stuck deliveries" in r.getMessage()]
        assert len(warnings) == 1 and states(ctx.db)[pk] == DeliveryState.RECEIVED
        broker.down = False
        assert requeue_deliveries(ctx) == 1 and broker.sent == [pk]
        sweeper(ctx)
        assert any("works again" in r.getMessage() for r in caplog.records)
    finally:
        ctx.close()
