"""Which jobs a preview plans when the event alone does not say: a comment's command, or
``--job NAME`` (that job and the jobs it needs, whatever their triggers).

A comment is handled as the worker's command handler handles it: ``test [JOB...]``, a word
bound with ``on: {comment: {command: WORD}}``, and the built-in commands that start no jobs
from the job file, which are explained instead.
"""

from __future__ import annotations

import argparse

from service.commands import replies
from service.commands.parse import commands_in
from service.commands.selection import CommandRefused, comment_words, named_jobs
from service.events import Event, EventKind
from service.jobs.matcher import ChangedFiles, Decision
from service.jobs.model import JobFile
from service.jobs.suggest import did_you_mean
from service.runs.recipe import Selector
from service.settings import Settings

# Built-in commands that start no job from the job file by themselves.
NO_JOBS = {
    "retest": "runs again the jobs that failed at the head commit, which only the server knows; "
    "name them instead: {prefix} test JOB",
    "cancel": "stops the pull request's running runs; it starts no job",
    "ok-to-test": "approves a fork's pull request at its head commit, which starts the jobs that "
    "wait for approval: see them with --pr NUMBER --from-fork",
    "help": "replies with the commands and the repository's jobs; it starts no job",
}


class SelectionError(Exception):
    """What the command or ``--job`` asks cannot start jobs; the message says why."""


def _needs_of(job_file: JobFile, name: str) -> list[str]:
    return [n if isinstance(n, str) else str(getattr(n, "job", n)) for n in job_file.jobs[name].needs]


def with_needs(job_file: JobFile, names: list[str]) -> dict[str, str]:
    """Each job of ``names`` and of what they need (transitively), with why it is chosen."""
    chosen: dict[str, str] = {}
    queue = [(name, "asked for with --job") for name in names]
    while queue:
        name, why = queue.pop(0)
        if name in chosen or name not in job_file.jobs:
            continue
        chosen[name] = why
        queue += [(need, f"needed by {name}") for need in _needs_of(job_file, name)]
    return chosen


def only_jobs(names: list[str]) -> Selector:
    def select(event: Event, job_file: JobFile, changed: ChangedFiles) -> list[Decision]:
        jobs = list(job_file.jobs)
        for name in names:
            if name not in job_file.jobs:
                raise SelectionError(
                    f"--job {name}: no job named {name!r}{did_you_mean(name, jobs)} (jobs: {', '.join(jobs)})"
                )
        chosen = with_needs(job_file, names)
        return [Decision(job, job in chosen, chosen.get(job, "not asked for with --job")) for job in jobs]

    return select


def _command(event: Event, settings: Settings) -> tuple[Selector, list[str]]:
    prefix = settings.comment_prefix
    comment = event.comment
    found = commands_in(comment.body if comment else "", prefix)
    if not found:
        raise SelectionError(f"the comment has no {prefix} command: write e.g. {prefix} test")
    command = found[0]
    user = comment.author if comment else event.sender
    lines = [f"command: {prefix} {command.text} by {user} (assumed to have write access, as they must)"]
    if len(found) > 1:
        lines.append(f"note: the comment has {len(found)} commands; this shows the first")
    word = command.word
    if word in NO_JOBS:
        raise SelectionError(f"{prefix} {word} {NO_JOBS[word].format(prefix=prefix)}")
    named = named_jobs(prefix, command.args if word == "test" else (), word, user)

    def select(event: Event, job_file: JobFile, changed: ChangedFiles) -> list[Decision]:
        words = comment_words(job_file)
        if word != "test" and word not in words:
            raise SelectionError(replies.unknown_command(prefix, word, sorted(words)))
        try:
            return named(event, job_file, changed)
        except CommandRefused as exc:
            raise SelectionError(exc.message) from exc

    return select, lines


def selection(
    args: argparse.Namespace, event: Event, settings: Settings
) -> tuple[Selector | None, list[str]]:
    """The job selector the arguments ask for (None: the event's triggers decide), and what to say."""
    jobs: list[str] = list(getattr(args, "job", None) or [])
    if jobs:
        return only_jobs(jobs), []
    if event.kind is EventKind.COMMENT:
        return _command(event, settings)
    return None, []
