"""How a stored delivery ended, for a client that asked to wait for it (``forgeflow trigger``).

The web tier only stores deliveries; the worker decides what they start. A client that wants
the decision (which jobs run, or why none does) asks ``POST /api/runs`` to ``wait`` up to a
few seconds: this polls the delivery's row until the worker has written its outcome, and reads
the run it started, if any. Bounded, read-only, database only.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from service.store.db import Database
from service.store.models import Delivery, DeliveryState, Job, Run
from service.web.manual_models import MAX_WAIT_SECONDS

POLL_SECONDS = 0.2


def wait_for_outcome(
    db: Database, delivery_pk: int, seconds: float, public_url: str
) -> dict[str, Any] | None:
    """``{"outcome": ..., "run": {...} | None}`` once the worker processed the delivery, or None
    when it has not within ``seconds`` (at most :data:`MAX_WAIT_SECONDS`)."""
    deadline = time.monotonic() + min(max(seconds, 0.0), MAX_WAIT_SECONDS)
    while True:
        with db.session() as session:
            delivery = session.get(Delivery, delivery_pk)
            if delivery is not None and delivery.state in (DeliveryState.DONE, DeliveryState.FAILED):
                return {"outcome": delivery.outcome, "run": _run(session, delivery_pk, public_url)}
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)


def _run(session: Any, delivery_pk: int, public_url: str) -> dict[str, Any] | None:
    run = session.scalars(select(Run).where(Run.delivery_pk == delivery_pk).order_by(Run.id)).first()
    if run is None:
        return None
    jobs = session.scalars(select(Job).where(Job.run_id == run.id).order_by(Job.id)).all()
    return {
        "id": run.id,
        "phase": run.phase,
        "url": f"{public_url.rstrip('/')}/runs/{run.id}",
        "jobs": [
            {"name": j.name, "context": j.context, "state": j.state, "description": j.description}
            for j in jobs
        ],
    }
