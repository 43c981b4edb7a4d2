"""``POST /api/webhooks/<forge>``: verify, parse, store durably, queue, answer 202.

It is the web tier's hot path, so it is served by :class:`WebhookRoute`, a small WSGI layer in
front of the Flask app: Flask's request machinery costs more than a webhook's own work.

The order matters: the signature is checked on the raw body before anything is parsed; the
delivery is committed to the database before the forge hears 202; a repeated delivery id is
acknowledged and never processed twice. The web tier never talks to the broker: the relay
(service/outbox.py) queues stored deliveries, so a broker outage loses nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import orjson

from handlers import handler_for
from handlers.base import Delivery as HttpDelivery
from handlers.base import Ignored, Parsed, Ping, WebhookError, WebhookHandler
from service.context import Context
from service.metrics import DELIVERIES
from service.relay import local_wakeup
from service.store.deliveries import NewDelivery, replay_key
from service.store.delivery_writer import STATEMENT_TIMEOUT, DeliveryWriter
from service.store.models import DeliveryState
from service.store.timeouts import deadline
from service.web.read_deadlines import ReadDeadlines, Ticket

log = logging.getLogger(__name__)
PREFIX = "/api/webhooks/"
Answer = tuple[int, dict[str, Any]]
MAX_ID_CHARS, MAX_EVENT_TYPE_CHARS = 255, 64  # the columns' sizes
EVENT_KIND = "forgeflow.event_kind"  # what receive() parsed, kept in the WSGI environ

# A request waits this long at most for the database (connecting included): a webhook is
# stored, or answered 503, before the forge gives up on it (Gitea waits 5 s).
WEB_DATABASE_BUDGET = STATEMENT_TIMEOUT

# Never stored: they carry the secret itself or credentials.
SECRET_HEADERS = frozenset({"x-gitlab-token", "authorization", "cookie", "proxy-authorization"})


def _kept_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in headers.items()
        if name not in SECRET_HEADERS and (name.startswith("x-") or name == "content-type")
    }


def answer(status: int, **body: Any) -> Answer:
    return status, body


class BodyRefused(Exception):
    """The request's body cannot be read as one delivery (too large, cut short)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class WebhookRoute:
    """WSGI: ``/api/webhooks/<forge>`` is answered here; every other path goes to ``app``.

    It reads the WSGI environ itself (no request or response objects): per delivery, those
    cost more than verifying and parsing it.
    """

    def __init__(
        self, ctx: Context, app: Callable[..., Iterable[bytes]], deadlines: ReadDeadlines | None = None
    ) -> None:
        self.ctx = ctx
        self.app = app
        self.writer = ctx.delivery_writer  # concurrent deliveries share a commit
        self.deadlines = deadlines

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        forge = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
        if not forge or "/" in forge:
            with deadline(WEB_DATABASE_BUDGET):  # a page never waits longer for the database
                return self.app(environ, start_response)
        headers = [("Content-Type", "application/json")]
        if environ.get("REQUEST_METHOD") != "POST":
            status, body = answer(405, error="webhooks are delivered with POST")
            headers.append(("Allow", "POST"))
        else:
            try:
                status, body = receive(self.ctx, self.writer, forge, environ, self.deadlines)
            except Exception:  # the database is down, say: the forge should deliver again
                log.exception("could not take a %s delivery", forge)
                status, body = answer(503, error="the delivery could not be stored; deliver it again")
                headers.append(("Retry-After", "30"))
        if status in (400, 408, 411, 413):  # the body may be unread or cut: no next request
            headers.append(("Connection", "close"))
        count_delivery(forge, environ, status, body)
        data = _json(body)
        headers.append(("Content-Length", str(len(data))))
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [data]


OUTCOMES = {200: "ping", 202: "accepted", 401: "unauthorized", 503: "error"}


