"""A database that stops answering is an error within seconds, never a hang (issue 18).

The database is reached through a TCP proxy the test controls (the shared PostgreSQL server is
never touched): silenced, it accepts and keeps connections but forwards nothing, like a hung
host or a partition. Before issue 18 a webhook then waited for minutes (no client-side bound).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from service.cli.replay import signed_headers
from service.context import build_context
from service.store.db import Database
from service.store.timeouts import Bounds
from service.web.app import create_app
from tests.conftest import WEBHOOK_SECRET
from tests.support import payloads
from tests.support.services import postgres_database
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres


@contextmanager
def proxied_database() -> Iterator[tuple[str, TcpProxy]]:
    with postgres_database() as url:
        proxy = TcpProxy(("127.0.0.1", 5432)).start()
        try:
            yield url.replace("127.0.0.1:5432", proxy.address), proxy
        finally:
            proxy.close()


def within(seconds: float, call):
    """``call()``'s outcome and how long it took; fails (instead of hanging) past ``seconds``."""
    outcome: dict = {}

    def run() -> None:
        started = time.monotonic()
        try:
            outcome["value"] = call()
        except Exception as exc:
            outcome["error"] = exc
        outcome["took"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert "took" in outcome, f"still waiting after {seconds} s"
    return outcome


def post(client, delivery: str):
    body = json.dumps(
        payloads.push("octo/hello", "https://github.com/octo/hello.git", delivery.ljust(40, "a"))
    ).encode()
    headers = signed_headers("github", body, WEBHOOK_SECRET, "push", delivery)
    return client.post("/api/webhooks/github", data=body, headers=headers)


def test_a_silent_database_answers_webhooks_503_within_five_seconds_then_recovers(make_settings):
    with proxied_database() as (url, proxy):
        ctx = build_context(make_settings(github_webhook_secret=WEBHOOK_SECRET, database_url=url))
        try:
            client = create_app(ctx).test_client()
            assert post(client, "before").status_code == 202
            proxy.silence()
            outcome = within(60, lambda: post(client, "during"))
            response = outcome["value"]
            assert response.status_code == 503 and response.headers["Retry-After"]
            assert outcome["took"] < 15, outcome["took"]  # the budget is 4 s; the machine is loaded
            proxy.restore()
            assert post(client, "after").status_code == 202
        finally:
            proxy.restore()
            ctx.close()


def test_a_silent_database_fails_a_statement_at_the_clients_bound():
    with proxied_database() as (url, proxy):
        db = Database(url, bounds=Bounds(connect=2, statement=1, margin=1))
        try:
            with db.engine.connect() as connection:
                assert connection.execute(text("SELECT 1")).scalar() == 1
                proxy.silence()
                outcome = within(60, lambda: connection.execute(text("SELECT 2")).scalar())
            assert isinstance(outcome["error"], OperationalError), outcome
            assert "did not answer in time" in str(outcome["error"])
            assert outcome["took"] < 20
            proxy.restore()
            with db.engine.connect() as connection:  # the pool dropped the dead connection
                assert connection.execute(text("SELECT 3")).scalar() == 3
        finally:
            proxy.restore()
            db.dispose()


def test_connecting_to_a_database_that_never_answers_fails_at_the_connect_bound():
    with proxied_database() as (url, proxy):
        proxy.silence()  # connections are accepted, the server's greeting never comes
        db = Database(url, bounds=Bounds(connect=2, statement=30))
        try:

            def connect() -> None:
                with db.engine.connect() as connection:
                    connection.execute(text("SELECT 1"))

            outcome = within(60, connect)
            assert isinstance(outcome["error"], OperationalError), outcome
            assert outcome["took"] < 15
        finally:
            proxy.restore()
            db.dispose()


def test_the_server_cancels_a_statement_past_its_timeout():
    with postgres_database() as url:
        db = Database(url, bounds=Bounds(statement=1))
        try:
            with (
                db.engine.connect() as connection,
                pytest.raises(OperationalError, match="statement timeout"),
            ):
                connection.execute(text("SELECT pg_sleep(5)"))
        finally:
            db.dispose()


def test_migrations_are_not_bounded(make_settings):
    """Another process may hold the migration lock for long: migrate() waits for it."""
    with postgres_database() as url:
        db = Database(url, bounds=Bounds(connect=2, statement=1, margin=1))
        try:
            db.migrate()  # under the lock, with statement_timeout lifted
            with db.engine.connect() as connection:
                assert connection.execute(text("SHOW statement_timeout")).scalar() == "1s"
        finally:
            db.dispose()
