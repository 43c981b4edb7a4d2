"""Group commit for the web tier: deliveries arriving together are stored by one statement.

Every accepted webhook must be committed before its 202, and on PostgreSQL a commit costs
more than the row (a round trip, a WAL flush, the NOTIFY). So the request threads of one
web process share the work: the first thread to arrive with nothing in flight becomes the
*leader* and stores every delivery waiting at that moment in one ``INSERT ... VALUES (...),
(...)`` (autocommit: one statement, one transaction, one flush, one NOTIFY). Threads that
arrive meanwhile wait; when the statement returns, the leader answers each of them and hands
the deliveries that arrived while it wrote, as the next batch, to the first of their threads.
Under light load a batch is one delivery, written as soon as it comes; under heavy load
batches grow to the number of threads, and the database does a fraction of the work per
delivery.

Each caller still learns its own outcome: its row's id, None for a repeated delivery id, or
the error. If the database refuses a batch's data, its rows are written one by one so that
one bad row fails only its own request; a lost connection is replaced once; a write blocked
past ``STATEMENT_TIMEOUT`` fails (the forge hears 503 and may deliver again). SQLite (one
writer at a time anyway) writes each delivery on its own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from service.store.db import Database
from service.store.deliveries import (
    POSTGRES_INSERT,
    POSTGRES_PARAMS,
    POSTGRES_ROW,
    POSTGRES_TYPES,
    NewDelivery,
    delivery_params,
    insert_delivery,
)

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # forge, instance, delivery_id: what makes a delivery a repeat
# A write blocked longer than this (a lock held by a migration, a stalled server) fails, and the
# forge hears 503 (deliver again) before it gives up on the request itself: Gitea waits 5 s.
STATEMENT_TIMEOUT = 4.0


class _Waiter:
    """One request thread's delivery, and then its outcome."""

    __slots__ = ("batch", "error", "key", "lane", "params", "pk", "signal")

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.key: Key = (params["forge"], params["instance"], params["delivery_id"])
        self.pk: int | None = None
        self.error: BaseException | None = None
        self.lane: _Lane | None = None  # set when woken to write ``batch`` rather than with an outcome
        self.batch: list[_Waiter] = []
        self.signal = threading.Lock()
        self.signal.acquire()  # released once: outcome ready, or a batch to write handed over

    def outcome(self) -> int | None:
        if self.error is not None:
            raise self.error
        return self.pk


class _Lane:
    """A connection statements are written on, one at a time, in autocommit."""

    def __init__(self) -> None:
        self.connection: Any = None
        self.prepared: set[int] = set()  # batch sizes prepared on this connection

    def close(self) -> None:
        connection, self.connection = self.connection, None
        self.prepared = set()
        if connection is not None:
            connection.close()


