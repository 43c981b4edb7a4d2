"""What the schema alone cannot check: needs, conditions, ``${{ }}`` placement, raw Argo (and
event data that would run as code there: :mod:`service.jobs.event_data`), sizes.

These checks read the file as written (plain data), not the validated model, so that they run
even when the schema refused something elsewhere: a file with an unknown key in one job and a
misspelt ``needs`` in another gets both problems in one pass. Checks that need a validated
part (a matrix's cells, raw Argo templates) get the jobs that did validate. What raw Argo may
reach depends on the repository's policy, so that fence is checked when a run is planned
(:mod:`service.jobs.grants`), not here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from service.argo.validation import template_errors
from service.jobs.celcheck import CelIssue, check
from service.jobs.errors import ConfigProblem, problem_at, problem_in_value
from service.jobs.event_data import leaks
from service.jobs.event_schema import STEP_VARIABLES, CelType, event_with_inputs, matrix_type
from service.jobs.expressions import EXPRESSION, SIMPLE, ExpressionError, expressions_in, parse_expression
from service.jobs.handoff_checks import NEEDS_OUTPUT, output_problems
from service.jobs.matrix import MatrixTooLarge, expand
from service.jobs.model import JOB_NAME, JobFile, JobSpec, job_name_problem
from service.jobs.options import PARAMETER_NAME
from service.jobs.suggest import did_you_mean, one_of
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


def need_names(value: Any) -> list[tuple[int | None, str]]:
    """(index in the list or None, job name) of every need: ``build`` or ``{job: build}``."""
    if isinstance(value, str):
        return [(None, value)]
    if isinstance(value, dict):
        return [(None, value["job"])] if isinstance(value.get("job"), str) else []
    if not isinstance(value, list):
        return []
    found: list[tuple[int | None, str]] = []
    for index, item in enumerate(value):
        if isinstance(item, str):
            found.append((index, item))
        elif isinstance(item, dict) and isinstance(item.get("job"), str):
            found.append((index, item["job"]))
    return found


def declared_inputs(jobs: Mapping[str, Any]) -> dict[str, str]:
    """The manual inputs the file's jobs declare (``on: {manual: {inputs: ...}}``), name: type;
    one declared with two types is "dyn"."""
    found: dict[str, str] = {}
    for raw in jobs.values():
        on = raw.get("on") if isinstance(raw, dict) else None
        manual = on.get("manual") if isinstance(on, dict) else None
        inputs = manual.get("inputs") if isinstance(manual, dict) else None
        for name, spec in inputs.items() if isinstance(inputs, dict) else ():
            kind = str(spec.get("type", "string")) if isinstance(spec, dict) else "string"
            found[str(name)] = kind if found.get(str(name), kind) == kind else "dyn"
    return found


class _Checker:
    def __init__(self, located: Located, file: str, limits: Limits, valid: Mapping[str, JobSpec]) -> None:
        self.located, self.file, self.limits, self.valid = located, file, limits, valid
        data = located.data if isinstance(located.data, dict) else {}
        self.data = data
        jobs = data.get("jobs")
        self.jobs: dict[str, Any] = {str(k): v for k, v in jobs.items()} if isinstance(jobs, dict) else {}
        self.inputs = declared_inputs(self.jobs)
        self.problems: list[ConfigProblem] = []

    def as_declared(self) -> JobFile:
        """The job file for checks across jobs: valid jobs as they are, the others with the
        outputs and matrix they declare (so a typo elsewhere in them hides nothing)."""
        jobs: dict[str, JobSpec] = {}
        for name, raw in self.jobs.items():
            if name in self.valid:
                jobs[name] = self.valid[name]
            elif isinstance(raw, dict):
                outputs = raw.get("outputs")
                declared = tuple(str(o) for o in outputs) if isinstance(outputs, list) else ()
                jobs[name] = JobSpec.model_construct(outputs=declared, matrix=raw.get("matrix"))
        return JobFile.model_construct(version=1, jobs=jobs)

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(problem_at(self.located, self.file, path, message))

    def run(self) -> list[ConfigProblem]:
        for name in self.jobs:
            if not JOB_NAME.match(name):
                self.problem(("jobs", name), job_name_problem(name))
        self.needs()
        total = 0
        for name, raw in self.jobs.items():
            if not isinstance(raw, dict):
                continue
            job = self.valid.get(name)
            total += self.cells(name, job) if job is not None else 1
            self.expressions(("jobs", name), raw, _matrix_keys(raw.get("matrix")), ())
            self.joined_lines(name, raw.get("steps"))
            self.condition(("jobs", name, "if"), raw.get("if"))
            if job is not None and job.argo is not None:
                self.argo(name, job)
            arguments = raw.get("arguments")
            for key in arguments if isinstance(arguments, dict) else ():
                if not PARAMETER_NAME.match(str(key)):
                    self.problem(("jobs", name, "arguments", key), f"{key!r} is not an Argo parameter name")
        if total > self.limits.max_jobs:
            self.problem(("jobs",), f"{total} jobs and matrix cells; the limit is {self.limits.max_jobs}")
        concurrency = self.data.get("concurrency")
        group = concurrency.get("group") if isinstance(concurrency, dict) else concurrency
        if isinstance(group, str):
            path: Path = ("concurrency", "group") if isinstance(concurrency, dict) else ("concurrency",)
            self.cel_in(path, group, {"event": event_with_inputs(self.inputs), "matrix": matrix_type(())})
        self.no_expressions(("defaults",), self.data.get("defaults"))
        return self.problems

    def joined_lines(self, name: str, steps: Any) -> None:
        """``run: make`` with more commands on the lines below: YAML joins them into one line."""
        for index, step in enumerate(steps if isinstance(steps, list) else []):
            path: Path = ("jobs", name, "steps", index)
            text = step
            if isinstance(step, dict):
                path, text = (*path, "run"), step.get("run")
            if path in self.located.folded and isinstance(text, str):
                shown = text if len(text) <= 60 else text[:57] + "..."
                self.problem(
                    path,
                    f"YAML joins these lines into one command ({shown!r}); for one command per line "
                    "write run: | and indent the commands below it",
                )

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
        names = list(self.jobs)
        graph: dict[str, list[str]] = {}
        for name, raw in self.jobs.items():
            value = raw.get("needs") if isinstance(raw, dict) else None
            graph[name] = []
            for index, need in need_names(value):
                path: Path = ("jobs", name, "needs") if index is None else ("jobs", name, "needs", index)
                if need == name:
                    self.problem(path, "a job cannot need itself")
                elif "," in need and need not in self.jobs:
                    listed = ", ".join(n.strip() for n in need.split(",") if n.strip())
                    self.problem(path, f"no job named {need!r}: several jobs are a list: needs: [{listed}]")
                elif need not in self.jobs:
                    others = [n for n in names if n != name]
                    hint = did_you_mean(need, others) or (f" (jobs: {one_of(others)})" if others else "")
                    self.problem(path, f"no job named {need!r}{hint}")
                else:
                    graph[name].append(need)
        cycle = find_cycle(graph)
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

    def condition(self, path: Path, text: Any) -> None:
        """``if:``: CEL over ``event``, checked against its schema; it must be true or false."""
        if not isinstance(text, str) or "${{" in text:
            return  # the schema says what is wrong
        event = event_with_inputs(self.inputs)
        self.static_check(path, text, text, 0, {"event": event}, want_bool=True, status=True)

    def static_check(
        self,
        path: Path,
        whole: str,
        text: str,
        start: int,
        variables: dict[str, CelType],
        want_bool: bool,
        status: bool = False,
    ) -> None:
        for issue in _checked(text, tuple(variables.items()), want_bool, status):
            self.problems.append(
                problem_in_value(self.located, self.file, path, whole, start + issue.offset, issue.message)
            )

    def expressions(self, path: Path, value: Any, matrix: tuple[str, ...], rel: Path) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                self.expressions((*path, key), item, matrix, (*rel, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.expressions((*path, index), item, matrix, (*rel, index))
        elif isinstance(value, str) and "${{" in value:
            self.expression(path, value, matrix, rel)

    def expression(self, path: Path, text: str, matrix: tuple[str, ...], rel: Path) -> None:
        place = rel[0] if rel else ""
        if place == "arguments":
            self.cel_in(path, text, {"event": event_with_inputs(self.inputs), "matrix": matrix_type(matrix)})
            return
        if place in ("if", "cache"):
            return  # the schema says what is wrong
        if place == "env" and any(NEEDS_OUTPUT.match(inside) for inside in expressions_in(text)):
            job = self.valid.get(str(path[1]))
            if job is not None:
                for message in output_problems(self.as_declared(), job, expressions_in(text)):
                    self.problem(path, message)
            return
        if place not in MATRIX_PLACES:
            self.problem(path, "${{ }} is only replaced in image, env, steps, arguments and concurrency")
            return
        for inside in expressions_in(text):
            simple = SIMPLE.match(inside)
            if simple is None or simple.group(1) != "matrix":
                variable = STEP_VARIABLES.get(inside)
                read = f"${variable}" if variable else "FORGEFLOW_* environment variables"
                self.problem(
                    path,
                    f"only ${{{{ matrix.NAME }}}} can be used here, not {inside!r}: "
                    f"steps read event data from {read}",
                )
            elif simple.group(2) not in matrix:
                hint = did_you_mean(simple.group(2), matrix) or (
                    f" (its keys: {one_of(matrix)})" if matrix else ": add a matrix: to the job"
                )
                self.problem(path, f"the job's matrix has no {simple.group(2)!r}{hint}")

    def cel_in(self, path: Path, text: str, variables: dict[str, CelType]) -> None:
        for inside, start in _spans(text):
            try:
                parse_expression(inside)
            except ExpressionError as exc:
                self.problem(path, str(exc))
                continue
            self.static_check(path, text, inside, start, variables, want_bool=False)

    def argo(self, name: str, job: JobSpec) -> None:
        assert job.argo is not None
        base: Path = ("jobs", name, "argo", "templates")
        templates = [dict(t) for t in job.argo.templates]
        for error in template_errors(templates):
            self.problem((*base, *_error_path(error)), f"invalid Argo template: {error}")
        names = [t.get("name") for t in templates]
        if job.argo.entrypoint not in names:
            known = [str(n) for n in names if n]
            self.problem(
                ("jobs", name, "argo", "entrypoint"),
                f"no template named {job.argo.entrypoint!r}{did_you_mean(job.argo.entrypoint, known)}",
            )
        for leak in leaks(templates, job.argo.entrypoint, job.arguments):
            self.problem((*base, *leak.path), leak.message)


@lru_cache(maxsize=1024)
def _checked(
    text: str, variables: tuple[tuple[str, CelType], ...], want_bool: bool, status: bool
) -> tuple[CelIssue, ...]:
    """The static check of an expression (the same conditions come with every event)."""
    try:
        tree = parse_expression(text)
    except ExpressionError:
        return ()  # a syntax error: reported by the schema (if:) or by cel_in
    return tuple(check(tree, text, dict(variables), want_bool, status))


def _spans(text: str) -> Iterator[tuple[str, int]]:
    """(inside stripped, its offset in ``text``) of every ``${{ ... }}``."""
    for match in EXPRESSION.finditer(text):
        raw = match.group(1)
        inside = raw.strip()
        yield inside, match.start(1) + (len(raw) - len(raw.lstrip()))


def _matrix_keys(matrix: Any) -> tuple[str, ...]:
    if not isinstance(matrix, dict):
        return ()
    keys = [str(k) for k in matrix if k not in ("include", "exclude")]
    for entry in _list(matrix.get("include")):  # exclude only names axes
        if isinstance(entry, dict):
            keys += [str(k) for k in entry]
    return tuple(dict.fromkeys(keys))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


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


def semantic_problems(
    located: Located, file: str, limits: Limits, valid: Mapping[str, JobSpec]
) -> list[ConfigProblem]:
    """Problems of the file as written; ``valid`` holds the jobs the schema accepted."""
    return _Checker(located, file, limits, valid).run()
