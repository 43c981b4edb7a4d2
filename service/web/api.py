"""The JSON API: runs (filtered, paged by cursor), one run, a job's log from an offset,
commit statuses, who the caller is, and the OpenAPI document that describes them
(:mod:`service.web.openapi`). Every query string is validated by its model first
(:func:`service.web.api_models.parse_query`): bad input is a 400 that names the parameter.

A run someone may not see is a 404 (signed in) or a 401 (anonymous), never its contents.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, request
from sqlalchemy import select

from service.reporting.queries import commit_statuses
from service.store.models import Job, JobState, Run
from service.web import current
from service.web.api_models import (
    Empty,
    LogQuery,
    RunsQuery,
    parse_query,
    parse_run_id,
)
from service.web.auth import current_viewer
from service.web.logview import parse_log
from service.web.openapi import document
from service.web.run_views import (
    LogUnavailable,
    get_run,
    job_of,
    list_runs,
    read_log,
    run_key,
    run_out,
    run_view,
)

bp = Blueprint("api", __name__)
MAX_CHUNK = 256 * 1024  # characters of log per answer


def readable_run(run_id_text: str) -> Run:
    """The run, if the caller may read it (else 401 for anonymous callers, 404 for others)."""
    run = get_run(current.context(), parse_run_id(run_id_text))
    viewer = current_viewer()
    if run is None or not current.access().can_read(viewer, run_key(run)):
        if run is not None and not viewer.signed_in:
            abort(401, "sign in (or send a token) to see this run")
        abort(404, "no such run (or you may not see it)")
    return run


@bp.get("/api/openapi.json")
def openapi() -> Any:
    parse_query(Empty, request.args)
    response = jsonify(document(current.context().settings.public_url))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/api/me")
def me() -> Any:
    parse_query(Empty, request.args)
    viewer = current_viewer()
    return jsonify(role=viewer.role, forge=viewer.forge, instance=viewer.instance, login=viewer.login)


@bp.get("/api/runs")
def api_runs() -> Any:
    query = parse_query(RunsQuery, request.args)
    ctx, access, viewer = current.context(), current.access(), current_viewer()
    runs, cursor = list_runs(ctx, access, viewer, query)
    public_url = ctx.settings.public_url
    out = [
        run_out(public_url, run_view(ctx, run, access.can_act(viewer, run_key(run)), with_logs=False))
        for run in runs
    ]
    return jsonify(runs=out, next_cursor=cursor)


@bp.get("/api/runs/<run_id>")
def api_run(run_id: str) -> Any:
    parse_query(Empty, request.args)
    run = readable_run(run_id)
    ctx, access = current.context(), current.access()
    view = run_view(ctx, run, access.can_act(current_viewer(), run_key(run)), with_logs=True)
    response = jsonify(run_out(ctx.settings.public_url, view))
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/api/runs/<run_id>/jobs/<task>/log")
def api_log(run_id: str, task: str) -> Any:
    query = parse_query(LogQuery, request.args)
    run = readable_run(run_id)
    job = job_of(run, task)
    try:
        text = read_log(current.context(), run, task) or ""
    except LogUnavailable:
        abort(503, "the log cannot be read right now; try again soon")
    final = job.state in JobState.FINAL
    return jsonify(log_chunk(text, query, final))


def log_chunk(text: str, query: LogQuery, final: bool) -> dict[str, Any]:
    """The log from ``offset`` on: whole lines (an unfinished last line waits for the next poll
    unless the job is over), at most :data:`MAX_CHUNK` characters. An offset past the end (the
    log was cut to its last part) starts again from 0."""
    offset = query.offset if query.offset <= len(text) else 0
    end = min(len(text), offset + MAX_CHUNK)
    if end < len(text) or not final:
        newline = text.rfind("\n", offset, end)
        end = newline + 1 if newline >= 0 else offset
    piece = text[offset:end]
    complete = final and end >= len(text)
    body: dict[str, Any] = {
        "offset": offset,
        "next_offset": end,
        "complete": complete,
        "text": "",
        "html": "",
    }
    if query.format == "html":
        from flask import render_template

        view = parse_log(piece, job_final=False, job_passed=False)
        body["html"] = render_template("_lines.html", steps=view.steps, base=_line_base(text, offset))
    else:
        from service.executors.log_times import strip

        body["text"] = strip(piece)
    return body


def _line_base(text: str, offset: int) -> int:
    """How many lines come before ``offset`` (line numbers continue across chunks)."""
    return text.count("\n", 0, offset)


@bp.get("/api/statuses/<path:repo>/<sha>")
def api_statuses(repo: str, sha: str) -> Any:
    """Commit statuses forgeflow reported for a commit (of runs the caller may see)."""
    parse_query(Empty, request.args)
    from service.web.api_models import BadQuery, RunsQuery

    try:
        RunsQuery.model_validate({"repo": repo, "sha": sha})
    except Exception as exc:
        raise BadQuery("repo must be namespace/name and sha 4 to 64 hex digits") from exc
    ctx, access, viewer = current.context(), current.access(), current_viewer()
    with ctx.db.session() as session:
        keys = session.execute(
            select(Run.forge, Run.instance, Run.repo)
            .join(Job)
            .where(Run.repo == repo, Run.sha.startswith(sha, autoescape=True))
            .distinct()
        ).all()
    from service.web.forge_access import RepoKey

    if not all(access.can_read(viewer, RepoKey(*key)) for key in keys):
        abort(401 if not viewer.signed_in else 404, "no such commit (or you may not see it)")
    return jsonify(commit_statuses(ctx.db, repo, sha, ctx.settings.public_url))
