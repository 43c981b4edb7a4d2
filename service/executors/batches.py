"""Reading a watch stream in batches: what has arrived is taken at once, for either executor.

The watcher applies a batch of watch events in one transaction (``runs.progress``), so it
reads the executor's stream (:meth:`service.executors.base.Executor.watch`) on a thread of
its own and takes what is there: the first event it waits for, the rest it gathers for a short
moment. The stream's errors (410 Gone, a dropped connection) reach the watcher in order,
after the events that came before them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

from service.executors.base import WatchEvent

_END = object()  # the watch stream ended


class EventPump:
    """Reads a watch stream on a thread of its own, so that the watcher takes what has arrived
    as one batch (:meth:`take`). The stream's error is raised by :meth:`take` after the events
    that came before it; :meth:`close` lets the thread go at its next event or the stream's end
    (the stream's own timeout bounds that)."""

    def __init__(self, events: Iterator[WatchEvent]) -> None:
        self.queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.done = threading.Event()
        self.ended = False
        self.failed: BaseException | None = None
        self.thread = threading.Thread(target=self._pump, args=(events,), name="forgeflow-watch", daemon=True)
        self.thread.start()

    def _pump(self, events: Iterator[WatchEvent]) -> None:
        try:
            for event in events:
                if self.done.is_set():
                    break
                self.queue.put(event)
        except BaseException as exc:  # handed to the watcher's thread, which raises it
            self.queue.put(exc)
        finally:
            close = getattr(events, "close", None)
            if callable(close):
                close()
            self.queue.put(_END)

    def take(self, size: int, linger: float, wait: float) -> list[WatchEvent] | None:
        """Up to ``size`` events: the first within ``wait`` seconds (else none), then whatever
        else arrives within ``linger`` seconds. None once the stream has ended."""
        if self.failed is not None:
            raise self.failed
        if self.ended:
            return None
        batch: list[WatchEvent] = []
        timeout, until = wait, 0.0
        while len(batch) < size:
            try:
                item = self.queue.get(timeout=max(0.0, timeout))
            except queue.Empty:
                break
            if item is _END or isinstance(item, BaseException):
                if item is _END:
                    self.ended = True
                else:
                    self.failed = item  # type: ignore[assignment]
                if not batch:
                    return self.take(size, linger, wait)
                break
            batch.append(item)  # type: ignore[arg-type]
            if len(batch) == 1:
                until = time.monotonic() + linger
            timeout = until - time.monotonic()
        return batch

    def close(self) -> None:
        self.done.set()
