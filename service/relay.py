"""The delivery relay: stored deliveries go from the database to the broker.

The web tier only stores a delivery (``state = received``) and answers 202; the relay, a thread
of the worker process (and of ``forgeflow serve``), claims received deliveries and queues them
for the Celery worker. It wakes on PostgreSQL's ``NOTIFY forgeflow_deliveries`` (sent in the
insert's transaction), on an in-process signal when web and relay share a process, and at
least every ``poll_seconds``. While the broker is down deliveries simply stay ``received``:
nothing is lost and they are queued when it returns. Several relays may run: a claim is a
conditional update, so each delivery is queued by one of them (a rare second queueing is
harmless: processing is idempotent, under a lease).

The relay never dies: a lost database connection (the ``LISTEN`` one included: a restarted
server, ``pg_terminate_backend``) or an unreachable broker is logged once, retried with
backoff (polling meanwhile), and logged again when it works. :func:`resend` is the sweep's
side: deliveries nobody holds that are stuck (:func:`service.store.leases.stuck_deliveries`)
go to the broker again.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy import select as sql_select

from service.clock import now
from service.logs import Trouble
from service.store.db import Database
from service.store.deliveries import NOTIFY_CHANNEL
from service.store.leases import mark_sent, stuck_deliveries
from service.store.models import DELIVERIES, Delivery, DeliveryState

log = logging.getLogger(__name__)
BATCH = 200
FIRST_BACKOFF, MAX_BACKOFF = 0.5, 30.0  # seconds between attempts while the database or broker is away

# Wakes a relay in this process right after the web tier stored a delivery.
local_wakeup = threading.Event()


class BrokerDown(Exception):
    """The broker refused a delivery; it waits in the database."""


class DeliveryRelay:
    def __init__(self, db: Database, enqueue: Callable[[int], None], poll_seconds: float = 1.0) -> None:
        self.db = db
        self.enqueue = enqueue
        self.poll_seconds = poll_seconds
        self._listener: Any = None
        self.database = Trouble("relay: the database is unreachable", log)
        self.broker = Trouble("relay: the broker is unreachable, deliveries wait in the database", log)
        self.listening = Trouble("relay: cannot LISTEN for new deliveries, polling", log)

    def relay_once(self) -> int:
        """Queue every received delivery (in batches, each claimed by one statement; a batch
        that is not full was the last); returns how many were queued."""
        queued = 0
        while True:
            pks = claim_received(self.db, BATCH)
            for i, pk in enumerate(pks):
                try:
                    self.enqueue(pk)
                except Exception as exc:
                    for rest in pks[i:]:  # the broker did not take them: received again
                        release(self.db, rest)
                    self.broker.failed(exc)
                    return queued
                queued += 1
            if len(pks) < BATCH:
                # the table had no more: one stored since announces itself (NOTIFY, or the
                # in-process signal), so the table is not asked again for nothing (rows another
                # relay's claim kept from this batch wait at most for the next poll)
                self.broker.ok()
                return queued

    # -- waiting for work ------------------------------------------------------------------

    def _listen(self) -> Any:
        if self.db.is_sqlite:
            return None
        if self._listener is None:
            raw = self.db.engine.raw_connection()
            connection: Any = raw.driver_connection
            connection.set_session(autocommit=True)
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._listener = (raw, connection)
        return self._listener[1]

    def wait(self, stop: threading.Event, timeout: float | None = None) -> None:
        """Until a new delivery is announced, ``timeout`` (default ``poll_seconds``) passes, or
        ``stop`` is set. A broken ``LISTEN`` connection is closed (and opened again next time):
        the wait then ends like a poll."""
        timeout = self.poll_seconds if timeout is None else timeout
        if local_wakeup.is_set():
            local_wakeup.clear()
            return
        connection = None
        if not self.database.failing:
            fresh = self._listener is None
            try:
                connection = self._listen()
                self.listening.ok()
            except Exception as exc:  # no LISTEN: fall back to polling
                self.listening.failed(exc)
                self._close_listener()
            if connection is not None and fresh:
                return  # what arrived while nobody listened: look at the table once more
        if connection is None:
            local_wakeup.wait(timeout)
            local_wakeup.clear()
            return
        deadline = time.monotonic() + timeout
        try:
            while not stop.is_set() and not local_wakeup.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                readable, _, _ = select.select([connection], [], [], min(remaining, 0.25))
                if readable:
                    connection.poll()  # raises when the server closed the connection
                    connection.notifies.clear()
                    return
        except Exception as exc:  # terminated, restarted, unreachable: LISTEN again later
            self.listening.failed(exc)
            self._close_listener()
            return
        local_wakeup.clear()

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener[0].invalidate()
            except Exception:
                log.debug("closing the LISTEN connection failed", exc_info=True)
            self._listener = None

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop``; never gives up (see the module's docstring)."""
        backoff = 0.0  # seconds before the next attempt while something is away
        while not stop.is_set():
            try:
                self.relay_once()
                self.database.ok()
            except Exception as exc:
                self.database.failed(exc)
                self._close_listener()
            if self.database.failing or self.broker.failing:
                backoff = min(backoff * 2, MAX_BACKOFF) if backoff else FIRST_BACKOFF
            else:
                backoff = 0.0
            try:
                self.wait(stop, min(backoff, self.poll_seconds) if backoff else None)
            except Exception as exc:  # nothing may end this thread
                log.debug("relay: waiting failed: %s", exc)
                stop.wait(self.poll_seconds)
        self._close_listener()