class DeliveryWriter:
    """Stores deliveries durably for many request threads; :meth:`store` is thread-safe.

    ``lanes`` statements may be in flight at once, each on its own connection. One lane gave
    the most deliveries per second in the ingest benchmark (larger batches); more may pay off
    where each round trip to the database is long."""

    def __init__(
        self,
        db: Database,
        lanes: int = 1,
        statement_timeout: float = STATEMENT_TIMEOUT,
        on_statement: Callable[[int], None] | None = None,
    ) -> None:
        self.db = db
        self.statement_timeout = statement_timeout
        self.on_statement = on_statement  # told each statement's batch size as it is sent (metrics)
        self._lock = threading.Lock()
        self._waiting: list[_Waiter] = []
        self._all_lanes = [_Lane() for _ in range(max(1, lanes))]
        self._free = list(self._all_lanes)  # lanes with no statement in flight
        self._pid = os.getpid()  # a forked child opens its own connections
        self._prepare = True  # prepared statements, one per batch size, on each connection
        self.batches = 0  # statements written (batches), for tests and benchmarks
        self.stored = 0  # deliveries in them

    def store(self, delivery: NewDelivery) -> int | None:
        """Store a delivery (committed on return): its id, or None when its id was seen before.
        Raises what the database raised for it."""
        if self.db.is_sqlite:
            return insert_delivery(self.db, delivery)
        me = _Waiter(delivery_params(delivery))
        with self._lock:
            self._waiting.append(me)
            lane = self._free.pop() if self._free else None
            if lane is not None:  # a free lane: write what waits (this one included) now
                batch, self._waiting = self._waiting, []
        if lane is None:  # wait for an outcome, or for a batch to write (this one's)
            me.signal.acquire()
            if me.lane is None:
                return me.outcome()
            lane, batch = me.lane, me.batch
        try:
            self._write(lane, batch)
        finally:
            with self._lock:
                if self._waiting:  # arrived meanwhile: the first of them writes them next
                    following, self._waiting = self._waiting, []
                    following[0].lane, following[0].batch = lane, following
                    following[0].signal.release()
                else:
                    self._free.append(lane)
            for waiter in batch:
                if waiter is not me:
                    waiter.signal.release()
        return me.outcome()

    def refuses_data(self, exc: BaseException) -> bool:
        """Whether ``exc`` (raised by :meth:`store`) is the database refusing this delivery's
        data (a 4xx for the sender) rather than the database failing (a 503)."""
        dbapi = self.db.engine.dialect.loaded_dbapi
        return isinstance(exc, dbapi.DataError)

    @property
    def queued(self) -> int:
        """Deliveries waiting for a statement in flight to finish."""
        with self._lock:
            return len(self._waiting)

    @property
    def writing(self) -> int:
        """Statements in flight."""
        with self._lock:
            return len(self._all_lanes) - len(self._free)

    def close(self) -> None:
        with self._lock:
            for lane in self._all_lanes:
                lane.close()

    def _write(self, lane: _Lane, batch: list[_Waiter]) -> None:
        """Fill in every waiter's outcome; never raises but what interrupts it."""
        first: dict[Key, _Waiter] = {}
        repeats: list[tuple[_Waiter, _Waiter]] = []  # the same delivery twice in one batch
        for waiter in batch:
            original = first.setdefault(waiter.key, waiter)
            if original is not waiter:
                repeats.append((waiter, original))
        try:
            self._write_rows(lane, list(first.values()))
        finally:
            for repeat, original in repeats:  # a repeat of a stored delivery; unless it failed
                repeat.error = original.error

    def _write_rows(self, lane: _Lane, rows: list[_Waiter]) -> None:
        try:
            self._insert(lane, rows)
        except Exception as exc:
            dbapi = self.db.engine.dialect.loaded_dbapi
            if len(rows) == 1 or not isinstance(exc, dbapi.DataError | dbapi.IntegrityError):
                for row in rows:  # the database's trouble (down, timed out): everyone's answer
                    row.error = exc
                return
            # one row's data refused: find it, so that only its own request fails
            log.warning("a batch of %d deliveries failed (%s); storing them one by one", len(rows), exc)
            for row in rows:
                try:
                    self._insert(lane, [row])
                except Exception as one:
                    row.error = one
        except BaseException as exc:  # interrupted: nobody may wait forever
            for row in rows:
                row.error = exc
            raise

    def _insert(self, lane: _Lane, rows: list[_Waiter]) -> None:
        try:
            returned = self._execute(lane, rows)
        except _Disconnected:
            # a connection the server had closed (restart, idle timeout): a fresh one will do
            returned = self._execute(lane, rows)
        for row in rows:
            row.pk = returned.get(row.key)
        with self._lock:
            self.batches += 1
            self.stored += len(rows)

    def _execute(self, lane: _Lane, rows: list[_Waiter]) -> dict[Key, int]:
        if self.on_statement is not None:
            self.on_statement(len(rows))
        connection = self._connect(lane)
        params = [row.params[column] for row in rows for column in POSTGRES_PARAMS]
        try:
            with connection.cursor() as cursor:
                cursor.execute(self._statement(lane, cursor, len(rows)), params)
                found = cursor.fetchall()
        except self.db.engine.dialect.loaded_dbapi.Error as exc:
            if self.db.engine.dialect.is_disconnect(exc, connection, None) or connection.closed:
                lane.close()
                raise _Disconnected() from exc
            if getattr(exc, "pgcode", None) in _PREPARED_LOST and self._prepare:
                # a pooler between us and the server (PgBouncer in transaction mode) does not
                # keep a session's prepared statements: send the statement itself from now on
                log.warning("prepared statements do not survive on this connection (%s); not using them", exc)
                self._prepare = False
                return self._execute(lane, rows)
            raise
        return {(forge, instance, delivery_id): int(pk) for pk, forge, instance, delivery_id, _ in found}

    def _statement(self, lane: _Lane, cursor: Any, size: int) -> str:
        """The statement for ``size`` deliveries: prepared on the lane's connection at its first
        use, so the server parses and plans each batch size once."""
        values = ", ".join([POSTGRES_ROW] * size)
        if not self._prepare:
            return POSTGRES_INSERT.format(values=values)
        name = f"forgeflow_store_{size}"
        if size not in lane.prepared:
            numbered = values % tuple(f"${i}" for i in range(1, len(POSTGRES_PARAMS) * size + 1))
            types = ", ".join(POSTGRES_TYPES * size)
            cursor.execute(f"PREPARE {name} ({types}) AS " + POSTGRES_INSERT.format(values=numbered))
            lane.prepared.add(size)
        return f"EXECUTE {name} ({', '.join(['%s'] * (len(POSTGRES_PARAMS) * size))})"

    def _connect(self, lane: _Lane) -> Any:
        if self._pid != os.getpid():  # forked (a gunicorn worker): the parent's are not ours
            with self._lock:
                if self._pid != os.getpid():
                    for each in self._all_lanes:
                        each.connection, each.prepared = None, set()
                    self._pid = os.getpid()
        if lane.connection is None:
            # from the engine (its URL and connect arguments), then kept out of its pool: this
            # connection is the lane's own, in autocommit (each statement commits itself)
            pooled = self.db.engine.raw_connection()
            connection: Any = pooled.driver_connection
            pooled.detach()
            connection.autocommit = True
            with connection.cursor() as cursor:  # a blocked write answers 503 in time, not never
                cursor.execute("SET statement_timeout = %s", (f"{int(self.statement_timeout * 1000)}ms",))
            lane.connection, lane.prepared = connection, set()
        return lane.connection


class _Disconnected(Exception):
    pass


_PREPARED_LOST = ("26000", "42P05")  # invalid_sql_statement_name, duplicate_prepared_statement