def count_delivery(forge: str, environ: dict[str, Any], status: int, body: dict[str, Any]) -> None:
    """One count in ``forgeflow_deliveries`` (labels bounded: known forges and event kinds)."""
    outcome = OUTCOMES.get(status, "refused")
    if "duplicate" in body:
        outcome = "duplicate"
    elif "ignored" in body:
        outcome = "ignored"
    known = handler_for(forge) is not None
    DELIVERIES.labels(forge if known else "unknown", environ.get(EVENT_KIND, ""), outcome).inc()


def _json(body: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(body) + b"\n"
    except TypeError:  # text orjson refuses (a lone surrogate echoed from a header, say)
        return json.dumps(body, ensure_ascii=True).encode() + b"\n"


def request_headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request's headers from a WSGI environ, names in lower case."""
    headers = {
        key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key[:5] == "HTTP_"
    }
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key):
            headers[name] = environ[key]
    return headers


def read_body(environ: dict[str, Any], limit: int, deadlines: ReadDeadlines | None = None) -> bytes:
    """The whole request body, refused (:class:`BodyRefused`) past ``limit`` bytes (413), when
    it ends early or its framing is broken (400), when it has no length (411) or when it does
    not arrive in time (408: ``deadlines``, see :mod:`service.web.read_deadlines`)."""
    ticket = deadlines.current() if deadlines is not None else None
    try:
        return _read_body(environ, limit, deadlines, ticket)
    except BodyRefused as refused:
        if ticket is not None and ticket.expired:
            raise BodyRefused(408, "the body did not arrive in time") from refused
        raise
    except Exception as exc:  # the server's reader: broken chunked framing, a reset, a timeout
        if ticket is not None and ticket.expired:
            raise BodyRefused(408, "the body did not arrive in time") from exc
        raise BodyRefused(400, f"the body could not be read: {exc}"[:300]) from exc
    finally:
        if deadlines is not None:
            deadlines.disarm(ticket)


