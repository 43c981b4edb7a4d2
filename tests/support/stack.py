"""forgeflow's web, worker and watcher running in this process over real HTTP and a real broker."""

from __future__ import annotations

import json
import socket
import time
import uuid
from typing import Any

import requests

from service.cli.processes import WatcherThread, WebThread, WorkerThread, make_wsgi_app, prepare, start_relay
from service.cli.replay import signed_headers
from service.context import Context, build_context
from service.executors.factory import build_executor
from service.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    def __init__(self, settings: Settings, *, worker: bool = True, watcher: bool = True) -> None:
        port = free_port()
        self.settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}", "port": port})
        self.ctx: Context = build_context(self.settings, executor_factory=build_executor)
        self.celery = prepare(self.ctx)
        self.web = WebThread(make_wsgi_app(self.ctx), "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        self.worker = WorkerThread(self.celery, concurrency=2).start() if worker else None
        self.relay = start_relay(self.ctx, poll_seconds=0.5) if worker else None
        self.watcher = WatcherThread(self.ctx, watch_timeout=1).start() if watcher else None
        self.http = requests.Session()

    def post(
        self,
        forge: str,
        payload: dict[str, Any] | bytes,
        event: str,
        *,
        secret: str,
        delivery: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sent = signed_headers(forge, body, secret, event, delivery or str(uuid.uuid4()))
        sent.update(headers or {})
        return self.http.post(f"{self.url}/api/webhooks/{forge}", data=body, headers=sent, timeout=30)

    def run_json(self, run_id: int) -> dict[str, Any]:
        response = self.http.get(f"{self.url}/api/runs/{run_id}", timeout=10)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def wait_run_final(self, run_id: int, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.run_json(run_id)
            if data["phase"] in ("succeeded", "failed", "error", "config-error"):
                return data
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} not final after {timeout}s: {self.run_json(run_id)}")

    def close(self) -> None:
        self.http.close()
        for part in (self.watcher, self.worker):  # both wind down at once
            if part:
                part.request_stop()
        if self.watcher:
            self.watcher.stop()
        if self.relay:
            self.relay.stop()
        if self.worker:
            self.worker.stop()
        self.web.stop()
        self.ctx.close()
