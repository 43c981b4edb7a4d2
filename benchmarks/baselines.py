"""The two designs forgeflow's ingest is compared with, served by the same gunicorn settings.

``bare``: a Flask endpoint that answers 202 and does nothing (the ceiling).
``publish``: the usual design of such services: verify the signature, then publish the whole
payload to Celery (not durable: a broker outage loses it).
"""

from __future__ import annotations

import hashlib
import hmac
import os

import requests
from celery import Celery
from flask import Flask, jsonify, request

SECRET = os.environ.get("BENCH_SECRET", "bench-secret")
BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/8")

bare = Flask("bare")


@bare.post("/api/webhooks/github")
def bare_webhook():  # type: ignore[no-untyped-def]
    request.get_data()
    return jsonify(accepted=True), 202


publish = Flask("publish")
_celery = Celery("usual", broker=BROKER, set_as_current=False)
_celery.conf.update(task_serializer="json", broker_connection_retry_on_startup=True)


@publish.post("/api/webhooks/github")
def publish_webhook():  # type: ignore[no-untyped-def]
    body = request.get_data()
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
        return jsonify(error="bad signature"), 401
    _celery.send_task(
        "usual.handle_webhook",
        args=[request.headers.get("X-GitHub-Event", ""), body.decode()],
        queue="usual",
    )
    return jsonify(accepted=True), 202


# The floor of time to first status: a bare Celery round trip on the same broker. The task
# posts one commit status to the fake forge, as forgeflow's first report does.
floor = Celery("floor", broker=BROKER, set_as_current=False)
floor.conf.update(task_serializer="json", broker_connection_retry_on_startup=True, task_default_queue="floor")


_http = requests.Session()


@floor.task(name="floor.report")
def floor_report(url: str) -> None:
    _http.post(url, json={"state": "pending", "context": "floor", "description": "queued"}, timeout=10)
