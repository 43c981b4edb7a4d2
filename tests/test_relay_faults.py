"""The relay survives losing its PostgreSQL connections (issue 18).

Before issue 18, terminating the relay's ``LISTEN`` backend killed the relay thread for good:
every later webhook was answered 202 and never processed until the worker restarted. Only
backends of the test's own database are terminated (never anyone else's).
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg2
import pytest

from service.relay import DeliveryRelay, RelayThread
from service.store.db import Database
from service.store.deliveries import NewDelivery, insert_delivery
from service.store.models import DeliveryState
from tests.support.services import postgres_database

pytestmark = pytest.mark.postgres


def delivery(delivery_id: str) -> NewDelivery:
    return NewDelivery("github", "github.com", delivery_id, "push", "{}", b"{}", "{}", DeliveryState.RECEIVED)


def terminate(database: str, listening_only: bool) -> int:
    """Terminate backends of this test's own database: how many."""
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            query = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s"
            query += " AND pid <> pg_backend_pid()"
            if listening_only:
                query += " AND query ILIKE 'LISTEN%%'"
            cursor.execute(query, (database,))
            return int(cursor.fetchone()[0])
    finally:
        admin.close()


class Queue:
    def __init__(self) -> None:
        self.queued: list[int] = []
        self.arrived = threading.Condition()

    def __call__(self, pk: int) -> None:
        with self.arrived:
            self.queued.append(pk)
            self.arrived.notify_all()

    def wait_for(self, pk: int, timeout: float = 30) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: pk in self.queued, timeout)


def wait_listening(name: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
        try:
            with admin.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query ILIKE 'LISTEN%%'",
                    (name,),
                )
                if cursor.fetchone()[0]:
                    return
        finally:
            admin.close()
        time.sleep(0.1)
    raise AssertionError("the relay never listened")


@pytest.mark.parametrize("listening_only", [True, False], ids=["its LISTEN backend", "all its backends"])
def test_the_relay_keeps_relaying_after_its_backends_are_terminated(listening_only, caplog):
    caplog.set_level(logging.INFO, logger="service.relay")
    with postgres_database() as url:
        name = url.rsplit("/", 1)[1]
        db = Database(url)
        db.migrate()
        queue = Queue()
        relay = RelayThread(DeliveryRelay(db, queue, poll_seconds=60)).start()  # NOTIFY, not polling
        other = Database(url)  # the web tier's connection
        try:
            wait_listening(name)
            assert terminate(name, listening_only) >= 1
            first = insert_delivery(other, delivery("after-terminate-1"))
            assert queue.wait_for(first), "the relay stopped relaying"
            assert relay.thread.is_alive()
            wait_listening(name)  # it listens again: a delivery is queued at once, not at the poll
            second = insert_delivery(other, delivery("after-terminate-2"))
            assert queue.wait_for(second)
            lost = [r.getMessage().split(":")[1] for r in caplog.records if r.levelno == logging.WARNING]
            assert lost and len(lost) == len(set(lost)), lost  # each trouble logged once
        finally:
            relay.stop()
            other.dispose()
            db.dispose()
