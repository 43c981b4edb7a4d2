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
    written = located.texts.get(path)
    if written is None:
        return None
    if isinstance(value, bool | int | float) and text_value(value) == written:
        return None
    return written


def quote_message(written: str, value: Any) -> str:
    if not written.strip():
        return "no value is written here: write one, or '' for empty text"
    return f"YAML reads {written} as {what_yaml_read(value)}; quote it: {quoted(written)}"


def _walk(value: Any, pattern: tuple[str, ...], path: Path) -> Iterator[tuple[Path, Any]]:
    if not pattern:
        yield path, value
        return
    head, rest = pattern[0], pattern[1:]
    if isinstance(value, dict):
        items = value.items() if head == "*" else ((head, value[head]),) if head in value else ()
        for key, item in items:
            if head == "*" and key in ("include", "exclude") and pattern == ("*", "*"):
                continue  # matrix.include is a list of cells, walked by its own pattern
            yield from _walk(item, rest, (*path, key))
    elif isinstance(value, list) and head == "*":
        for index, item in enumerate(value):
            yield from _walk(item, rest, (*path, index))


def changed_values(located: Located) -> Iterator[tuple[Path, str, Any]]:
    """(path, text written, value read) of every value in a text place that YAML changed."""
    data = located.data if isinstance(located.data, dict) else {}
    places: list[tuple[Path, Any, tuple[str, ...]]] = []
    defaults = data.get("defaults")
    if isinstance(defaults, dict):
        places.append((("defaults",), defaults, ("env", "*")))
    jobs = data.get("jobs")
    for name, job in jobs.items() if isinstance(jobs, dict) else ():
        if isinstance(job, dict):
            places += [(("jobs", name), job, pattern) for pattern in TEXT_PLACES]
    for base, value, pattern in places:
        for path, item in _walk(value, pattern, base):
            if isinstance(item, dict | list | str):
                continue
            written = changed_text(located, path, item)
            if written is not None:
                yield path, written, item
