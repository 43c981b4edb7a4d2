"""What the schema alone cannot check: needs, ``${{ }}`` placement, raw Argo, size limits.

What raw Argo may reach depends on the repository's policy, so the fence is checked when a run
is planned (:mod:`service.jobs.grants`), not here."""

from __future__ import annotations

import re
from typing import Any

from service.argo.validation import template_errors
from service.jobs.errors import ConfigProblem, problem_at
from service.jobs.expressions import SIMPLE, ExpressionError, compile_condition, expressions_in
from service.jobs.handoff_checks import NEEDS_OUTPUT, output_problems
from service.jobs.matrix import MatrixTooLarge, expand
from service.jobs.model import JobFile, JobSpec
from service.jobs.options import PARAMETER_NAME
from service.jobs.yaml_source import Limits, Located, Path

MATRIX_PLACES = ("image", "env", "steps")


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


class _Checker:
    def __init__(self, job_file: JobFile, located: Located, file: str, limits: Limits) -> None:
        self.job_file, self.located, self.file, self.limits = job_file, located, file, limits
        self.problems: list[ConfigProblem] = []

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(problem_at(self.located, self.file, path, message))

    def run(self) -> list[ConfigProblem]:
        self.needs()
        total = 0
        for name, job in self.job_file.jobs.items():
            total += self.cells(name, job)
            raw = (self.located.data.get("jobs") or {}).get(name)
            self.expressions(("jobs", name), raw, job, ())
            if job.argo is not None:
                self.argo(name, job)
            for key in job.arguments:
                if not PARAMETER_NAME.match(key):
                    self.problem(("jobs", name, "arguments", key), f"{key!r} is not an Argo parameter name")
        if total > self.limits.max_jobs:
            self.problem(("jobs",), f"{total} jobs and matrix cells; the limit is {self.limits.max_jobs}")
        if self.job_file.concurrency is not None:
            self.cel_in(("concurrency", "group"), self.job_file.concurrency.group)
        self.no_expressions(("defaults",), self.located.data.get("defaults"))
        return self.problems

    def no_expressions(self, path: Path, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                self.no_expressions((*path, key), item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.no_expressions((*path, index), item)
        elif isinstance(value, str) and "${{" in value:
            self.problem(path, "${{ }} is not replaced in defaults")

    def needs(self) -> None:
        jobs = self.job_file.jobs
        for name, job in jobs.items():
            for i, need in enumerate(job.need_names):
                if need not in jobs:
                    self.problem(("jobs", name, "needs", i), f"no job named {need!r}")
                elif need == name:
                    self.problem(("jobs", name, "needs", i), "a job cannot need itself")
        cycle = find_cycle({n: [d for d in j.need_names if d in jobs] for n, j in jobs.items()})
        if cycle and len(cycle) > 2:
            self.problem(("jobs", cycle[0], "needs"), "needs form a cycle: " + " -> ".join(cycle))

    def cells(self, name: str, job: JobSpec) -> int:
        if job.matrix is None:
            return 1
        try:
            return len(expand(job.matrix, self.limits.max_matrix_cells))
        except MatrixTooLarge as exc:
            self.problem(("jobs", name, "matrix"), str(exc))
            return 0

    def expressions(self, path: Path, value: Any, job: JobSpec, rel: Path) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                self.expressions((*path, key), item, job, (*rel, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.expressions((*path, index), item, job, (*rel, index))
        elif isinstance(value, str) and "${{" in value:
            self.expression(path, value, job, rel)

    def expression(self, path: Path, text: str, job: JobSpec, rel: Path) -> None:
        place = rel[0] if rel else ""
        if place == "arguments":
            self.cel_in(path, text)
            return
        if place in ("if", "cache"):
            return  # the model says what is wrong
        if place == "env" and any(NEEDS_OUTPUT.match(inside) for inside in expressions_in(text)):
            for message in output_problems(self.job_file, job, expressions_in(text)):
                self.problem(path, message)
            return
        if place not in MATRIX_PLACES:
            self.problem(path, "${{ }} is only replaced in image, env, steps, arguments and concurrency")
            return
        keys = set(job.matrix.axes) | {k for e in job.matrix.include for k in e} if job.matrix else set()
        for inside in expressions_in(text):
            simple = SIMPLE.match(inside)
            if simple is None or simple.group(1) != "matrix":
                self.problem(
                    path,
                    f"only ${{{{ matrix.NAME }}}} can be used here, not {inside!r}: "
                    "steps read event data from FORGEFLOW_* environment variables",
                )
            elif simple.group(2) not in keys:
                self.problem(path, f"the job's matrix has no {simple.group(2)!r}")

    def cel_in(self, path: Path, text: str) -> None:
        for inside in expressions_in(text):
            try:
                compile_condition(inside)
            except ExpressionError as exc:
                self.problem(path, str(exc))

    def argo(self, name: str, job: JobSpec) -> None:
        assert job.argo is not None
        base: Path = ("jobs", name, "argo", "templates")
        templates = [dict(t) for t in job.argo.templates]
        for error in template_errors(templates):
            self.problem((*base, *_error_path(error)), f"invalid Argo template: {error}")
        names = [t.get("name") for t in templates]
        if job.argo.entrypoint not in names:
            self.problem(("jobs", name, "argo", "entrypoint"), f"no template named {job.argo.entrypoint!r}")


def _error_path(error: str) -> Path:
    """The path an Argo validation error names (``[0].container.env[1].name: ...``), so the
    problem is placed at that key's line (or its nearest ancestor's)."""
    where = error.split(": ", 1)[0] if ": " in error else ""
    if not where.startswith("["):
        return ()
    path: list[str | int] = []
    for part in re.findall(r"\[(\d+)\]|\.?([A-Za-z_][\w-]*)", where):
        path.append(int(part[0]) if part[0] else part[1])
    return tuple(path)


def semantic_problems(job_file: JobFile, located: Located, file: str, limits: Limits) -> list[ConfigProblem]:
    return _Checker(job_file, located, file, limits).run()
