"""Which jobs a command runs: named ones, the ones bound to a comment word, the failed ones, and
the ones a forge's "Re-run" asks for."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import select

from service.commands import replies
from service.context import Context
from service.events import Event
from service.jobs.matcher import ChangedFiles, Decision
from service.jobs.model import JobFile
from service.reporting.check_runs import RERUN_FAILED, parse_external_id
from service.store.models import Job, JobState, Run

CONFIG_CONTEXT = "forgeflow/config"
SUMMARY_CONTEXT = "forgeflow/summary"


class CommandRefused(Exception):
    """A command that cannot run as asked; ``message`` is the reply."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def comment_words(job_file: JobFile) -> dict[str, list[str]]:
    """Comment words and the jobs they run: ``on: [comment]`` answers ``test``; ``on:
    {comment: {command: smoke}}`` answers ``smoke``."""
    words: dict[str, list[str]] = {}
    for name, job in job_file.jobs.items():
        if job.on.comment is not None:
            words.setdefault(job.on.comment.command, []).append(name)
    return words


def named_jobs(
    prefix: str, names: Sequence[str], word: str, user: str
) -> Callable[[Event, JobFile, ChangedFiles], list[Decision]]:
    """A job selector for the pipeline: the named jobs, or those answering ``word``."""

    def select_jobs(event: Event, job_file: JobFile, changed: ChangedFiles) -> list[Decision]:
        jobs = list(job_file.jobs)
        if names:
            unknown = [n for n in names if n not in job_file.jobs]
            if unknown:
                raise CommandRefused(replies.unknown_jobs(prefix, unknown, jobs))
            chosen = set(names)
        else:
            chosen = set(comment_words(job_file).get(word, []))
            if not chosen:
                raise CommandRefused(replies.no_comment_jobs(prefix, word, jobs))
        reason = f"asked by @{user} with {prefix} {word}"
        return [
            Decision(name, name in chosen, reason if name in chosen else "not asked for") for name in jobs
        ]

    return select_jobs


def failed_jobs(ctx: Context, event: Event) -> list[str]:
    """Jobs whose latest state on the event's commit is failure or error."""
    latest: dict[str, tuple[str, str]] = {}
    with ctx.db.session() as session:
        rows = session.execute(
            select(Job.context, Job.name, Job.state)
            .join(Run)
            .where(Run.forge == event.forge, Run.repo == event.repository.full_name, Run.sha == event.sha)
            .order_by(Run.id, Job.id)
        )
        for context, name, state in rows:
            latest[context] = (name, state)
    failed = {
        name
        for context, (name, state) in latest.items()
        if context not in (CONFIG_CONTEXT, SUMMARY_CONTEXT) and state in (JobState.FAILURE, JobState.ERROR)
    }
    return sorted(failed)


def first_run_event(ctx: Context, event: Event) -> Event | None:
    """The event of the run a re-run request is about: the run its check run names
    (``external_id``), else the newest run on its commit."""
    found = parse_external_id(event.extra.get("external_id", ""))
    with ctx.db.session() as session:
        query = select(Run.event_json).where(
            Run.forge == event.forge, Run.repo == event.repository.full_name, Run.sha == event.sha
        )
        if found is not None:
            query = query.where(Run.id == found[0])
        text = session.scalars(query.order_by(Run.id.desc())).first()
    return Event.from_json(text) if text else None


def rerun_jobs(ctx: Context, event: Event) -> list[str]:
    """What a forge's "Re-run" runs again: the job of the check run it names, or (a check suite,
    the "Re-run failed jobs" button, the config or summary check) the failed jobs."""
    if event.extra.get("requested_action") == RERUN_FAILED or "check_name" not in event.extra:
        return failed_jobs(ctx, event)
    found = parse_external_id(event.extra.get("external_id", ""))
    if found is not None:
        with ctx.db.session() as session:
            row = session.execute(
                select(Job.name, Job.context).join(Run).where(Run.id == found[0], Job.task == found[1])
            ).first()
        if row is not None and row[1] not in (CONFIG_CONTEXT, SUMMARY_CONTEXT):
            return [row[0]]
    check = event.extra["check_name"]
    if check.startswith("forgeflow/") and check not in (CONFIG_CONTEXT, SUMMARY_CONTEXT):
        return [check.removeprefix("forgeflow/").split(" (")[0]]
    return failed_jobs(ctx, event)
