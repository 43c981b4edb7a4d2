"""Hostile input at the webhook endpoint: always a 4xx that says why, never a 5xx or a retry.

Each case here was a 5xx (or a 503 the forge would retry) before issue 18: signed JSON nested
deeper than 1,024 levels, a lone surrogate escape, numbers Python cannot convert, a broken
chunked body, a Content-Length made of non-ASCII digits, control characters in a delivery id,
and a signed body replayed under a new delivery id.
"""

from __future__ import annotations

import io
import json
from contextlib import ExitStack
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select, update

from service.cli.replay import signed_headers
from service.clock import now
from service.context import build_context
from service.store.models import Delivery
from service.store.retention import forget_replay_keys
from service.web.app import create_app
from tests.conftest import WEBHOOK_SECRET
from tests.support import payloads
from tests.web.test_webhooks import call_wsgi

PUSH = payloads.push("octo/hello", "https://github.com/octo/hello.git", "a" * 40)


def web_on(database_kind: str, make_settings):
    from tests.support.services import postgres_database

    with ExitStack() as stack:
        database = {}
        if database_kind == "postgres":
            database["database_url"] = stack.enter_context(postgres_database())
        settings = make_settings(github_webhook_secret=WEBHOOK_SECRET, max_body_bytes=1024 * 1024, **database)
        ctx = build_context(settings)
        stack.callback(ctx.close)
        yield create_app(ctx).test_client(), ctx


@pytest.fixture
def web(make_settings):
    """The web app on SQLite (what the database makes of a value: ``web_both``)."""
    yield from web_on("sqlite", make_settings)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def web_both(request, make_settings):
    yield from web_on(request.param, make_settings)


def signed(client, body: bytes, delivery: str = "d1", content_type: str = "application/json", **extra):
    headers = signed_headers("github", body, WEBHOOK_SECRET, "push", delivery)
    headers["Content-Type"] = content_type
    headers.update(extra)
    return client.post("/api/webhooks/github", data=body, headers=headers)


def stored(ctx) -> int:
    with ctx.db.session() as session:
        return session.scalar(select(func.count()).select_from(Delivery))


def push_with(**fields) -> bytes:
    return json.dumps(dict(PUSH, **fields)).encode()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [1025, 5000, 100_000])
