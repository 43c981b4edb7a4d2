"""Environment of a local pod: a minimal base plus the template's ``env``/``envFrom``.

Secrets and config maps are folders of files: ``<data_dir>/secrets/<name>/<key>`` (and
``<data_dir>/configmaps/<name>/<key>``); a file's exact content is the value, as a Kubernetes
Secret's bytes are. A run's own Secrets (its checkout's credentials, made when it is
submitted) are in ``<workflow dir>/secrets/<name>/<key>`` and found first.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from service.executors.local.manifest import PodTemplate

_SAFE = re.compile(r"^[-._A-Za-z0-9]+$")
_ENV_NAME = re.compile(r"^[-._A-Za-z][-._A-Za-z0-9]*$")
_KINDS = {"secretKeyRef": ("secrets", "Secret"), "configMapKeyRef": ("configmaps", "ConfigMap")}
_REF_KINDS = {"secretRef": ("secrets", "secret"), "configMapRef": ("configmaps", "configmap")}
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class EnvError(Exception):
    """A secret or config map the template needs is missing (the message says which)."""


def base_env(pod_dir: Path) -> dict[str, str]:
    """PATH and LANG from this process; HOME and TMPDIR inside the pod's own folder."""
    return {
        "PATH": os.environ.get("PATH", DEFAULT_PATH),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": str(pod_dir / "home"),
        "TMPDIR": str(pod_dir / "tmp"),
    }


def secret_folder(data_dir: Path, name: str, own: Path | None = None) -> Path:
    """Where the Secret ``name`` is: the run's own Secrets first, then the data dir's."""
    safe = _safe(name, "Secret name")
    if own is not None and (own / safe).is_dir():
        return own / safe
    return data_dir / "secrets" / safe


def secret_value(data_dir: Path, ref: dict[str, Any], own: Path | None = None) -> str:
    """The value a ``{name, key}`` Secret selector names (EnvError when there is none)."""
    name, key = str(ref.get("name", "")), str(ref.get("key", ""))
    path = secret_folder(data_dir, name, own) / _safe(key, "Secret key")
    if not path.is_file():
        raise EnvError(f"couldn't find key {key} in Secret {name}")
    return path.read_text()


def secret_values(template: PodTemplate, data_dir: Path, own: Path | None = None) -> list[str]:
    """Every Secret value the template can see (env, envFrom, mounts, artifacts): what its
    log masks."""
    names: set[str] = {name for _, name in template.secret_mounts}
    values: list[str] = []
    for entry in template.env:
        ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            names.add(str(ref.get("name", "")))
    for source in template.env_from:
        if source.get("secretRef"):
            names.add(str(source["secretRef"].get("name", "")))
    for artifact in template.artifacts:
        git = artifact.get("git")
        for key in ("usernameSecret", "passwordSecret"):
            ref = git.get(key) if isinstance(git, dict) else None
            if isinstance(ref, dict):
                names.add(str(ref.get("name", "")))
    for name in sorted(names):
        try:
            folder = secret_folder(data_dir, name, own)
        except EnvError:
            continue
        if folder.is_dir():
            values += [
                item.read_text(errors="replace") for item in sorted(folder.iterdir()) if item.is_file()
            ]
    return values


def resolve_env(template: PodTemplate, data_dir: Path, own: Path | None = None) -> dict[str, str]:
    """The template's environment: ``envFrom`` first, then ``env`` entries override."""
    env: dict[str, str] = {}
    for source in template.env_from:
        env.update(_env_from(source, data_dir, own))
    for entry in template.env:
        name = str(entry.get("name", ""))
        if "valueFrom" in entry:
            value = _value_from(entry["valueFrom"] or {}, data_dir, own)
            if value is not None:
                env[name] = value
        else:
            env[name] = str(entry.get("value", ""))
    return env


def _value_from(source: dict[str, Any], data_dir: Path, own: Path | None) -> str | None:
    for field, (folder, kind) in _KINDS.items():
        ref = source.get(field)
        if ref is None:
            continue
        name, key = str(ref.get("name", "")), str(ref.get("key", ""))
        path = _ref_folder(data_dir, folder, name, kind, own) / _safe(key, f"{kind} key")
        if path.is_file():
            return path.read_text()
        if ref.get("optional"):
            return None
        if not path.parent.is_dir():
            raise EnvError(f'{kind.lower()} "{name}" not found (looked in {path.parent})')
        raise EnvError(f"couldn't find key {key} in {kind} {name} (looked for {path})")
    return None


def _env_from(source: dict[str, Any], data_dir: Path, own: Path | None) -> dict[str, str]:
    prefix = str(source.get("prefix", ""))
    for field, (folder, kind) in _REF_KINDS.items():
        ref = source.get(field)
        if ref is None:
            continue
        name = str(ref.get("name", ""))
        path = _ref_folder(data_dir, folder, name, kind, own)
        if not path.is_dir():
            if ref.get("optional"):
                return {}
            raise EnvError(f'{kind} "{name}" not found (looked in {path})')
        return {
            prefix + item.name: item.read_text()
            for item in sorted(path.iterdir())
            if item.is_file() and _ENV_NAME.match(item.name)
        }
    return {}


def _ref_folder(data_dir: Path, folder: str, name: str, kind: str, own: Path | None = None) -> Path:
    if folder == "secrets":
        return secret_folder(data_dir, name, own)
    return data_dir / folder / _safe(name, f"{kind} name")


def _safe(part: str, what: str) -> str:
    if not _SAFE.match(part) or part in (".", ".."):
        raise EnvError(f"invalid {what} {part!r}")
    return part
