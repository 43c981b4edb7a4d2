"""Find the commands in a comment. Pure.

One command per line, starting with the prefix (default ``/forgeflow``). Lines inside fenced
code blocks (```` ``` ```` or ``~~~``), indented code (four spaces or a tab) and quotes (``>``)
are not commands: people quote and paste earlier comments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


@dataclass(frozen=True)
class Command:
    """``/forgeflow WORD ARGS...`` as written on one line (the word lower-cased)."""

    word: str
    args: tuple[str, ...]
    line: int  # 1-based line of the comment

    @property
    def text(self) -> str:
        return " ".join((self.word, *self.args))


def commands_in(body: str, prefix: str = "/forgeflow") -> list[Command]:
    """Every command line of a comment, in order."""
    found: list[Command] = []
    fence: str | None = None
    for number, raw in enumerate(body.replace("\r\n", "\n").split("\n"), start=1):
        opening = _FENCE.match(raw)
        if fence is not None:
            if opening and opening.group(1) == fence:
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        if raw.startswith(("    ", "\t")) or raw.lstrip().startswith(">"):
            continue
        words = raw.strip().split()
        if not words or words[0].lower() != prefix.lower():
            continue
        if len(words) == 1:
            found.append(Command("help", (), number))
            continue
        found.append(Command(words[1].lower(), tuple(words[2:]), number))
    return found
