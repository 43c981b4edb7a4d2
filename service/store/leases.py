"""Leases: who is working on a row right now, kept in the row itself.

A lease is a ``*_until`` timestamp on a row. A process takes it with a conditional UPDATE
(free, or lapsed), keeps it fresh while it works and clears it when done; a process that dies
lets it lapse within the lease's length (the ``lease_seconds`` setting, :data:`LEASE` by default),
and then anyone may take the row over. Two kinds:

- a **delivery** not yet done (``deliveries.lease_until``, ``leased_by``): taken by the worker
  that processes it (:meth:`DeliveryLeases.take`), or by a retry the worker scheduled
  (:meth:`DeliveryLeases.hold_for`). ``sent_at`` says when the relay or the sweep last handed
  it to the broker. A delivery that is neither done nor held is *stuck* once the broker has had
  it for longer than a grace period and it is not among the messages still waiting in the
  broker's queue: the sweep sends it again (:func:`stuck_deliveries`);
- a **job's report** (``jobs.report_lease_until``): held while its state is posted to the forge
  (:mod:`service.reporting.reporter`).

While a lease is held, :class:`LeaseKeeper` (one thread per process, started on first use)
renews it every :data:`RENEW_EVERY` seconds (a quarter of a shorter lease) with one UPDATE per
table, however long the work takes (a slow forge, a large job file). So a lease can be short: a
SIGKILLed worker's deliveries and reports are taken over within a lease (plus :data:`GRACE` and
the sweep's interval for deliveries), not after a broker's visibility timeout (an hour on Redis).
Broker timeouts no longer decide anything; a message the broker hands over twice finds the
delivery held or done and is dropped.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, or_, select, update
from sqlalchemy.orm import Session

from service.clock import now
from service.store.models import DELIVERIES, Delivery, DeliveryState, Job


class Database(Protocol):
    """What leases need of :class:`service.store.db.Database` (which owns a keeper)."""

    def session(self) -> AbstractContextManager[Session]: ...

    def transaction(self) -> AbstractContextManager[Connection]: ...


log = logging.getLogger(__name__)

LEASE = timedelta(seconds=20)  # a holder that stops renewing loses its lease this long after
RENEW_EVERY = 5.0  # seconds between renewals of every lease a process holds
GRACE = timedelta(seconds=10)  # the broker's time to hand a message to a worker
OPEN = (DeliveryState.RECEIVED, DeliveryState.QUEUED)

# what each kind of lease renews: the table's lease column
LEASE_COLUMNS: dict[type[Any], Any] = {Delivery: Delivery.lease_until, Job: Job.report_lease_until}


def holder() -> str:
    """Who this thread is, for ``leased_by``: host, process and thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:255]


def in_id_order(model: type[Any], pks: list[int]) -> Any:
    """``pks`` as a subquery that locks their rows in id order (``FOR UPDATE``; nothing on
    SQLite). A multi-row UPDATE otherwise locks rows in whatever order the plan meets them, and
    two processes updating overlapping sets (the lease keeper renewing, another watcher taking
    or giving back leases) can each hold a row the other waits for: PostgreSQL's deadlock."""
    return select(model.id).where(model.id.in_(sorted(pks))).order_by(model.id).with_for_update()


class LeaseKeeper:
    """Renews the leases this process holds until they are released; thread-safe."""

    def __init__(self, db: Database, renew_every: float = RENEW_EVERY, lease: timedelta = LEASE) -> None:
        self.db = db
        self.lease = lease
        self.renew_every = min(renew_every, lease.total_seconds() / 4)
        self._held: dict[type[Any], dict[int, int]] = {model: {} for model in LEASE_COLUMNS}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.failing = False  # the last renewal failed (the database is away): logged once

    @contextmanager
    def keep(self, model: type[Any], pk: int) -> Iterator[None]:
        """Renew the lease on row ``pk`` of ``model`` while the block runs."""
        with self.keep_all(model, [pk]):
            yield

    @contextmanager
    def keep_all(self, model: type[Any], pks: list[int]) -> Iterator[None]:
        """Renew the leases on rows ``pks`` of ``model`` while the block runs."""
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._wake = threading.Event()
                self._thread = threading.Thread(
                    target=self._renew_loop, args=(self._wake,), name="forgeflow-leases", daemon=True
                )
                self._thread.start()
            held = self._held[model]
            for pk in pks:
                held[pk] = held.get(pk, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                for pk in pks:
                    held[pk] -= 1
                    if not held[pk]:
                        del held[pk]

    def held(self, model: type[Any]) -> list[int]:
        with self._lock:
            return sorted(self._held[model])

    def renew(self) -> None:
        """Push every held lease ``lease`` into the future (one UPDATE per table)."""
        until = now() + self.lease
        for model, column in LEASE_COLUMNS.items():
            pks = self.held(model)
            if not pks:
                continue
            with self.db.session() as session:
                session.execute(
                    update(model)
                    .where(model.id.in_(in_id_order(model, pks)), column.is_not(None))  # released: stays free
                    .values({column.key: until})
                    .execution_options(synchronize_session=False)
                )

    def close(self) -> None:
        """Stop renewing (the database is being closed); a later :meth:`keep` starts again."""
        with self._lock:
            self._wake.set()
            self._thread = None

    def _renew_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.renew_every):
            try:
                self.renew()
                if self.failing:
                    log.info("renewing leases works again")
                self.failing = False
            except Exception as exc:  # the database is away: leases lapse, others take over
                if not self.failing:
                    log.warning("cannot renew leases (%s); retrying every %.0f s", exc, self.renew_every)
                self.failing = True


