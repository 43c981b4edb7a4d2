"""The web tier's hot path into the database: the INSERT of an accepted delivery.

This is the only write a webhook request makes, so it is plain SQL through the driver (the
ORM costs more CPU than the rest of the request): ``INSERT ... ON CONFLICT DO NOTHING
RETURNING id`` stores the delivery, or returns nothing for a repeated delivery id or a
replayed body (the unique ``replay_key``). The web tier shares such statements between
concurrent requests on PostgreSQL
(:mod:`service.store.delivery_writer`); this module writes one delivery at a time. On
PostgreSQL it is one statement in one round trip, committed on its own (autocommit; the
server answers after the commit is flushed): the insert and ``pg_notify('forgeflow_deliveries')``
for a new row, which wakes the relay (:mod:`service.relay`) that hands deliveries to the
broker. The raw body is kept compressed (it is read only to re-deliver a stored webhook).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.store.db import Database

NOTIFY_CHANNEL = "forgeflow_deliveries"
_ZLIB = b"z1:"

# PostgreSQL: one statement stores any number of deliveries (the web tier's group commit
# writes a batch with it, insert_delivery one). {values} is one POSTGRES_ROW per delivery, whose
# parameters are POSTGRES_PARAMS in order (POSTGRES_TYPES for a prepared statement). A new row
# NOTIFYs; its key (forge, instance, delivery_id) tells a batch's callers which row is whose.
POSTGRES_PARAMS = (
    "forge",
    "instance",
    "delivery_id",
    "event_type",
    "event_json",
    "body",
    "headers_json",
    "state",
    "replay_key",
)
POSTGRES_TYPES = ("text", "text", "text", "text", "text", "bytea", "text", "text", "text")
POSTGRES_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, '', timezone('utc', now()))"
POSTGRES_INSERT = (
    "WITH stored AS (INSERT INTO deliveries (forge, instance, delivery_id, event_type, event_json,"
    " body, headers_json, state, replay_key, attempts, outcome, received_at) VALUES {values}"
    " ON CONFLICT DO NOTHING RETURNING id, forge, instance, delivery_id)"
    " SELECT id, forge, instance, delivery_id, pg_notify('forgeflow_deliveries', '') FROM stored"
)
_SQLITE = (
    "INSERT INTO deliveries (forge, instance, delivery_id, event_type, event_json, body, headers_json,"
    " state, replay_key, attempts, outcome, received_at) VALUES (:forge, :instance, :delivery_id,"
    " :event_type, :event_json, :body, :headers_json, :state, :replay_key, 0, '',"
    " strftime('%Y-%m-%d %H:%M:%f', 'now'))"
    " ON CONFLICT DO NOTHING RETURNING id"
)


@dataclass(frozen=True)
class NewDelivery:
    forge: str
    instance: str
    delivery_id: str
    event_type: str
    event_json: str
    body: bytes
    headers_json: str
    state: str
    # a signed webhook's body digest (:func:`replay_key`): the same body again within the
    # replay window is a duplicate whatever its delivery id; None (manual runs) never is
    replay_key: str | None = None


def replay_key(body: bytes) -> str:
    """What makes a signed body a replay: its SHA-256."""
    return hashlib.sha256(body).hexdigest()


def compress_body(body: bytes) -> bytes:
    return _ZLIB + zlib.compress(body, 1)


def decompress_body(stored: bytes | None) -> bytes:
    if not stored:
        return b""
    stored = bytes(stored)
    return zlib.decompress(stored[len(_ZLIB) :]) if stored.startswith(_ZLIB) else stored


def delivery_params(delivery: NewDelivery) -> dict[str, Any]:
    """The statement parameters for a delivery: its fields, with the body compressed."""
    return {
        "forge": delivery.forge,
        "instance": delivery.instance,
        "delivery_id": delivery.delivery_id,
        "event_type": delivery.event_type,
        "event_json": delivery.event_json,
        "body": compress_body(delivery.body),
        "headers_json": delivery.headers_json,
        "state": delivery.state,
        "replay_key": delivery.replay_key,
    }


def insert_delivery(db: Database, delivery: NewDelivery) -> int | None:
    """Store a delivery durably (committed on return). None when its id was seen before.

    One statement per delivery; the web tier stores through
    :class:`service.store.delivery_writer.DeliveryWriter`, which shares statements between
    concurrent requests."""
    params = delivery_params(delivery)
    try:
        return _insert(db, params)
    except _Disconnected:
        # a pooled connection the server had closed (restart, idle timeout): it was dropped
        # from the pool; a fresh one will do
        return _insert(db, params)


class _Disconnected(Exception):
    pass


def _insert(db: Database, params: Mapping[str, object]) -> int | None:
    # The driver's own connection (from SQLAlchemy's pool): the ORM/Core layers cost more CPU
    # than the rest of the request, and this statement needs none of their services.
    raw = db.engine.raw_connection()
    try:
        if db.is_sqlite:
            cursor = raw.cursor()
            try:
                cursor.execute(_SQLITE, params)
                row = cursor.fetchone()
            finally:
                cursor.close()
            raw.commit()
        else:
            driver: Any = raw.driver_connection
            driver.autocommit = True  # no BEGIN, no COMMIT: the statement commits itself
            try:
                with driver.cursor() as cursor:
                    statement = POSTGRES_INSERT.format(values=POSTGRES_ROW)
                    cursor.execute(statement, [params[name] for name in POSTGRES_PARAMS])
                    row = cursor.fetchone()
            finally:
                driver.autocommit = False  # as the pool hands connections out
    except db.engine.dialect.loaded_dbapi.Error as exc:
        if db.engine.dialect.is_disconnect(exc, raw.driver_connection, None):
            raw.invalidate()
            raise _Disconnected() from exc
        raw.rollback()
        raise
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()  # back to the pool (a no-op once invalidated)
    return int(row[0]) if row is not None else None
