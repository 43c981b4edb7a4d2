"""Read a job file's text into a :class:`JobFile`, or into errors that say file:line:column.

Every problem is found in one pass and reported in file order, so ``forgeflow validate``
shows them all at once and the ``forgeflow/config`` status can say where the first one is.
Order of the work: YAML (with its limits; a syntax error stops here, since nothing after it
can be read), slips YAML itself hides (keys written twice, ``!`` read as a tag, ``3.10``
read as a number), templates (``uses``), the schema, then what the schema cannot check
(:mod:`checks`) over the file as written, so that one refused key hides nothing else.
"""

from __future__ import annotations

from pydantic import ValidationError

from service.jobs.checks import find_cycle, semantic_problems
from service.jobs.errors import ConfigProblem, JobFileError, dotted, problem_at
from service.jobs.model import JobFile, JobSpec
from service.jobs.scalars import changed_values, quote_message
from service.jobs.schema_errors import schema_problems
from service.jobs.templates import TemplateSource, resolve_uses
from service.jobs.yaml_source import Limits, Located, YamlError, load_located

__all__ = ["ConfigProblem", "JobFileError", "dotted", "find_cycle", "in_file_order", "load_job_file"]


def _about(problem: ConfigProblem, jobs: set[str]) -> bool:
    return any(problem.path == f"jobs.{j}" or problem.path.startswith(f"jobs.{j}.") for j in jobs)


def in_file_order(problems: list[ConfigProblem], file: str) -> list[ConfigProblem]:
    """The job file's problems by line and column, then those in other files (templates);
    each reported once."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.file != file, p.file, p.line, p.column))


def _valid_jobs(located: Located) -> dict[str, JobSpec]:
    """The jobs that pass the schema on their own (their semantic checks can run)."""
    jobs = located.data.get("jobs")
    valid: dict[str, JobSpec] = {}
    for name, raw in jobs.items() if isinstance(jobs, dict) else ():
        try:
            valid[str(name)] = JobSpec.model_validate(raw)
        except ValidationError:
            continue
    return valid


def load_job_file(
    text: str | bytes,
    file: str = ".forgeflow.yaml",
    limits: Limits | None = None,
    templates: TemplateSource | None = None,
    template_names: tuple[str, ...] = (),
) -> JobFile:
    """Parse and validate a job file. Raises :class:`JobFileError` listing every problem.

    ``templates`` finds the templates jobs ``uses`` (None: no templates are known);
    ``template_names`` are the ones known to exist, for "did you mean" suggestions.
    """
    limits = limits or Limits()
    try:
        located = load_located(text, limits)
    except YamlError as exc:
        raise JobFileError([ConfigProblem(file, exc.line, exc.column, "", exc.message, syntax=True)]) from exc
    data = located.data
    if data is None:
        empty = "the file is empty: start it with version: 1 and jobs:"
        raise JobFileError([ConfigProblem(file, 1, 1, "", empty)])
    if not isinstance(data, dict):
        raise JobFileError(
            [ConfigProblem(file, 1, 1, "", "expected a mapping with version: 1 and jobs: at the top level")]
        )
    problems = [problem_at(located, file, path, message) for path, _, _, message in located.issues]
    if "version" in data and data["version"] != 1:
        problems.append(
            problem_at(
                located, file, ("version",), f"unsupported version {data['version']!r}; write version: 1"
            )
        )
    jobs = data.get("jobs")
    if isinstance(jobs, dict) and len(jobs) > limits.max_jobs:
        line, column = located.position(("jobs",))
        raise JobFileError(
            [ConfigProblem(file, line, column, "jobs", f"{len(jobs)} jobs; the limit is {limits.max_jobs}")]
        )
    problems += [problem_at(located, file, p, quote_message(t, v)) for p, t, v in changed_values(located)]
    template_problems, failed = resolve_uses(located, file, templates, limits, template_names)
    problems += template_problems
    reported = {p.path for p in problems}
    job_file: JobFile | None = None
    try:
        job_file = JobFile.model_validate(data)
    except ValidationError as exc:
        schema = schema_problems(exc, located, file)
        kept = [p for p in schema if not _about(p, failed) and not _covered(p.path, reported)]
        problems += kept if kept or problems else schema
    valid = dict(job_file.jobs) if job_file is not None else _valid_jobs(located)
    unknown = {p.path for p in problems if p.message.startswith("unknown key")}  # nothing below counts
    problems += [
        p
        for p in semantic_problems(located, file, limits, valid)
        if not _about(p, failed) and not _covered(p.path, unknown)
    ]
    if problems or job_file is None:
        raise JobFileError(in_file_order(problems, file))
    job_file.remember(located, file)
    return job_file


def _covered(path: str, reported: set[str]) -> bool:
    """A problem about a value already reported (``env.X`` when ``env.X`` said "quote it"), or
    below a key already reported as unknown."""
    return path in reported or any(
        path.startswith(f"{r}.") or path.startswith(f"{r}[") for r in reported if r
    )
