"""Liveness of the worker and the watcher, and their metrics, on a small HTTP server.

Each of these processes has a loop that must keep turning: the worker's Celery event loop,
the watcher's list-and-watch loop. The loop calls :meth:`Heartbeat.beat`; ``GET /livez``
answers 200 while every heartbeat of the process is fresh and 503 (saying which is stale) once
one is not, which is what the Kubernetes liveness probes in ``openshift/`` ask. ``GET /metrics``
serves :mod:`service.metrics`. A plain ``http.server`` on its own thread: answering costs a
clock read, and it stays up whatever the process's loop is doing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.registry import Collector

from service.metrics import beat, exposition

log = logging.getLogger(__name__)


class Heartbeat:
    """A loop's sign of life: stale when it has not beaten for ``stale_after`` seconds."""

    def __init__(self, component: str, stale_after: float) -> None:
        self.component = component
        self.stale_after = stale_after
        self.last = time.monotonic()

    def beat(self) -> None:
        self.last = time.monotonic()
        beat(self.component)

    def age(self) -> float:
        return time.monotonic() - self.last

    @property
    def alive(self) -> bool:
        return self.age() <= self.stale_after


def serve_health(port: int, heartbeats: Iterable[Heartbeat], collectors: Iterable[Collector] = ()) -> None:
    """Start the health server on ``port`` (0: none); a port that is taken is logged, not fatal
    (the liveness probe then fails and says so, rather than the process)."""
    if not port:
        return
    try:
        HealthServer(port, heartbeats, collectors).start()
    except OSError as exc:
        log.error("cannot serve /livez and /metrics on port %s: %s", port, exc)


class HealthServer:
    """``/livez`` and ``/metrics`` on ``port`` (0: any free port), on a daemon thread."""

    def __init__(
        self, port: int, heartbeats: Iterable[Heartbeat], collectors: Iterable[Collector] = (), host: str = ""
    ) -> None:
        self.heartbeats = list(heartbeats)
        self.collectors = list(collectors)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds: not worth a line each

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="forgeflow-health", daemon=True)

    def start(self) -> HealthServer:
        self.thread.start()
        log.info("health and metrics on port %s (/livez, /metrics)", self.port)
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path == "/livez":
            stale = {
                h.component: f"no sign of life for {h.age():.0f}s" for h in self.heartbeats if not h.alive
            }
            checks = {h.component: "ok" for h in self.heartbeats if h.alive} | stale
            body = json.dumps({"ok": not stale, "checks": checks}).encode()
            self._send(request, 503 if stale else 200, body, "application/json")
        elif path == "/metrics":
            data, content_type = exposition(self.collectors)
            self._send(request, 200, data, content_type)
        else:
            self._send(request, 404, b'{"error": "not found"}', "application/json")

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
