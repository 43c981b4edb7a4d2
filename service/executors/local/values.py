"""Small pure helpers for reading manifests locally: durations, ints, keys, ``{{variables}}``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

WORKSPACE = "/workspace"

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_VARIABLE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def inside_workspace(workspace: Path, path: Path, *, follow: bool = False) -> bool:
    """Whether ``path`` (a workspace path on this machine) stays in the workspace when its
    folders are followed (and the path itself, with ``follow``): a job may have made any of them
    a symlink, and a symlink the container made leads elsewhere on this machine (``/`` here is
    not the container's). Copying a path through such a folder would read or write this
    machine's files for the job."""
    root = workspace.resolve()
    if path == workspace:
        return True
    real = (path if follow else path.parent).resolve()
    return real == root or root in real.parents


class UnsupportedManifest(Exception):
    """The manifest uses something the local executor does not run (the message says what)."""

    def __str__(self) -> str:
        detail = super().__str__()
        if detail.startswith("failed to resolve"):
            return detail
        return f"not supported by the local executor: {detail}"


def check_keys(mapping: dict[str, Any], allowed: set[str], where: str) -> None:
    """Raise :class:`UnsupportedManifest` naming the first key of ``mapping`` not allowed."""
    if not isinstance(mapping, dict):
        raise UnsupportedManifest(f"{where} is not a mapping")
    for key in mapping:
        if key not in allowed:
            raise UnsupportedManifest(f"{where}: {key!r}")


def parse_int(value: Any, where: str) -> int | None:
    """An int-or-string field (``3`` or ``"3"``); None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise UnsupportedManifest(f"{where}: {value!r} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise UnsupportedManifest(f"{where}: {value!r} is not a number")


def parse_duration(value: Any, where: str) -> float | None:
    """Seconds from an int, a numeric string (seconds) or a Go duration (``"1m30s"``)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UnsupportedManifest(f"{where}: {value!r} is not a duration")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def substitute(value: Any, variables: dict[str, str], where: str) -> Any:
    """``value`` with Argo ``{{variable}}`` references replaced from ``variables``.

    Walks dicts and lists. An unknown variable raises :class:`UnsupportedManifest` worded as
    Argo's validation words it (``failed to resolve {{x}}``): Argo rejects such a workflow too.
    """
    if isinstance(value, str):
        return _substitute_text(value, variables, where)
    if isinstance(value, list):
        return [substitute(item, variables, where) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, variables, where) for key, item in value.items()}
    return value


def _substitute_text(text: str, variables: dict[str, str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name not in variables:
            known = "workflow.name/namespace/uid/creationTimestamp/parameters.*"
            raise UnsupportedManifest(
                f"failed to resolve {{{{{name}}}}} in {where} (the local executor knows {known})"
            )
        return variables[name]

    return _VARIABLE.sub(replace, text)
