"""Stopping runs nobody needs any more: older commits of a pull request, closed pull requests.

(Filled in with the Argo executor work: ``spec.shutdown`` through the executor seam, and the
stopped jobs end as ``error`` with the reason, never ``pending``.)
"""

from __future__ import annotations

from service.context import Context
from service.events import Event


def stop_superseded_runs(ctx: Context, event: Event, run_id: int) -> list[int]:
    """Stop the still-running runs the new run ``run_id`` replaces; their ids."""
    return []


def stop_pull_request_runs(ctx: Context, event: Event, reason: str) -> list[int]:
    """Stop every unfinished run of the pull request ``event`` closed; their ids."""
    return []
