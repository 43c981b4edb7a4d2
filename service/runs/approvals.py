"""Approvals of untrusted fork pull requests (``/forgeflow ok-to-test``): recorded per head
commit, read when a run of that commit is planned, and releasing the runs that wait for them.

An approval is a row per (forge, repository, pull request, commit); a later commit needs a new
one. Approving starts the commit's waiting runs (``waiting`` → ``created``, then submitted).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.context import Context
from service.events import Event
from service.store.models import Approval, JobState, Run, RunPhase


def approved_at(ctx: Context, event: Event, sha: str) -> bool:
    """Whether someone approved the event's pull request at commit ``sha``."""
    pr = event.pull_request
    if pr is None:
        return False
    with ctx.db.session() as session:
        found = session.scalars(
            select(Approval.id).where(
                Approval.forge == event.forge,
                Approval.repo == event.repository.full_name,
                Approval.pr_number == pr.number,
                Approval.sha == sha,
            )
        ).first()
    return found is not None


def approve(ctx: Context, event: Event, instance: str, number: int, user: str) -> list[int]:
    """Record ``user``'s approval of pull request ``number`` at the event's commit and release
    the runs that waited for it; their ids (the caller starts them with ``resume_run``)."""
    try:
        with ctx.db.session() as session:
            session.add(
                Approval(
                    forge=event.forge,
                    instance=instance,
                    repo=event.repository.full_name,
                    pr_number=number,
                    sha=event.sha,
                    approved_by=user,
                )
            )
    except IntegrityError:
        pass  # approved before
    with ctx.db.session() as session:
        waiting = session.scalars(
            select(Run).where(
                Run.forge == event.forge,
                Run.repo == event.repository.full_name,
                Run.pr_number == number,
                Run.sha == event.sha,
                Run.phase == RunPhase.WAITING,
            )
        ).all()
        for run in waiting:
            run.phase, run.message = RunPhase.CREATED, f"approved by @{user}"
            for job in run.jobs:
                if job.state == JobState.PENDING:
                    job.description = "queued"
        return [run.id for run in waiting]
