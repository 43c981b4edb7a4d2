"""Recording runs: a planned run with its jobs and manifest, or a broken job file, in one
transaction each; and finding a run again by the key of what started it.

A run's ``trigger_key`` is unique (``delivery:<id>`` for a delivery, ``comment:…`` for one
command of a comment), so whatever repeats a trigger finds its run instead of making another.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from service.clock import now
from service.context import Context
from service.events import Event
from service.jobs.loader import JobFileError
from service.jobs.plan import WorkflowPlan
from service.jobs.required import SkippedJob
from service.reporting.check_runs import JobView
from service.reporting.report_leases import HeldJobs
from service.runs.recipe import InvalidWorkflow, workflow
from service.runs.summary import settle, summary_job
from service.runs.trust import Trust
from service.settings import Settings
from service.store.models import JOBS, RUNS, Job, JobState, Run, RunPhase

log = logging.getLogger(__name__)
CONFIG_CONTEXT = "forgeflow/config"


_RUN_BY_KEY = select(RUNS.c.id).where(RUNS.c.trigger_key == bindparam("key"))
_INSERT_RUN = insert(RUNS).returning(RUNS.c.id)
_INSERT_JOBS = insert(JOBS).returning(JOBS.c.id, sort_by_parameter_order=True)
_UPDATE_RUN = update(RUNS).where(RUNS.c.id == bindparam("run_pk"))  # SET: the columns given


def run_by_key(ctx: Context, trigger_key: str) -> int | None:
    with ctx.db.transaction() as connection:
        found: int | None = connection.execute(_RUN_BY_KEY, {"key": trigger_key}).scalar()
        return found


def _new_run(event: Event, instance: str, trigger_key: str, delivery_pk: int | None, executor: str) -> Run:
    return Run(
        trigger_key=trigger_key,
        delivery_pk=delivery_pk,
        forge=event.forge,
        instance=instance,
        repo=event.repository.full_name,
        sha=event.sha,
        ref=event.ref,
        event_kind=event.kind.value,
        pr_number=event.pull_request.number if event.pull_request else None,
        event_json=event.to_json(),
        executor=executor,
    )


def record_config_error(
    ctx: Context,
    event: Event,
    instance: str,
    trigger_key: str,
    delivery_pk: int | None,
    exc: JobFileError,
) -> int:
    """A run that ends at once with a failing ``forgeflow/config`` status saying where."""
    with ctx.db.session() as session:
        run = _new_run(event, instance, trigger_key, delivery_pk, ctx.settings.executor)
        run.phase = RunPhase.CONFIG_ERROR
        run.message = str(exc)
        run.finished_at = now()
        run.jobs.append(
            Job(
                name="config",
                task="config",
                context=CONFIG_CONTEXT,
                state=JobState.FAILURE,
                description=exc.summary,
                finished_at=now(),
            )
        )
        _add_summary(ctx.settings, event, run)
        session.add(run)
        session.flush()
        return run.id


def _add_skipped(run: Run, skipped: tuple[SkippedJob, ...]) -> None:
    """Required jobs a filter skipped: passed at once, saying why."""
    for job in skipped:
        run.jobs.append(
            Job(
                name=job.job,
                task=job.task,
                context=job.context,
                state=JobState.SUCCESS,
                description=job.reason[:1000],
                finished_at=now(),
            )
        )


def _add_summary(settings: Settings, event: Event, run: Run) -> None:
    """``forgeflow/summary``, where the settings ask for it, settled on what the run has."""
    if settings.summary_for(event.repository.full_name):
        run.jobs.append(summary_job())
        settle(run)


def record_skipped(
    ctx: Context,
    event: Event,
    instance: str,
    trigger_key: str,
    delivery_pk: int | None,
    skipped: tuple[SkippedJob, ...],
) -> int:
    """A run in which no job runs: only required jobs a filter skipped (and the summary), passed."""
    with ctx.db.session() as session:
        run = _new_run(event, instance, trigger_key, delivery_pk, ctx.settings.executor)
        run.phase, run.finished_at = RunPhase.SUCCEEDED, now()
        run.message = "no job runs for this event; required jobs are reported as skipped"
        _add_skipped(run, skipped)
        _add_summary(ctx.settings, event, run)
        session.add(run)
        session.flush()
        return run.id


@dataclass(frozen=True)
class NewRun:
    """A run's columns as just written that decide which runs it supersedes (see
    :func:`service.runs.stopping.stop_superseded_runs`)."""

    id: int
    forge: str
    instance: str
    repo: str
    sha: str
    pr_number: int | None
    delivery_pk: int | None
    concurrency_group: str | None
    cancel_in_progress: bool | None


@dataclass(frozen=True)
class Recorded:
    """A run just recorded, as :func:`resume_run <service.runs.start.resume_run>` needs it
    (so it is not read back): its phase, its Workflow and its concurrency group; ``row`` what
    decides which runs it supersedes."""

    run_id: int
    phase: str
    manifest: dict[str, Any]
    concurrency_group: str = ""
    row: NewRun | None = None
    held: HeldJobs | None = None  # its jobs, their report leases held by the recorder


# what a job's column holds when a new row does not say (the model's scalar defaults)
_JOB_DEFAULTS: dict[str, Any] = {
    column.key: column.default.arg
    for column in Job.__table__.columns
    if column.default is not None and not callable(column.default.arg)
}


_COLUMN_KEYS = {model: frozenset(column.key for column in model.__table__.columns) for model in (Run, Job)}


def _values(row: Run | Job) -> dict[str, Any]:
    """The columns set on a new (transient) row; unset ones get their defaults on insert. (A
    transient row holds what was set in its ``__dict__``: read there, not through the ORM's
    attribute machinery for every column.)"""
    keys = _COLUMN_KEYS[type(row)]
    return {key: value for key, value in row.__dict__.items() if key in keys and value is not None}


def record_run(
    ctx: Context,
    event: Event,
    instance: str,
    trigger_key: str,
    delivery_pk: int | None,
    plan: WorkflowPlan,
    trust: Trust,
    skipped: tuple[SkippedJob, ...] = (),
) -> Recorded:
    """Record the run, its jobs (pending) and its Workflow (the plan bound to the run's id) in
    one transaction of three statements (the run, every job at once, the Workflow). An
    unapproved run waits, its jobs pending with a description saying how to approve it. The
    jobs' report leases are taken as they are written (``Recorded.held``): the caller posts
    their first states next, or gives the leases back."""
    run = _new_run(event, instance, trigger_key, delivery_pk, ctx.settings.executor)
    with ctx.db.transaction() as connection:
        run.id = connection.execute(_INSERT_RUN, _values(run)).scalar_one()
        waiting = not trust.approved
        if waiting:
            run.phase = RunPhase.WAITING
            run.message = waiting_message(ctx.settings)
        description = waiting_description(ctx.settings) if waiting else "queued"
        for task in plan.tasks:
            run.jobs.append(Job(name=task.job, task=task.task, context=task.context, description=description))
        for refused in plan.refused:  # final at once: never in the Workflow
            run.jobs.append(
                Job(
                    name=refused.job,
                    task=refused.task,
                    context=refused.context,
                    state=refused.state,  # error, or success for a job skipped with a need
                    description=refused.reason,
                    finished_at=now(),
                )
            )
        _add_skipped(run, skipped)
        run.concurrency_group, run.cancel_in_progress = plan.concurrency_group, plan.cancel_in_progress
        if not plan.tasks:  # every matched job was refused or skipped: nothing to submit
            errors = [r for r in plan.refused if r.state == JobState.ERROR]
            phase = RunPhase.ERROR if errors else RunPhase.SUCCEEDED
            run.phase, run.message, run.finished_at = phase, (errors or list(plan.refused))[0].reason, now()
        try:
            manifest = workflow(plan, run.id, ctx.settings.public_url)
        except InvalidWorkflow as exc:
            log.error("run %s compiled into an invalid Workflow: %s", run.id, exc)
            manifest = exc.manifest
            run.phase = RunPhase.ERROR
            run.message = f"invalid Workflow: {exc}"
            run.finished_at = now()
            for job in run.jobs:
                if job.state not in JobState.FINAL:
                    job.state = JobState.ERROR
                    job.description = "forgeflow built an invalid Workflow; see the run page"
        _add_summary(ctx.settings, event, run)
        run.manifest_json = json.dumps(manifest, sort_keys=True)
        run.namespace = plan.namespace
        run.workflow_name = manifest["metadata"]["name"]
        held = None
        if run.jobs:  # one statement, however many jobs (executemany: the same keys in every row)
            # with their report leases: this worker posts their first states next (resume_run)
            until = now() + ctx.db.leases.lease
            rows = [{**_values(job), "run_id": run.id, "report_lease_until": until} for job in run.jobs]
            keys = {key for row in rows for key in row}
            rows = [{k: row.get(k, _JOB_DEFAULTS.get(k)) for k in keys} for row in rows]
            ids = connection.execute(_INSERT_JOBS, rows).scalars().all()
            jobs = sorted(zip(ids, map(_view, rows), strict=True), key=lambda pair: pair[0])
            held = HeldJobs(run.id, event, instance, run.sha, (run.namespace, run.workflow_name), tuple(jobs))
        connection.execute(
            _UPDATE_RUN,
            {
                "run_pk": run.id,
                "phase": run.phase or RunPhase.CREATED,
                "message": run.message or "",
                "finished_at": run.finished_at,
                "concurrency_group": run.concurrency_group,
                "cancel_in_progress": run.cancel_in_progress,
                "manifest_json": run.manifest_json,
                "namespace": run.namespace,
                "workflow_name": run.workflow_name,
            },
        )
    row = NewRun(
        run.id, run.forge, run.instance, run.repo, run.sha, run.pr_number, run.delivery_pk,
        run.concurrency_group, run.cancel_in_progress,
    )  # fmt: skip
    return Recorded(run.id, run.phase or RunPhase.CREATED, manifest, run.concurrency_group or "", row, held)


def _view(row: dict[str, Any]) -> JobView:
    """A job as just written (every row has every column the insert sets; the rest are null)."""
    return JobView(
        row["name"], row["task"], row["context"], row.get("state", JobState.PENDING),
        row.get("description", ""), row.get("started_at"), row.get("finished_at"),
    )  # fmt: skip


def waiting_description(settings: Settings) -> str:
    return f"waiting for approval: a maintainer can comment {settings.comment_prefix} ok-to-test"


def waiting_message(settings: Settings) -> str:
    return (
        "This pull request comes from a fork by someone without write access: it runs once a "
        f"maintainer comments {settings.comment_prefix} ok-to-test (for each new commit)."
    )
