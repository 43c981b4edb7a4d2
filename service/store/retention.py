"""What the database forgets, and when: in small batches, so no sweep holds locks for long.

- a delivery's replay key once its replay window has passed (``replay_window_seconds``): the
  same signed body is then accepted again (see :mod:`service.web.webhooks`).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from service.clock import now
from service.store.db import Database
from service.store.models import Delivery

BATCH = 500  # rows per statement
MAX_BATCHES = 20  # per call: a large backlog is worked off over several sweeps


def forget_replay_keys(db: Database, window_seconds: float) -> int:
    """Clear the replay keys of deliveries received more than ``window_seconds`` ago."""
    cutoff = now() - timedelta(seconds=window_seconds)
    forgotten = 0
    for _ in range(MAX_BATCHES):
        with db.session() as session:
            ids = list(
                session.scalars(
                    select(Delivery.id)
                    .where(Delivery.replay_key.is_not(None), Delivery.received_at < cutoff)
                    .order_by(Delivery.received_at)
                    .limit(BATCH)
                )
            )
            if ids:
                session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(ids))
                    .values(replay_key=None)
                    .execution_options(synchronize_session=False)
                )
        forgotten += len(ids)
        if len(ids) < BATCH:
            break
    return forgotten
