"""Run pages and the JSON API: ``/runs``, ``/runs/<id>``, ``/api/runs/<id>``, statuses, logs."""

from __future__ import annotations

import json
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)
from sqlalchemy import select

from service.context import Context
from service.events import Event
from service.executors.base import WorkflowRef
from service.reporting.links import run_url
from service.reporting.queries import commit_statuses
from service.store.models import Job, Run

bp = Blueprint("runs", __name__)


def _ctx() -> Context:
    ctx: Context = current_app.extensions["forgeflow"]
    return ctx


def job_json(job: Job) -> dict[str, Any]:
    return {
        "name": job.name,
        "task": job.task,
        "context": job.context,
        "state": job.state,
        "description": job.description,
        "reported_state": job.reported_state,
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def run_json(run: Run, public_url: str) -> dict[str, Any]:
    return {
        "id": run.id,
        "url": run_url(public_url, run.id),
        "forge": run.forge,
        "repository": run.repo,
        "sha": run.sha,
        "ref": run.ref,
        "event": run.event_kind,
        "pull_request": run.pr_number,
        "phase": run.phase,
        "message": run.message,
        "executor": run.executor,
        "workflow": {"namespace": run.namespace, "name": run.workflow_name},
        "created_at": _iso(run.created_at),
        "finished_at": _iso(run.finished_at),
        "jobs": [job_json(job) for job in run.jobs],
    }


def _load_run(run_id: int) -> Run:
    ctx = _ctx()
    with ctx.db.session() as session:
        run = session.get(Run, run_id)
        if run is None:
            abort(404)
        _ = run.jobs  # load while the session is open
        return run


@bp.get("/")
def index() -> Any:
    return redirect("/runs")


@bp.get("/healthz")
def healthz() -> Any:
    ok = _ctx().db.ping()
    return jsonify(ok=ok), 200 if ok else 503


@bp.get("/api/runs/<int:run_id>")
def api_run(run_id: int) -> Any:
    return jsonify(run_json(_load_run(run_id), _ctx().settings.public_url))


@bp.get("/api/runs")
def api_runs() -> Any:
    ctx = _ctx()
    query = select(Run).order_by(Run.id.desc()).limit(min(int(request.args.get("limit", 50)), 500))
    if request.args.get("repo"):
        query = query.where(Run.repo == request.args["repo"])
    if request.args.get("sha"):
        query = query.where(Run.sha.startswith(request.args["sha"]))
    with ctx.db.session() as session:
        runs = list(session.scalars(query))
        return jsonify([run_json(r, ctx.settings.public_url) for r in runs])


@bp.get("/api/statuses/<path:repo>/<sha>")
def api_statuses(repo: str, sha: str) -> Any:
    """Commit statuses forgeflow reported for a commit."""
    ctx = _ctx()
    return jsonify(commit_statuses(ctx.db, repo, sha, ctx.settings.public_url))


@bp.get("/runs")
def runs_page() -> Any:
    ctx = _ctx()
    with ctx.db.session() as session:
        runs = list(session.scalars(select(Run).order_by(Run.id.desc()).limit(100)))
        for run in runs:
            _ = run.jobs
    return render_template("runs.html", runs=runs)


@bp.get("/runs/<int:run_id>")
def run_page(run_id: int) -> Any:
    run = _load_run(run_id)
    event = Event.from_json(run.event_json)
    logs = {job.task: _log(run, job.task) for job in run.jobs}
    manifest = json.loads(run.manifest_json) if run.manifest_json else None
    return render_template(
        "run.html",
        run=run,
        event=event,
        logs=logs,
        manifest=json.dumps(manifest, indent=2) if manifest else "",
    )


@bp.get("/runs/<int:run_id>/logs/<task>")
def run_log(run_id: int, task: str) -> Response:
    run = _load_run(run_id)
    text = _log(run, task)
    if text is None:
        abort(404)
    return Response(text, mimetype="text/plain")


def _log(run: Run, task: str) -> str | None:
    if not run.workflow_name:
        return None
    try:
        return _ctx().executor.logs(WorkflowRef(run.namespace, run.workflow_name), task)
    except Exception as exc:  # logs are best effort; the page must still render
        return f"(log unavailable: {exc})"
