"""Act on the commands of a pull request comment (and on GitHub's check "Re-run").

Every command of a comment is handled once: its key (forge, repository, comment id, line) is a
unique row (``commands``) and the run it starts has that key as its trigger, so a comment the
forge delivers twice, or a worker killed half-way, never starts a job twice. Accepted commands
get a reaction where the forge has them, and a reply with the run's link; refused ones a reply
saying who may run them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from service.clock import now
from service.commands import replies
from service.commands.parse import Command, commands_in
from service.commands.selection import (
    CommandRefused,
    comment_words,
    failed_jobs,
    first_run_event,
    named_jobs,
    rerun_jobs,
)
from service.context import Context
from service.events import Event, EventKind, PullRequest
from service.forges.base import Forge, ForgeError, PullRequestInfo, TransientForgeError
from service.jobs.loader import JobFileError
from service.jobs.model import JobFile
from service.reporting.links import run_url
from service.runs.approvals import approve
from service.runs.recipe import Selector, read_job_file
from service.runs.sources import ForgeFiles
from service.runs.start import Result, resume_run, start_run, write_access
from service.runs.stopping import stop_runs
from service.runs.trust import Trust, command_trust, may_write
from service.store.db import Database
from service.store.models import CommandRecord, Job, Run, RunPhase

log = logging.getLogger(__name__)
CLAIM_LEASE = timedelta(minutes=2)  # how long a worker may take to handle one command


@dataclass(frozen=True)
class Request:
    """One command, with everything needed to act on it."""

    ctx: Context
    forge: Forge
    event: Event  # the comment event, at the pull request's current head
    instance: str
    delivery_pk: int | None
    key: str
    command: Command

    @property
    def user(self) -> str:
        return self.event.comment.author if self.event.comment else self.event.sender

    @property
    def prefix(self) -> str:
        return self.ctx.settings.comment_prefix

    @property
    def number(self) -> int:
        assert self.event.pull_request is not None
        return self.event.pull_request.number

    def reply(self, text: str) -> None:
        try:
            self.forge.comment(self.event.repository, self.number, text)
        except TransientForgeError:
            raise
        except ForgeError as exc:
            log.warning("could not reply on #%s: %s", self.number, exc)

    def acknowledge(self) -> None:
        comment = self.event.comment
        if comment is None or not comment.id:
            return
        try:
            self.forge.react(self.event.repository, self.number, comment.id, "+1")
        except TransientForgeError:
            raise
        except ForgeError as exc:
            log.info("no reaction on #%s: %s", self.number, exc)


def handle_commands(
    ctx: Context, event: Event, instance: str, trigger_key: str, delivery_pk: int | None = None
) -> Result:
    """Act on every command of a comment event (or on a forge's "Re-run" request)."""
    forge = ctx.forges.get(event.forge, instance)
    if event.kind is EventKind.RERUN:
        return _rerun(ctx, forge, event, instance, trigger_key, delivery_pk)
    if event.comment is None or event.pull_request is None:
        return Result("comment without a pull request")
    commands = commands_in(event.comment.body, ctx.settings.comment_prefix)
    if not commands:
        return Result("no command in the comment")
    info = forge.pull_request_info(event.repository, event.pull_request.number)
    at_head = with_pull_request(event, info)
    outcomes = []
    for command in commands:
        key = (
            f"comment:{event.forge}:{instance}:{event.repository.full_name}:{event.comment.id}:{command.line}"
        )
        if not claim(ctx.db, key, command, event.comment.author):
            outcomes.append(f"{command.text}: already handled")
            continue
        request = Request(ctx, forge, at_head, instance, delivery_pk, key, command)
        outcome = _dispatch(request)
        _finish(ctx, key, outcome)
        outcomes.append(f"{command.text}: {outcome}")
    return Result("; ".join(outcomes))


def with_pull_request(event: Event, info: PullRequestInfo) -> Event:
    """The comment event, at the pull request's current head, with what the forge says of it."""
    known = event.pull_request
    pull_request = PullRequest(
        number=info.number,
        title=info.title or (known.title if known else ""),
        author=info.author or (known.author if known else ""),
        source_branch=info.source_branch,
        target_branch=info.target_branch,
        source_repo=info.source_repo if info.source_repo and info.source_repo.clone_url else None,
        head_sha=info.head_sha,
        fork=info.fork,
        draft=info.draft,
        labels=info.labels,
        url=known.url if known else "",
    )
    return replace(event, sha=info.head_sha, pull_request=pull_request, branch=info.source_branch)


def claim(db: Database, key: str, command: Command, author: str) -> bool:
    """True when this command is ours to handle: new, or started by a worker that has not
    finished it within ``CLAIM_LEASE`` (it died). A second delivery of the same comment while
    a worker handles it is not ours: nothing runs or replies twice."""
    try:
        with db.session() as session:
            session.add(CommandRecord(key=key, command=command.text[:255], author=author))
        return True
    except IntegrityError:
        moment = now()
        with db.session() as session:
            taken = session.execute(
                update(CommandRecord)
                .where(
                    CommandRecord.key == key,
                    CommandRecord.state != "done",
                    or_(CommandRecord.claimed_at.is_(None), CommandRecord.claimed_at < moment - CLAIM_LEASE),
                )
                .values(claimed_at=moment)
                .execution_options(synchronize_session=False)
            )
            return bool(taken.rowcount)  # type: ignore[attr-defined]


def _finish(ctx: Context, key: str, outcome: str) -> None:
    with ctx.db.session() as session:
        record = session.scalars(select(CommandRecord).where(CommandRecord.key == key)).first()
        if record is not None:
            record.state, record.outcome = "done", outcome[:2000]


def _dispatch(request: Request) -> str:
    handler = HANDLERS.get(request.command.word)
    if handler is not None:
        return handler(request)
    job_file = _job_file(request, _code_trust(request))
    words = comment_words(job_file) if job_file else {}
    if request.command.word in words:
        return _test(request, word=request.command.word)
    request.reply(replies.unknown_command(request.prefix, request.command.word, sorted(words)))
    return "unknown command"


def _code_trust(request: Request) -> Trust:
    return command_trust(request.ctx.settings, request.event, write_access(request.ctx, request.forge))


def _job_file(request: Request, trust: Trust) -> JobFile | None:
    files = ForgeFiles(request.forge, request.event.repository)
    try:
        found = read_job_file(files, request.ctx.settings, request.event, trust)
    except JobFileError:
        return None
    return found.job_file if found else None


def _allowed(request: Request) -> bool:
    has_write = write_access(request.ctx, request.forge)
    if may_write(request.ctx.settings, has_write, request.event.repository, request.user):
        return True
    request.reply(
        replies.not_allowed(
            request.prefix, request.user, request.command.word, request.event.repository.full_name
        )
    )
    return False


def _start(request: Request, what: str, select_jobs: Selector, trust: Trust) -> str:
    ctx, event = request.ctx, request.event
    try:
        result = start_run(
            ctx, request.forge, event, request.instance, request.key, request.delivery_pk, trust, select_jobs
        )
    except CommandRefused as exc:
        request.reply(exc.message)
        return exc.message
    request.acknowledge()
    if result.run_id is not None:
        with ctx.db.session() as session:
            jobs = sorted({j.name for j in session.scalars(select(Job).where(Job.run_id == result.run_id))})
        request.reply(replies.started(what, run_url(ctx.settings.public_url, result.run_id), jobs, event.sha))
    return result.outcome


def _test(request: Request, word: str = "test") -> str:
    if not _allowed(request):
        return "not allowed"
    names = request.command.args if word == "test" else ()
    selector = named_jobs(request.prefix, names, word, request.user)
    return _start(request, f"Started by @{request.user}", selector, _code_trust(request))


def _retest(request: Request) -> str:
    trust = _code_trust(request)
    event = request.event
    own_trusted_request = (
        event.pull_request is not None and request.user == event.pull_request.author and trust.code_trusted
    )
    if not own_trusted_request and not _allowed(request):
        return "not allowed"
    failed = failed_jobs(request.ctx, event)
    if not failed:
        request.reply(replies.nothing_to_retest(event.sha))
        return "nothing failed"
    selector = named_jobs(request.prefix, tuple(failed), "test", request.user)
    return _start(request, f"Retest by @{request.user}", selector, trust)


def _cancel(request: Request) -> str:
    if not _allowed(request):
        return "not allowed"
    ctx, event = request.ctx, request.event
    names = set(request.command.args)
    with ctx.db.session() as session:
        runs = session.scalars(
            select(Run).where(
                Run.forge == event.forge,
                Run.repo == event.repository.full_name,
                Run.pr_number == request.number,
                Run.phase.not_in(RunPhase.FINAL),
            )
        ).all()
        run_ids = [r.id for r in runs if not names or any(j.name in names for j in r.jobs)]
    stopped = stop_runs(ctx, run_ids, f"cancelled by @{request.user}")
    request.acknowledge()
    request.reply(replies.cancelled(request.user, [run_url(ctx.settings.public_url, r) for r in stopped]))
    return f"cancelled runs {stopped}"


def _approve(request: Request) -> str:
    if not _allowed(request):
        return "not allowed"
    ctx, event = request.ctx, request.event
    started = approve(ctx, event, request.instance, request.number, request.user)
    for run_id in started:
        resume_run(ctx, run_id)
    request.acknowledge()
    request.reply(
        replies.approved(request.user, event.sha, [run_url(ctx.settings.public_url, r) for r in started])
    )
    return f"approved {event.short_sha}; started runs {started}"


def _help(request: Request) -> str:
    job_file = _job_file(request, _code_trust(request))
    jobs = list(job_file.jobs) if job_file else []
    words = comment_words(job_file) if job_file else {}
    note = "" if job_file else f"(No readable {request.ctx.settings.job_file} for this pull request.)"
    request.reply(replies.help_text(request.prefix, jobs, words, note))
    return "help"


HANDLERS: dict[str, Callable[[Request], str]] = {
    "test": _test,
    "retest": _retest,
    "cancel": _cancel,
    "ok-to-test": _approve,
    "help": _help,
}


def _rerun(
    ctx: Context, forge: Forge, event: Event, instance: str, trigger_key: str, delivery_pk: int | None
) -> Result:
    """GitHub's "Re-run" of a check run (its job), of a check suite (the failed jobs), or a check
    run's "Re-run failed jobs" button, with the permission rules of ``/forgeflow retest``: write
    access, or the author of a trusted pull request. A fork's code stays untrusted."""
    event = _as_first_run(ctx, forge, event)
    has_write = write_access(ctx, forge)
    trust = command_trust(ctx.settings, event, has_write)
    user, pr = event.sender, event.pull_request
    own_trusted_request = pr is not None and bool(pr.author) and user == pr.author and trust.code_trusted
    if not own_trusted_request and not may_write(ctx.settings, has_write, event.repository, user):
        if pr is not None:
            text = replies.rerun_not_allowed(ctx.settings.comment_prefix, user, event.repository.full_name)
            try:
                forge.comment(event.repository, pr.number, text)
            except TransientForgeError:
                raise
            except ForgeError as exc:
                log.warning("could not reply on #%s: %s", pr.number, exc)
        return Result(f"@{user} may not re-run jobs of {event.repository.full_name}")
    wanted = rerun_jobs(ctx, event)
    if not wanted:
        return Result(f"nothing to re-run at {event.short_sha}")
    selector = named_jobs(ctx.settings.comment_prefix, tuple(wanted), "test", user)
    try:
        return start_run(ctx, forge, event, instance, trigger_key, delivery_pk, trust, selector)
    except CommandRefused as exc:
        return Result(exc.message)


def _as_first_run(ctx: Context, forge: Forge, event: Event) -> Event:
    """The re-run event with the pull request its commit's run was for (GitHub leaves a fork's
    out of check suites), as the forge knows it now; the commit stays the one asked for."""
    known = first_run_event(ctx, event)
    pr = event.pull_request or (known.pull_request if known else None)
    if pr is None:
        return event
    info = forge.pull_request_info(event.repository, pr.number)
    return replace(
        with_pull_request(replace(event, pull_request=pr), info), sha=event.sha, branch=event.branch
    )
