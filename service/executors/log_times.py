"""Log lines with their time: ``2025-05-01T10:00:00.123456Z text``, as Kubernetes gives them.

Kubernetes prefixes each line of a pod's log with its RFC 3339 time when asked
(``timestamps=true``); the local executor writes its log files the same way. The run pages show
the times and time the steps with them; :func:`strip` gives the plain text the executor seam's
``logs()`` promises. Pure.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z) (.*)$", re.DOTALL)


def stamp(moment: datetime | None = None) -> str:
    """The time prefix for a line written now (microseconds, UTC)."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def split(line: str) -> tuple[datetime | None, str]:
    """A line's time (None when it has none) and its text."""
    match = _STAMPED.match(line)
    if match is None:
        return None, line
    raw, text = match.groups()
    whole, _, fraction = raw[:-1].partition(".")
    try:
        moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None, line
    micros = int((fraction + "000000")[:6]) if fraction else 0
    return moment.replace(microsecond=micros), text


def strip(text: str) -> str:
    """``text`` without its lines' time prefixes."""
    if not text or not _STAMPED.match(text):
        return text
    return "".join(split(line)[1] for line in text.splitlines(keepends=True))