_CLAIM_RECEIVED = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id.in_(
            sql_select(DELIVERIES.c.id)
            .where(DELIVERIES.c.state == DeliveryState.RECEIVED)
            .order_by(DELIVERIES.c.id)
            .limit(bindparam("batch"))
            .scalar_subquery()
        ),
        DELIVERIES.c.state == DeliveryState.RECEIVED,  # another relay may have taken some
    )
    .values(state=DeliveryState.QUEUED, sent_at=bindparam("moment"))
    .returning(DELIVERIES.c.id)
)


def claim_received(db: Database, batch: int) -> list[int]:
    """Take up to ``batch`` received deliveries (the oldest) to queue them, in one statement;
    their ids, oldest first. A delivery another relay took meanwhile is not among them."""
    with db.transaction() as connection:
        return sorted(connection.execute(_CLAIM_RECEIVED, {"batch": batch, "moment": now()}).scalars())


def claim(db: Database, pk: int) -> bool:
    """Take a received delivery to queue it (False: another relay took it)."""
    with db.session() as session:
        result = session.execute(
            update(Delivery)
            .where(Delivery.id == pk, Delivery.state == DeliveryState.RECEIVED)
            .values(state=DeliveryState.QUEUED, sent_at=now())
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def release(db: Database, pk: int) -> None:
    """The broker did not take it: received again."""
    with db.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == pk, Delivery.state == DeliveryState.QUEUED)
            .values(state=DeliveryState.RECEIVED, sent_at=None)
            .execution_options(synchronize_session=False)
        )


def resend(db: Database, enqueue: Callable[[int], None], waiting_in_broker: int) -> int:
    """The sweep's part: send again the deliveries nobody holds that are stuck (see
    :func:`service.store.leases.stuck_deliveries`); how many went. Raises :class:`BrokerDown`
    when the broker refuses (the rest wait for the next sweep)."""
    received, late = stuck_deliveries(db, waiting_in_broker)
    sent = 0
    for pk in received + late:
        if pk in received and not claim(db, pk):
            continue  # a relay queued it meanwhile
        try:
            enqueue(pk)
        except Exception as exc:
            if pk in received:
                release(db, pk)
            raise BrokerDown(str(exc)) from exc
        if pk in late:
            mark_sent(db, [pk])
        sent += 1
    if sent:
        log.warning("sent %d stuck deliveries to the broker again (%d never queued)", sent, len(received))
    return sent


class RelayThread:
    def __init__(self, relay: DeliveryRelay) -> None:
        self.relay = relay
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=relay.run, args=(self.stop_event,), name="forgeflow-relay", daemon=True
        )

    def start(self) -> RelayThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        local_wakeup.set()
        self.thread.join(timeout=self.relay.poll_seconds + 10)
