"""Values YAML turned into something else than the text that was written.

``python: [3.10]`` is the number 3.1 in YAML, ``debug: [yes]`` the boolean true, ``010`` the
number 8 and ``2024-01-01`` a date. Where a job file means text (matrix values, ``with:``
inputs, ``env`` and ``arguments`` values) such a value would silently become other text
(the image ``python:3.1``), so it is an error that says how to write it: ``quote it: '3.10'``.
Numbers and booleans that read back as written (``3.12``, ``true``, ``4``) stay allowed.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

from service.jobs.expressions import text_value
from service.jobs.yaml_errors import quoted
from service.jobs.yaml_source import Located, Path

# Where a job's values are text: (key, depth of the value below it, what a value is called).
TEXT_PLACES: tuple[tuple[str, ...], ...] = (
    ("matrix", "*", "*"),
    ("matrix", "include", "*", "*"),
    ("matrix", "exclude", "*", "*"),
    ("with", "*"),
    ("env", "*"),
    ("arguments", "*"),
    ("services", "*", "env", "*"),
)


def what_yaml_read(value: Any) -> str:
    """``the number 3.1``, ``the boolean true``, ``nothing (null)``, ``the date 2024-01-01``."""
    if isinstance(value, bool):
        return f"the boolean {text_value(value)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if value is None:
        return "nothing (null)"
    if isinstance(value, datetime.date):
        return f"the date {value.isoformat()}"
    return repr(value)


def changed_text(located: Located, path: Path, value: Any) -> str | None:
    """The text written at ``path`` when YAML read it as a value that reads back otherwise."""
    written = located.text_of(path)
    if written is None:
        return None
    if isinstance(value, bool | int | float) and text_value(value) == written:
        return None
    return written


def quote_message(written: str, value: Any) -> str:
    if not written.strip():
        return "no value is written here: write one, or '' for empty text"
    return f"YAML reads {written} as {what_yaml_read(value)}; quote it: {quoted(written)}"


def _matches(rest: Path, pattern: tuple[str, ...]) -> bool:
    if len(rest) != len(pattern):
        return False
    if pattern == ("matrix", "*", "*") and rest[1] in ("include", "exclude"):
        return False  # matrix.include is a list of cells, matched by its own pattern
    return all(want == "*" or want == part for part, want in zip(rest, pattern, strict=True))


PLACE_KEYS = frozenset(p[0] for p in TEXT_PLACES)


def _text_place(path: Path) -> bool:
    if path[:2] == ("defaults", "env") and len(path) == 3:
        return True
    if len(path) < 4 or path[0] != "jobs" or path[2] not in PLACE_KEYS:
        return False
    return any(_matches(path[2:], p) for p in TEXT_PLACES)


def _value(data: Any, path: Path) -> Any:
    for part in path:
        data = data[part]
    return data


def changed_values(located: Located) -> Iterator[tuple[Path, str, Any]]:
    """(path, text written, value read) of every value in a text place that YAML changed; only
    the scalars that read back otherwise are looked at (``located.lossy``), not the whole file."""
    for path, written in located.lossy.items():
        if _text_place(path):
            try:
                yield path, written, _value(located.data, path)
            except (KeyError, IndexError, TypeError):
                continue
