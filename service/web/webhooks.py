"""``POST /api/webhooks/<forge>``: verify, parse, store durably, queue, answer 202.

The order matters: the signature is checked on the raw body before anything is parsed; the
delivery is in the database before the forge hears 202; a repeated delivery id is acknowledged
and never processed twice; if the broker is down the delivery waits in the database and the
sweep queues it later.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge

from handlers import handler_for
from handlers.base import Delivery as HttpDelivery
from handlers.base import Ignored, Parsed, Ping, WebhookError
from service.context import Context
from service.store.models import Delivery, DeliveryState

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

# Never stored: they carry the secret itself or credentials.
SECRET_HEADERS = frozenset({"x-gitlab-token", "authorization", "cookie", "proxy-authorization"})


def _ctx() -> Context:
    ctx: Context = current_app.extensions["forgeflow"]
    return ctx


def _kept_headers(headers: dict[str, str]) -> dict[str, str]:
    kept = {}
    for key, value in headers.items():
        name = key.lower()
        if name not in SECRET_HEADERS and (name.startswith("x-") or name == "content-type"):
            kept[name] = value
    return kept


def answer(status: int, **body: Any) -> tuple[Any, int]:
    return jsonify(body), status


@bp.post("/api/webhooks/<forge>")
def receive(forge: str) -> tuple[Any, int]:
    ctx = _ctx()
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
    row = Delivery(
        forge=forge,
        instance=instance,
        delivery_id=delivery_id,
        event_type=result.event_type,
        event_json=result.event.to_json(),
        body=body,
        headers_json=json.dumps(_kept_headers(headers)),
        state=DeliveryState.QUEUED,
    )
    try:
        with ctx.db.session() as session:
            session.add(row)
            session.flush()
            pk = row.id
    except IntegrityError:
        return answer(200, duplicate=True, delivery=delivery_id)
    enqueue = current_app.extensions["forgeflow.enqueue"]
    try:
        enqueue(pk)
    except Exception as exc:  # the broker is down: the sweep queues it when it is back
        log.warning("delivery %s stored but not queued (%s); the sweep will queue it", pk, exc)
        with ctx.db.session() as session:
            stored = session.get(Delivery, pk)
            if stored is not None and stored.state == DeliveryState.QUEUED:
                stored.state = DeliveryState.RECEIVED
    return answer(202, accepted=delivery_id, event=result.event.describe())
