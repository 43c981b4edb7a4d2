"""The schema's complaints (pydantic's), rewritten as what to change in the job file.

pydantic says "Extra inputs are not permitted" or "Input should be a valid tuple" about a
location of its own model; a person wants to hear "unknown key 'branchs'; did you mean
'branches'?" or "steps is a list: steps: [make]" about the line they wrote. Errors about one
place are merged (a union's four "should be a valid string/boolean/integer/number" are one
problem), and locations are mapped back onto the keys as written (a shorthand such as
``resources: {cpu: 2}`` has no ``requests`` key in the file).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from service.jobs.errors import ConfigProblem, ValueErrorAt, dotted, problem_at, problem_in_value
from service.jobs.keys import known_keys
from service.jobs.scalars import changed_text, quote_message
from service.jobs.suggest import FOREIGN_KEYS, FOREIGN_STEP_KEYS, FOREIGN_TOP_KEYS, closest
from service.jobs.yaml_errors import quoted
from service.jobs.yaml_source import Located, Path

UNION_TAGS = frozenset({"str", "bool", "int", "float"})
SCALAR_TYPES = frozenset({"string_type", "bool_type", "int_type", "float_type", "bool_parsing"})
LIST_TYPES = frozenset({"tuple_type", "list_type"})
MAP_TYPES = frozenset({"dict_type", "model_type", "model_attributes_type"})
# What a list at these keys holds, for "is a list" messages.
LIST_EXAMPLES = {
    "steps": "steps: [make] (or one '- make' per line below it)",
    "needs": "needs: [build, lint]",
    "branches": "branches: [main, 'release/*']",
    "branches-ignore": "branches-ignore: ['wip/*']",
    "paths": "paths: ['src/**']",
    "paths-ignore": "paths-ignore: ['docs/**']",
    "tags": "tags: ['v*']",
    "labels": "labels: [ci/full]",
    "secrets": "secrets: [pypi-token]",
    "artifacts": "artifacts: [dist]",
    "types": "types: [opened, synchronize]",
    "templates": "templates: [{name: main, container: {...}}]",
}
REQUIRED = {
    "version": "add version: 1 at the top of the file",
    "jobs": "add jobs: with at least one job",
    "run": "a step needs run: with its commands",
    "limit": "retries needs limit: (how many times)",
    "entrypoint": "argo needs entrypoint: (the template the job runs)",
    "templates": "argo needs templates:",
    "path": "an artifact needs path:",
    "name": "workflowTemplate needs name:",
    "group": "concurrency needs group:",
}


def _raw_path(loc: Iterable[Any], data: Any) -> Path:
    """pydantic's location as the keys written in the file."""
    parts = [p for p in loc if isinstance(p, int | str) and not _internal(p)]
    path: list[str | int] = []
    current = data
    for index, part in enumerate(parts):
        following = parts[index + 1] if index + 1 < len(parts) else None
        if isinstance(current, dict) and part not in current and following in current:
            continue  # a key the shorthand form does not write (resources.requests)
        if part in UNION_TAGS and not (isinstance(current, dict) and part in current):
            continue  # a union's branch name
        path.append(part)
        if isinstance(current, dict) and isinstance(part, str):
            current = current.get(part)
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
        else:
            current = None
    return tuple(path)


def _internal(part: Any) -> bool:
    # pydantic puts validator/union branch names in locs (e.g. "function-before[...]")
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _value_at(data: Any, path: Path) -> Any:
    for part in path:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "empty"
    return "text"


