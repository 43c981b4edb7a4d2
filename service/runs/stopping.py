"""Stopping runs nobody needs any more, runs that must wait their turn, and giving up on runs.

- **Superseded**: a pull-request event with a new head commit stops the unfinished runs of that
  pull request's older commits (runs from earlier deliveries with a different sha). Their
  jobs end as ``error`` "superseded by <short sha>". A run whose delivery is older than a run
  already made for a newer commit (a late retry) is stopped itself, and never submitted.
- **Closed**: a closed or merged pull request stops all its unfinished runs ("pull request
  closed").
- **Concurrency groups** (``Run.concurrency_group``, filled from the job file's
  ``concurrency:``), per repository: with ``cancel_in_progress`` a new run stops the group's
  older unfinished runs ("cancelled: a newer run in group G"). Without it, the new run waits:
  it stays ``created`` (its jobs ``pending`` "queued") while an older run of the group is
  ``created``/``submitted``/``running`` (:func:`concurrency_blocker`, checked by
  ``pipeline.resume_run`` before submitting), and the watcher (when a run ends) or the periodic
  sweep (``sweep.start_waiting_runs``) submits it once the group is free: one run at a time per
  group, oldest first.

Stopping a run (:func:`stop_runs`) records ``Run.stop_reason``, ends the run and every job that
is not final as ``error`` with the reason right away (jobs that never started included, so
nothing stays ``pending`` on the forge), reports that, then asks the executor to shut the
Workflow down (``spec.shutdown: Terminate``). If that last call fails, the watcher asks again
when it next sees the Workflow still running (see :func:`service.runs.progress.apply_workflow`).

Giving up (:func:`fail_run`: a delivery that failed for good, a Workflow that disappeared or
could not be submitted) ends the run and its unfinished jobs as ``error`` with the reason.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from service.clock import now
from service.context import Context
from service.events import Event, EventKind
from service.executors.base import ExecutorError, WorkflowRef
from service.forges.base import TransientForgeError
from service.reporting.reporter import job_logs, report_run
from service.store.models import RUNS, JobState, Run, RunPhase

log = logging.getLogger(__name__)
ACTIVE = (RunPhase.CREATED, RunPhase.SUBMITTED, RunPhase.RUNNING)


def lock_run(session: Session, run_id: int) -> None:
    """Serialise writers of one run (watcher replicas, the worker) for this transaction: an
    UPDATE takes the row lock on PostgreSQL and the write lock on SQLite before anything is
    read, so a decision is never made on a state another process is changing."""
    session.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(updated_at=now())
        .execution_options(synchronize_session=False)
    )


def stop_runs(ctx: Context, run_ids: list[int], reason: str) -> list[int]:
    """End each unfinished run as ``error`` with ``reason`` and stop its Workflow; their ids."""
    stopped = []
    for run_id in run_ids:
        with ctx.db.session() as session:
            lock_run(session, run_id)
            run = session.get(Run, run_id)
            if run is None or run.phase in RunPhase.FINAL:
                continue
            run.stop_reason = reason
            run.phase, run.message, run.finished_at = RunPhase.ERROR, reason, now()
            for job in run.jobs:
                if job.state not in JobState.FINAL:
                    job.state, job.description, job.finished_at = JobState.ERROR, reason[:1000], now()
            ref = WorkflowRef(run.namespace, run.workflow_name)
        log.info("run %s stopped: %s", run_id, reason)
        stopped.append(run_id)
        try:
            report_run(ctx.db, ctx.forges, ctx.settings.public_url, run_id, job_logs(ctx))
        except TransientForgeError as exc:
            log.warning("run %s: reporting the stop failed for now, the sweep retries: %s", run_id, exc)
        if ref.name:
            try:
                ctx.executor.stop(ref, reason)
            except ExecutorError as exc:
                log.warning("run %s: could not stop %s/%s yet: %s", run_id, ref.namespace, ref.name, exc)
    return stopped


def _same_repo(run: Any) -> ColumnElement[bool]:
    return and_(Run.forge == run.forge, Run.instance == run.instance, Run.repo == run.repo)


_NEW_RUN = select(
    RUNS.c.id, RUNS.c.forge, RUNS.c.instance, RUNS.c.repo, RUNS.c.sha, RUNS.c.pr_number, RUNS.c.delivery_pk,
    RUNS.c.concurrency_group, RUNS.c.cancel_in_progress,
).where(RUNS.c.id == bindparam("run_pk"))  # fmt: skip
# the runs of the same pull request at other commits that may matter to a new run: made for
# later deliveries (then the new run is the late one), or not finished yet
_SAME_PULL_REQUEST = select(RUNS.c.id, RUNS.c.sha, RUNS.c.delivery_pk, RUNS.c.phase).where(
    RUNS.c.forge == bindparam("forge"),
    RUNS.c.instance == bindparam("instance"),
    RUNS.c.repo == bindparam("repo"),
    RUNS.c.pr_number == bindparam("pr_number"),
    RUNS.c.sha != bindparam("sha"),
    or_(RUNS.c.delivery_pk > bindparam("delivery_pk"), RUNS.c.phase.not_in(RunPhase.FINAL)),
)


_PULL_REQUEST_KEYS = ("forge", "instance", "repo", "pr_number", "sha", "delivery_pk")


def _was_earlier(other: Any, run: Any) -> bool:
    """Whether ``other`` comes from a delivery received before ``run``'s ."""
    if run.delivery_pk is None:
        return bool(other.id < run.id)
    if other.delivery_pk is None:
        return bool(other.id < run.id)
    return bool(other.delivery_pk < run.delivery_pk)


