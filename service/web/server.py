"""The production web process: gunicorn serving the Flask app.

Kept apart from :mod:`service.cli.processes` so the web process imports only what the web tier uses
(no Celery, no executors, no forge clients): it stays small in memory.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.context import Context

# Per web replica: a process per core, and threads enough to keep the processes busy while
# requests wait for their commit (each delivery is stored before its 202); threads that wait
# cost little memory and no CPU.
DEFAULT_WORKERS, DEFAULT_THREADS = 2, 16


def prepare_metrics_dir() -> str:
    """Make the web workers count metrics in shared files (prometheus_client's multiprocess
    mode): a fresh folder, named in ``PROMETHEUS_MULTIPROC_DIR``. Call it before anything
    imports prometheus_client (it reads the variable when it is imported)."""
    path = tempfile.mkdtemp(prefix="forgeflow-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def _worker_exited(_server: Any, worker: Any) -> None:
    from service.metrics import process_exited

    process_exited(worker.pid)


def run_gunicorn(ctx: Context, bind: str, workers: int, threads: int) -> None:
    """The production web process: gunicorn serving the Flask app (its metrics shared by its
    worker processes when :func:`prepare_metrics_dir` ran first)."""
    from gunicorn.app.base import BaseApplication

    from service.web.app import create_app

    wsgi = create_app(ctx)

    class ForgeflowWeb(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread" if threads > 1 else "sync")
            self.cfg.set("accesslog", "-")
            self.cfg.set("timeout", 60)
            # each worker its own listening socket: the kernel spreads connections over them.
            # With one shared socket the first worker awake accepts a burst of keep-alive
            # connections (a router's, a load test's) and the others sit idle. (The price: a
            # connection still queued on a worker's socket when that worker exits is reset;
            # deployments replace pods, draining them first, rather than reload workers.)
            self.cfg.set("reuse_port", True)
            self.cfg.set("child_exit", _worker_exited)
            if "control_socket_disable" in self.cfg.settings:  # one per host path; not needed
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            return wsgi

    ctx.db.dispose()  # each forked worker opens its own connections
    ForgeflowWeb().run()
