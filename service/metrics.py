"""forgeflow's Prometheus metrics (``prometheus_client``), one definition for every process.

Every process serves them at ``/metrics``: the web tier on its own port, the worker and the
watcher on ``health_port`` (:mod:`service.health`). Under gunicorn each web worker process
counts in files under ``PROMETHEUS_MULTIPROC_DIR`` (set by :mod:`service.web.server` before
this module is imported) and ``/metrics`` adds them up, so the numbers do not depend on which
process answers the scrape.

Counting costs a dictionary look-up and an add: the webhook route counts every delivery.
What the database knows (deliveries waiting, runs by phase) is read when scraped, by
:class:`DatabaseCollector`, in the watcher (one per cluster is enough) and ``forgeflow serve``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

DELIVERIES = Counter(
    "forgeflow_deliveries",
    "Webhook deliveries, by forge, event kind and outcome (accepted, duplicate, ignored, ping, refused,"
    " unauthorized, error)",
    ["forge", "event", "outcome"],
)
FORGE_REQUESTS = Counter(
    "forgeflow_forge_requests",
    "Calls to a forge's API by the worker and watcher, by forge instance and outcome (ok, error, transient)",
    ["forge", "outcome"],
)
FORGE_RATE_LIMIT_REMAINING = Gauge(
    "forgeflow_forge_rate_limit_remaining",
    "Requests the forge still allows in its current window, as its last RateLimit headers said",
    ["forge"],
    multiprocess_mode="mostrecent",
)
TIME_TO_FIRST_STATUS = Histogram(
    "forgeflow_time_to_first_status_seconds",
    "From a delivery's arrival to the first status of its run on the forge",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
)
RUN_DURATION = Histogram(
    "forgeflow_run_duration_seconds",
    "From a run's creation to its end, by final phase",
    ["phase"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
)
WATCH_LAG = Histogram(
    "forgeflow_watcher_lag_seconds",
    "From a Workflow's latest node change to the watcher applying it",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
WATCH_EVENTS = Counter("forgeflow_watcher_events", "Workflow watch events applied, by type", ["type"])
RESYNCS = Counter(
    "forgeflow_watcher_resyncs",
    "Full lists of the Workflows: start, periodic resync, or after 410 Gone",
    ["reason"],
)
HEARTBEAT = Gauge(
    "forgeflow_heartbeat_timestamp_seconds",
    "When a component last showed it is alive (unix time)",
    ["component"],
    multiprocess_mode="max",
)
WEB_ERRORS = Counter("forgeflow_web_errors", "Pages and API answers that failed, by status", ["status"])


class DatabaseCollector(Collector):
    """Gauges read from the database when scraped: deliveries waiting to be processed (the
    queue, with the age of the oldest) and runs by phase."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy import func, select

        from service.clock import now as utcnow
        from service.store.models import Delivery, DeliveryState, Run

        depth = GaugeMetricFamily(
            "forgeflow_queue_depth", "Stored deliveries not processed yet, by state", labels=["state"]
        )
        age = GaugeMetricFamily(
            "forgeflow_queue_oldest_age_seconds", "Age of the oldest delivery not processed yet"
        )
        runs = GaugeMetricFamily("forgeflow_runs", "Runs by phase", labels=["phase"])
        try:
            with self.db.session() as session:
                waiting = (DeliveryState.RECEIVED, DeliveryState.QUEUED)
                counts: dict[str, int] = dict(
                    session.execute(  # type: ignore[arg-type,unused-ignore]
                        select(Delivery.state, func.count())
                        .where(Delivery.state.in_(waiting))
                        .group_by(Delivery.state)
                    ).all()
                )
                oldest = session.scalar(
                    select(func.min(Delivery.received_at)).where(Delivery.state.in_(waiting))
                )
                phases = session.execute(select(Run.phase, func.count()).group_by(Run.phase)).all()
        except Exception:  # the database is down: say nothing rather than fail the scrape
            return
        for state in waiting:
            depth.add_metric([state], counts.get(state, 0))
        age.add_metric([], max((utcnow() - oldest).total_seconds(), 0.0) if oldest else 0.0)
        for phase, count in phases:
            runs.add_metric([phase], count)
        yield depth
        yield age
        yield runs


def multiprocess() -> bool:
    """Whether this process is one of several gunicorn workers counting in shared files."""
    return bool(os.environ.get(MULTIPROCESS_ENV))


def registry_for_scrape(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """What ``/metrics`` shows: this process's metrics, or every web worker's added up."""
    extra = list(extra)
    if multiprocess():
        from prometheus_client import multiprocess as shared

        registry = CollectorRegistry()
        shared.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        for collector in extra:
            registry.register(collector)
        return registry
    if not extra:
        return REGISTRY
    registry = CollectorRegistry()
    registry.register(_Everything())
    for collector in extra:
        registry.register(collector)
    return registry


class _Everything(Collector):
    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


def exposition(extra: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The scrape's body and content type."""
    return generate_latest(registry_for_scrape(extra)), CONTENT_TYPE_LATEST


def beat(component: str) -> None:
    HEARTBEAT.labels(component).set(time.time())


def process_exited(pid: int) -> None:
    """A gunicorn worker is gone: its live gauges no longer count."""
    if multiprocess():
        from prometheus_client import multiprocess as shared

        shared.mark_process_dead(pid)  # type: ignore[no-untyped-call]
