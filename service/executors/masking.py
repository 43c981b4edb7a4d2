"""Masking Secret values in job output: every line of a value (4 characters or more) becomes
``***``. Shared by the executors where they store logs (the local executor's log files, the
emulated controller's); on Argo the pods mask their own output (see
``service.compiler.escape.DRIVER``). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"
MIN_LENGTH = 4  # shorter values ("1", "true") would mask ordinary text, not protect anything


def mask_lines(values: Iterable[str]) -> tuple[str, ...]:
    """The strings to mask: each line of each value, longest first."""
    lines = {line.rstrip("\r") for value in values for line in value.splitlines()}
    return tuple(sorted((line for line in lines if len(line) >= MIN_LENGTH), key=lambda v: (-len(v), v)))


class Masker:
    """Replaces the lines of Secret values in text with ``***``."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.lines = mask_lines(values)

    def __bool__(self) -> bool:
        return bool(self.lines)

    def __call__(self, text: str) -> str:
        for line in self.lines:
            if line in text:
                text = text.replace(line, MASK)
        return text