_TAKE = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id == bindparam("pk"),
        DELIVERIES.c.state.in_(OPEN),
        or_(DELIVERIES.c.lease_until.is_(None), DELIVERIES.c.lease_until < bindparam("moment")),
    )
    .values(lease_until=bindparam("until"), leased_by=bindparam("owner"), attempts=DELIVERIES.c.attempts + 1)
    .returning(DELIVERIES.c.event_json, DELIVERIES.c.instance, DELIVERIES.c.received_at)
)
_DONE = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("pk"))
    .values(
        state=bindparam("new_state"),
        outcome=bindparam("new_outcome"),
        processed_at=bindparam("moment"),
        lease_until=None,
    )
)


@dataclass(frozen=True)
class Taken:
    """The outcome of trying to take a delivery: ``held`` by this thread, else why not."""

    held: bool
    reason: str = ""
    # what the worker needs of a delivery it took (read by the same statement)
    event_json: str = ""
    instance: str = ""
    received_at: datetime | None = None


class DeliveryLeases:
    """Taking, keeping and giving back deliveries (the worker's side of a lease)."""

    def __init__(self, db: Database, keeper: LeaseKeeper) -> None:
        self.db, self.keeper = db, keeper

    def take(self, pk: int, owner: str | None = None) -> Taken:
        """Take an open delivery that nobody holds (counting an attempt), reading its event."""
        moment = now()
        params = {"pk": pk, "moment": moment, "until": moment + self.keeper.lease, "owner": owner or holder()}
        with self.db.transaction() as connection:
            taken = connection.execute(_TAKE, params).first()
        if taken is not None:
            return Taken(True, "", taken.event_json, taken.instance, taken.received_at)
        with self.db.session() as session:
            row = session.execute(
                select(Delivery.state, Delivery.outcome, Delivery.leased_by, Delivery.lease_until).where(
                    Delivery.id == pk
                )
            ).first()
        if row is None:
            return Taken(False, f"no delivery {pk}")
        state, outcome, by, until = row
        if state not in OPEN:
            return Taken(False, f"already processed: {outcome}")
        return Taken(False, f"held by {by or 'a retry'} until {until:%H:%M:%S} UTC")

    @contextmanager
    def keep(self, pk: int) -> Iterator[None]:
        with self.keeper.keep(Delivery, pk):
            yield

    def done(self, pk: int, state: str, outcome: str) -> None:
        """The delivery was handled (``state``: done or failed), its lease given back."""
        with self.db.transaction() as connection:
            connection.execute(_DONE, {"pk": pk, "new_state": state, "new_outcome": outcome, "moment": now()})

    def hold_for(self, pk: int, seconds: float) -> None:
        """A retry of this delivery is due in ``seconds``: nobody else takes it until then."""
        with self.db.session() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == pk, Delivery.state.in_(OPEN))
                .values(lease_until=now() + timedelta(seconds=seconds), leased_by="a retry")
                .execution_options(synchronize_session=False)
            )


def stuck_deliveries(db: Database, waiting_in_broker: int, limit: int = 500) -> tuple[list[int], list[int]]:
    """(received, queued): deliveries nobody holds that should be on their way and are not.

    Received ones the relay should have queued at once; queued ones the broker has had for
    longer than :data:`GRACE` that are not among the ``waiting_in_broker`` messages still in
    its queue (the newest ones sent: a queue is first in, first out). Both kinds are sent
    again; a delivery that turns up twice is dropped by :meth:`DeliveryLeases.take`."""
    moment = now()
    free = or_(Delivery.lease_until.is_(None), Delivery.lease_until < moment - GRACE)
    with db.session() as session:
        received = list(
            session.scalars(
                select(Delivery.id)
                .where(Delivery.state == DeliveryState.RECEIVED, Delivery.received_at < moment - GRACE, free)
                .order_by(Delivery.id)
                .limit(limit)
            )
        )
        queued = session.execute(
            select(Delivery.id, Delivery.sent_at)
            .where(Delivery.state == DeliveryState.QUEUED, free)
            .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
            .offset(max(0, waiting_in_broker))
            .limit(limit)
        ).all()
    late = [pk for pk, sent_at in queued if _before(sent_at, moment - GRACE)]
    return received, sorted(late)


def _before(moment: datetime | None, limit: datetime) -> bool:
    return moment is None or moment < limit


def mark_sent(db: Database, pks: list[int]) -> None:
    """The broker has these deliveries now (queued)."""
    if not pks:
        return
    with db.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(pks), Delivery.state.in_(OPEN))
            .values(state=DeliveryState.QUEUED, sent_at=now())
            .execution_options(synchronize_session=False)
        )
