"""The webhook endpoint: verify before parsing, store before 202, dedupe, never a 500."""

from __future__ import annotations

import io
import json
from contextlib import ExitStack, closing
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import func, select

from service.cli.replay import signed_headers
from service.context import build_context
from service.relay import DeliveryRelay
from service.store.deliveries import decompress_body
from service.store.models import Delivery, DeliveryState
from service.web.app import create_app
from tests.conftest import WEBHOOK_SECRET
from tests.support import payloads
from tests.support.services import postgres_database


class RecordingQueue:
    def __init__(self) -> None:
        self.queued: list[int] = []
        self.down = False

    def __call__(self, pk: int) -> None:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.queued.append(pk)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def web(request, make_settings):
    """The web app on SQLite (one statement per delivery) and on PostgreSQL (group commit)."""
    with ExitStack() as stack:
        database = {}
        if request.param == "postgres":
            database["database_url"] = stack.enter_context(postgres_database())
        settings = make_settings(github_webhook_secret=WEBHOOK_SECRET, max_body_bytes=64 * 1024, **database)
        ctx = build_context(settings)
        stack.callback(ctx.close)
        yield create_app(ctx).test_client(), ctx, RecordingQueue()


def relay(ctx, queue) -> int:
    return DeliveryRelay(ctx.db, queue).relay_once()


def post(client, payload, event="push", secret=WEBHOOK_SECRET, delivery="d1", **extra_headers):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = signed_headers("github", body, secret, event, delivery)
    headers.update(extra_headers)
    return client.post("/api/webhooks/github", data=body, headers=headers)


def deliveries(ctx) -> int:
    with ctx.db.session() as session:
        return session.scalar(select(func.count()).select_from(Delivery))


PUSH = payloads.push("octo/hello", "https://github.com/octo/hello.git", "a" * 40)


def test_push_is_stored_then_queued_by_the_relay(web):
    client, ctx, queue = web
    response = post(client, PUSH)
    assert response.status_code == 202
    assert response.json["accepted"] == "d1"
    assert deliveries(ctx) == 1 and queue.queued == []
    assert relay(ctx, queue) == 1 and len(queue.queued) == 1
    assert relay(ctx, queue) == 0, "a delivery is queued once"


@pytest.mark.parametrize("secret", ["wrong", ""])
def test_wrong_or_missing_signature_is_401_and_stores_nothing(web, secret):
    client, ctx, queue = web
    body = json.dumps(PUSH).encode()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "x"}
    if secret:
        headers = signed_headers("github", body, secret, "push", "x")
    response = client.post("/api/webhooks/github", data=body, headers=headers)
    assert response.status_code == 401
    assert deliveries(ctx) == 0 and queue.queued == []


def test_signature_is_checked_before_parsing(web):
    client, _, _ = web
    response = post(client, b"not json at all", secret="wrong")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"[1, 2]", "not an object"), (b"{nope", "not valid JSON"), (b"\xff\xfe", "not UTF-8")],
)
def test_malformed_body_is_400_with_the_reason(web, body, reason):
    client, ctx, _ = web
    response = post(client, body)
    assert response.status_code == 400
    assert reason in response.json["error"]
    assert deliveries(ctx) == 0


def test_missing_required_field_is_400(web):
    client, _, _ = web
    broken = dict(PUSH)
    del broken["after"]
    response = post(client, broken)
    assert response.status_code == 400 and "after" in response.json["error"]


