"""Starting forgeflow's processes: web, worker and watcher, apart or together (``serve``)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery
from werkzeug.serving import BaseWSGIServer

from service.cli.backend import STOP_GRACE, prepare, run_until_stopped, start_relay, worker_heartbeat
from service.context import Context
from service.watcher import Watcher
from service.web.app import create_app, read_deadlines
from service.web.read_deadlines import ReadDeadlines
from service.web.server import dev_server

log = logging.getLogger(__name__)
__all__ = [  # the worker's and watcher's own parts live in backend (no web tier there)
    "STOP_GRACE",
    "WatcherThread",
    "WebThread",
    "WorkerThread",
    "make_wsgi_app",
    "prepare",
    "run_until_stopped",
    "start_relay",
    "worker_heartbeat",
]


def make_wsgi_app(ctx: Context) -> Any:
    """The Flask app of the web tier (it needs no broker: the relay queues deliveries)."""
    return create_app(ctx)


class WebThread:
    """The web app on a werkzeug server in a thread (``serve`` and tests); ``deadlines`` bound
    how long a request's bytes may take (default: the app's own)."""

    def __init__(self, app: Any, host: str, port: int, deadlines: ReadDeadlines | None = None) -> None:
        if deadlines is None:
            deadlines = read_deadlines(app)
        self.server: BaseWSGIServer = dev_server(app, host, port, deadlines)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, name="forgeflow-web", daemon=True)

    def start(self) -> WebThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _keep_polls_short() -> None:
    """A no-op the worker's timer fires, so its event loop wakes at least this often."""


class WorkerThread:
    """A Celery worker (threads pool) running in a thread of this process."""

    def __init__(self, app: Celery, concurrency: int = 4) -> None:
        self.app = app
        self.controller = app.WorkController(
            pool_cls="threads",
            concurrency=concurrency,
            loglevel="WARNING",
            queues=[app.conf.task_default_queue],
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            hostname=f"forgeflow-serve-{threading.get_ident()}@localhost",
        )
        # The event loop checks for a stop request between polls; a timer keeps polls short
        # (without one an idle amqp loop may sleep 10 s before it notices).
        self.controller.timer.call_repeatedly(0.25, _keep_polls_short)
        self.thread = threading.Thread(target=self._run, name="forgeflow-worker", daemon=True)

    def _run(self) -> None:
        try:
            self.controller.start()
        except Exception:
            log.exception("worker stopped")

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the worker's own thread to shut down (as a signal would): broker connections
        are not thread-safe, so closing them from here could deadlock (seen with amqp)."""
        from celery.worker import state

        state.should_stop = 0  # EX_OK: the consume loop raises WorkerShutdown within ~2 s

    def stop(self) -> None:
        from celery.worker import state

        self.request_stop()
        try:
            self.thread.join(timeout=30)
        finally:
            state.should_stop = None


class WatcherThread:
    def __init__(self, ctx: Context, watch_timeout: int | None = None) -> None:
        self.stop_event = threading.Event()
        self.watcher = Watcher(ctx, watch_timeout=watch_timeout)
        self.thread = threading.Thread(
            target=self.watcher.run, args=(self.stop_event,), name="forgeflow-watcher", daemon=True
        )

    def start(self) -> WatcherThread:
        self.thread.start()
        return self

    def request_stop(self) -> None:
        self.stop_event.set()

    def stop(self) -> None:
        self.request_stop()
        self.thread.join(timeout=self.watcher.watch_timeout + 10)
