"""The relay queues stored deliveries: woken by PostgreSQL's NOTIFY, not by polling."""

from __future__ import annotations

import threading
import time

import pytest

from service.relay import DeliveryRelay, RelayThread
from service.store.db import Database
from service.store.deliveries import NewDelivery, insert_delivery
from service.store.models import DeliveryState
from tests.support.services import postgres_database


def delivery(delivery_id: str) -> NewDelivery:
    return NewDelivery("github", "github.com", delivery_id, "push", "{}", b"{}", "{}", DeliveryState.RECEIVED)


@pytest.mark.postgres
def test_notify_wakes_the_relay_long_before_its_poll():
    with postgres_database() as url:
        db = Database(url)
        db.migrate()
        queued: list[int] = []
        arrived = threading.Event()

        def enqueue(pk: int) -> None:
            queued.append(pk)
            arrived.set()

        relay = RelayThread(DeliveryRelay(db, enqueue, poll_seconds=60)).start()
        try:
            time.sleep(1)  # the relay is now waiting on LISTEN
            pk = insert_delivery(Database(url), delivery("n1"))  # another process's connection
            assert arrived.wait(10), "NOTIFY did not wake the relay"
            assert queued == [pk]
            assert insert_delivery(db, delivery("n1")) is None  # a repeat is not stored again
        finally:
            relay.stop()
            db.dispose()


def test_two_relays_queue_each_delivery_once(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'r.sqlite'}")
    db.migrate()
    for i in range(50):
        insert_delivery(db, delivery(f"d{i}"))
    queued: list[int] = []
    lock = threading.Lock()

    def enqueue(pk: int) -> None:
        with lock:
            queued.append(pk)

    threads = [threading.Thread(target=DeliveryRelay(db, enqueue).relay_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(queued) == list(range(1, 51))
    db.dispose()
