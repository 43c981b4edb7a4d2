"""Read a job file's text into a :class:`JobFile`, or into errors that say file:line:column.

Every error is collected (not only the first), so ``forgeflow validate`` shows them all and
the ``forgeflow/config`` status can say where the first one is. Order: YAML (with its limits),
templates (``uses``), the schema, then what the schema cannot check (:mod:`checks`).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from service.jobs.checks import find_cycle, semantic_problems
from service.jobs.errors import ConfigProblem, JobFileError, dotted, problem_at
from service.jobs.model import JobFile
from service.jobs.templates import TemplateSource, resolve_uses
from service.jobs.yaml_source import Limits, Located, Path, YamlError, load_located

__all__ = ["ConfigProblem", "JobFileError", "dotted", "find_cycle", "load_job_file"]


def _problems_from_validation(exc: ValidationError, located: Located, file: str) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc: Path = tuple(p for p in error["loc"] if isinstance(p, int | str) and not _is_internal(p))
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required key is missing"
        problems.append(problem_at(located, file, loc, message))
    return problems


def _is_internal(part: Any) -> bool:
    # pydantic puts validator/union branch names in locs (e.g. "function-before[...]")
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _about(problem: ConfigProblem, jobs: set[str]) -> bool:
    return any(problem.path == f"jobs.{j}" or problem.path.startswith(f"jobs.{j}.") for j in jobs)


def load_job_file(
    text: str | bytes,
    file: str = ".forgeflow.yaml",
    limits: Limits | None = None,
    templates: TemplateSource | None = None,
) -> JobFile:
    """Parse and validate a job file. Raises :class:`JobFileError` listing every problem.

    ``templates`` finds the templates jobs ``uses`` (None: no templates are known).
    """
    limits = limits or Limits()
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
    jobs = data.get("jobs")
    if isinstance(jobs, dict) and len(jobs) > limits.max_jobs:
        line, column = located.position(("jobs",))
        raise JobFileError(
            [ConfigProblem(file, line, column, "jobs", f"{len(jobs)} jobs; the limit is {limits.max_jobs}")]
        )
    template_problems, failed = resolve_uses(located, file, templates, limits)
    try:
        job_file = JobFile.model_validate(data)
    except ValidationError as exc:
        problems = [p for p in _problems_from_validation(exc, located, file) if not _about(p, failed)]
        raise JobFileError(template_problems + problems) from exc
    if template_problems:
        raise JobFileError(template_problems)
    problems = semantic_problems(job_file, located, file, limits)
    if problems:
        raise JobFileError(problems)
    job_file.remember(located, file)
    return job_file
