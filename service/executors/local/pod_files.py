"""What one pod takes in and hands on: its input artifacts (passed from another task, kept by
key in the local artifact repository, raw text, a git checkout with the artifact's
credentials), and, when it ends, its output parameters and artifacts.

Container paths under ``/workspace`` map to the attempt's own ``<pod_dir>/workspace``
(:func:`host_path`); nothing is read or written through a link that leads out of it.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from service.executors.local.env import EnvError, secret_value
from service.executors.local.git import GitError
from service.executors.local.pod_context import PodContext
from service.executors.local.repository import copy_item
from service.executors.local.values import WORKSPACE, inside_workspace


class PodError(Exception):
    """The pod could not start (artifact, env, command); the node ends in ``Error``."""


def host_path(workspace: Path, container_path: str) -> Path:
    """Where a container path under ``/workspace`` lives on this machine."""
    relative = container_path[len(WORKSPACE) :].strip("/")
    return workspace / relative if relative else workspace


def load_artifact(
    ctx: PodContext,
    artifact: dict[str, object],
    workspace: Path,
    cancel: threading.Event,
    deadline: float | None,
) -> None:
    dest = host_path(workspace, str(artifact["path"]))
    name = artifact.get("name")
    if not inside_workspace(workspace, dest):
        where = artifact["path"]
        raise PodError(f"failed to load input artifact {name!r}: {where} leads outside {WORKSPACE}")
    if "from" in artifact:
        _load_passed(ctx, artifact, dest)
        return
    if "s3" in artifact:
        s3 = artifact["s3"] if isinstance(artifact["s3"], dict) else {}
        key = str(s3.get("key"))
        found = ctx.repository is not None and ctx.repository.load(key, dest)
        if not found and not artifact.get("optional"):
            raise PodError(f"failed to load input artifact {name!r}: nothing saved under {key!r}")
        return
    if "raw" in artifact:
        raw = artifact["raw"] if isinstance(artifact["raw"], dict) else {}
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(str(raw.get("data", "")))
        return
    git = artifact["git"] if isinstance(artifact["git"], dict) else {}
    repo, revision = str(git.get("repo")), str(git.get("revision") or "")
    try:
        credentials = _git_credentials(ctx, git)
        ctx.git.checkout(repo, revision, dest, cancel=cancel, deadline=deadline, credentials=credentials)
    except (GitError, EnvError) as exc:
        raise PodError(f"failed to load input artifact {name!r} from {repo}: {exc}") from exc


def _load_passed(ctx: PodContext, artifact: dict[str, object], dest: Path) -> None:
    """An artifact another task saved (``from: {{tasks.X.outputs.artifacts.Y}}``)."""
    origin = artifact["from"]
    task, source = (str(origin[0]), str(origin[1])) if isinstance(origin, tuple | list) else ("", "")
    folder = ctx.artifacts_root / str(task) / str(source) if ctx.artifacts_root else None
    items = sorted(folder.iterdir()) if folder is not None and folder.is_dir() else []
    if not items:
        if artifact.get("optional"):
            return
        raise PodError(f"failed to load input artifact {artifact.get('name')!r}: {task} saved no {source!r}")
    copy_item(items[0], dest)


def _git_credentials(ctx: PodContext, git: dict[str, object]) -> tuple[str, str] | None:
    """The git artifact's ``usernameSecret``/``passwordSecret`` values, as Argo reads them."""
    refs = [git.get("usernameSecret"), git.get("passwordSecret")]
    if not any(isinstance(ref, dict) for ref in refs):
        return None
    user, password = (
        secret_value(ctx.data_dir, ref, ctx.own_secrets) if isinstance(ref, dict) else "" for ref in refs
    )
    return user, password


def read_parameters(ctx: PodContext) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """The output parameters' values (from their files), and a problem when one is missing."""
    workspace = ctx.pod_dir / "workspace"
    values: list[tuple[str, str]] = []
    for parameter in ctx.template.output_parameters:
        source = parameter.get("valueFrom") or {}
        path = host_path(workspace, str(source.get("path", "")))
        if not inside_workspace(workspace, path, follow=True):
            return tuple(values), f"failed to save outputs: {source.get('path')} leads outside {WORKSPACE}"
        try:
            values.append((str(parameter["name"]), path.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            if "default" not in source:
                return tuple(values), f"failed to save outputs: {source.get('path')} not found"
            values.append((str(parameter["name"]), str(source["default"])))
    return tuple(values), None


def save_outputs(ctx: PodContext, succeeded: bool = True) -> str | None:
    """Copy the template's output artifacts out of the workspace; a problem, or None."""
    if ctx.artifacts_dir is None:
        return None
    workspace = ctx.pod_dir / "workspace"
    for artifact in ctx.template.outputs:
        source = host_path(workspace, str(artifact.get("path", "")))
        dest = ctx.artifacts_dir / str(artifact.get("name")) / source.name
        if not inside_workspace(workspace, source):
            return f"failed to save outputs: {artifact.get('path')} leads outside {WORKSPACE}"
        if not os.path.lexists(source):
            if artifact.get("optional"):
                continue
            return f"failed to save outputs: {artifact.get('path')} not found"
        if "s3" in artifact:
            if ctx.repository is not None and succeeded:
                ctx.repository.save(str((artifact["s3"] or {}).get("key")), source)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest, follow_symlinks=False)
    return None
