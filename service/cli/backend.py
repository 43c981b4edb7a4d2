"""The worker's and watcher's processes without the web tier: the Celery app they send through
(:func:`prepare`), the relay, the worker's heartbeat, stopping on SIGTERM, and the watcher built
from the settings (:func:`build_watcher`).

Kept apart from :mod:`service.cli.processes` (which also starts the web tier, for ``serve`` and
tests) so a worker or watcher process imports no Flask, and the watcher none of the job
language, the compiler or hera's models (``tests/test_process_imports.py`` holds it to that).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from service.context import Context
from service.health import Heartbeat, serve_health
from service.relay import DeliveryRelay, RelayThread
from service.settings import Settings
from service.tasks import delivery_enqueuer, make_celery, queue_depth, run_starter

if TYPE_CHECKING:
    from celery import Celery

    from service.watcher import Watcher

log = logging.getLogger(__name__)


def prepare(ctx: Context) -> Celery:
    """The Celery app for these settings; the context's broker seam now enqueues through it."""
    app = make_celery(ctx)
    ctx.enqueue = delivery_enqueuer(app)
    ctx.queue_depth = queue_depth(app)
    return app


def start_relay(ctx: Context, poll_seconds: float = 1.0) -> RelayThread:
    """The relay that queues stored deliveries through ``ctx.enqueue`` (set by prepare)."""
    assert ctx.enqueue is not None, "prepare(ctx) first"
    return RelayThread(DeliveryRelay(ctx.db, ctx.enqueue, poll_seconds)).start()


STOP_GRACE = 3.0  # seconds a stopping process gives the work in hand to finish


def run_until_stopped(target: Callable[[threading.Event], None], stop: threading.Event, name: str) -> None:
    """Run ``target(stop)`` in a thread until ``stop`` is set (SIGTERM) or Ctrl-C, then give it
    :data:`STOP_GRACE` seconds and return (the process exits; Kubernetes waits 30 s, forgeflow
    takes at most a few). Whatever was cut short is safe: the watcher's work is replayed by the
    next one (states only move forward, reports are leased and checked against the forge)."""
    thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
    thread.start()
    log.info("%s started (SIGTERM stops it within %.0f s)", name, STOP_GRACE + 1)
    try:
        while thread.is_alive() and not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        stop.set()
    thread.join(STOP_GRACE)
    if thread.is_alive():
        log.info("%s: stopping now; what it was doing is picked up again on the next start", name)


def build_watcher(settings: Settings) -> Watcher:
    """The watcher of ``forgeflow watcher``: its context (the executor's client and each
    forge's built now), and the Celery app it hands waiting runs to workers through."""
    from service import memory
    from service.context import build_context
    from service.executors.factory import build_executor
    from service.watcher import Watcher

    memory.limit_arenas()  # before its threads start: each would get an arena of its own
    ctx = build_context(settings, executor_factory=build_executor)
    ctx.warm_up()  # not hera's models: the watcher never plans or compiles (workers do)
    celery = prepare(ctx)  # the sweep queues deliveries stored while the broker was down
    ctx.hand_off_run = run_starter(celery)  # workers submit waiting runs: the watcher may not
    return Watcher(ctx)


def worker_heartbeat(app: Celery, settings: Any) -> Heartbeat:
    """The worker's sign of life: its Celery event loop beats every few seconds (a timer of the
    loop itself, so a stuck loop stops beating); ``/livez`` and ``/metrics`` on ``health_port``."""
    from celery import bootsteps

    heartbeat = Heartbeat("worker", stale_after=60)

    class Beat(bootsteps.StartStopStep):  # type: ignore[misc]
        requires = {"celery.worker.components:Timer"}

        def start(self, worker: Any) -> None:
            heartbeat.beat()
            worker.timer.call_repeatedly(10.0, heartbeat.beat)

    app.steps["worker"].add(Beat)
    serve_health(settings.health_port, [heartbeat])
    return heartbeat
