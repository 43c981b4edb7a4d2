"""Problems with a job file, each with the file, line, column and key it is about."""

from __future__ import annotations

from dataclasses import dataclass

from service.jobs.yaml_source import Located, Path


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a job file."""

    file: str
    line: int
    column: int
    path: str  # e.g. "jobs.lint.steps[0].run"
    message: str
    syntax: bool = False  # the YAML could not be read: nothing after this point was checked

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"


class JobFileError(Exception):
    """A job file that cannot be used; ``problems`` lists everything found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems

    @property
    def summary(self) -> str:
        """One line for a commit status description."""
        first = self.problems[0]
        where = f"{first.file}:{first.line}" if first.line else first.file
        key = f" {first.path}:" if first.path else ""
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"{where}:{key} {first.message}{more}"


class ValueErrorAt(ValueError):
    """A validator's complaint about one key below the value it checks (``image`` of a job that
    runs an Argo template): the problem is placed at that key, not at the whole value."""

    def __init__(self, message: str, key: str | int) -> None:
        super().__init__(message)
        self.key = key


def dotted(path: Path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def problem_at(located: Located, file: str, path: Path, message: str) -> ConfigProblem:
    """A problem about ``path``, placed where it (or its nearest ancestor) is written."""
    line, column = located.position(path)
    return ConfigProblem(located.file_of(path, file), line, column, dotted(path), message)


def problem_in_value(
    located: Located, file: str, path: Path, text: str, offset: int, message: str
) -> ConfigProblem:
    """A problem at character ``offset`` of the text value ``text`` at ``path``: its own column
    when the value is written on one line as it reads, else where the key is."""
    found = located.value_at(path)
    if found is not None and 0 <= offset <= len(text):
        line, column, style = found
        return ConfigProblem(
            located.file_of(path, file), line, column + len(style) + offset, dotted(path), message
        )
    return problem_at(located, file, path, message)
