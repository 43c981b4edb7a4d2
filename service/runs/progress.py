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
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from service.clock import now, parse_time
from service.context import Context
from service.jobs.plan_types import RUN_LABEL
from service.runs.node_states import WORKFLOW_FINAL, job_updates
from service.runs.summary import SUMMARY_TASK, verdict
from service.store.models import Job, JobState, Run, RunPhase

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


@dataclass
class JobRow:
    """The columns of a job that applying a Workflow reads and writes (Core, not the ORM: a
    watch batch of hundreds of runs is read in one query and written in one executemany)."""

    id: int
    name: str
    task: str
    context: str
    state: str
    description: str
    started_at: datetime | None
    finished_at: datetime | None
    dirty: bool = False


@dataclass
class RunRow:
    """The columns of a run that applying a Workflow reads and writes, with its jobs."""

    id: int
    workflow_name: str
    namespace: str
    phase: str
    message: str
    stop_reason: str
    created_at: datetime
    finished_at: datetime | None
    jobs: list[JobRow] = field(default_factory=list)
    dirty: bool = False


RUNS, JOBS = cast(Table, Run.__table__), cast(Table, Job.__table__)
_WRITE_JOB = (
    update(JOBS)
    .where(JOBS.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        description=bindparam("b_description"),
        started_at=bindparam("b_started"),
        finished_at=bindparam("b_finished"),
    )
)
_WRITE_RUN = (
    update(RUNS)
    .where(RUNS.c.id == bindparam("b_id"))
    .values(phase=bindparam("b_phase"), message=bindparam("b_message"), finished_at=bindparam("b_finished"))
)


def apply_workflow(ctx: Context, workflow: dict[str, Any], *, deleted: bool = False) -> Applied | None:
    """Bring a run's rows up to date with its Workflow (``deleted``: its last state)."""
    applied = apply_workflows(ctx, [(workflow, deleted)])
    return applied[0] if applied else None


def apply_workflows(ctx: Context, changes: Sequence[tuple[dict[str, Any], bool]]) -> list[Applied]:
    """Bring runs' rows up to date with a batch of watch events (``(workflow, deleted)``, in
    order), in one transaction: the runs are locked in id order and read with their jobs in
    two queries, each event is applied in turn, and what changed is written with one
    statement per table. One :class:`Applied` per run that the batch touched, merged over its
    events, in first-seen order."""
    wanted = [(run_id_of(workflow), workflow, deleted) for workflow, deleted in changes]
    ids = sorted({run_id for run_id, _, _ in wanted if run_id is not None})
    if not ids:
        return []
    merged: dict[int, Applied] = {}
    with ctx.db.session() as session:
        lock_runs(session, ids)
        runs = {
            row.id: RunRow(*row)
            for row in session.execute(
                select(
                    Run.id, Run.workflow_name, Run.namespace, Run.phase, Run.message, Run.stop_reason,
                    Run.created_at, Run.finished_at,
                ).where(Run.id.in_(ids))
            )
        }  # fmt: skip
        for row in session.execute(
            select(
                Job.run_id, Job.id, Job.name, Job.task, Job.context, Job.state, Job.description,
                Job.started_at, Job.finished_at,
            )
            .where(Job.run_id.in_(ids))
            .order_by(Job.id)
        ):  # fmt: skip
            runs[row[0]].jobs.append(JobRow(*row[1:]))
        for run_id, workflow, deleted in wanted:
            run = runs.get(run_id) if run_id is not None else None
            if run is None:
                continue
            applied = _apply(run, workflow, deleted)
            if applied is not None:
                merged[run.id] = merge(merged[run.id], applied) if run.id in merged else applied
        # rows written in id order, as every batch of forgeflow's does: two batches over the
        # same rows never wait for each other in a circle (a deadlock)
        jobs = sorted((job for run in runs.values() for job in run.jobs if job.dirty), key=lambda job: job.id)
        if jobs:
            session.execute(
                _WRITE_JOB,
                [
                    {
                        "b_id": job.id,
                        "b_state": job.state,
                        "b_description": job.description,
                        "b_started": job.started_at,
                        "b_finished": job.finished_at,
                    }
                    for job in jobs
                ],
            )
        dirty = sorted((run for run in runs.values() if run.dirty), key=lambda run: run.id)
        if dirty:
            session.execute(
                _WRITE_RUN,
                [
                    {
                        "b_id": run.id,
                        "b_phase": run.phase,
                        "b_message": run.message,
                        "b_finished": run.finished_at,
                    }
                    for run in dirty
                ],
            )
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


def _apply(run: RunRow, workflow: dict[str, Any], deleted: bool) -> Applied | None:
    """Apply one Workflow to its run's rows (locked by the caller)."""
    meta = workflow.get("metadata") or {}
    status = workflow.get("status") or {}
    wf_phase = str(status.get("phase") or "")
    applied = Applied(run.id, workflow=workflow)
    if run.workflow_name and meta.get("name") and run.workflow_name != meta["name"]:
        return None
    if run.namespace and meta.get("namespace") and run.namespace != meta["namespace"]:
        return None
    jobs = [job for job in run.jobs if job.task != SUMMARY_TASK]
    updates = job_updates(workflow, [job.task for job in jobs], run.stop_reason)
    for job in jobs:
        change = updates[job.task]
        if job.state in JobState.FINAL or JobState.ORDER[change.state] < JobState.ORDER[job.state]:
            continue  # final stays final; a stale event never moves a state back
        if (change.state, change.description) != (job.state, job.description):
            job.state, job.description = change.state, change.description
            job.dirty = applied.changed = True
            applied.changed_jobs.append(job.id)
        if job.started_at is None and change.started_at is not None:
            job.started_at, job.dirty = change.started_at, True
        if change.state in JobState.FINAL:
            job.finished_at, job.dirty = change.finished_at or now(), True
            applied.finished.append(job.task)
    if wf_phase in WORKFLOW_FINAL and run.phase not in RunPhase.FINAL:
        run.phase = RUN_PHASES[wf_phase]
        run.message = str(status.get("message") or "")
        run.finished_at = parse_time(status.get("finishedAt")) or now()
        run.dirty = applied.run_finished = True
    elif wf_phase == "Running" and run.phase in (RunPhase.CREATED, RunPhase.SUBMITTED):
        run.phase, run.dirty = RunPhase.RUNNING, True
    if deleted and run.phase not in RunPhase.FINAL:
        run.phase, run.message, run.finished_at = RunPhase.ERROR, DELETED_EARLY, now()
        run.dirty = applied.run_finished = True
        for job in run.jobs:
            if job.state not in JobState.FINAL:
                job.state, job.description, job.finished_at = JobState.ERROR, DELETED_EARLY, now()
                job.dirty = applied.changed = True
                applied.changed_jobs.append(job.id)
    summary = _settle(run)
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


def _settle(run: RunRow) -> JobRow | None:
    """:func:`service.runs.summary.settle` on rows: the summary job when it changed."""
    summary = next((job for job in run.jobs if job.task == SUMMARY_TASK), None)
    if summary is None or summary.state in JobState.FINAL:
        return None
    state, description = verdict([job for job in run.jobs if job.task != SUMMARY_TASK])
    if (state, description) == (summary.state, summary.description):
        return None
    summary.state, summary.description, summary.dirty = state, description[:1000], True
    if state in JobState.FINAL:
        summary.finished_at = max((job.finished_at for job in run.jobs if job.finished_at), default=None)
    return summary
