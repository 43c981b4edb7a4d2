"""Every wait on PostgreSQL has a bound, kept on this side of the connection.

A database that stops answering (a hung host, a partition, a proxy that stops forwarding)
never sends the error its own ``statement_timeout`` would: libpq then waits for ever, and every
thread that touches the database hangs with it. So:

- connections are opened with ``connect_timeout``, TCP keepalives (an idle connection to a
  vanished server fails within half a minute) and ``tcp_user_timeout`` (:func:`connect_args`),
  and the server cancels any statement running past ``statement_timeout``;
- psycopg2 runs in its "green" mode, where every wait for the server goes through one callback
  (:func:`wait_for_server`). Ours waits until the calling thread's deadline — set for a block by
  :func:`deadline` (the web tier: what is left of a request's budget) — or else
  ``statement_timeout`` plus a margin, and then gives up: psycopg2 closes the connection (its
  state is unknown), raises ``OperationalError``, and SQLAlchemy's pool discards it. Callers see
  an ordinary database error: 503 in the web tier, a retry in the worker.

The callback is process-wide (psycopg2 has one); it is installed by the first PostgreSQL
:class:`service.store.db.Database` and costs a few microseconds per statement.
"""

from __future__ import annotations

import math
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Bounds:
    """The database waits of one process."""

    connect: float = 5.0  # to open a connection
    statement: float = 30.0  # the server cancels a statement after this long
    keepalive_idle: int = 10  # an idle connection is probed after this many seconds...
    keepalive_interval: int = 5  # ...then every this many...
    keepalive_count: int = 3  # ...and dropped after this many unanswered probes
    # how long the client waits past statement_timeout before giving up on a server that does
    # not answer at all (the server's own cancellation normally arrives first)
    margin: float = 5.0

    @property
    def wait(self) -> float:
        """The longest one round trip may take when no deadline is set."""
        return self.statement + self.margin


_state = threading.local()
_bounds = Bounds()  # the process's defaults: set by the first Database (settings are per process)


def connect_args(bounds: Bounds) -> dict[str, Any]:
    """libpq connection parameters that bound connecting and notice a dead peer."""
    return {
        "connect_timeout": max(2, math.ceil(bounds.connect)),  # libpq's minimum is 2
        "keepalives": 1,
        "keepalives_idle": bounds.keepalive_idle,
        "keepalives_interval": bounds.keepalive_interval,
        "keepalives_count": bounds.keepalive_count,
        "tcp_user_timeout": int(bounds.wait * 1000),  # sent data unacknowledged this long: dead
        "options": f"-c statement_timeout={int(bounds.statement * 1000)}",
    }


def install(bounds: Bounds) -> None:
    """Make every psycopg2 wait go through :func:`wait_for_server` (idempotent)."""
    global _bounds
    import psycopg2.extensions

    _bounds = bounds
    if psycopg2.extensions.get_wait_callback() is not wait_for_server:
        psycopg2.extensions.set_wait_callback(wait_for_server)


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Database waits in this block (this thread) end ``seconds`` from now at the latest;
    None lifts every bound (schema migrations, which may wait for another process's)."""
    previous = getattr(_state, "deadline", False)
    if seconds is None:
        _state.deadline = None
    else:
        mine = time.monotonic() + seconds
        _state.deadline = mine if previous is False or previous is None else min(previous, mine)
    try:
        yield
    finally:
        _state.deadline = previous


def remaining() -> float | None:
    """Seconds left before this thread's deadline (None: none is set)."""
    limit = getattr(_state, "deadline", False)
    if limit is False or limit is None:
        return None
    return float(limit - time.monotonic())


def wait_for_server(connection: Any) -> None:
    """psycopg2's wait callback: poll the connection until its operation completes, or give up
    at the deadline (psycopg2 then closes the connection and raises)."""
    import psycopg2
    import psycopg2.extensions as ext

    limit = getattr(_state, "deadline", False)
    bound = _bounds.connect if connection.status == ext.STATUS_SETUP else _bounds.wait
    if limit is False:  # no block set one: a round trip's default bound
        limit = time.monotonic() + bound
    elif limit is not None:
        limit = min(limit, time.monotonic() + bound)
    poller = None
    while True:
        state = connection.poll()
        if state == ext.POLL_OK:
            return
        if state == ext.POLL_READ:
            events = select.POLLIN
        elif state == ext.POLL_WRITE:
            events = select.POLLOUT
        else:
            raise psycopg2.OperationalError(f"unexpected poll state {state}")
        if poller is None:
            poller = select.poll()
        poller.register(connection.fileno(), events)
        left = None if limit is None else limit - time.monotonic()
        if left is not None and (left <= 0 or not poller.poll(left * 1000)):
            raise psycopg2.OperationalError(
                "the database did not answer in time (forgeflow's client-side bound); connection closed"
            )
        if left is None:
            poller.poll()
