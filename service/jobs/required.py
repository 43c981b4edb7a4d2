"""Required jobs that a filter skipped: reported as passed ("skipped: <why>") instead of not at
all, so a branch protection rule that requires them does not wait forever. Pure.

A job is required when its job file says ``required: true`` or the repository's policy lists it
(``required_jobs``). Only a filter's no counts (``branches``, ``tags``, ``labels``, ``if:``,
``paths``): a job for another kind of event is not this event's business. A matrix job is
skipped cell by cell, each under the context its run would have had.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from service.jobs.matcher import Decision
from service.jobs.matrix import expand
from service.jobs.model import JobFile
from service.jobs.units import NO_LIMIT, cell_context, cell_task_name, task_name

SKIPPED_PREFIX = "skipped: "


@dataclass(frozen=True)
class SkippedJob:
    """A required job (or matrix cell) that does not run, and why."""

    job: str
    task: str
    context: str
    reason: str  # "skipped: <why>"


def skipped_required(
    job_file: JobFile,
    decisions: Sequence[Decision],
    required: Collection[str] = (),
    taken: Collection[str] = (),
) -> tuple[SkippedJob, ...]:
    """The required jobs among ``decisions`` that a filter skipped, one per cell; ``taken``:
    task names already used in the run."""
    names: set[str] = set(taken)
    skipped: list[SkippedJob] = []
    for decision in decisions:
        spec = job_file.jobs.get(decision.job)
        if spec is None or decision.matched or not decision.filtered:
            continue
        if not (spec.required or decision.job in required):
            continue
        reason = SKIPPED_PREFIX + decision.reason
        main = task_name(f"skip-{decision.job}", names)
        if spec.matrix is None:
            skipped.append(SkippedJob(decision.job, main, f"forgeflow/{decision.job}", reason))
            continue
        inner: set[str] = set()
        for cell in expand(spec.matrix, NO_LIMIT):
            task = f"{main}.{cell_task_name(cell, inner)}"
            skipped.append(SkippedJob(decision.job, task, cell_context(decision.job, cell), reason))
    return tuple(skipped)
