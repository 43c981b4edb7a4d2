"""Runs as the pages and the JSON API show them: found, filtered by who may see them, paged,
their logs read and their jobs described. The one place both read runs from.

Logs come from where the executor keeps them: the local executor's files (``make run``), or the
``workflow_logs`` table on Argo (the watcher copies each job's log there while it runs and when
it ends): the web tier never talks to Kubernetes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from service.clock import now
from service.context import Context
from service.events import Event
from service.executors.base import WorkflowRef

if TYPE_CHECKING:
    from service.executors.local.executor import LocalExecutor
from service.reporting.links import run_url
from service.store.models import Job, JobState, Run, RunPhase
from service.web.api_models import RunsQuery
from service.web.auth import Access, Viewer
from service.web.forge_access import RepoKey
from service.web.graph import boxes_of, job_edges, render_graph
from service.web.logview import LogView, parse_log
from service.web.present import EventLinks, event_links, human_duration, job_message, job_seconds, run_message

log = logging.getLogger(__name__)
SCAN_FACTOR = 5  # a page looks at most this many times its size of runs for ones the viewer may see
MAX_LOG_BYTES = 8 * 1024 * 1024  # of a local log file read for the pages: its end
MAX_PAGE_LINES = 3000  # lines of one job's log on the run page (the raw log has them all)


class LogUnavailable(Exception):
    """The log could not be read (the reason is logged, never shown: it may name paths)."""


def run_key(run: Run) -> RepoKey:
    return RepoKey(run.forge, run.instance, run.repo)


def job_of(run: Run, task: str) -> Job:
    """The run's job ``task`` (404 when it has none)."""
    from flask import abort

    job = next((j for j in run.jobs if j.task == task), None)
    if job is None:
        abort(404, f"run {run.id} has no job {task[:100]!r}")
    return job


def get_run(ctx: Context, run_id: int) -> Run | None:
    with ctx.db.session() as session:
        return session.scalars(select(Run).options(selectinload(Run.jobs)).where(Run.id == run_id)).first()


def filtered(query: RunsQuery) -> Select[tuple[Run]]:
    statement = select(Run).options(selectinload(Run.jobs))
    if query.forge:
        statement = statement.where(Run.forge == query.forge)
    if query.instance:
        statement = statement.where(Run.instance == query.instance)
    if query.repo:
        statement = statement.where(Run.repo == query.repo)
    if query.pr is not None:
        statement = statement.where(Run.pr_number == query.pr)
    if query.branch:
        statement = statement.where(Run.ref.in_((f"refs/heads/{query.branch}", query.branch)))
    if query.sha:
        statement = statement.where(
            Run.sha == query.sha if len(query.sha) >= 40 else Run.sha.startswith(query.sha, autoescape=True)
        )
    if query.state:
        statement = statement.where(Run.phase == query.state)
    if query.event:
        statement = statement.where(Run.event_kind == query.event)
    if query.since:
        statement = statement.where(Run.created_at >= query.since)
    if query.until:
        statement = statement.where(Run.created_at < query.until)
    return statement


def list_runs(ctx: Context, access: Access, viewer: Viewer, query: RunsQuery) -> tuple[list[Run], str | None]:
    """One page of the runs ``viewer`` may see, newest first, and the cursor of the next page."""
    statement = filtered(query).order_by(Run.id.desc())
    before, scanned = query.before_id, 0
    found: list[Run] = []
    with ctx.db.session() as session:
        while len(found) < query.limit and scanned < query.limit * SCAN_FACTOR:
            batch_statement = statement.limit(query.limit)
            if before is not None:
                batch_statement = batch_statement.where(Run.id < before)
            batch = list(session.scalars(batch_statement))
            if not batch:
                return found, None
            for run in batch:
                scanned += 1
                before = run.id
                if access.can_read(viewer, run_key(run)):
                    found.append(run)
                    if len(found) == query.limit:
                        break
            if len(batch) < query.limit and len(found) < query.limit:
                return found, None
    return found, f"r{before}" if before is not None and before > 1 else None


def local_files(ctx: Context) -> LocalExecutor:
    """The local executor's files, which the web tier reads (it runs no executor of its own)."""
    from service.executors.local.executor import LocalExecutor, LocalExecutorConfig

    return LocalExecutor(
        LocalExecutorConfig(data_dir=ctx.settings.data_dir, default_namespace=ctx.settings.namespace)
    )


