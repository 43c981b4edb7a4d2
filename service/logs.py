"""Logging for forgeflow's processes: plain lines, or JSON objects (``log_format: json``).

Work on a delivery or a run sets their ids for its thread (:func:`log_context`); every line
logged meanwhile carries them (``delivery``, ``run``), so one delivery's or run's lines can be
picked out of every process's logs.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

_DELIVERY: contextvars.ContextVar[Any] = contextvars.ContextVar("forgeflow_delivery", default=None)
_RUN: contextvars.ContextVar[Any] = contextvars.ContextVar("forgeflow_run", default=None)
_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("forgeflow_log_context", default=False)


@contextmanager
def log_context(*, delivery: Any = None, run: Any = None) -> Iterator[None]:
    """Within the block, this thread's log lines name the delivery and/or run (and after it,
    what they named before: a worker thread's next task starts clean)."""
    tokens = [(_DELIVERY, _DELIVERY.set(delivery)), (_RUN, _RUN.set(run)), (_ACTIVE, _ACTIVE.set(True))]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def set_run(run: Any) -> None:
    """Name the run in this thread's lines until the current :func:`log_context` ends (outside
    of one it does nothing: a long-lived thread would name a stale run)."""
    if _ACTIVE.get():
        _RUN.set(run)


class _Ids(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.delivery = _DELIVERY.get()
        record.run = _RUN.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, delivery, run (and the error)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "delivery": getattr(record, "delivery", None),
            "run": getattr(record, "run", None),
        }
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def setup_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_Ids())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])


class Trouble:
    """One kind of failure that is retried (a database or broker away): logged when it starts
    and when it ends, not at every attempt."""

    def __init__(self, what: str, logger: logging.Logger | None = None) -> None:
        self.what = what
        self.log = logger or logging.getLogger(__name__)
        self.since: float | None = None

    def failed(self, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning("%s: %s; retrying with backoff", self.what, exc)

    def ok(self) -> None:
        if self.since is not None:
            self.log.info("%s: works again after %.0f s", self.what, time.monotonic() - self.since)
            self.since = None

    @property
    def failing(self) -> bool:
        return self.since is not None
