"""A run's progress: its Workflow's node phases applied to its run and job rows.

Used for both executors (the local executor writes the same ``status`` shape Argo does), by the
watcher for every Workflow it lists or watches, a batch of watch events at a time
(:func:`apply_workflows`: one transaction). Each Workflow is applied under the run's lock:
states only move forward and a final state stays final, so a repeated or stale event, a relist
after a restart or a second watcher replica changes nothing twice. The caller reports what
changed (:class:`Applied`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, defer, selectinload

from service.clock import now, parse_time
from service.context import Context
from service.jobs.plan_types import RUN_LABEL
from service.runs.node_states import WORKFLOW_FINAL, job_updates
from service.runs.stopping import lock_run
from service.runs.summary import is_summary, settle
from service.store.models import JobState, Run, RunPhase

RUN_PHASES = {"Succeeded": RunPhase.SUCCEEDED, "Failed": RunPhase.FAILED, "Error": RunPhase.ERROR}
DELETED_EARLY = "the workflow was deleted before it finished"


@dataclass
class Applied:
    """What applying one Workflow did to its run."""

    run_id: int
    changed: bool = False  # job states changed: something to report
    changed_jobs: list[int] = field(default_factory=list)  # the ids of those jobs
    finished: list[str] = field(default_factory=list)  # tasks that just reached a final state
    run_finished: bool = False  # the run just reached a final phase
    restop: str = ""  # forgeflow stopped the run but the Workflow still runs: stop it again
    phase: str = ""  # the run's phase once it finished
    seconds: float | None = None  # how long it took, creation to end (when it just finished)
    workflow: dict[str, Any] = field(default_factory=dict, repr=False)  # the Workflow applied (last)


def run_id_of(workflow: dict[str, Any]) -> int | None:
    labels = (workflow.get("metadata") or {}).get("labels") or {}
    value = str(labels.get(RUN_LABEL) or "")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def apply_workflow(ctx: Context, workflow: dict[str, Any], *, deleted: bool = False) -> Applied | None:
    """Bring a run's rows up to date with its Workflow (``deleted``: its last state)."""
    run_id = run_id_of(workflow)
    if run_id is None:
        return None
    with ctx.db.session() as session:
        lock_run(session, run_id)
        run = session.get(Run, run_id)
        return None if run is None else _apply(run, workflow, deleted)


def apply_workflows(ctx: Context, changes: Sequence[tuple[dict[str, Any], bool]]) -> list[Applied]:
    """:func:`apply_workflow` for a batch of watch events (``(workflow, deleted)``, in order),
    in one transaction: the runs are locked in id order and read with their jobs in two
    queries, each event is applied in turn, and the rows are written in one flush. One
    :class:`Applied` per run that the batch touched, merged over its events, in first-seen order."""
    wanted = [(run_id_of(workflow), workflow, deleted) for workflow, deleted in changes]
    ids = sorted({run_id for run_id, _, _ in wanted if run_id is not None})
    if not ids:
        return []
    merged: dict[int, Applied] = {}
    with ctx.db.session() as session:
        lock_runs(session, ids)
        runs = {
            run.id: run
            for run in session.scalars(
                select(Run)
                .where(Run.id.in_(ids))
                .options(selectinload(Run.jobs), defer(Run.manifest_json), defer(Run.event_json))
            )
        }
        for run_id, workflow, deleted in wanted:
            run = runs.get(run_id) if run_id is not None else None
            if run is None:
                continue
            applied = _apply(run, workflow, deleted)
            if applied is not None:
                merged[run.id] = merge(merged[run.id], applied) if run.id in merged else applied
    return list(merged.values())


def merge(earlier: Applied, later: Applied) -> Applied:
    """What two events of one run did, the later's Workflow and verdicts winning."""
    jobs = list(dict.fromkeys([*earlier.changed_jobs, *later.changed_jobs]))
    finished = list(dict.fromkeys([*earlier.finished, *later.finished]))
    return replace(
        later,
        changed=earlier.changed or later.changed,
        changed_jobs=jobs,
        finished=finished,
        run_finished=earlier.run_finished or later.run_finished,
        phase=later.phase or earlier.phase,
        seconds=later.seconds if later.seconds is not None else earlier.seconds,
    )


def lock_runs(session: Session, run_ids: list[int]) -> None:
    """:func:`lock_run` for many runs. PostgreSQL locks the rows in id order first (two
    watchers' batches never wait on each other in a circle); SQLite's write lock is one."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(select(Run.id).where(Run.id.in_(run_ids)).order_by(Run.id).with_for_update())
    session.execute(
        update(Run)
        .where(Run.id.in_(run_ids))
        .values(updated_at=now())
        .execution_options(synchronize_session=False)
    )


def _apply(run: Run, workflow: dict[str, Any], deleted: bool) -> Applied | None:
    """Apply one Workflow to its run's rows (locked by the caller)."""
    meta = workflow.get("metadata") or {}
    status = workflow.get("status") or {}
    wf_phase = str(status.get("phase") or "")
    applied = Applied(run.id, workflow=workflow)
    if run.workflow_name and meta.get("name") and run.workflow_name != meta["name"]:
        return None
    if run.namespace and meta.get("namespace") and run.namespace != meta["namespace"]:
        return None
    jobs = [job for job in run.jobs if not is_summary(job)]
    updates = job_updates(workflow, [job.task for job in jobs], run.stop_reason)
    for job in jobs:
        change = updates[job.task]
        if job.state in JobState.FINAL or JobState.ORDER[change.state] < JobState.ORDER[job.state]:
            continue  # final stays final; a stale event never moves a state back
        if (change.state, change.description) != (job.state, job.description):
            job.state, job.description = change.state, change.description
            applied.changed = True
            applied.changed_jobs.append(job.id)
        job.started_at = job.started_at or change.started_at
        if change.state in JobState.FINAL:
            job.finished_at = change.finished_at or now()
            applied.finished.append(job.task)
    if wf_phase in WORKFLOW_FINAL and run.phase not in RunPhase.FINAL:
        run.phase = RUN_PHASES[wf_phase]
        run.message = str(status.get("message") or "")
        run.finished_at = parse_time(status.get("finishedAt")) or now()
        applied.run_finished = True
    elif wf_phase == "Running" and run.phase in (RunPhase.CREATED, RunPhase.SUBMITTED):
        run.phase = RunPhase.RUNNING
    if deleted and run.phase not in RunPhase.FINAL:
        run.phase, run.message, run.finished_at = RunPhase.ERROR, DELETED_EARLY, now()
        applied.run_finished = True
        for job in run.jobs:
            if job.state not in JobState.FINAL:
                job.state, job.description, job.finished_at = JobState.ERROR, DELETED_EARLY, now()
                applied.changed = True
                applied.changed_jobs.append(job.id)
    summary = settle(run)
    if summary is not None:
        applied.changed = True
        applied.changed_jobs.append(summary.id)
    if applied.run_finished and run.finished_at is not None:
        applied.phase = run.phase
        applied.seconds = max((run.finished_at - run.created_at).total_seconds(), 0.0)
    shutdown = (workflow.get("spec") or {}).get("shutdown")
    if run.stop_reason and not deleted and wf_phase not in WORKFLOW_FINAL and not shutdown:
        applied.restop = run.stop_reason
    return applied