def read_log(ctx: Context, run: Run, task: str) -> str | None:
    """A job's log with its lines' times; None when there is none (yet)."""
    if not run.workflow_name:
        return None
    try:
        if run.executor == "local" and ctx.settings.executor == "local":
            return local_files(ctx).stamped_logs(
                WorkflowRef(run.namespace, run.workflow_name), task, max_bytes=MAX_LOG_BYTES
            )
        from service.store.workflow_logs import DatabaseLogArchive

        return DatabaseLogArchive(ctx.db).get(run.namespace, run.workflow_name, task)
    except Exception as exc:
        log.warning("log of run %s job %s unreadable: %s", run.id, task, exc)
        raise LogUnavailable() from exc


@dataclass
class JobView:
    job: Job
    view: LogView | None
    log_error: bool
    seconds: float | None
    message: str
    log_chars: int = 0  # how much of the log the page shows (live logs go on from there)

    @property
    def duration(self) -> str:
        return human_duration(self.seconds)

    @property
    def final(self) -> bool:
        return self.job.state in JobState.FINAL


@dataclass
class RunView:
    run: Run
    event: Event
    links: EventLinks
    jobs: list[JobView]
    summary: str
    actions: list[str]
    graph: Markup = field(default_factory=lambda: Markup(""))

    @property
    def final(self) -> bool:
        return self.run.phase in RunPhase.FINAL


def allowed_actions(run: Run, may_act: bool) -> list[str]:
    """What may be done to the run now, by someone who may act on it."""
    if not may_act:
        return []
    if run.phase == RunPhase.WAITING:
        return ["approve", "cancel"]
    if run.phase not in RunPhase.FINAL:
        return ["cancel"]
    failed = any(job.state in (JobState.FAILURE, JobState.ERROR) for job in run.jobs)
    return ["rerun", "rerun-failed"] if failed else ["rerun"]


def job_view(ctx: Context, run: Run, job: Job, *, with_log: bool) -> JobView:
    view, error, chars = None, False, 0
    if with_log:
        try:
            text = read_log(ctx, run, job.task)
        except LogUnavailable:
            text, error = None, True
        if text is not None:
            chars = text.rfind("\n") + 1 if job.state not in JobState.FINAL else len(text)
            text = text[:chars]
            view = parse_log(
                text, job_final=job.state in JobState.FINAL, job_passed=job.state == JobState.SUCCESS
            )
            for step in view.steps:
                if len(step.lines) > MAX_PAGE_LINES:
                    step.lines = step.lines[-MAX_PAGE_LINES:]
    seconds = job_seconds(job.started_at, job.finished_at, view, now()) if job.started_at else None
    return JobView(job, view, error, seconds, job_message(job.name, job.state, job.description, view), chars)


def run_view(ctx: Context, run: Run, may_act: bool, *, with_logs: bool = True) -> RunView:
    event = Event.from_json(run.event_json)
    jobs = [job_view(ctx, run, job, with_log=with_logs) for job in run.jobs]
    summary = run_message(run.phase, run.message, [(j.job.name, j.job.state, j.message) for j in jobs])
    view = RunView(run, event, event_links(event), jobs, summary, allowed_actions(run, may_act))
    manifest = json.loads(run.manifest_json) if run.manifest_json else None
    rows = [(j.job.name, j.job.task, j.job.context, j.job.state, j.duration) for j in jobs]
    boxes = boxes_of(rows)
    view.graph = render_graph(boxes, job_edges(boxes, manifest))
    return view


def _iso(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def job_out(public_url: str, view: JobView) -> dict[str, Any]:
    job = view.job
    return {
        "name": job.name,
        "task": job.task,
        "context": job.context,
        "state": job.state,
        "description": job.description,
        "summary": view.message,
        "reported_state": job.reported_state,
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "duration_seconds": round(view.seconds, 3) if view.seconds is not None else None,
        "log_url": f"{public_url}/api/runs/{job.run_id}/jobs/{job.task}/log",
    }


def run_out(public_url: str, view: RunView) -> dict[str, Any]:
    """The API's run (:class:`service.web.api_models.RunOut`)."""
    run, event = view.run, view.event
    pr = event.pull_request
    return {
        "id": run.id,
        "url": run_url(public_url, run.id),
        "forge": run.forge,
        "instance": run.instance,
        "repository": run.repo,
        "sha": run.sha,
        "ref": run.ref,
        "branch": event.branch or (pr.source_branch if pr else ""),
        "event": run.event_kind,
        "sender": event.sender,
        "pull_request": run.pr_number,
        "phase": run.phase,
        "message": run.message,
        "summary": view.summary,
        "executor": run.executor,
        "workflow": {"namespace": run.namespace, "name": run.workflow_name},
        "created_at": _iso(run.created_at),
        "finished_at": _iso(run.finished_at),
        "links": view.links.__dict__,
        "actions": view.actions,
        "jobs": [job_out(public_url, job) for job in view.jobs],
    }
