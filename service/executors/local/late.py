"""Values a task takes from tasks that finished before it starts (``{{tasks.X.outputs...}}``).

:func:`local.manifest.build_plan` leaves each such argument as a sentinel in the templates;
when the task starts, :func:`resolve_late` puts in the value from the finished task's node
(``outputs.parameters``), or fails as Argo does when there is none.
"""

from __future__ import annotations

import re
from dataclasses import fields, replace
from typing import Any

from service.executors.local.manifest import PodTemplate
from service.executors.local.state import RunState
from service.executors.local.values import UnsupportedManifest

_REFERENCE = re.compile(
    r"\{\{\s*tasks\.([-A-Za-z0-9_]+)\.outputs\.(parameters|result|exitCode)\.?([-A-Za-z0-9_]*)\s*\}\}"
)
_SENTINEL = re.compile("\x00late\\d+\x00")


def _value(state: RunState, prefix: str, match: re.Match[str]) -> str:
    task, kind, name = prefix + match.group(1), match.group(2), match.group(3)
    node = state.item_node(task)
    outputs = (node or {}).get("outputs") or {}
    if kind == "exitCode" and "exitCode" in outputs:
        return str(outputs["exitCode"])
    for parameter in outputs.get("parameters") or ():
        if kind == "parameters" and parameter.get("name") == name:
            return str(parameter.get("value", ""))
    raise UnsupportedManifest(f"failed to resolve {match.group(0)}")


def _replace(value: Any, found: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _SENTINEL.sub(lambda m: found.get(m.group(0), ""), value) if "\x00late" in value else value
    if isinstance(value, tuple):
        return tuple(_replace(item, found) for item in value)
    if isinstance(value, list):
        return [_replace(item, found) for item in value]
    if isinstance(value, dict):
        return {key: _replace(item, found) for key, item in value.items()}
    return value


def resolve_late(template: PodTemplate, state: RunState) -> PodTemplate:
    """``template`` with the values of tasks that finished filled in."""
    if not state.plan.late:
        return template
    found: dict[str, str] = {}
    for sentinel, prefix, text in state.plan.late:

        def value(match: re.Match[str], prefix: str = prefix) -> str:
            return _value(state, prefix, match)

        try:
            found[sentinel] = _REFERENCE.sub(value, text)
        except UnsupportedManifest as exc:
            found[sentinel] = f"\x00error:{exc}"
    changes = {f.name: _replace(getattr(template, f.name), found) for f in fields(template)}
    resolved = replace(template, **changes)
    for text in _strings(resolved):
        if "\x00error:" in text:
            raise UnsupportedManifest(text.split("\x00error:", 1)[1].split("\x00", 1)[0])
    return resolved


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, tuple | list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if hasattr(value, "__dataclass_fields__"):
        return [s for f in fields(value) for s in _strings(getattr(value, f.name))]
    return []
