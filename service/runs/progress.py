"""A run's progress: its Workflow's node phases applied to its run and job rows.

Used for both executors (the local executor writes the same ``status`` shape Argo does), by the
watcher for every Workflow it lists or watches. Each Workflow is applied under the run's lock:
states only move forward and a final state stays final, so a repeated or stale event, a relist
after a restart or a second watcher replica changes nothing twice. The caller reports what
changed (:class:`Applied`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    meta = workflow.get("metadata") or {}
    status = workflow.get("status") or {}
    wf_phase = str(status.get("phase") or "")
    applied = Applied(run_id)
    with ctx.db.session() as session:
        lock_run(session, run_id)
        run = session.get(Run, run_id)
        if run is None or (run.workflow_name and meta.get("name") and run.workflow_name != meta["name"]):
            return None
        if run.namespace and meta.get("namespace") and run.namespace != meta["namespace"]:
            return None
        jobs = [job for job in run.jobs if not is_summary(job)]
        updates = job_updates(workflow, [job.task for job in jobs], run.stop_reason)
        for job in jobs:
            update = updates[job.task]
            if job.state in JobState.FINAL or JobState.ORDER[update.state] < JobState.ORDER[job.state]:
                continue  # final stays final; a stale event never moves a state back
            if (update.state, update.description) != (job.state, job.description):
                job.state, job.description = update.state, update.description
                applied.changed = True
                applied.changed_jobs.append(job.id)
            job.started_at = job.started_at or update.started_at
            if update.state in JobState.FINAL:
                job.finished_at = update.finished_at or now()
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
