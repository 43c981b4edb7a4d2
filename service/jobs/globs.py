"""Glob patterns for branches, tags and paths, as CI users know them.

``*`` matches within one path segment (not ``/``), ``**`` matches across segments, ``?`` one
character, ``[abc]`` a class. A pattern starting with ``!`` excludes what earlier ones included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):  # "**/" also matches no directory at all
                    i += 1
                    out.append("(?:.*/)?")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def glob_match(pattern: str, text: str) -> bool:
    return _compile(pattern).match(text) is not None


def matches_any(patterns: Iterable[str], text: str) -> bool:
    """Whether ``text`` is included by ``patterns`` (later ``!`` patterns exclude)."""
    included = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if included and glob_match(pattern[1:], text):
                included = False
        elif not included and glob_match(pattern, text):
            included = True
    return included