class _Messages:
    def __init__(self, located: Located) -> None:
        self.located = located
        self.data = located.data

    def unknown_key(self, path: Path) -> str:
        key, parent = str(path[-1]), path[:-1]
        value = _value_at(self.data, parent)
        if parent[-2:-1] == ("steps",) and isinstance(value, dict):
            if key in FOREIGN_STEP_KEYS:
                return f"unknown key {key!r}: {FOREIGN_STEP_KEYS[key]}"
            item = value[key]
            if len(value) == 1 and not isinstance(item, dict | list) and not re.fullmatch(r"[\w-]+", key):
                written = f"{key}: {_shown_plain(item)}" if item is not None else f"{key}:"
                return (
                    f"YAML reads this step as the key {key!r} with a value because of ': '; "
                    f"quote the whole command: - {quoted(written)}"
                )
        known = known_keys(parent)
        if len(parent) == 2 and parent[0] == "jobs" and key in FOREIGN_KEYS:
            return f"unknown key {key!r}: {FOREIGN_KEYS[key]}"
        near = closest(key, known)
        if near:
            return f"unknown key {key!r}; did you mean {near!r}?"
        if parent == ():
            job_keys = set(known_keys(("jobs", "*"))) | set(FOREIGN_KEYS)
            if key.startswith("."):
                return (
                    f"unknown key {key!r}: forgeflow has no hidden keys; share a job body with a "
                    "template (uses:), or anchor a real job (&name) and merge it (<<: *name)"
                )
            if isinstance(self.data.get(key), dict) and set(self.data[key]) & job_keys:
                return f"unknown key {key!r}: it looks like a job; jobs go under jobs: (jobs: {{{key}: ...}})"
            advice = FOREIGN_TOP_KEYS.get(key)
            if advice is None and key in known_keys(("jobs", "*")):
                advice = f"{key} belongs to a job: jobs: {{NAME: {{{key}: ...}}}} (or under defaults:)"
            if advice:
                return f"unknown key {key!r}: {advice}"
            return f"unknown key {key!r} (the file takes {_list(known)})"
        for depth in range(len(parent) - 1, 1, -1):  # a job key indented one level too deep
            if key in known_keys(parent[:depth]):
                where = dotted(parent[:depth])
                return f"{key} is not a key of {dotted(parent)}; it belongs to {where}: indent it less"
        return f"unknown key {key!r} ({dotted(parent) or 'here'} takes {_list(known)})"

    def missing(self, path: Path) -> str:
        key = str(path[-1])
        return REQUIRED.get(key, f"required key {key!r} is missing")

    def scalar(self, path: Path, types: set[str], value: Any) -> str:
        written = changed_text(self.located, path, value)
        if written is None and types == {"string_type"}:
            written = self.located.text_of(path)  # read back alike (1.0), but text is wanted
        if written is not None and "string_type" in types:
            return quote_message(written, value)
        if written is not None and not written.strip():
            return quote_message(written, value)
        if types == {"bool_parsing"} or types == {"bool_type"}:
            return f"expected true or false, not {_shown(value)}"
        if "string_type" in types and len(types) > 1:
            return f"expected text, a number or true/false, not {_kind(value)}"
        if "string_type" in types:
            if isinstance(value, dict) and len(value) == 1:
                key, item = next(iter(value.items()))
                if not isinstance(item, dict | list):
                    return (
                        f"expected text, but YAML reads {key}: {item} as a key and a value because "
                        f"of ': '; quote it: {quoted(f'{key}: {item}')}"
                    )
            return f"expected text, not {_kind(value)}"
        if "int_type" in types or "int_parsing" in types:
            return f"expected a whole number, not {_shown(value)}"
        return f"expected a number, not {_shown(value)}"

    def list_expected(self, path: Path, value: Any) -> str:
        key = str(path[-1]) if path else ""
        if len(path) == 4 and path[2] == "matrix":
            return f"a matrix axis is a list of values: {key}: [{_example(value)}]"
        example = LIST_EXAMPLES.get(key, f"{key}: [a, b]")
        return f"{key} is a list, not {_kind(value)}: {example}"

    def map_expected(self, path: Path, value: Any) -> str:
        key = str(path[-1]) if path else "the file"
        if key in ("env", "arguments") and isinstance(value, str) and "=" in value:
            name, _, item = value.partition("=")
            fixed = f"{key}: {{{name.strip()}: {quoted(item.strip())}}}"
            return f"{key} is a mapping of NAME: value, not text: {fixed}"
        if key in ("env", "arguments") and isinstance(value, list):
            pairs = [str(v).split("=", 1) for v in value if isinstance(v, str) and "=" in v]
            if pairs and len(pairs) == len(value):
                inner = ", ".join(f"{k}: {quoted(v)}" for k, v in pairs)
                return f"{key} is a mapping of NAME: value, not a list: {key}: {{{inner}}}"
            return f"{key} is a mapping of NAME: value, not a list: {key}: {{NAME: value}}"
        if len(path) == 2 and path[0] == "jobs":
            return f"a job is a mapping of keys (on:, steps:, ...), not {_kind(value)}"
        if len(path) == 4 and path[2] == "on":
            keys = ", ".join(known_keys(path)) or "no keys"
            return (
                f"{key} takes a mapping ({keys}), not {_kind(value)}; to just turn it on, "
                f"list it: on: [{key}] (or {key}: {{}})"
            )
        return f"{key} is a mapping (key: value), not {_kind(value)}"

    def literal(self, path: Path, value: Any, error: ErrorDetails) -> str:
        allowed = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", "")))
        near = closest(str(value), allowed) if isinstance(value, str) else None
        choices = " or ".join(", ".join(allowed).rsplit(", ", 1))
        hint = f"; did you mean {near!r}?" if near else ""
        return f"{_shown(value)} is not one of {choices}{hint}"

    def one(self, path: Path, errors: list[ErrorDetails]) -> str:
        types = {e["type"] for e in errors}
        value = errors[0]["input"] if "input" in errors[0] else _value_at(self.data, path)
        first = errors[0]
        if "extra_forbidden" in types:
            return self.unknown_key(path)
        if "missing" in types:
            return self.missing(path)
        value_errors = [e for e in errors if e["type"] == "value_error"]
        if value_errors:
            key = path[-1] if path else None
            if path[-2:-1] == ("on",) and key != "on" and key in known_keys(("jobs", "*")):
                return f"{key} is not an event: it belongs to the job, so indent it like on:"
            return str(value_errors[0]["msg"]).removeprefix("Value error, ")
        if types & SCALAR_TYPES or types & {"int_parsing", "float_parsing"}:
            if (types & LIST_TYPES or types & MAP_TYPES) and isinstance(value, list | dict):
                pass
            else:
                return self.scalar(path, types, value)
        if types & LIST_TYPES:
            return self.list_expected(path, value)
        if types & MAP_TYPES:
            return self.map_expected(path, value)
        if "literal_error" in types:
            return self.literal(path, value, first)
        if first["type"] == "greater_than_equal":
            return f"must be at least {(first.get('ctx') or {}).get('ge')}, not {_shown(value)}"
        if first["type"] == "less_than_equal":
            return f"must be at most {(first.get('ctx') or {}).get('le')}, not {_shown(value)}"
        if first["type"] == "string_too_short":
            return "must not be empty"
        return str(first["msg"]).removeprefix("Value error, ")


