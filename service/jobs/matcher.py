"""Which jobs of a job file an event triggers, and why the others did not.

Pure: an :class:`Event` and a :class:`JobFile` in, one :class:`Decision` per job out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.events import Event, EventKind
from service.jobs.globs import matches_any
from service.jobs.model import JobFile, JobSpec


@dataclass(frozen=True)
class Decision:
    job: str
    matched: bool
    reason: str


def _branch_filter(
    branch: str,
    job: JobSpec,
    trigger_branches: Sequence[str] | None,
    trigger_ignore: Sequence[str] | None,
) -> str | None:
    """None when the branch passes every filter, else why not."""
    for label, patterns in (("branches", job.branches), ("on.branches", trigger_branches)):
        if patterns is not None and not matches_any(patterns, branch):
            return f"branch {branch!r} is not in {label} {list(patterns)}"
    for label, patterns in (
        ("branches-ignore", job.branches_ignore),
        ("on.branches-ignore", trigger_ignore),
    ):
        if patterns is not None and matches_any(patterns, branch):
            return f"branch {branch!r} is in {label} {list(patterns)}"
    return None


def decide(event: Event, name: str, job: JobSpec) -> Decision:
    """Whether ``job`` runs for ``event`` (comment commands are decided elsewhere)."""
    on = job.on
    kind = event.kind
    if kind is EventKind.PUSH:
        if on.push is None:
            return Decision(name, False, "not triggered by push")
        why = _branch_filter(event.branch, job, on.push.branches, on.push.branches_ignore)
        return Decision(name, why is None, why or f"push to {event.branch}")
    if kind is EventKind.TAG:
        if on.tag is None:
            return Decision(name, False, "not triggered by tag")
        if on.tag.tags is not None and not matches_any(on.tag.tags, event.tag):
            return Decision(name, False, f"tag {event.tag!r} is not in on.tag {list(on.tag.tags)}")
        return Decision(name, True, f"tag {event.tag}")
    if kind is EventKind.PULL_REQUEST:
        trigger = on.pull_request
        if trigger is None:
            return Decision(name, False, "not triggered by pull_request")
        action = "closed" if event.action == "merged" else event.action
        if action not in trigger.types:
            return Decision(
                name, False, f"pull_request {event.action!r} is not in types {list(trigger.types)}"
            )
        why = _branch_filter(event.target_branch, job, trigger.branches, trigger.branches_ignore)
        return Decision(name, why is None, why or f"pull request {event.action} into {event.target_branch}")
    if kind is EventKind.RELEASE:
        if on.release is None:
            return Decision(name, False, "not triggered by release")
        return Decision(name, True, f"release {event.tag}")
    if kind is EventKind.MANUAL:
        if on.manual is None:
            return Decision(name, False, "not triggered manually (add 'manual' to on)")
        return Decision(name, True, "started manually")
    return Decision(name, False, f"{kind.value} events are decided by commands")


def match_jobs(event: Event, job_file: JobFile) -> list[Decision]:
    """A decision for every job, in the file's order."""
    return [decide(event, name, job) for name, job in job_file.jobs.items()]
