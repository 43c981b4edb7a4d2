"""A manual run's inputs, checked against the ``on.manual.inputs`` of the jobs it starts. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.jobs.model import JobFile
from service.jobs.triggers import ManualInput

MAX_VALUE = 4096
TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


class InputError(ValueError):
    """Inputs that do not fit the declaration (the message says which and why)."""


def declared_inputs(job_file: JobFile, jobs: Iterable[str]) -> dict[str, ManualInput]:
    """The inputs the manual jobs declare (all manual jobs when ``jobs`` is empty)."""
    wanted = set(jobs)
    found: dict[str, ManualInput] = {}
    for name, job in job_file.jobs.items():
        if job.on.manual is None or (wanted and name not in wanted):
            continue
        for key, spec in job.on.manual.inputs.items():
            found.setdefault(key, spec)
    return found


def _value(name: str, spec: ManualInput, given: Any) -> str | bool:
    if spec.type == "boolean":
        if isinstance(given, bool):
            return given
        text = str(given).strip().lower()
        if text in TRUE or text in FALSE:
            return text in TRUE
        raise InputError(f"input {name!r} is true or false, not {given!r}")
    if isinstance(given, bool | dict | list) or given is None:
        raise InputError(f"input {name!r} is a string")
    text = str(given)
    if len(text) > MAX_VALUE:
        raise InputError(f"input {name!r} is longer than {MAX_VALUE} characters")
    if spec.type == "choice" and text not in spec.options:
        raise InputError(f"input {name!r} is one of {', '.join(spec.options)}, not {text!r}")
    return text


def resolve_inputs(declared: Mapping[str, ManualInput], given: Mapping[str, Any]) -> dict[str, str | bool]:
    """The run's inputs: each given one checked, defaults filled in; :class:`InputError`."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise InputError(f"unknown input {unknown[0]!r} (the jobs declare: {known})")
    result: dict[str, str | bool] = {}
    for name, spec in declared.items():
        if name in given:
            result[name] = _value(name, spec, given[name])
        elif spec.default is not None:
            result[name] = spec.default
        elif spec.required:
            raise InputError(f"input {name!r} is required")
        elif spec.type == "boolean":
            result[name] = False
        else:
            result[name] = ""
    return result
