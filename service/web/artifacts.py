"""A job's ``artifacts``, on the run page.

- The local executor keeps them under its workflow folder (``artifacts/<task>/<name>/...``);
  they are listed and served from there (files up to ``artifact_download_max_bytes``). The
  sweep removes them ``artifact_retention_days`` after the run was created and marks the run
  (``artifacts_expired_at``): the page then says they expired, and their links answer 410.
- On the ``argo`` executor they are in the cluster's artifact repository until Argo deletes
  them with the Workflow: linked to Argo Server when ``argo_server_url`` names one, else named
  by their key (see :mod:`service.web.argo_artifacts`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, send_file

from service.clock import now
from service.context import Context
from service.store.models import Job, JobState, Run
from service.web.argo_artifacts import Listed, job_artifacts, job_template, listed

bp = Blueprint("artifacts", __name__)
MAX_LISTED = 200


def _ctx() -> Context:
    ctx: Context = current_app.extensions["forgeflow"]
    return ctx


def _manifest(run: Run) -> dict[str, Any]:
    return json.loads(run.manifest_json) if run.manifest_json else {}


def local_root(run: Run, task: str) -> Path | None:
    """Where the local executor kept a task's artifacts, if this run ran there (the web tier
    never builds the argo executor: it holds no Kubernetes credentials)."""
    ctx = _ctx()
    if run.executor != "local" or ctx.settings.executor != "local" or run.artifacts_expired_at:
        return None
    from service.web.run_views import local_files

    store = local_files(ctx).store
    if store is None or not run.workflow_name or "/" in task or task.startswith("."):
        return None
    root: Path = store.workflow_dir(run.namespace, run.workflow_name) / "artifacts" / task
    return root if root.is_dir() else None


def declared(run: Run, task: str) -> list[str]:
    """The artifact names the task's template declares (from the stored manifest)."""
    return job_artifacts(job_template(_manifest(run), task))


def _expired(run: Run, task: str) -> list[Listed]:
    when = run.artifacts_expired_at
    note = f"expired: removed on {when:%Y-%m-%d}" if when else "expired"
    days = _ctx().settings.artifact_retention_days
    if days:
        note += f" (kept {days:g} days, artifact_retention_days)"
    return [Listed(name, None, note) for name in declared(run, task)]


def _argo(run: Run, job: Job) -> list[Listed]:
    ran = job.started_at is not None and not job.description.startswith("skipped")
    return listed(
        _manifest(run),
        namespace=run.namespace,
        workflow=run.workflow_name,
        task=job.task,
        ran=ran,
        final=job.state in JobState.FINAL,
        finished_at=run.finished_at,
        server=_ctx().settings.argo_server_url,
        moment=now(),
    )


def artifacts_of(run: Run, job: Job) -> list[Listed]:
    """The lines of a job's artifacts: each file with its link, or each name with a note."""
    if run.executor == "argo":
        return _argo(run, job)
    if run.artifacts_expired_at:
        return _expired(run, job.task)
    root = local_root(run, job.task)
    if root is None:
        return [Listed(name, None, "kept by the local executor") for name in declared(run, job.task)]
    found: list[Listed] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        relative = path.relative_to(root).as_posix()
        found.append(Listed(relative, f"/runs/{run.id}/artifacts/{job.task}/{relative}"))
        if len(found) >= MAX_LISTED:
            break
    return found


@bp.app_context_processor
def helpers() -> dict[str, Any]:
    return {"artifacts_of": artifacts_of}


@bp.get("/runs/<int:run_id>/artifacts/<task>/<path:relative>")
def artifact(run_id: int, task: str, relative: str) -> Any:
    from service.web.pages import readable

    run, _ = readable(str(run_id))  # who may not see the run gets no file of it either
    if run.artifacts_expired_at:
        abort(410, "this run's artifacts expired (artifact_retention_days)")
    root = local_root(run, task)
    if root is None:
        abort(404)
    path = (root / relative).resolve()
    if root.resolve() not in path.parents or not path.is_file():
        abort(404)
    if path.stat().st_size > _ctx().settings.artifact_download_max_bytes:
        limit = _ctx().settings.artifact_download_max_bytes
        abort(
            413,
            f"this artifact is larger than the download limit ({limit} bytes, artifact_download_max_bytes)",
        )
    return send_file(path, as_attachment=True, download_name=path.name)