def _read_body(
    environ: dict[str, Any], limit: int, deadlines: ReadDeadlines | None, ticket: Ticket | None
) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if not length:
        if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            raise BodyRefused(411, "a delivery needs a Content-Length header (or a chunked body)")
        return _read_chunked(stream, limit, deadlines, ticket)
    length = length.strip()
    if not (length.isascii() and length.isdigit()):  # "²".isdigit() is true too
        raise BodyRefused(400, f"Content-Length {length[:40]!r} is not a number of bytes")
    if len(length) > 12 or int(length) > limit:
        raise BodyRefused(413, f"body is larger than {limit} bytes")
    expected = int(length)
    if deadlines is not None and ticket is not None:
        deadlines.extend(ticket, expected)
    chunks, got = [], 0
    while got < expected:
        chunk = stream.read(expected - got)
        if not chunk:
            raise BodyRefused(400, f"body ended after {got} of {expected} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


CHUNKED_READ = 64 * 1024


def _read_chunked(stream: Any, limit: int, deadlines: ReadDeadlines | None, ticket: Ticket | None) -> bytes:
    """A chunked body (the server decodes the framing and ends the stream after the last
    chunk), read in pieces: each piece extends the deadline by what it brought."""
    chunks: list[bytes] = []
    got = 0
    while got <= limit:
        chunk = stream.read(min(CHUNKED_READ, limit + 1 - got))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        got += len(chunk)
        if deadlines is not None and ticket is not None:
            deadlines.extend(ticket, len(chunk))
    raise BodyRefused(413, f"body is larger than {limit} bytes")


def _verified(handler: WebhookHandler, delivery: HttpDelivery, secrets: list[tuple[str, str]]) -> list[str]:
    """The instances whose secret verifies the delivery (a handler that fails verifies none)."""
    verified = []
    for name, secret in secrets:
        try:
            if handler.verify(delivery, secret):
                verified.append(name)
        except Exception:
            log.exception("verifying a %s delivery failed", handler.name)
    return verified


def receive(
    ctx: Context,
    writer: DeliveryWriter,
    forge: str,
    environ: dict[str, Any],
    deadlines: ReadDeadlines | None = None,
) -> Answer:
    """Handle one delivery: (HTTP status, JSON body). Anything wrong with what the forge sent
    is a 4xx saying why (the forge does not retry those); only the service's own trouble (the
    database) raises, for a 503."""
    handler = handler_for(forge)
    if handler is None:
        return answer(404, error=f"unknown forge {forge[:100]!r}")
    try:
        body = read_body(environ, ctx.settings.max_body_bytes, deadlines)
    except BodyRefused as refused:
        return answer(refused.status, error=refused.reason)
    headers = request_headers(environ)
    delivery = HttpDelivery(body=body, headers=headers)
    secrets = ctx.forges.webhook_secrets(forge)
    if not secrets:
        return answer(401, error=f"no webhook secret is configured for {forge}; refusing unsigned deliveries")
    verified = _verified(handler, delivery, secrets)
    if not verified:
        return answer(401, error="signature missing or wrong")
    try:
        result = handler.parse(delivery)
        delivery_id = handler.delivery_id(delivery) if isinstance(result, Parsed) else ""
    except WebhookError as exc:
        return answer(exc.status, error=exc.reason)
    except MemoryError:
        raise
    except Exception as exc:  # a payload the parser did not foresee: the payload's fault here
        log.exception("a signed %s delivery could not be parsed", forge)
        return answer(400, error=f"the payload could not be read: {type(exc).__name__}")
    if isinstance(result, Ping):
        return answer(200, pong=result.message)
    if isinstance(result, Ignored):
        return answer(202, ignored=result.reason)
    assert isinstance(result, Parsed)
    environ[EVENT_KIND] = result.event.kind.value  # for the deliveries metric
    if len(delivery_id) > MAX_ID_CHARS:
        return answer(400, error=f"the delivery id is longer than {MAX_ID_CHARS} characters")
    if not delivery_id.isprintable():
        return answer(400, error="the delivery id has control characters")
    if len(result.event_type) > MAX_EVENT_TYPE_CHARS:
        return answer(400, error=f"the event type is longer than {MAX_EVENT_TYPE_CHARS} characters")
    if not result.event_type.isprintable():
        return answer(400, error="the event type has control characters")
    instance = ctx.forges.choose_instance(forge, verified, result.event.instance)
    try:
        with deadline(WEB_DATABASE_BUDGET):  # stored in time, or 503 before the forge gives up
            pk = writer.store(
                NewDelivery(
                    forge=forge,
                    instance=instance,
                    delivery_id=delivery_id,
                    event_type=result.event_type,
                    event_json=result.event.to_json(),
                    body=body,
                    headers_json=orjson.dumps(_kept_headers(headers)).decode(),
                    state=DeliveryState.RECEIVED,
                    replay_key=replay_key(body) if ctx.settings.replay_window_seconds > 0 else None,
                ),
            )
    except Exception as exc:
        if not writer.refuses_data(exc):
            raise  # the database's own trouble: 503
        log.warning("a %s delivery was refused by the database: %s", forge, exc)
        return answer(400, error=f"the delivery could not be stored: {str(exc).strip()[:200]}")
    if pk is None:  # a forge's "Redeliver" sends the same delivery id: it ran once already
        again = (
            f"to run jobs again, comment '{ctx.settings.comment_prefix} retest' on the pull request"
            " or start a manual run (forgeflow trigger)"
        )
        window = _duration(ctx.settings.replay_window_seconds)
        return answer(
            200,
            duplicate=True,
            delivery=delivery_id,
            note=f"already received (this delivery id, or the same signed body within {window}); {again}",
        )
    local_wakeup.set()  # a relay in this process queues it at once; others hear NOTIFY
    return answer(202, accepted=delivery_id, event=result.event.describe())


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"
