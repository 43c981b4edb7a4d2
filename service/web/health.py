"""The web tier's health and metrics: ``/livez``, ``/readyz``, ``/healthz``, ``/metrics``.

``/livez`` answers as long as the process does: it asks nothing else, so a database blip never
makes Kubernetes restart the web pods. ``/readyz`` says whether this replica can do its work:
the database answers a query and the broker accepts a connection (the relay in the worker queues
what the web tier stores, so a broker outage delays work without losing it: readiness tells
operators). ``/healthz`` is the older name of the database check, kept for existing probes.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify

from service.context import Context
from service.metrics import DatabaseCollector, exposition, multiprocess

bp = Blueprint("health", __name__)
BROKER_PORTS = {"redis": 6379, "rediss": 6380, "amqp": 5672, "amqps": 5671, "pyamqp": 5672}
CHECK_SECONDS = 2.0


def _ctx() -> Context:
    ctx: Context = current_app.extensions["forgeflow"]
    return ctx


def broker_reachable(url: str, timeout: float = CHECK_SECONDS) -> str:
    """ "ok", or why the broker cannot be reached: a TCP connection to a Redis or RabbitMQ
    server (the web tier does not load a broker client); the embedded broker is the database."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme not in BROKER_PORTS:
        return "ok"  # sqla+sqlite: the embedded broker lives in a file next to the database
    try:
        port = parts.port or BROKER_PORTS[scheme]
        with socket.create_connection((parts.hostname or "localhost", port), timeout=timeout):
            return "ok"
    except (OSError, ValueError) as exc:
        return f"unreachable: {type(exc).__name__}"


class _Cached:
    """An answer kept a few seconds: probes of several kinds ask often."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.value: Any = None
        self.at = 0.0
        self.lock = threading.Lock()

    def get(self, compute: Any) -> Any:
        with self.lock:
            if self.value is not None and time.monotonic() - self.at < self.seconds:
                return self.value
        value = compute()
        with self.lock:
            self.value, self.at = value, time.monotonic()
        return value


@bp.get("/livez")
def livez() -> Any:
    return jsonify(ok=True, checks={"process": "ok"})


@bp.get("/readyz")
def readyz() -> Any:
    ctx = _ctx()
    checks = {
        "database": "ok" if ctx.db.ping() else "unreachable",
        "broker": _broker_check().get(lambda: broker_reachable(ctx.settings.broker)),
    }
    ok = all(value == "ok" for value in checks.values())
    return jsonify(ok=ok, checks=checks), 200 if ok else 503


@bp.get("/healthz")
def healthz() -> Any:
    ok = _ctx().db.ping()
    return jsonify(ok=ok), 200 if ok else 503


@bp.get("/metrics")
def metrics() -> Response:
    # one process (forgeflow serve, tests): it also shows what the database knows; under
    # gunicorn the watcher does (every web worker would repeat the same queries)
    extra = [] if multiprocess() else [_database_collector()]
    body, content_type = exposition(extra)
    return Response(body, content_type=content_type)


def _broker_check() -> _Cached:
    """This app's broker answer, kept 5 s."""
    cached: _Cached | None = current_app.extensions.get("forgeflow.broker_check")
    if cached is None:
        cached = current_app.extensions["forgeflow.broker_check"] = _Cached(5.0)
    return cached


def _database_collector() -> DatabaseCollector:
    app = current_app
    collector: DatabaseCollector | None = app.extensions.get("forgeflow.db_collector")
    if collector is None:
        collector = app.extensions["forgeflow.db_collector"] = DatabaseCollector(_ctx().db)
    return collector
