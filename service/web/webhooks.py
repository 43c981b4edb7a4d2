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
from typing import Any

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from handlers import handler_for
from handlers.base import Delivery as HttpDelivery
from handlers.base import Ignored, Parsed, Ping, WebhookError
from service.context import Context
from service.outbox import local_wakeup
from service.store.deliveries import NewDelivery, insert_delivery
from service.store.models import DeliveryState

log = logging.getLogger(__name__)
PREFIX = "/api/webhooks/"
Answer = tuple[int, dict[str, Any]]

# Never stored: they carry the secret itself or credentials.
SECRET_HEADERS = frozenset({"x-gitlab-token", "authorization", "cookie", "proxy-authorization"})


def _kept_headers(headers: dict[str, str]) -> dict[str, str]:
    kept = {}
    for key, value in headers.items():
        name = key.lower()
        if name not in SECRET_HEADERS and (name.startswith("x-") or name == "content-type"):
            kept[name] = value
    return kept


def answer(status: int, **body: Any) -> Answer:
    return status, body


class WebhookRoute:
    """WSGI: ``/api/webhooks/<forge>`` is answered here; every other path goes to ``app``."""

    def __init__(self, ctx: Context, app: Callable[..., Iterable[bytes]]) -> None:
        self.ctx = ctx
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        forge = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
        if not forge or "/" in forge:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "POST":
            status, body = answer(405, error="webhooks are delivered with POST")
            headers = {"Allow": "POST"}
        else:
            request = Request(environ)
            request.max_content_length = self.ctx.settings.max_body_bytes
            headers = {}
            try:
                status, body = receive(self.ctx, forge, request)
            except Exception:  # the database is down, say: the forge should deliver again
                log.exception("could not take a %s delivery", forge)
                status, body = answer(503, error="the delivery could not be stored; deliver it again")
                headers = {"Retry-After": "30"}
        response = Response(json.dumps(body) + "\n", status, headers, mimetype="application/json")
        return response(environ, start_response)


def receive(ctx: Context, forge: str, request: Request) -> Answer:
    """Handle one delivery: (HTTP status, JSON body)."""
    handler = handler_for(forge)
    if handler is None:
        return answer(404, error=f"unknown forge {forge!r}")
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return answer(413, error=f"body is larger than {ctx.settings.max_body_bytes} bytes")
    headers = {k: v for k, v in request.headers.items()}
    delivery = HttpDelivery(body=body, headers=headers)
    secrets = ctx.forges.webhook_secrets(forge)
    if not secrets:
        return answer(401, error=f"no webhook secret is configured for {forge}; refusing unsigned deliveries")
    verified = [name for name, secret in secrets if handler.verify(delivery, secret)]
    if not verified:
        return answer(401, error="signature missing or wrong")
    try:
        result = handler.parse(delivery)
    except WebhookError as exc:
        return answer(exc.status, error=exc.reason)
    if isinstance(result, Ping):
        return answer(200, pong=result.message)
    if isinstance(result, Ignored):
        return answer(202, ignored=result.reason)
    assert isinstance(result, Parsed)
    delivery_id = handler.delivery_id(delivery)
    instance = ctx.forges.choose_instance(forge, verified, result.event.instance)
    pk = insert_delivery(
        ctx.db,
        NewDelivery(
            forge=forge,
            instance=instance,
            delivery_id=delivery_id,
            event_type=result.event_type,
            event_json=result.event.to_json(),
            body=body,
            headers_json=json.dumps(_kept_headers(headers)),
            state=DeliveryState.RECEIVED,
        ),
    )
    if pk is None:
        return answer(200, duplicate=True, delivery=delivery_id)
    local_wakeup.set()  # a relay in this process queues it at once; others hear NOTIFY
    return answer(202, accepted=delivery_id, event=result.event.describe())
