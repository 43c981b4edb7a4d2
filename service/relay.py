"""The delivery relay: stored deliveries go from the database to the broker.

The web tier only stores a delivery (``state = received``) and answers 202; the relay, a thread
of the worker process (and of ``forgeflow serve``), claims received deliveries and queues them
for the Celery worker. It wakes on PostgreSQL's ``NOTIFY forgeflow_deliveries`` (sent in the
insert's transaction), on an in-process signal when web and relay share a process, and at
least every ``poll_seconds``. While the broker is down deliveries simply stay ``received``:
nothing is lost and they are queued when it returns. Several relays may run: a claim is a
conditional update, so each delivery is queued by one of them (a rare second queueing is
harmless: processing is idempotent).
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select as sql_select
from sqlalchemy import update

from service.store.db import Database
from service.store.deliveries import NOTIFY_CHANNEL
from service.store.models import Delivery, DeliveryState

log = logging.getLogger(__name__)
BATCH = 200

# Wakes a relay in this process right after the web tier stored a delivery.
local_wakeup = threading.Event()


class DeliveryRelay:
    def __init__(self, db: Database, enqueue: Callable[[int], None], poll_seconds: float = 1.0) -> None:
        self.db = db
        self.enqueue = enqueue
        self.poll_seconds = poll_seconds
        self._listener: Any = None

    def relay_once(self) -> int:
        """Queue every received delivery (in batches); returns how many were queued."""
        queued = 0
        while True:
            with self.db.session() as session:
                pks = list(
                    session.scalars(
                        sql_select(Delivery.id)
                        .where(Delivery.state == DeliveryState.RECEIVED)
                        .order_by(Delivery.id)
                        .limit(BATCH)
                    )
                )
            if not pks:
                return queued
            for pk in pks:
                if not self._claim(pk):
                    continue  # another relay took it
                try:
                    self.enqueue(pk)
                except Exception as exc:
                    self._release(pk)
                    log.warning("broker unreachable (%s); deliveries wait in the database", exc)
                    return queued
                queued += 1

    def _claim(self, pk: int) -> bool:
        with self.db.session() as session:
            result = session.execute(
                update(Delivery)
                .where(Delivery.id == pk, Delivery.state == DeliveryState.RECEIVED)
                .values(state=DeliveryState.QUEUED)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def _release(self, pk: int) -> None:
        with self.db.session() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == pk, Delivery.state == DeliveryState.QUEUED)
                .values(state=DeliveryState.RECEIVED)
                .execution_options(synchronize_session=False)
            )

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

    def wait(self, stop: threading.Event) -> None:
        """Until a new delivery is announced, ``poll_seconds`` pass, or ``stop`` is set."""
        if local_wakeup.is_set():
            local_wakeup.clear()
            return
        try:
            connection = self._listen()
        except Exception as exc:  # no LISTEN: fall back to polling
            log.warning("cannot LISTEN for deliveries (%s); polling", exc)
            connection = None
            self._close_listener()
        if connection is None:
            local_wakeup.wait(self.poll_seconds)
            local_wakeup.clear()
            return
        deadline = time.monotonic() + self.poll_seconds
        while not stop.is_set() and not local_wakeup.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            readable, _, _ = select.select([connection], [], [], min(remaining, 0.25))
            if readable:
                connection.poll()
                connection.notifies.clear()
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
        while not stop.is_set():
            try:
                self.relay_once()
            except Exception:
                log.exception("relaying deliveries failed")
                self._close_listener()
                stop.wait(self.poll_seconds)
            self.wait(stop)
        self._close_listener()


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
