"""The statuses forgeflow reported for a commit (``forgeflow status`` and the API)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from service.forges.local import local_statuses
from service.store.db import Database
from service.store.models import Job, Run


def commit_statuses(db: Database, repo: str, sha: str, public_url: str = "") -> list[dict[str, Any]]:
    """Latest status per context: the local forge's own store, else what forgeflow reported."""
    local = local_statuses(db, repo, sha)
    if local:
        return [
            {
                "context": s.context,
                "state": s.state,
                "description": s.description,
                "target_url": s.target_url,
            }
            for s in local
        ]
    with db.session() as session:
        jobs = session.scalars(
            select(Job)
            .join(Run)
            .where(Run.repo == repo, Run.sha.startswith(sha, autoescape=True))
            .order_by(Job.id)
        )
        latest: dict[str, dict[str, Any]] = {}
        for job in jobs:
            latest[job.context] = {
                "context": job.context,
                "state": job.reported_state or "unreported",
                "description": job.reported_description or job.description,
                "target_url": f"{public_url}/runs/{job.run_id}",
            }
    return sorted(latest.values(), key=lambda s: s["context"])