def test_ping_and_ignored_events(web):
    client, ctx, queue = web
    assert post(client, {"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping").status_code == 200
    response = post(client, {"action": "created"}, event="star")
    assert response.status_code == 202 and "starts nothing" in response.json["ignored"]
    deleted = dict(PUSH, deleted=True, after="0" * 40)
    assert "deleted" in post(client, deleted).json["ignored"]
    assert deliveries(ctx) == 0 and queue.queued == []


def test_repeated_delivery_is_acknowledged_once(web):
    client, ctx, queue = web
    assert post(client, PUSH, delivery="same").status_code == 202
    again = post(client, PUSH, delivery="same")
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert "comment '/forgeflow retest'" in again.json["note"]
    assert deliveries(ctx) == 1 and relay(ctx, queue) == 1


def test_body_over_the_limit_is_413(web):
    client, ctx, _ = web
    big = dict(PUSH, padding="x" * (70 * 1024))
    response = post(client, big)
    assert response.status_code == 413
    assert deliveries(ctx) == 0


def test_form_encoded_payloads_are_accepted(web):
    from urllib.parse import urlencode

    client, _, _ = web
    body = urlencode({"payload": json.dumps(PUSH)}).encode()
    headers = signed_headers("github", body, WEBHOOK_SECRET, "push", "form-1")
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    response = client.post("/api/webhooks/github", data=body, headers=headers)
    assert response.status_code == 202, response.json


def test_broker_down_keeps_the_delivery_until_it_returns(web):
    client, ctx, queue = web
    queue.down = True
    assert post(client, PUSH, delivery="while-down").status_code == 202
    assert relay(ctx, queue) == 0
    with ctx.db.session() as session:
        assert session.scalars(select(Delivery.state)).one() == DeliveryState.RECEIVED
    queue.down = False
    assert relay(ctx, queue) == 1
    assert len(queue.queued) == 1
    with ctx.db.session() as session:
        assert session.scalars(select(Delivery.state)).one() == DeliveryState.QUEUED


def test_the_stored_body_is_the_delivered_body(web):
    client, ctx, _ = web
    body = json.dumps(PUSH).encode()
    post(client, body, delivery="b1")
    with ctx.db.session() as session:
        stored = session.scalars(select(Delivery.body)).one()
    assert decompress_body(stored) == body


def test_unknown_forge_and_unconfigured_secret(web, make_settings, tmp_path: Path):
    client, _, _ = web
    assert client.post("/api/webhooks/bitbucket", data=b"{}").status_code == 404
    response = client.post("/api/webhooks/gitlab", data=b"{}", headers={"X-Gitlab-Event": "Push Hook"})
    assert response.status_code == 401 and "no webhook secret" in response.json["error"]


@pytest.mark.postgres
def test_a_database_outage_is_503_so_the_forge_delivers_again(make_settings):
    with postgres_database() as url:
        settings = make_settings(github_webhook_secret=WEBHOOK_SECRET, database_url=url)
        ctx = build_context(settings)
        client = create_app(ctx).test_client()
        name = url.rsplit("/", 1)[-1]
        with closing(psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test")) as admin:
            admin.autocommit = True
            with admin.cursor() as cursor:  # the database stops taking connections, and drops its own
                cursor.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
                )
            response = post(client, PUSH)
            assert response.status_code == 503 and "deliver it again" in response.json["error"]
            assert response.headers["Retry-After"] == "30"
            with admin.cursor() as cursor:
                cursor.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert deliveries(ctx) == 0
        ctx.close()


def test_other_methods_and_paths_under_the_webhook_root(web):
    client, ctx, _ = web
    got = client.get("/api/webhooks/github")
    assert got.status_code == 405 and got.headers["Allow"] == "POST" and "POST" in got.json["error"]
    assert client.post("/api/webhooks/github/extra", data=b"{}").status_code == 404
    assert client.post("/api/webhooks/", data=b"{}").status_code == 404
    assert client.get("/healthz").status_code == 200  # everything else is still the Flask app
    assert deliveries(ctx) == 0


def test_secret_headers_are_not_stored(web):
    client, ctx, _ = web
    post(client, PUSH, delivery="h1", Authorization="Bearer x")
    with ctx.db.session() as session:
        stored = json.loads(session.scalars(select(Delivery.headers_json)).one())
    assert "authorization" not in stored and stored["x-github-event"] == "push"


def call_wsgi(client, environ_overrides: dict, body: bytes, delivery: str = "w1"):
    """POST straight to the WSGI app with a hand-made environ (what a server may hand over)."""
    headers = signed_headers("github", body, WEBHOOK_SECRET, "push", delivery)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/webhooks/github",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
    }
    for name, value in headers.items():
        if name.lower() != "content-type":
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    environ.update(environ_overrides)
    environ = {k: v for k, v in environ.items() if v is not None}
    answered = {}

    def start_response(status, headers, exc_info=None):
        answered["status"], answered["headers"] = int(status.split()[0]), dict(headers)

    data = b"".join(client.application(environ, start_response))
    assert answered["headers"]["Content-Length"] == str(len(data))
    return answered["status"], json.loads(data)


CHUNKED = {"CONTENT_LENGTH": None, "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}


def test_a_chunked_body_is_read_to_its_end(web):
    client, ctx, _ = web
    body = json.dumps(PUSH).encode()
    status, answer = call_wsgi(client, CHUNKED, body)
    assert status == 202, answer
    assert deliveries(ctx) == 1


def test_a_chunked_body_over_the_limit_is_413(web):
    client, ctx, _ = web
    body = b" " * (64 * 1024 + 1)
    status, answer = call_wsgi(client, CHUNKED, body)
    assert status == 413 and "larger than" in answer["error"]
    assert deliveries(ctx) == 0


def test_an_empty_body_is_400_and_a_body_without_length_411(web):
    client, ctx, _ = web
    status, answer = call_wsgi(client, {"CONTENT_LENGTH": "0"}, b"")
    assert status == 400 and "empty" in answer["error"]
    status, answer = call_wsgi(client, {"CONTENT_LENGTH": None}, json.dumps(PUSH).encode())
    assert status == 411 and "Content-Length" in answer["error"]
    assert deliveries(ctx) == 0


def test_a_body_cut_short_or_a_bad_length_is_400(web):
    client, ctx, _ = web
    body = json.dumps(PUSH).encode()
    status, answer = call_wsgi(client, {"CONTENT_LENGTH": str(len(body) + 10)}, body)
    assert status == 400 and "ended after" in answer["error"]
    status, answer = call_wsgi(client, {"CONTENT_LENGTH": "12x"}, body)
    assert status == 400 and "not a number" in answer["error"]
    assert deliveries(ctx) == 0


def test_an_overlong_delivery_id_is_400_not_a_database_error(web):
    client, ctx, _ = web
    response = post(client, PUSH, delivery="d" * 256)
    assert response.status_code == 400 and "longer than 255" in response.json["error"]
    assert post(client, PUSH, delivery="d" * 255).status_code == 202
    assert deliveries(ctx) == 1
