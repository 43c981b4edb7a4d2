"""Durations as people write them in job files: ``90``, ``"90s"``, ``"30m"``, ``"1h30m"``."""

from __future__ import annotations

import re
from typing import Any

_PART = re.compile(r"(\d+)\s*(d|h|m|s)")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
MAX_SECONDS = 30 * 86400  # no job (nor a retry's backoff) waits longer than 30 days
_WORDS = re.compile(
    r"(\d+)\s*(days?|hours?|hrs?|minutes?|mins?|seconds?|secs?)\b", re.IGNORECASE
)  # what people write instead: "10 minutes"


def parse_duration(value: Any) -> Any:
    """Seconds from an int or a duration string; other values pass through for validation."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30m'")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("a duration must be positive")
        if value > MAX_SECONDS:
            raise ValueError(f"{value} seconds is longer than the limit, 30 days (30d)")
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return parse_duration(int(text))
        if not text or _PART.sub("", text).strip():
            spelled = _WORDS.sub(lambda m: m.group(1) + m.group(2)[0].lower(), text).replace(" ", "")
            fixed = spelled != text and not _PART.sub("", spelled)
            hint = f"write {spelled}" if fixed else "write e.g. 90s, 30m, 1h30m"
            raise ValueError(f"{value!r} is not a duration; {hint}")
        seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(text))
        if seconds <= 0:
            raise ValueError("a duration must be positive")
        if seconds > MAX_SECONDS:
            raise ValueError(f"{value!r} is longer than the limit, 30 days (30d)")
        return seconds
    return value


def format_duration(seconds: float) -> str:
    """``75`` -> ``"1m 15s"``; for descriptions."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