def test_json_nested_deeper_than_1024_levels_is_400_not_a_retry(web, depth):
    client, ctx = web
    body = push_with().replace(b'"ref":', f'"deep": {nested(depth)}, "ref":'.encode(), 1)
    response = signed(client, body)
    assert response.status_code == 400, response.json
    assert "nested deeper than 1024 levels" in response.json["error"]
    assert "Retry-After" not in response.headers
    # the same in a form-encoded delivery (GitHub's "payload=" bodies)
    form = urlencode({"payload": body.decode()}).encode()
    response = signed(client, form, delivery="d2", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and "nested deeper" in response.json["error"]
    assert stored(ctx) == 0


def test_json_nested_1024_levels_is_parsed(web):
    client, ctx = web
    body = push_with().replace(b'"ref":', f'"deep": {nested(1023)}, "ref":'.encode(), 1)
    assert signed(client, body).status_code == 202
    assert stored(ctx) == 1


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud800\\ud800", "x\\udc00y"])
def test_a_lone_surrogate_is_400_invalid_unicode(web_both, escape):
    client, ctx = web_both
    body = push_with().replace(b'"message": "change"', f'"message": "{escape}"'.encode())
    assert escape.encode() in body
    response = signed(client, body)
    assert response.status_code == 400, response.json
    assert "not valid Unicode" in response.json["error"]
    assert stored(ctx) == 0


def test_a_valid_surrogate_pair_is_accepted(web):
    client, _ctx = web
    body = push_with().replace(b'"message": "change"', b'"message": "\\ud83d\\ude00"')
    assert signed(client, body).status_code == 202


@pytest.mark.parametrize("number", ["9" * 5000, "1e999", "-1", "4294967296", '"\u00b2"', "[]"])
def test_numbers_out_of_range_are_400(web_both, make_settings, number):
    client, ctx = web_both
    pr = payloads.pull_request("octo/hello", "https://github.com/octo/hello.git", "b" * 40)
    body = json.dumps(pr).replace('"number": 7', f'"number": {number}').encode()
    headers = signed_headers("github", body, WEBHOOK_SECRET, "pull_request", "n1")
    response = client.post("/api/webhooks/github", data=body, headers=headers)
    assert response.status_code == 400, response.json
    assert stored(ctx) == 0


def call(client, body: bytes, **environ):
    """POST straight to the WSGI app with a hand-made environ: (status, answer)."""
    return call_wsgi(client, environ, body)


class BrokenChunks(io.RawIOBase):
    """What a server's chunked reader does with broken framing: it raises mid-body."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def read(self, size=-1):
        raise self.error


@pytest.mark.parametrize("error", [OSError("Invalid chunk header"), ValueError("bad chunk size")])
def test_a_body_the_server_cannot_read_is_400_before_the_signature(web, error):
    client, ctx = web
    chunked = {"CONTENT_LENGTH": None, "HTTP_TRANSFER_ENCODING": "chunked"}
    status, answer = call(client, b"", **{"wsgi.input": BrokenChunks(error)}, **chunked)
    assert status == 400 and "could not be read" in answer["error"]
    assert stored(ctx) == 0


@pytest.mark.parametrize("length", ["\u00b2", "\u0661\u0662", "-5", "1e3", "0x10"])
def test_a_content_length_that_is_not_ascii_digits_is_400(web, length):
    client, _ctx = web
    status, answer = call(client, push_with(), CONTENT_LENGTH=length)
    assert status == 400 and "not a number" in answer["error"]


def test_a_huge_content_length_is_413(web):
    client, _ctx = web
    status, _answer = call(client, push_with(), CONTENT_LENGTH="9" * 40)
    assert status == 413


@pytest.mark.parametrize("delivery", ["a\x00b", "line\nbreak", "tab\there", "\x7f"])
def test_control_characters_in_the_delivery_id_are_400(web_both, delivery):
    client, ctx = web_both
    headers = signed_headers("github", push_with(), WEBHOOK_SECRET, "push", "x")
    status, answer = call(client, push_with(), HTTP_X_GITHUB_DELIVERY=delivery)
    assert status == 400 and "control characters" in answer["error"]
    assert stored(ctx) == 0
    assert headers  # the same body with a plain id is accepted
    status, _ = call(client, push_with(), HTTP_X_GITHUB_DELIVERY="plain")
    assert status == 202


def test_a_replayed_body_with_a_new_delivery_id_is_a_duplicate(web_both):
    client, ctx = web_both
    body = push_with()
    assert signed(client, body, delivery="original").status_code == 202
    for replay in ("replay-1", "replay-2"):
        response = signed(client, body, delivery=replay)
        assert response.status_code == 200, response.json
        assert response.json["duplicate"] is True and "same signed body" in response.json["note"]
    assert stored(ctx) == 1
    # another body (another commit) is a new delivery
    assert signed(client, push_with(after="c" * 40), delivery="other").status_code == 202
    assert stored(ctx) == 2


def test_a_replay_is_accepted_again_once_the_window_has_passed(web_both):
    client, ctx = web_both
    body = push_with()
    assert signed(client, body, delivery="first").status_code == 202
    assert forget_replay_keys(ctx.db, ctx.settings.replay_window_seconds) == 0  # still in the window
    assert signed(client, body, delivery="again").status_code == 200
    with ctx.db.session() as session:  # an hour and a minute later
        session.execute(update(Delivery).values(received_at=now() - timedelta(minutes=61)))
    assert forget_replay_keys(ctx.db, ctx.settings.replay_window_seconds) == 1
    assert signed(client, body, delivery="later").status_code == 202
    assert stored(ctx) == 2


def test_replay_protection_can_be_switched_off(make_settings):
    settings = make_settings(github_webhook_secret=WEBHOOK_SECRET, replay_window_seconds=0)
    ctx = build_context(settings)
    try:
        client = create_app(ctx).test_client()
        body = push_with()
        assert signed(client, body, delivery="one").status_code == 202
        assert signed(client, body, delivery="two").status_code == 202
    finally:
        ctx.close()


@pytest.mark.postgres
def test_replays_arriving_together_store_one_delivery(make_settings):
    """Concurrent replays share a batch of the group commit: still one row."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.services import postgres_database

    with postgres_database() as url:
        settings = make_settings(github_webhook_secret=WEBHOOK_SECRET, database_url=url)
        ctx = build_context(settings)
        try:
            app = create_app(ctx)
            body = push_with()

            def deliver(i: int) -> int:
                return signed(app.test_client(), body, delivery=f"burst-{i}").status_code

            with ThreadPoolExecutor(16) as pool:
                codes = list(pool.map(deliver, range(48)))
            assert sorted(set(codes)) == [200, 202] and codes.count(202) == 1
            assert stored(ctx) == 1
        finally:
            ctx.close()
