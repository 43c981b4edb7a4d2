"""Celery tasks: thin wrappers that take ids, re-fetch state and call one plain function.

:func:`make_celery` builds a Celery app for one set of settings and registers the tasks on it;
the app carries the service's :class:`Context` (``app.forgeflow_context``), so there is no
module-level state. Tasks are ``acks_late`` (a killed worker's task is redelivered) and safe to
repeat; they retry only transient errors (forge 5xx / rate limits, Kubernetes API errors,
database connection loss) and never leave a status pending when they give up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from kombu import Queue
from sqlalchemy.exc import OperationalError

from service.broker import celery_broker
from service.context import Context
from service.executors.base import TransientExecutorError
from service.forges.base import TransientForgeError
from service.settings import Settings

log = logging.getLogger(__name__)

QUEUE = "forgeflow"
PROCESS_DELIVERY = "forgeflow.process_delivery"
REPORT_RUN = "forgeflow.report_run"
START_RUN = "forgeflow.start_run"
TRANSIENT = (TransientForgeError, TransientExecutorError, OperationalError, ConnectionError, TimeoutError)


def _transport_options(broker: str) -> dict[str, Any]:
    if broker.startswith(("redis://", "rediss://")):
        # a task not acked within this long is redelivered (acks_late + killed worker; the
        # delivery leases in the database notice a dead worker long before this); every wait
        # on Redis is bounded: a silent server is an error, not a hang
        return {"visibility_timeout": 3600, "socket_connect_timeout": 5, "socket_timeout": 15}
    return {}


def _context(task: Task) -> Context:
    ctx: Context | None = getattr(task.app, "forgeflow_context", None)
    if ctx is None:
        raise RuntimeError("this Celery app was not made by service.tasks.make_celery")
    return ctx


def _backoff(task: Task, exc: Exception) -> float:
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        return float(retry_after)
    return float(min(2**task.request.retries, 300))


def process_delivery_task(self: Task, delivery_pk: int) -> str:
    from service.worker import fail_delivery, process_delivery, retry_later

    ctx = _context(self)
    try:
        return process_delivery(ctx, delivery_pk).outcome
    except TRANSIENT as exc:
        if self.request.retries < ctx.settings.task_max_retries:
            log.warning("delivery %s: transient error, retrying: %s", delivery_pk, exc)
            countdown = _backoff(self, exc)
            try:
                retry_later(ctx, delivery_pk, countdown)
            except Exception as held:  # the database is away too: the sweep may send it early
                log.warning("delivery %s: could not hold it for its retry: %s", delivery_pk, held)
            raise self.retry(exc=exc, countdown=countdown) from exc
        reason = f"gave up after {self.request.retries} retries: {exc}"
    except Exception as exc:
        # A bug or bad input: retrying will not help. Never leave a status pending.
        log.exception("delivery %s failed", delivery_pk)
        reason = f"forgeflow failed to process this event: {type(exc).__name__}: {exc}"
    run_id = fail_delivery(ctx, delivery_pk, reason[:500])
    if run_id is not None:
        self.app.send_task(REPORT_RUN, args=[run_id])
    return reason


def report_run_task(self: Task, run_id: int) -> int:
    from service.reporting.reporter import job_logs, report_run

    ctx = _context(self)
    try:
        return report_run(ctx.db, ctx.forges, ctx.settings.public_url, run_id, job_logs(ctx)).posted
    except TRANSIENT as exc:
        if self.request.retries >= ctx.settings.task_max_retries * 2:
            log.error("run %s: giving up reporting for now (the sweep retries): %s", run_id, exc)
            return 0
        raise self.retry(exc=exc, countdown=_backoff(self, exc)) from exc


def start_run_task(self: Task, run_id: int) -> str:
    """Submit a recorded run whose turn came (its concurrency group is free): the watcher hands
    these to a worker, which holds the rights to create Workflows and their Secrets."""
    from service.reporting.reporter import report_run
    from service.runs.start import resume_run
    from service.runs.stopping import fail_run

    ctx = _context(self)
    try:
        return resume_run(ctx, run_id).outcome
    except TRANSIENT as exc:
        if self.request.retries < ctx.settings.task_max_retries:
            raise self.retry(exc=exc, countdown=_backoff(self, exc)) from exc
        return f"run {run_id}: gave up for now (the sweep hands it over again): {exc}"
    except Exception as exc:  # a bad manifest, a forbidden namespace: tell the forge
        log.exception("run %s could not be submitted", run_id)
        fail_run(ctx, run_id, f"could not submit the workflow: {exc}"[:500])
        report_run(ctx.db, ctx.forges, ctx.settings.public_url, run_id)
        return f"run {run_id} failed: {exc}"


TASKS: dict[str, Callable[..., Any]] = {
    PROCESS_DELIVERY: process_delivery_task,
    REPORT_RUN: report_run_task,
    START_RUN: start_run_task,
}


def make_celery(ctx: Context) -> Celery:
    """A Celery app configured from ``ctx.settings``, with forgeflow's tasks registered."""
    settings: Settings = ctx.settings
    broker_url, transport = celery_broker(settings.broker)
    app = Celery("forgeflow", set_as_current=False)
    app.conf.update(
        broker_url=broker_url,
        broker_transport=transport,
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(broker_url),
        task_default_queue=QUEUE,
        task_queues=[Queue(QUEUE)],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_concurrency=settings.worker_concurrency,
        broker_pool_limit=10,
        worker_cancel_long_running_tasks_on_connection_loss=True,
    )
    for name, function in TASKS.items():
        app.task(bind=True, name=name, acks_late=True, max_retries=None, shared=False)(function)
    app.forgeflow_context = ctx
    # Celery's worker pools look tasks up through the process-wide default app (pool threads
    # do not share the creating thread's "current" app), so the newest app becomes the default.
    app.set_default()
    return app


def run_starter(app: Celery) -> Callable[[int], None]:
    """How the watcher asks a worker to submit a run that may start now."""

    def hand_off(run_id: int) -> None:
        app.send_task(START_RUN, args=[run_id], retry=False)

    return hand_off


def queue_depth(app: Celery) -> Callable[[], int]:
    """How many messages wait in forgeflow's queue (a missing queue: none). Raises when the
    broker is unreachable."""

    def depth() -> int:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
            channel = connection.channel()
            try:
                return int(channel.queue_declare(queue=QUEUE, passive=True).message_count)
            except connection.connection_errors:
                raise
            except Exception:  # the queue does not exist (yet, or any more): nothing waits
                return 0
            finally:
                try:
                    channel.close()
                except Exception:
                    log.debug("closing the channel failed", exc_info=True)

    return depth


def delivery_enqueuer(app: Celery) -> Callable[[int], None]:
    """How the web tier hands a stored delivery to the broker (raises if it is unreachable)."""

    def enqueue(delivery_pk: int) -> None:
        app.send_task(PROCESS_DELIVERY, args=[delivery_pk], retry=False)

    return enqueue
