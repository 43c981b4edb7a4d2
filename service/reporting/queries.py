"""The statuses forgeflow reported for a commit (``forgeflow status`` and the API), and what the
forges last said of their API budgets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from service.forges.local import local_statuses
from service.forges.ratelimits import describe_budget, stored_budgets
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


def api_budgets(db: Database) -> list[dict[str, Any]]:
    """What each forge token or GitHub App installation had left when last used."""
    return [
        {
            "forge": row.forge,
            "instance": row.instance,
            "key": row.key,
            "remaining": row.remaining,
            "limit": row.limit,
            "reset_at": row.reset_at.isoformat() + "Z" if row.reset_at else None,
            "seen_at": row.updated_at.isoformat() + "Z",
            "text": describe_budget(row),
        }
        for row in stored_budgets(db)
    ]
