"""Starting forgeflow's processes: web, worker and watcher, apart or together (``serve``)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery
from werkzeug.serving import BaseWSGIServer, make_server

from service.app import create_app
from service.context import Context
from service.outbox import DeliveryRelay, RelayThread
from service.tasks import delivery_enqueuer, make_celery
from service.watcher import Watcher

log = logging.getLogger(__name__)


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def prepare(ctx: Context) -> Celery:
    """The Celery app for these settings; the context's broker seam now enqueues through it."""
    app = make_celery(ctx)
    ctx.enqueue = delivery_enqueuer(app)
    return app


def make_wsgi_app(ctx: Context) -> Any:
    """The Flask app of the web tier (it needs no broker: the relay queues deliveries)."""
    return create_app(ctx)


def start_relay(ctx: Context, poll_seconds: float = 1.0) -> RelayThread:
    """The relay that queues stored deliveries through ``ctx.enqueue`` (set by prepare)."""
    assert ctx.enqueue is not None, "prepare(ctx) first"
    return RelayThread(DeliveryRelay(ctx.db, ctx.enqueue, poll_seconds)).start()


class WebThread:
    """The web app on a werkzeug server in a thread (``serve`` and tests)."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, name="forgeflow-web", daemon=True)

    def start(self) -> WebThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


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
        self.thread = threading.Thread(target=self._run, name="forgeflow-worker", daemon=True)

    def _run(self) -> None:
        try:
            self.controller.start()
        except Exception:
            log.exception("worker stopped")

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Ask the worker's own thread to shut down (as a signal would): broker connections
        are not thread-safe, so closing them from here could deadlock (seen with amqp)."""
        from celery.worker import state

        state.should_stop = 0  # EX_OK: the consume loop raises WorkerShutdown within ~2 s
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

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=self.watcher.watch_timeout + 10)


def run_gunicorn(ctx: Context, bind: str, workers: int, threads: int) -> None:
    """The production web process: gunicorn serving the Flask app."""
    from gunicorn.app.base import BaseApplication

    wsgi = make_wsgi_app(ctx)

    class ForgeflowWeb(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread" if threads > 1 else "sync")
            self.cfg.set("accesslog", "-")
            self.cfg.set("timeout", 60)
            if "control_socket_disable" in self.cfg.settings:  # one per host path; not needed
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            return wsgi

    ctx.db.dispose()  # each forked worker opens its own connections
    ForgeflowWeb().run()
