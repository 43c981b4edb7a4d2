"""Read a job file's text into a :class:`JobFile`, or into errors that say file:line:column.

Every error is collected (not only the first), so ``forgeflow validate`` shows them all and
the ``forgeflow/config`` status can say where the first one is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from service.jobs.model import JobFile
from service.jobs.yaml_source import Limits, Located, Path, YamlError, load_located


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a job file."""

    file: str
    line: int
    column: int
    path: str  # e.g. "jobs.lint.steps[0].run"
    message: str

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


def dotted(path: Path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _problems_from_validation(exc: ValidationError, located: Located, file: str) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc: Path = tuple(p for p in error["loc"] if isinstance(p, int | str) and not _is_internal(p))
        line, column = located.position(loc)
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required key is missing"
        problems.append(ConfigProblem(file, line, column, dotted(loc), message))
    return problems


def _is_internal(part: Any) -> bool:
    # pydantic puts validator/union branch names in locs (e.g. "function-before[...]")
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def semantic_problems(job_file: JobFile, located: Located, file: str) -> list[ConfigProblem]:
    """What the schema alone cannot check: ``needs`` name real jobs and have no cycle."""
    problems: list[ConfigProblem] = []
    for name, job in job_file.jobs.items():
        for i, need in enumerate(job.needs):
            path: Path = ("jobs", name, "needs", i)
            if need not in job_file.jobs:
                line, column = located.position(path)
                problems.append(ConfigProblem(file, line, column, dotted(path), f"no job named {need!r}"))
            elif need == name:
                line, column = located.position(path)
                problems.append(ConfigProblem(file, line, column, dotted(path), "a job cannot need itself"))
    cycle = find_cycle({n: [d for d in j.needs if d in job_file.jobs] for n, j in job_file.jobs.items()})
    if cycle and len(cycle) > 2:
        path = ("jobs", cycle[0], "needs")
        line, column = located.position(path)
        problems.append(
            ConfigProblem(file, line, column, dotted(path), "needs form a cycle: " + " -> ".join(cycle))
        )
    return problems


def find_cycle(graph: dict[str, list[str]]) -> list[str]:
    """A dependency cycle as ``[a, b, ..., a]``, or ``[]``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if state.get(nxt, 0) == 0:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if state.get(node, 0) == 0:
            found = visit(node)
            if found:
                return found
    return []


def load_job_file(text: str | bytes, file: str = ".forgeflow.yaml", limits: Limits | None = None) -> JobFile:
    """Parse and validate a job file. Raises :class:`JobFileError` listing every problem."""
    try:
        located = load_located(text, limits)
    except YamlError as exc:
        raise JobFileError([ConfigProblem(file, exc.line, exc.column, "", exc.message)]) from exc
    data = located.data
    if data is None:
        raise JobFileError([ConfigProblem(file, 1, 1, "", "the file is empty")])
    if not isinstance(data, dict):
        raise JobFileError([ConfigProblem(file, 1, 1, "", "expected a mapping with 'version' and 'jobs'")])
    if "version" in data and data["version"] != 1:
        line, column = located.position(("version",))
        raise JobFileError(
            [ConfigProblem(file, line, column, "version", f"unsupported version {data['version']!r}; use 1")]
        )
    try:
        job_file = JobFile.model_validate(data)
    except ValidationError as exc:
        raise JobFileError(_problems_from_validation(exc, located, file)) from exc
    problems = semantic_problems(job_file, located, file)
    if problems:
        raise JobFileError(problems)
    return job_file
