"""The running service's parts, built once from the settings and passed explicitly."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from service.executors.base import Executor, ExecutorError
from service.forges.registry import ForgeRegistry
from service.settings import Settings
from service.store.db import Database
from service.store.delivery_writer import DeliveryWriter
from service.store.timeouts import Bounds

Enqueue = Callable[[int], None]

log = logging.getLogger(__name__)


@dataclass
class Context:
    settings: Settings
    db: Database
    forges: ForgeRegistry
    # how this process builds its executor (service.executors.factory.build_executor); None in
    # the web process, which never runs or watches Workflows (and holds no Kubernetes token)
    executor_factory: Callable[[Settings], Executor] | None = None
    enqueue: Enqueue | None = None  # the broker seam: hand a stored delivery's id to a worker
    # the broker seam for runs that may start now (their concurrency group is free): set in the
    # watcher process, which may not create Workflows or Secrets, so a worker submits them;
    # None: submit here (``serve``, tests)
    hand_off_run: Enqueue | None = None

    queue_depth: Callable[[], int] | None = None  # the broker seam: messages waiting in the queue
    _executor: Executor | None = field(default=None, repr=False)
    _writer: DeliveryWriter | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def executor(self) -> Executor:
        with self._lock:
            if self._executor is None:
                if self.executor_factory is None:
                    raise ExecutorError("this process runs no executor (the web tier never talks to one)")
                self._executor = self.executor_factory(self.settings)
            return self._executor

    @property
    def delivery_writer(self) -> DeliveryWriter:
        """Stores accepted webhooks; one per process, shared by its request threads."""
        with self._lock:
            if self._writer is None:
                self._writer = DeliveryWriter(self.db)
            return self._writer

    def warm_up(self, *loaders: Callable[[], object]) -> None:
        """Do the one-time work of the first event now (``loaders``, e.g. the Argo models; the
        executor's client; each configured forge's client), so a process answers its first
        event as fast as its hundredth. Anything that fails here fails again, with its reason,
        in use."""
        for load in loaders:
            load()
        try:
            if self.executor_factory is not None:
                _ = self.executor
        except Exception as exc:
            log.warning("the %s executor is not ready yet: %s", self.settings.executor, exc)
        self.forges.warm_up()
        # What start-up built lives as long as the process: move it out of the collector's
        # way, so a full collection scans what requests create, not the whole heap (without
        # this, compiling a 1,000-job run spent half its time in the garbage collector).
        gc.collect()
        gc.freeze()

    def close(self) -> None:
        closer = getattr(self._executor, "close", None)  # the argo executor's API client
        if callable(closer):
            closer()
        if self._writer is not None:
            self._writer.close()
        self.db.dispose()


def database_bounds(settings: Settings) -> Bounds:
    """How long this process waits for the database (see :mod:`service.store.timeouts`)."""
    return Bounds(
        connect=settings.database_connect_timeout_seconds,
        statement=settings.database_statement_timeout_seconds,
    )


def build_context(
    settings: Settings,
    *,
    migrate: bool = True,
    executor_factory: Callable[[Settings], Executor] | None = None,
) -> Context:
    """The parts of one process; ``executor_factory`` for the processes that run or watch
    Workflows (``service.executors.factory.build_executor``), none for the web tier."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lease = timedelta(seconds=settings.lease_seconds)
    db = Database(settings.database, bounds=database_bounds(settings), lease=lease)
    if migrate:
        db.migrate()
    return Context(
        settings=settings, db=db, forges=ForgeRegistry(settings, db), executor_factory=executor_factory
    )