def _shown_plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _list(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(names) if names else "no keys"


def _example(value: Any) -> str:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return quoted(str(value)) if isinstance(value, str) and not value.isalnum() else str(value)
    return "a, b"


def schema_problems(exc: ValidationError, located: Located, file: str) -> list[ConfigProblem]:
    """One problem per place the schema refused, in plain words."""
    grouped: dict[Path, list[ErrorDetails]] = {}
    for error in exc.errors(include_url=False):
        path = _raw_path(error["loc"], located.data)
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ValueErrorAt) and isinstance(_value_at(located.data, path), dict | list):
            path = (*path, cause.key)
        grouped.setdefault(path, []).append(error)
    messages = _Messages(located)
    problems = []
    misspelt = {  # (parent, key) that an unknown key beside it is a slip for
        (path[:-1], closest(str(path[-1]), known_keys(path[:-1])))
        for path, errors in grouped.items()
        if path and any(e["type"] == "extra_forbidden" for e in errors)
    }
    for path, errors in grouped.items():
        if path and (path[:-1], path[-1]) in misspelt and {e["type"] for e in errors} == {"missing"}:
            continue  # "jobs is missing" beside "unknown key 'job'; did you mean 'jobs'?"
        if path[-1:] == ("run",) and {e["type"] for e in errors} == {"missing"}:
            step = _value_at(located.data, path[:-1])
            if isinstance(step, dict) and set(step) - {"name"}:
                continue  # the step's other key is the problem, reported on its own
        offset = _expression_offset(errors)
        value = _value_at(located.data, path)
        if offset is not None and isinstance(value, str):
            problems.append(problem_in_value(located, file, path, value, offset, messages.one(path, errors)))
        else:
            problems.append(problem_at(located, file, path, messages.one(path, errors)))
    return problems


def _expression_offset(errors: list[ErrorDetails]) -> int | None:
    """Where in an expression its syntax error is, when the validator's cause says."""
    for error in errors:
        cause = (error.get("ctx") or {}).get("error")
        inner = getattr(cause, "__cause__", None)
        offset = getattr(inner, "offset", None)
        if isinstance(offset, int):
            return offset
    return None
