"""Post job states to the forge as commit statuses (or check runs): each change once, none lost.

The job rows are an outbox. :func:`report_jobs` takes short leases on a batch of rows (one
conditional UPDATE, so several workers or watchers never post the same change twice; renewed
while the posts are in flight, see :mod:`service.store.leases`; the transactions are
:mod:`service.reporting.report_leases`), posts the difference between
what forgeflow knows and what the forge was last told, one request per job, and records what
it posted (one statement for the batch): a watch page's changes cost three transactions, not
three per job. After an attempt that failed
or died, the forge's statuses are read first: an identical status is never posted twice.
A transient forge error releases the lease and is raised for the caller to retry; the periodic
sweep picks up anything left behind. A rate limit's short ``Retry-After`` is waited out here and
the post made once more; a long one keeps the lease until then, so nobody tries earlier.

A forge that shows check runs (GitHub in App mode) gets one per job: created at the job's first
report, then one update per change, its id kept on the job row (``Job.check_run_id``). When a
create's answer was lost (a crash, a timeout) the next attempt first looks for the check run by
its ``external_id``, so a job never shows twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import cast

from sqlalchemy import and_, or_, select

from service.clock import now
from service.context import Context
from service.events import Event, Repository
from service.executors.base import WorkflowRef
from service.forges.base import Forge, ForgeError, StatusReport, TransientForgeError
from service.forges.checks import CheckRunForge
from service.forges.ratelimits import MAX_INLINE_WAIT
from service.forges.registry import ForgeRegistry
from service.reporting.check_runs import JobLogs, build_check_run, external_id, needs_new_check_run
from service.reporting.forge_states import for_forge
from service.reporting.report_leases import (
    CANDIDATES_BY_ID,
    CANDIDATES_OF_RUN,
    Done,
    HeldJobs,
    Leased,
    held_leases,
    lease_all,
    release_all,
    shows_check_runs,
)
from service.store.db import Database
from service.store.models import Job, Run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    posted: int = 0
    failed: int = 0


def report_job(
    db: Database, forges: ForgeRegistry, public_url: str, job_id: int, logs: JobLogs | None = None
) -> bool:
    """Post a job's state if the forge does not show it yet. True when something was posted.
    ``logs`` reads a failed job's log for its check run (where the forge shows check runs)."""
    return report_jobs(db, forges, public_url, [job_id], logs).posted > 0


def _post(forges: ForgeRegistry, leased: Leased, logs: JobLogs | None) -> Done:
    """Post one leased job's state (or find that the forge shows it already)."""
    report, event = leased.report, leased.event
    check_run_id = leased.check_run_id
    try:
        forge = forges.get(event.forge, leased.instance)
        check_runs = getattr(forge, "reports_check_runs", False)
        shown = for_forge(forge.kind, report)
        if not check_runs and leased.troubled and _already_shown(forge, leased, shown):
            return Done(shown=report)  # the reporter that died had posted it
        for attempt in (1, 2):
            try:
                if check_runs:
                    check_run_id = _post_check_run(cast(CheckRunForge, forge), leased, logs)
                else:
                    forge.set_status(status_repo(event), leased.sha, shown)
                break
            except TransientForgeError as exc:
                if attempt == 2 or exc.retry_after is None or exc.retry_after > MAX_INLINE_WAIT:
                    raise
                log.info("%s: rate limited, posting again in %.1fs", report.context, exc.retry_after)
                time.sleep(exc.retry_after)
    except TransientForgeError as exc:
        return Done(error=str(exc), hold=exc.retry_after, transient=exc)
    except ForgeError as exc:
        # Retrying will not help (no access, unknown repository): record it and move on.
        log.warning("could not report %s on %s: %s", report.context, leased.sha[:7], exc)
        return Done(shown=report, error=str(exc), check_run_id=check_run_id)
    return Done(shown=report, check_run_id=check_run_id, posted=True)


def _already_shown(forge: Forge, leased: Leased, report: StatusReport) -> bool:
    """Whether the forge shows ``report`` already (an earlier reporter posted it and died, or
    its answer was lost, before recording that): then it is not posted a second time."""
    try:
        shown = forge.statuses(status_repo(leased.event), leased.sha)
    except ForgeError as exc:  # cannot tell: post it (a repeat is harmless, a gap is not)
        log.info("could not read the statuses of %s: %s", leased.sha[:7], exc)
        return False
    wanted = (report.context, report.state, report.description)
    return any((s.context, s.state, s.description) == wanted for s in shown)