def stop_superseded_runs(ctx: Context, event: Event, run_id: int, new_run: Any = None) -> list[int]:
    """Stop the still-running runs the new run ``run_id`` replaces; their ids. Finding them is
    one transaction of plain statements. ``new_run``: the new run's columns that matter here
    (``_NEW_RUN``'s, as attributes), when the caller just wrote them: they are not read back."""
    with ctx.db.transaction() as connection:
        run = new_run if new_run is not None else connection.execute(_NEW_RUN, {"run_pk": run_id}).first()
        if run is None:
            return []
        older: list[int] = []
        newer_sha = ""
        if (
            event.kind is EventKind.PULL_REQUEST
            and event.pull_request is not None
            and event.action not in ("closed", "merged")
        ):
            params = {
                k: getattr(run, k) for k in ("forge", "instance", "repo", "pr_number", "sha", "delivery_pk")
            }
            others = connection.execute(_SAME_PULL_REQUEST, params).all()
            mine = run.delivery_pk
            newer = [
                r for r in others if mine is not None and r.delivery_pk is not None and r.delivery_pk > mine
            ]
            if newer:
                newer_sha = max(newer, key=lambda r: r.delivery_pk).sha
            else:
                older = [r.id for r in others if r.phase not in RunPhase.FINAL and _was_earlier(r, run)]
        group, cancel = run.concurrency_group, run.cancel_in_progress
        in_group: list[int] = []
        if group and cancel and not newer_sha:
            in_group = list(
                connection.execute(
                    select(Run.id).where(
                        _same_repo(run),
                        Run.concurrency_group == group,
                        Run.id < run.id,
                        Run.phase.not_in(RunPhase.FINAL),
                    )
                ).scalars()
            )
    if newer_sha:
        # a late delivery: a newer commit of this pull request already has a run
        return stop_runs(ctx, [run_id], f"superseded by {newer_sha[:7]}")
    stopped = stop_runs(ctx, sorted(older), f"superseded by {event.short_sha}")
    cancelled = sorted(set(in_group) - set(stopped))
    stopped += stop_runs(ctx, cancelled, f"cancelled: a newer run in group {group}")
    return stopped


def stop_pull_request_runs(ctx: Context, event: Event, reason: str) -> list[int]:
    """Stop every unfinished run of the pull request ``event`` closed; their ids."""
    if event.pull_request is None:
        return []
    with ctx.db.session() as session:
        runs = session.scalars(
            select(Run).where(
                Run.forge == event.forge,
                Run.repo == event.repository.full_name,
                Run.pr_number == event.pull_request.number,
                Run.phase.not_in(RunPhase.FINAL),
            )
        ).all()
        url = event.repository.html_url
        run_ids = [r.id for r in runs if not url or _html_url(r.event_json) in ("", url)]
    return stop_runs(ctx, sorted(run_ids), reason)


def stop_commit_runs(ctx: Context, event: Event, reason: str) -> list[int]:
    """Stop every unfinished run of ``event``'s kind on its commit (a merge group that is gone)."""
    with ctx.db.session() as session:
        run_ids = session.scalars(
            select(Run.id).where(
                Run.forge == event.forge,
                Run.repo == event.repository.full_name,
                Run.sha == event.sha,
                Run.event_kind == event.kind.value,
                Run.phase.not_in(RunPhase.FINAL),
            )
        ).all()
    return stop_runs(ctx, sorted(run_ids), reason)


def _html_url(event_json: str) -> str:
    """The repository's web address in a stored event (tells forge instances apart)."""
    try:
        return Event.from_json(event_json).repository.html_url
    except (ValueError, KeyError, TypeError):
        return ""


def concurrency_blocker(ctx: Context, run_id: int) -> str | None:
    """Why run ``run_id`` may not start yet (an older active run of its group), or None."""
    with ctx.db.session() as session:
        run = session.get(Run, run_id)
        if run is None or not run.concurrency_group:
            return None
        blocker = session.scalars(
            select(Run.id)
            .where(
                _same_repo(run),
                Run.concurrency_group == run.concurrency_group,
                Run.id < run.id,
                Run.phase.in_(ACTIVE),
            )
            .order_by(Run.id)
        ).first()
        if blocker is None:
            return None
        message = f"waiting for run {blocker} (concurrency group {run.concurrency_group})"
        if run.phase == RunPhase.CREATED:
            run.message = message
        return message


def fail_run(ctx: Context, run_id: int, reason: str) -> None:
    """Give up on a run: every job that is not final ends as ``error`` with the reason."""
    with ctx.db.session() as session:
        lock_run(session, run_id)
        run = session.get(Run, run_id)
        if run is None:
            return
        if run.phase not in RunPhase.FINAL:
            run.phase = RunPhase.ERROR
            run.message = reason
            run.finished_at = now()
        for job in run.jobs:
            if job.state not in JobState.FINAL:
                job.state = JobState.ERROR
                job.description = reason[:200]
                job.finished_at = now()
