"""``forgeflow/summary``: one more status per run, for teams whose branch protection requires a
single context. Opt-in (``summary_status``, also per repository). It is pending while any job
runs, ``success`` when every job of the run passed (required jobs a filter skipped count as
passed), ``failure`` naming the jobs that did not. Its row is a job of the run that is never in
the Workflow; :func:`settle` recomputes it wherever a run's jobs change (``progress``), and
stopping a run ends it as ``error`` with the other unfinished jobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from service.store.models import Job, JobState, Run

SUMMARY_TASK = "forgeflow-summary"
SUMMARY_CONTEXT = "forgeflow/summary"
SUMMARY_NAME = "summary"


def is_summary(job: Job) -> bool:
    return job.task == SUMMARY_TASK


def summary_job(description: str = "queued") -> Job:
    return Job(name=SUMMARY_NAME, task=SUMMARY_TASK, context=SUMMARY_CONTEXT, description=description)


class Counted(Protocol):
    """What a verdict reads of a job (an ORM row, or the watcher's plain row)."""

    @property
    def state(self) -> str: ...

    @property
    def context(self) -> str: ...


def verdict(jobs: Sequence[Counted]) -> tuple[str, str]:
    """(state, description) of the summary of ``jobs`` (the run's other jobs)."""
    if not jobs:
        return JobState.SUCCESS, "no job runs for this event"
    waiting = [j for j in jobs if j.state not in JobState.FINAL]
    if waiting:
        return JobState.PENDING, f"waiting for {len(waiting)} of {len(jobs)} jobs"
    failed = [j.context.removeprefix("forgeflow/") for j in jobs if j.state != JobState.SUCCESS]
    if failed:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        return JobState.FAILURE, f"{len(failed)} of {len(jobs)} jobs did not pass: {shown}"
    return JobState.SUCCESS, f"all {len(jobs)} jobs passed"


def settle(run: Run) -> Job | None:
    """Bring the run's summary up to date (inside the caller's transaction); the summary row
    when it changed, else None."""
    summary = next((j for j in run.jobs if is_summary(j)), None)
    if summary is None or summary.state in JobState.FINAL:
        return None
    state, description = verdict([j for j in run.jobs if not is_summary(j)])
    if (state, description) == (summary.state, summary.description):
        return None
    summary.state, summary.description = state, description[:1000]
    if state in JobState.FINAL:
        summary.finished_at = max((j.finished_at for j in run.jobs if j.finished_at), default=None)
    return summary
