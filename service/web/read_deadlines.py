"""Slow clients cannot hold the web tier's threads: every request must arrive in time.

A web thread reading a request blocks until the client's bytes arrive. A client that sends
its headers a byte at a time, or announces a body it never sends (slowloris), would hold that
thread for as long as it likes, and a few dozen such clients would hold them all.

So each request has a deadline: its request line, headers and body must have arrived within
``timeout`` seconds, plus one second for every ``min_rate`` bytes of body its Content-Length
announces (a large body from a far-away forge takes its time; a stalled one does not). The
server glue arms a :class:`Ticket` when a thread starts reading a request (gunicorn's worker,
the development server's handler: :mod:`service.web.server`); the webhook route extends it by
the announced length and disarms it once the body is read. One watchdog thread per process
keeps the tickets in a heap; when a deadline passes it shuts the reading side of that
connection (``shutdown(SHUT_RD)``), which wakes the blocked read at once with end-of-file. The
request is answered 408 and the connection closed.

Cost per request: a lock and a heap push to arm, a flag to disarm.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import socket
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0  # seconds for the request line, the headers and a small body
DEFAULT_MIN_RATE = 256 * 1024  # bytes per second a large body must keep up


class Ticket:
    """One request being read: its connection and its deadline (``time.monotonic()``)."""

    __slots__ = ("armed", "deadline", "expired", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline = sock, deadline
        self.armed = True
        self.expired = False  # the watchdog shut its reading side


class ReadDeadlines:
    """The watchdog of one process; thread-safe. ``current()`` is the calling thread's ticket."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, min_rate: float = DEFAULT_MIN_RATE) -> None:
        self.timeout, self.min_rate = timeout, min_rate
        self._local = threading.local()
        self.after_fork()
        self.expirations = 0  # connections shut for being late, for operators and tests

    def after_fork(self) -> None:
        """Start afresh in a forked process (a gunicorn worker): threads do not survive a fork."""
        self._lock = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Ticket]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, sock: Any) -> Ticket | None:
        """Start the clock on a request read from ``sock`` (None: not a socket, no deadline)."""
        if not isinstance(sock, socket.socket) or self.timeout <= 0:
            return None
        ticket = Ticket(sock, time.monotonic() + self.timeout)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="forgeflow-read-deadlines")
                self._thread.daemon = True
                self._thread.start()
            first = not self._heap or ticket.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (ticket.deadline, next(self._order), ticket))
            if first:
                self._lock.notify()
        self._local.ticket = ticket
        return ticket

    def current(self) -> Ticket | None:
        """The ticket of the request this thread is reading, if the server armed one."""
        ticket: Ticket | None = getattr(self._local, "ticket", None)
        return ticket if ticket is not None and ticket.armed else None

    def extend(self, ticket: Ticket, body_bytes: int) -> None:
        """Allow the time a body of ``body_bytes`` takes at the minimum rate."""
        if body_bytes <= 0 or self.min_rate <= 0:
            return
        with self._lock:
            if ticket.armed and not ticket.expired:
                ticket.deadline += body_bytes / self.min_rate
                heapq.heappush(self._heap, (ticket.deadline, next(self._order), ticket))

    def disarm(self, ticket: Ticket | None) -> None:
        """The request has been read (or the connection is done): no deadline any more."""
        if ticket is None:
            return
        with self._lock:  # once this returns, the watchdog never touches the socket again
            ticket.armed = False
        if getattr(self._local, "ticket", None) is ticket:
            self._local.ticket = None

    def _watch(self) -> None:
        with self._lock:
            while True:
                if not self._heap:
                    self._lock.wait()
                    continue
                deadline, _, ticket = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._lock.wait(delay)
                    continue
                heapq.heappop(self._heap)
                if ticket.armed and not ticket.expired and ticket.deadline <= deadline:
                    self._expire(ticket)

    def _expire(self, ticket: Ticket) -> None:
        ticket.expired = True
        self.expirations += 1
        try:
            ticket.sock.shutdown(socket.SHUT_RD)  # a blocked recv() returns b"" now
        except OSError as exc:  # already closed by the client: nothing holds a thread
            log.debug("could not shut a late connection: %s", exc)
