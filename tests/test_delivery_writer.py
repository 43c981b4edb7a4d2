"""Group commit: concurrent deliveries share one statement, and each caller gets its own outcome."""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest

from service.store.db import Database
from service.store.deliveries import NewDelivery
from service.store.delivery_writer import DeliveryWriter
from service.store.models import DeliveryState
from tests.support.services import postgres_database

pytestmark = pytest.mark.postgres


def delivery(delivery_id: str) -> NewDelivery:
    return NewDelivery("github", "github.com", delivery_id, "push", "{}", b"{}", "{}", DeliveryState.RECEIVED)


@pytest.fixture
def database() -> Iterator[tuple[str, Database, DeliveryWriter]]:
    with postgres_database() as url:
        db = Database(url)
        db.migrate()
        writer = DeliveryWriter(db, lanes=1)
        yield url, db, writer
        writer.close()
        db.dispose()


def plain_url(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://")


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.005)


class Stores:
    """Calls writer.store from threads; records each call's outcome (pk, None or the error)."""

    def __init__(self, writer: DeliveryWriter) -> None:
        self.writer = writer
        self.outcomes: dict[str, Any] = {}
        self.threads: list[threading.Thread] = []

    def start(self, name: str, delivery_id: str) -> None:
        def run() -> None:
            try:
                self.outcomes[name] = self.writer.store(delivery(delivery_id))
            except Exception as exc:
                self.outcomes[name] = exc

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)

    def join(self) -> dict[str, Any]:
        for thread in self.threads:
            thread.join(10)
            assert not thread.is_alive()
        return self.outcomes


def stored_ids(db: Database) -> dict[str, int]:
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT delivery_id, id FROM deliveries")
        return dict(cursor.fetchall())
    finally:
        raw.close()


class TableLock:
    """Holds the deliveries table locked against inserts until released."""

    def __init__(self, url: str) -> None:
        self.connection = psycopg2.connect(plain_url(url))
        with self.connection.cursor() as cursor:
            cursor.execute("LOCK TABLE deliveries IN SHARE ROW EXCLUSIVE MODE")

    def release(self) -> None:
        self.connection.commit()
        self.connection.close()


def test_deliveries_arriving_during_a_write_share_the_next_statement(database):
    url, db, writer = database
    lock = TableLock(url)
    stores = Stores(writer)
    stores.start("first", "a")  # written at once: blocked by the lock, in flight
    until(lambda: writer.writing and writer.queued == 0, "the first statement is in flight")
    for name, delivery_id in (("b", "b"), ("c", "c"), ("b-again", "b")):
        stores.start(name, delivery_id)
    until(lambda: writer.queued == 3, "three deliveries wait")
    lock.release()
    outcomes = stores.join()
    ids = stored_ids(db)
    assert sorted(ids) == ["a", "b", "c"]
    assert outcomes["first"] == ids["a"] and outcomes["c"] == ids["c"]
    # the same delivery twice in one batch: exactly one caller stored it, the other saw a repeat
    assert sorted([outcomes["b"], outcomes["b-again"]], key=str) == sorted([ids["b"], None], key=str)
    assert (writer.batches, writer.stored) == (2, 3)  # a, then b and c in one statement
    assert writer.store(delivery("c")) is None  # a repeat of a stored delivery
    assert not writer.writing and writer.queued == 0


def test_with_two_lanes_a_second_statement_starts_while_the_first_is_in_flight(database):
    url, db, _ = database
    writer = DeliveryWriter(db, lanes=2)
    lock = TableLock(url)
    stores = Stores(writer)
    stores.start("a", "a")
    until(lambda: writer.writing == 1 and writer.queued == 0, "the first statement is in flight")
    stores.start("b", "b")
    until(lambda: writer.writing == 2 and writer.queued == 0, "a second statement is in flight")
    stores.start("c", "c")
    stores.start("d", "d")
    until(lambda: writer.queued == 2, "two deliveries wait for a lane")
    lock.release()
    outcomes = stores.join()
    ids = stored_ids(db)
    assert outcomes == {name: ids[name] for name in "abcd"}
    assert (writer.batches, writer.stored) == (3, 4)  # a, b, then c and d together
    assert writer.writing == 0
    writer.close()


