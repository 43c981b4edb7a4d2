"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, tuned for one machine.

kombu hands every transport option to ``create_engine``, so the polling interval cannot be
set as an option; this subclass sets it (0.1 s instead of 1 s) and waits on SQLite's lock
instead of failing when web, worker and watcher write at once.
"""

from __future__ import annotations

import time
from typing import Any

from kombu.transport.sqlalchemy import Channel as SqlaChannel
from kombu.transport.sqlalchemy import Transport as SqlaTransport

PREFIX = "sqla+"
TRANSPORT = "service.broker:Transport"


class Channel(SqlaChannel):  # type: ignore[misc]
    def _engine_from_config(self) -> Any:
        conninfo = self.connection.client
        options = dict(conninfo.transport_options)
        for key in (
            "queue_tablename",
            "message_tablename",
            "callback",
            "errback",
            "max_retries",
            "interval_start",
            "interval_step",
            "interval_max",
            "retry_errors",
        ):
            options.pop(key, None)
        if conninfo.hostname.startswith("sqlite"):
            options.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        from sqlalchemy import create_engine

        return create_engine(conninfo.hostname, **options)


class Transport(SqlaTransport):  # type: ignore[misc]
    Channel = Channel
    polling_interval = 0.1

    def drain_events(self, connection: Any, timeout: float | None = None) -> Any:
        """Wait for a message in short slices, so a worker asked to stop notices within one
        polling interval instead of Celery's 2 s drain (it drains once more after the request)."""
        from celery.worker import state

        if timeout is None or timeout <= self.polling_interval:
            return super().drain_events(connection, timeout)
        deadline = time.monotonic() + timeout
        while True:
            if state.should_stop is not None:
                raise TimeoutError()
            try:
                return super().drain_events(connection, self.polling_interval)
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise


def celery_broker(url: str) -> tuple[str, str | None]:
    """(broker_url, broker_transport) for Celery: ``sqla+...`` URLs use this transport."""
    if url.startswith(PREFIX):
        return url[len(PREFIX) :], TRANSPORT
    return url, None
