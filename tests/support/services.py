"""The real servers tests use (PostgreSQL, Redis, RabbitMQ): reachable, or a clear skip.

In CI (``CI=true``) a missing server fails the test instead of skipping it. Two checkouts can
run their suites at once on one machine: ``FORGEFLOW_TEST_REDIS_DB`` (default 9) and
``FORGEFLOW_TEST_AMQP_VHOST`` (default ``/``; created when missing) keep their queues apart.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest

POSTGRES = (
    "PostgreSQL",
    "127.0.0.1",
    5432,
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
)
REDIS = ("Redis", "127.0.0.1", 6379, "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''")
RABBITMQ = ("RabbitMQ", "127.0.0.1", 5672, "rabbitmq-server -detached")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(service: tuple[str, str, int, str]) -> None:
    name, host, port, start = service
    if reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port} (start it with: {start})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; in CI it must run")
    pytest.skip(message)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    require(POSTGRES)
    import psycopg2

    name = f"forgeflow_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def redis_broker() -> str:
    require(REDIS)
    import redis

    url = f"redis://127.0.0.1:6379/{int(os.environ.get('FORGEFLOW_TEST_REDIS_DB', '9'))}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def rabbitmq_broker() -> str:
    require(RABBITMQ)
    from kombu import Connection

    vhost = os.environ.get("FORGEFLOW_TEST_AMQP_VHOST", "/")
    if vhost != "/":
        _ensure_vhost(vhost)
    url = f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"
    with Connection(url, connect_timeout=5) as connection:
        channel = connection.channel()
        try:
            channel.queue_purge("forgeflow")
        except Exception as exc:  # the queue does not exist yet
            print(f"nothing to purge: {exc}")
        finally:
            channel.close()
    return url


def _ensure_vhost(vhost: str) -> None:
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, text=True, timeout=60, check=False
    )
    if vhost in listed.stdout.split():
        return
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], capture_output=True, timeout=60, check=False)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        capture_output=True,
        timeout=60,
        check=False,
    )
