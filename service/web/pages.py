"""The pages people keep open: runs (filtered, paged), a repository's, a commit's and a pull
request's runs, and a run with its graph, jobs, steps and logs.

A run page updates itself while the run goes on (``static/run.js`` polls the JSON API and the
job fragments below, and a running job's log from where it stopped); once the run is over the
page is static and cacheable (``ETag``, ``Cache-Control``). A run of a repository the visitor may
not read is the sign-in page for an anonymous visitor and a 404 for a signed-in one.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask_wtf.csrf import generate_csrf
from pydantic import ValidationError

from service.clock import now
from service.executors.log_times import strip
from service.store.models import JobState, Run
from service.web import current
from service.web.api_models import BadQuery, RunsQuery, parse_query, parse_run_id, validation_reason
from service.web.argo_artifacts import page_state
from service.web.auth import current_viewer, sign_in_methods
from service.web.present import human_duration
from service.web.run_views import (
    LogUnavailable,
    get_run,
    job_of,
    job_view,
    list_runs,
    read_log,
    run_key,
    run_view,
)

bp = Blueprint("pages", __name__)
PAGE_SIZE = 50


@bp.app_context_processor
def helpers() -> dict[str, Any]:
    return {
        "viewer": current_viewer(),
        "human_duration": human_duration,
        "clock": clock,
        "csrf_token": generate_csrf,
        "can_sign_in": bool(sign_in_methods(current.context().settings)),
    }


def clock(moment: datetime | None) -> str:
    return moment.strftime("%H:%M:%S") if moment is not None else ""


@bp.get("/")
def index() -> Any:
    return redirect(url_for("pages.runs_page"))


def _list(title: str, fixed: dict[str, Any], heading_links: dict[str, str] | None = None) -> Any:
    query = parse_query(RunsQuery, request.args, strict=False)
    if fixed:
        query = query.model_copy(update=fixed)
    query = query.model_copy(update={"limit": min(query.limit, PAGE_SIZE)})
    ctx, access, viewer = current.context(), current.access(), current_viewer()
    runs, cursor = list_runs(ctx, access, viewer, query)
    views = [run_view(ctx, run, False, with_logs=False) for run in runs]
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "cursor"}
    args.update(request.view_args or {}, cursor=cursor)
    older = url_for(request.endpoint or "pages.runs_page", **args)
    return render_template(
        "runs.html",
        title=title,
        views=views,
        query=query,
        fixed=fixed,
        older=older if cursor else "",
        heading_links=heading_links or {},
    )


@bp.get("/runs")
def runs_page() -> Any:
    return _list("Runs", {})


@bp.get("/repos/<forge>/<path:repo>/-/commit/<sha>")
def commit_runs(forge: str, repo: str, sha: str) -> Any:
    return _list(f"{repo} at {sha[:12]}", _fixed(forge=forge, repo=repo, sha=sha))


@bp.get("/repos/<forge>/<path:repo>/-/pull/<number>")
def pull_runs(forge: str, repo: str, number: str) -> Any:
    return _list(f"{repo} #{number[:10]}", _fixed(forge=forge, repo=repo, pr=number))


@bp.get("/repos/<forge>/<path:repo>")
def repo_runs(forge: str, repo: str) -> Any:
    return _list(repo, _fixed(forge=forge, repo=repo))


def _fixed(**values: str) -> dict[str, Any]:
    """Filters from the path, validated as the query string's would be."""
    try:
        checked = RunsQuery.model_validate(values)
    except ValidationError as exc:
        raise BadQuery(validation_reason(exc)) from exc
    return {key: getattr(checked, key) for key in values}


def readable(run_id_text: str) -> tuple[Run, bool]:
    """The run and whether the visitor may act on it. An anonymous visitor who may not see it
    gets the sign-in page instead (401); anyone else a 404."""
    run = get_run(current.context(), parse_run_id(run_id_text))
    viewer, access = current_viewer(), current.access()
    if run is None or not access.can_read(viewer, run_key(run)):
        if run is not None and not viewer.signed_in:
            from service.web.login import render_login

            body, status = render_login(401, next_url=request.full_path.rstrip("?"))
            abort(current_app.make_response((body, status)))
        abort(404, "no such run (or you may not see it)")
    return run, access.can_act(viewer, run_key(run))


@bp.get("/runs/<run_id>")
def run_page(run_id: str) -> Any:
    run, may_act = readable(run_id)
    ctx = current.context()
    view = run_view(ctx, run, may_act)
    manifest = json.dumps(json.loads(run.manifest_json), indent=2) if run.manifest_json else ""
    response = current_app.make_response(
        render_template(
            "run.html",
            view=view,
            run=run,
            manifest=manifest,
            nonce=secrets.token_hex(8),
            requested=request.args.get("requested", "")[:80],
        )
    )
    return _cacheable(response, run, view.final, may_act)


def _cacheable(response: Response, run: Run, final: bool, personal: bool) -> Any:
    """Finished runs: cacheable (shared caches too, for anonymous visitors); running: revalidate."""
    viewer = current_viewer()
    parts = [str(run.id), run.phase, str(run.updated_at), viewer.name, viewer.role]
    parts += [f"{j.state}{j.updated_at}" for j in run.jobs]
    server = current.context().settings.argo_server_url  # argo: artifact links, the TTL passing
    parts.append(page_state(run.executor, run.manifest_json, run.finished_at, server, now()))
    response.set_etag(hashlib.sha256("|".join(parts).encode()).hexdigest()[:32])
    if final and not viewer.signed_in and not personal:
        response.headers["Cache-Control"] = "public, max-age=300"
    elif final:
        response.headers["Cache-Control"] = "private, max-age=60"
    else:
        response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Vary"] = "Cookie, Authorization"
    return response.make_conditional(request)


@bp.get("/runs/<run_id>/jobs/<task>")
def job_fragment(run_id: str, task: str) -> Any:
    """One job's section of the run page (the page's script swaps it in when the job changes)."""
    run, _ = readable(run_id)
    job = job_of(run, task)
    view = job_view(current.context(), run, job, with_log=True)
    response = current_app.make_response(render_template("_job.html", j=view, run=run))
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/runs/<run_id>/logs/<task>")
def raw_log(run_id: str, task: str) -> Any:
    run, _ = readable(run_id)
    job = job_of(run, task)
    try:
        text = read_log(current.context(), run, task)
    except LogUnavailable:
        abort(503, "the log cannot be read right now; try again soon")
    if text is None:
        abort(404, "this job has no log (yet)")
    body = text if request.args.get("timestamps") == "1" else strip(text)
    response = Response(body, mimetype="text/plain")
    response.headers["Cache-Control"] = (
        "private, max-age=300" if job.state in JobState.FINAL else "private, no-cache"
    )
    return response
