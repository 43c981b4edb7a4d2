"""forgeflow's one clock: naive UTC datetimes for the database, RFC 3339 text for Kubernetes.

Every timestamp forgeflow writes comes from :func:`now` (rows, job states, leases) or
:func:`kubernetes_time` (the local executor's Workflow objects, as Argo's controller writes
them); :func:`parse_time` reads Kubernetes' text back into the first form.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def now() -> datetime:
    """The current time, UTC, without tzinfo (how every table stores times)."""
    return datetime.now(UTC).replace(tzinfo=None)


def kubernetes_time(moment: datetime | None = None) -> str:
    """A time as Kubernetes writes it (RFC 3339, seconds, UTC ``Z``); default: now."""
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    """A Kubernetes/Argo timestamp as :func:`now` gives them, or None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None)
