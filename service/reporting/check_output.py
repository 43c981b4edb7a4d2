"""What a check run shows of a job's log: the failing step, the tail of its output, and
annotations for the ``file:line: message`` lines in it. Pure.

A steps job's log has a ``==> NAME`` line before each step and, when one fails,
``::forgeflow-failed::step 'NAME' failed with exit code N`` (the driver in
``service.compiler.escape``). Annotations are read from the failing step's output in the forms
compilers, test runners and linters print:

- GCC/Clang, ruff, flake8, mypy, pylint: ``src/a.c:12:5: error: message``, ``x.py:3:1: F401 ...``
- pytest and most tools: ``tests/test_x.py:12: AssertionError``

Paths are made relative to the checkout (``/workspace/source/...``, ``./...``); absolute paths
elsewhere (system headers, site-packages) are not the repository's and are skipped. The log is
the text the executor's archive gives (with secrets masked there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.forges.checks import MAX_ANNOTATIONS, Annotation

STEP_HEADER = re.compile(r"^==> (?P<name>.*)$")
FAILED_LINE = re.compile(r"^::forgeflow-failed::step '(?P<name>.*)' failed with exit code (?P<code>\d+)$")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LOCATION = re.compile(
    r"^(?P<path>[^\s:][^:\n]*?\.[A-Za-z0-9_+-]{1,12}):(?P<line>\d+)(?::(?P<column>\d+))?:\s*(?P<message>\S.*)$"
)
CHECKOUT_PREFIXES = ("/workspace/source/",)
LEVELS = (("warning", "warning"), ("note", "notice"), ("info", "notice"))
TAIL_LINES = 150
TAIL_CHARS = 20000


@dataclass(frozen=True)
class StepLog:
    """The step that failed (its name, "" when none did) and its output."""

    step: str
    exit_code: str
    lines: tuple[str, ...]


def failing_step(log: str) -> StepLog:
    """The failing step's output; with no step markers (raw Argo jobs) the whole log."""
    lines = [ANSI.sub("", line) for line in log.splitlines()]
    current, start = "", 0
    for index, line in enumerate(lines):
        if header := STEP_HEADER.match(line):
            current, start = header.group("name"), index + 1
        elif failed := FAILED_LINE.match(line):
            return StepLog(failed.group("name") or current, failed.group("code"), tuple(lines[start:index]))
    return StepLog("", "", tuple(line for line in lines if not FAILED_LINE.match(line)))


def tail(lines: tuple[str, ...], max_lines: int = TAIL_LINES, max_chars: int = TAIL_CHARS) -> str:
    """The last lines of a log, at most ``max_lines`` and ``max_chars``."""
    kept = list(lines[-max_lines:])
    while kept and sum(len(line) + 1 for line in kept) > max_chars:
        kept.pop(0)
    if not kept and lines:
        kept = [lines[-1][-max_chars:]]
    return "\n".join(kept)


def relative_path(path: str) -> str | None:
    """``path`` relative to the checkout, or None when it is outside it."""
    for prefix in CHECKOUT_PREFIXES:
        if prefix in path:
            return path.split(prefix, 1)[1]
    path = path.removeprefix("./")
    if path.startswith("/") or path.startswith("../") or "://" in path:
        return None
    return path


def _level(message: str) -> str:
    head = message.lower()[:20]
    for word, level in LEVELS:
        if head.startswith(word):
            return level
    return "failure"


def find_annotations(lines: tuple[str, ...], limit: int = MAX_ANNOTATIONS) -> tuple[Annotation, ...]:
    """An annotation per ``file:line[:column]: message`` line (the first of each place)."""
    found: dict[tuple[str, int, int], Annotation] = {}
    for line in lines:
        match = LOCATION.match(line.strip())
        if match is None:
            continue
        path = relative_path(match.group("path"))
        if path is None:
            continue
        number, column = int(match.group("line")), int(match.group("column") or 0)
        if number < 1:
            continue
        message = match.group("message").strip()
        place = (path, number, column)
        if place not in found:
            found[place] = Annotation(path, number, message, _level(message), column)
        if len(found) >= limit:
            break
    return tuple(found.values())
