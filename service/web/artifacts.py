"""A job's ``artifacts``, linked from the run page.

The local executor keeps them under its workflow folder (``artifacts/<task>/<name>/...``); they
are listed and served from there. On the ``argo`` executor they are in the workflow's artifact
repository (Argo needs one configured), so the page names them without a link.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, send_file

from service.context import Context
from service.store.models import Run

bp = Blueprint("artifacts", __name__)
MAX_LISTED = 200


def _ctx() -> Context:
    ctx: Context = current_app.extensions["forgeflow"]
    return ctx


def local_root(run: Run, task: str) -> Path | None:
    """Where the local executor kept a task's artifacts, if this run ran there (the web tier
    never builds the argo executor: it holds no Kubernetes credentials)."""
    ctx = _ctx()
    if run.executor != "local" or ctx.settings.executor != "local":
        return None
    from service.web.run_views import local_files

    store = local_files(ctx).store
    if store is None or not run.workflow_name or "/" in task or task.startswith("."):
        return None
    root: Path = store.workflow_dir(run.namespace, run.workflow_name) / "artifacts" / task
    return root if root.is_dir() else None


def declared(run: Run, task: str) -> list[str]:
    """The artifact names the task's template declares (from the stored manifest)."""
    manifest = json.loads(run.manifest_json) if run.manifest_json else {}
    for template in (manifest.get("spec") or {}).get("templates") or []:
        labels = (template.get("metadata") or {}).get("labels") or {}
        if labels.get("forgeflow.dev/task") == task:
            return [str(a.get("name")) for a in (template.get("outputs") or {}).get("artifacts") or []]
    return []


def artifacts_of(run: Run, task: str) -> list[tuple[str, str | None]]:
    """(label, link or None) for each artifact file of a task."""
    root = local_root(run, task)
    if root is None:
        return [(f"{name} (in the artifact repository)", None) for name in declared(run, task)]
    found: list[tuple[str, str | None]] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        relative = path.relative_to(root).as_posix()
        found.append((relative, f"/runs/{run.id}/artifacts/{task}/{relative}"))
        if len(found) >= MAX_LISTED:
            break
    return found


@bp.app_context_processor
def helpers() -> dict[str, Any]:
    return {"artifacts_of": artifacts_of}


@bp.get("/runs/<int:run_id>/artifacts/<task>/<path:relative>")
def artifact(run_id: int, task: str, relative: str) -> Any:
    with _ctx().db.session() as session:
        run = session.get(Run, run_id)
        if run is None:
            abort(404)
        root = local_root(run, task)
    if root is None:
        abort(404)
    path = (root / relative).resolve()
    if root.resolve() not in path.parents or not path.is_file():
        abort(404)
    if path.stat().st_size > _ctx().settings.artifact_download_max_bytes:
        abort(413, "larger than artifact_download_max_bytes")
    return send_file(path, as_attachment=True, download_name=path.name)
