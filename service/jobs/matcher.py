"""Which jobs of a job file an event triggers, and why the others did not.

Pure: an :class:`Event`, a :class:`JobFile` and (for path filters) a provider of the changed
files in; one :class:`Decision` per job out. The provider is only called when a job that is
otherwise triggered has ``paths``/``paths-ignore``, and at most once (the caller's provider may
ask the forge). Order of the checks: event kind and trigger filters (branches, tags, types,
labels), then ``if:`` (CEL), then paths. A job that a filter (branches, tags, labels, ``if:``,
paths) kept from running says so (``Decision.filtered``): a ``required`` job is then reported
as skipped rather than not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.events import Event, EventKind
from service.jobs.conditions import OUTCOMES, selected_outcomes, uses_status
from service.jobs.errors import ConfigProblem, JobFileError, dotted
from service.jobs.expressions import ExpressionError, event_context
from service.jobs.globs import matches_any
from service.jobs.model import JobFile, JobSpec
from service.jobs.suggest import did_you_mean

ChangedFiles = Callable[[], Sequence[str] | None]
PATH_EVENTS = (EventKind.PUSH, EventKind.PULL_REQUEST)


ALL_OUTCOMES = frozenset(OUTCOMES)


@dataclass(frozen=True)
class Decision:
    job: str
    matched: bool
    reason: str
    # how the job's needs may end for it to run (see service.jobs.conditions): its ``if:``
    # with the event known, for each outcome
    outcomes: frozenset[str] = frozenset({"S"})
    filtered: bool = False  # not run because a filter said no (not: another event's job)


class Filtered(str):
    """Why a job does not run, when a filter (not the event's kind or type) decided it."""

    __slots__ = ()


class _Changed:
    """Calls the provider once, on first use."""

    def __init__(self, provider: ChangedFiles | None) -> None:
        self.provider = provider
        self.asked = False
        self.files: Sequence[str] | None = None

    def get(self) -> Sequence[str] | None:
        if not self.asked:
            self.asked = True
            self.files = self.provider() if self.provider is not None else None
        return self.files


def _branch_filter(
    branch: str,
    job: JobSpec,
    trigger_branches: Sequence[str] | None,
    trigger_ignore: Sequence[str] | None,
) -> str | None:
    """None when the branch passes every filter, else why not."""
    for label, patterns in (("branches", job.branches), ("on.branches", trigger_branches)):
        if patterns is not None and not matches_any(patterns, branch):
            return Filtered(f"branch {branch!r} is not in {label} {list(patterns)}")
    for label, patterns in (
        ("branches-ignore", job.branches_ignore),
        ("on.branches-ignore", trigger_ignore),
    ):
        if patterns is not None and matches_any(patterns, branch):
            return Filtered(f"branch {branch!r} is in {label} {list(patterns)}")
    return None


def _label_filter(event: Event, job: JobSpec, trigger_labels: Sequence[str] | None) -> str | None:
    labels = event.pull_request.labels if event.pull_request else ()
    for where, patterns in (("labels", job.labels), ("on.labels", trigger_labels)):
        if patterns is not None and not any(matches_any(patterns, label) for label in labels):
            return Filtered(f"no label in {where} {list(patterns)} (labels: {list(labels)})")
    return None


def _trigger(event: Event, job: JobSpec) -> tuple[str | None, str]:
    """(why not, what it was): the event kind and its trigger's own filters."""
    on, kind = job.on, event.kind
    if kind is EventKind.PUSH:
        if on.push is None:
            return "not triggered by push", ""
        why = _branch_filter(event.branch, job, on.push.branches, on.push.branches_ignore)
        return why, f"push to {event.branch}"
    if kind in (EventKind.TAG, EventKind.RELEASE):
        word = kind.value
        trigger = on.tag if kind is EventKind.TAG else on.release
        if trigger is None:
            return f"not triggered by {word}", ""
        tag_patterns = on.tag.tags if on.tag is not None and kind is EventKind.TAG else None
        for where, patterns in (("on.tag", tag_patterns), ("tags", job.tags)):
            if patterns is not None and not matches_any(patterns, event.tag):
                return Filtered(f"tag {event.tag!r} is not in {where} {list(patterns)}"), ""
        return None, f"{word} {event.tag}"
    if kind is EventKind.PULL_REQUEST:
        pr = on.pull_request
        if pr is None:
            return "not triggered by pull_request", ""
        action = "closed" if event.action == "merged" else event.action
        if action not in pr.types:
            return f"pull_request {event.action!r} is not in types {list(pr.types)}", ""
        why = _branch_filter(event.target_branch, job, pr.branches, pr.branches_ignore)
        why = why or _label_filter(event, job, pr.labels)
        return why, f"pull request {event.action} into {event.target_branch}"
    if kind is EventKind.MERGE_GROUP:
        if on.merge_group is None:
            return "not triggered by merge_group", ""
        why = _branch_filter(
            event.target_branch, job, on.merge_group.branches, on.merge_group.branches_ignore
        )
        return why, f"merge group into {event.target_branch}"
    if kind is EventKind.MANUAL:
        if on.manual is None:
            return "not triggered manually (add 'manual' to on)", ""
        return None, "started manually"
    if kind is EventKind.SCHEDULE:
        return _schedule(event, job)
    return f"{kind.value} events are decided by commands", ""


def _schedule(event: Event, job: JobSpec) -> tuple[str | None, str]:
    """A scheduled event names its cron and branch; the job must list that pair."""
    if job.on.schedule is None:
        return "not triggered by schedule", ""
    cron = event.extra.get("schedule", "")
    default = event.repository.default_branch
    for entry in job.on.schedule:
        if entry.cron == cron and (entry.branch or default) == event.branch:
            return None, f"scheduled ({cron}) on {event.branch}"
    return f"no schedule {cron!r} on {event.branch!r} in on.schedule", ""


def _path_filter(event: Event, job: JobSpec, changed: _Changed) -> tuple[str | None, str]:
    """(why not, note) for ``paths``/``paths-ignore`` (the job's and its trigger's)."""
    if event.kind not in PATH_EVENTS:
        return None, ""
    trigger = job.on.push if event.kind is EventKind.PUSH else job.on.pull_request
    includes = [p for p in (job.paths, trigger.paths if trigger else None) if p is not None]
    ignores = [p for p in (job.paths_ignore, trigger.paths_ignore if trigger else None) if p is not None]
    if not includes and not ignores:
        return None, ""
    files = changed.get()
    if files is None:
        return None, "; the forge could not list the changed files, so paths filters were not applied"
    for patterns in includes:
        if not any(matches_any(patterns, f) for f in files):
            return f"no changed file matches paths {list(patterns)} ({_count(files)})", ""
    for patterns in ignores:
        if all(matches_any(patterns, f) for f in files):
            return f"every changed file matches paths-ignore {list(patterns)} ({_count(files)})", ""
    return None, f"; {_count(files)} match the paths filters"


def _count(files: Sequence[str]) -> str:
    return f"{len(files)} changed file{'s' if len(files) != 1 else ''}"


def _condition_error(job_file: JobFile, name: str, exc: ExpressionError) -> JobFileError:
    path = ("jobs", name, "if")
    file, line, column = job_file.where(path)
    return JobFileError([ConfigProblem(file, line, column, dotted(path), str(exc))])


def decide(
    event: Event, name: str, job: JobSpec, changed: _Changed | None = None, job_file: JobFile | None = None
) -> Decision:
    """Whether ``job`` runs for ``event``. Raises :class:`JobFileError` when ``if:`` fails to
    evaluate (a runtime error is a problem of the job file, reported like a syntax error)."""
    why, what = _trigger(event, job)
    if why is not None:
        return Decision(name, False, why, filtered=isinstance(why, Filtered))
    requested = [j for j in event.extra.get("jobs", "").split(",") if j]
    if event.kind is EventKind.MANUAL and requested and name not in requested:
        return Decision(name, False, f"not requested (the run asked for {', '.join(requested)})")
    changed = changed or _Changed(None)
    outcomes = frozenset({"S"})
    if job.if_ is not None:
        context = event_context(event)
        if "files" in job.if_:
            context["files"] = list(changed.get() or ())
        possible = ALL_OUTCOMES if job.needs else frozenset({"S"})
        try:
            outcomes = selected_outcomes(job.if_, {"event": context}, sorted(possible))
        except ExpressionError as exc:
            raise _condition_error(job_file or JobFile(version=1, jobs={name: job}), name, exc) from exc
        if not outcomes:
            return Decision(name, False, f"if: {job.if_} is false", filtered=True)
    why, note = _path_filter(event, job, changed)
    if why is not None:
        return Decision(name, False, why, filtered=True)
    if uses_status(job.if_):
        note += f"; if: {job.if_} decides with its needs' results"
    return Decision(name, True, what + note, outcomes)


def missing_requested(event: Event, job_file: JobFile) -> list[str]:
    """What a manual run asked for that the job file does not have, said with the closest name."""
    requested = (
        [j for j in event.extra.get("jobs", "").split(",") if j] if event.kind is EventKind.MANUAL else []
    )
    jobs = list(job_file.jobs)
    return [
        f"no job named {name!r}{did_you_mean(name, jobs)}" for name in requested if name not in job_file.jobs
    ]


def match_jobs(event: Event, job_file: JobFile, changed_files: ChangedFiles | None = None) -> list[Decision]:
    """A decision for every job, in the file's order.

    ``changed_files`` lists the files the push or pull request changed (None when unknown); it
    is called at most once, and only when a path filter needs it.
    """
    changed = _Changed(changed_files)
    decisions: list[Decision] = []
    problems: list[ConfigProblem] = []
    for name, job in job_file.jobs.items():
        try:
            decisions.append(decide(event, name, job, changed, job_file))
        except JobFileError as exc:
            problems += exc.problems
    if problems:
        raise JobFileError(problems)
    return decisions