def _post_check_run(forge: CheckRunForge, leased: Leased, logs: JobLogs | None) -> str:
    """Create or update the job's check run (one request; two after a lost answer). Its id."""
    job, repo = leased.job, status_repo(leased.event)
    check_run_id = leased.check_run_id
    if check_run_id and needs_new_check_run(*leased.reported, job.state, job.description):
        check_run_id = ""
    if not check_run_id and leased.troubled:
        check_run_id = forge.find_check_run(
            repo, leased.sha, job.context, external_id(leased.run_id, job.task)
        )
    log_text = None
    if logs is not None and job.state in ("failure", "error") and leased.workflow[1]:
        try:
            log_text = logs(leased.workflow[0], leased.workflow[1], job.task)
        except Exception as exc:  # the check run goes out without the log rather than not at all
            log.info("no log for the check run of %s: %s", job.context, exc)
    check = build_check_run(
        job, leased.siblings, leased.report.target_url, leased.run_id, log_text, check_run_id
    )
    return str(forge.check_run(repo, leased.sha, check))


def status_repo(event: Event) -> Repository:
    """The repository whose commit carries the statuses: the one the event happened in.

    A forge may place a pull request's statuses elsewhere (GitLab: on a fork's commit; Pagure:
    on the pull request) from the report's ``pull_request``/``source_repo``/``ref``."""
    return event.repository


def report_run(
    db: Database, forges: ForgeRegistry, public_url: str, run_id: int, logs: JobLogs | None = None
) -> Outcome:
    """Post every unreported job state of a run. Raises the first transient error after trying all."""
    leased = lease_all(db, public_url, CANDIDATES_OF_RUN, {"run_id": run_id}, shows_check_runs(forges))
    return _report(db, forges, leased, logs)


def report_held(
    db: Database, forges: ForgeRegistry, public_url: str, held: HeldJobs, logs: JobLogs | None = None
) -> Outcome:
    """Post the first states of new jobs whose leases their writer holds (see
    :class:`~service.reporting.report_leases.HeldJobs`). Raises as :func:`report_run`."""
    return _report(db, forges, held_leases(public_url, held), logs)


def give_back(db: Database, public_url: str, held: HeldJobs) -> None:
    """Give back the leases of held jobs without posting anything (whoever reports the run
    next takes them, as after a report that was cut short)."""
    release_all(db, held_leases(public_url, held), {})


def report_jobs(
    db: Database, forges: ForgeRegistry, public_url: str, job_ids: list[int], logs: JobLogs | None = None
) -> Outcome:
    """Post these jobs' states where the forge does not show them yet: their leases taken and
    given back in one transaction each, one request per state (renewed while they are in
    flight). Raises the first transient error after trying all."""
    ids = list(dict.fromkeys(job_ids))
    if not ids:
        return Outcome()
    shows = shows_check_runs(forges)
    leased = lease_all(db, public_url, CANDIDATES_BY_ID, {"ids": sorted(ids)}, shows)
    by_id = {item.job_id: item for item in leased}
    return _report(db, forges, [by_id[pk] for pk in ids if pk in by_id], logs)


def _report(db: Database, forges: ForgeRegistry, leased: list[Leased], logs: JobLogs | None) -> Outcome:
    """Post the leased jobs' states (their leases renewed meanwhile) and give the leases back."""
    if not leased:
        return Outcome()
    done: dict[int, Done] = {}
    try:
        with db.leases.keep_all(Job, [item.job_id for item in leased]):  # however long the forge takes
            for item in leased:
                done[item.job_id] = _post(forges, item, logs)
    finally:
        release_all(db, leased, done)
    failed = [outcome.transient for outcome in done.values() if outcome.transient is not None]
    if failed:
        raise failed[0]
    return Outcome(sum(outcome.posted for outcome in done.values()), len(failed))


def unreported_run_ids(db: Database, limit: int = 200) -> list[int]:
    """Runs with job states the forge has not been told yet (and no live lease)."""
    moment = now()
    with db.session() as session:
        rows = session.scalars(
            select(Job.run_id)
            .join(Run)
            .where(
                and_(
                    or_(Job.state != Job.reported_state, Job.description != Job.reported_description),
                    or_(Job.report_lease_until.is_(None), Job.report_lease_until < moment),
                )
            )
            .distinct()
            .limit(limit)
        )
        return list(rows)


def job_logs(ctx: Context) -> JobLogs:
    """How the reporter reads a failed job's log for its check run: the executor's archive."""

    def read(namespace: str, workflow: str, task: str) -> str | None:
        return ctx.executor.logs(WorkflowRef(namespace, workflow), task)

    return read