def test_a_bad_delivery_in_a_batch_fails_only_its_own_request(database):
    url, db, writer = database
    lock = TableLock(url)
    stores = Stores(writer)
    stores.start("first", "a")
    until(lambda: writer.writing and writer.queued == 0, "the first statement is in flight")
    stores.start("good", "b")
    stores.start("bad", "x" * 300)  # longer than the column
    stores.start("bad-again", "x" * 300)  # its repeat is not "already stored": it fails too
    until(lambda: writer.queued == 3, "three deliveries wait")
    lock.release()
    outcomes = stores.join()
    ids = stored_ids(db)
    assert sorted(ids) == ["a", "b"]
    assert outcomes["good"] == ids["b"]
    assert isinstance(outcomes["bad"], psycopg2.DataError)
    assert isinstance(outcomes["bad-again"], psycopg2.DataError)


def test_a_lost_connection_is_replaced(database):
    url, db, writer = database
    first = writer.store(delivery("a"))
    admin = psycopg2.connect(plain_url(url))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    admin.close()
    second = writer.store(delivery("b"))
    assert stored_ids(db) == {"a": first, "b": second}


def test_prepared_statements_lost_to_a_pooler_are_not_used_again(database, caplog):
    _, db, writer = database
    writer.store(delivery("a"))
    with writer._connect(writer._all_lanes[0]).cursor() as cursor:  # what a transaction-mode pooler does
        cursor.execute("DEALLOCATE ALL")
    assert writer.store(delivery("b")) is not None
    assert "prepared statements do not survive" in caplog.text
    writer.store(delivery("c"))
    assert sorted(stored_ids(db)) == ["a", "b", "c"]


def test_a_stored_delivery_wakes_listeners_a_repeat_does_not(database):
    url, _, writer = database
    listener = psycopg2.connect(plain_url(url))
    listener.autocommit = True
    with listener.cursor() as cursor:
        cursor.execute("LISTEN forgeflow_deliveries")

    def notified() -> int:
        select.select([listener], [], [], 1)
        listener.poll()
        count = len(listener.notifies)
        listener.notifies.clear()
        return count

    writer.store(delivery("a"))
    assert notified() == 1
    writer.store(delivery("a"))
    assert notified() == 0
    listener.close()


def test_on_sqlite_each_delivery_is_its_own_statement(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'w.sqlite'}")
    db.migrate()
    writer = DeliveryWriter(db)
    assert writer.store(delivery("a")) is not None
    assert writer.store(delivery("a")) is None
    db.dispose()


def test_an_unreachable_database_fails_each_request_and_blocks_none():
    db = Database("postgresql://postgres@127.0.0.1:1/nothing-listens-here")
    writer = DeliveryWriter(db)
    for attempt in range(2):  # the lane is free again after a failure: the next call tries anew
        with pytest.raises(Exception, match="connect"):
            writer.store(delivery(f"d{attempt}"))
        assert writer.writing == 0 and writer.queued == 0
    db.dispose()


def test_a_write_blocked_past_the_statement_timeout_fails_instead_of_hanging(database):
    url, db, _ = database
    writer = DeliveryWriter(db, statement_timeout=0.3)
    lock = TableLock(url)
    try:
        with pytest.raises(psycopg2.errors.QueryCanceled):
            writer.store(delivery("a"))
        assert writer.writing == 0
    finally:
        lock.release()
    assert writer.store(delivery("a")) is not None  # the same delivery, delivered again
    writer.close()


def test_a_timed_out_batch_fails_all_its_requests_at_once(database):
    url, db, _ = database
    statements: list[int] = []
    writer = DeliveryWriter(db, lanes=1, statement_timeout=0.5, on_statement=statements.append)
    writer.store(delivery("warm"))  # the connection exists (its timeout set) before the lock
    statements.clear()
    lock = TableLock(url)
    stores = Stores(writer)
    stores.start("first", "a")
    until(lambda: writer.writing and writer.queued == 0, "the first statement is in flight")
    stores.start("b", "b")
    stores.start("c", "c")
    until(lambda: writer.queued == 2, "two deliveries wait")
    outcomes = stores.join()  # the lock is never released: every statement times out
    lock.release()
    assert all(isinstance(outcome, psycopg2.errors.QueryCanceled) for outcome in outcomes.values())
    assert statements == [1, 2]  # a, then b and c together, not retried one by one
    writer.close()
