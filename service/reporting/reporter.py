"""Post job states to the forge as commit statuses (or check runs): each change once, none lost.

The job rows are an outbox. :func:`report_jobs` takes short leases on a batch of rows (one
conditional UPDATE, so several workers or watchers never post the same change twice; renewed
while the posts are in flight, see :mod:`service.store.leases`), posts the difference between
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import DateTime, Integer, String, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql

from service.clock import now
from service.context import Context
from service.events import Event, Repository
from service.executors.base import WorkflowRef
from service.forges.base import Forge, ForgeError, StatusReport, TransientForgeError
from service.forges.checks import CheckRunForge
from service.forges.ratelimits import MAX_INLINE_WAIT
from service.forges.registry import ForgeRegistry
from service.reporting.check_runs import JobLogs, JobView, build_check_run, external_id, needs_new_check_run
from service.reporting.forge_states import for_forge
from service.reporting.links import job_url
from service.store.db import Database
from service.store.models import JOBS, RUNS, Job, Run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    posted: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Leased:
    """A job row this process holds the report lease of, with what to post."""

    job_id: int
    report: StatusReport
    event: Event
    instance: str
    sha: str
    job: JobView
    run_id: int
    workflow: tuple[str, str]  # (namespace, name)
    siblings: tuple[JobView, ...] = ()
    check_run_id: str = ""
    reported: tuple[str, str] = ("", "")
    troubled: bool = False  # an earlier attempt failed or died: its post may have gone through
    report_error: str = ""


@dataclass(frozen=True)
class _Done:
    """What became of one leased job's post: recorded when the leases are given back."""

    shown: StatusReport | None = None  # what the forge shows now (posted, or found there)
    error: str = ""
    check_run_id: str = ""
    hold: float | None = None  # keep the lease this long (a rate limit's Retry-After)
    posted: bool = False
    transient: TransientForgeError | None = None


_JOB_COLUMNS = (
    JOBS.c.id, JOBS.c.run_id, JOBS.c.name, JOBS.c.task, JOBS.c.context, JOBS.c.state,
    JOBS.c.description, JOBS.c.started_at, JOBS.c.finished_at,
)  # fmt: skip
_UNREPORTED = or_(JOBS.c.state != JOBS.c.reported_state, JOBS.c.description != JOBS.c.reported_description)
_FREE = or_(JOBS.c.report_lease_until.is_(None), JOBS.c.report_lease_until < bindparam("moment"))
# The jobs that have something new and that nobody holds, with their runs: their rows locked in id
# order (the ORDER BY comes before the locking, as in service.store.leases.in_id_order), so two
# reporters, or a reporter and the lease keeper, never wait for each other in a circle.
_CANDIDATES = (
    select(
        *_JOB_COLUMNS, JOBS.c.check_run_id, JOBS.c.reported_state, JOBS.c.reported_description,
        JOBS.c.report_lease_until, JOBS.c.report_error,
        RUNS.c.event_json, RUNS.c.instance, RUNS.c.sha, RUNS.c.namespace, RUNS.c.workflow_name,
    )
    .select_from(JOBS.join(RUNS, RUNS.c.id == JOBS.c.run_id))
    .where(_UNREPORTED, _FREE)
    .order_by(JOBS.c.id)
    .with_for_update(of=JOBS)
)  # fmt: skip
_CANDIDATES_BY_ID = _CANDIDATES.where(JOBS.c.id.in_(bindparam("ids", expanding=True)))
_CANDIDATES_OF_RUN = _CANDIDATES.where(JOBS.c.run_id == bindparam("run_id"))
# Only rows locked by the statement above (nothing new to wait for); the same conditions once
# more for SQLite, which has no row locks.
_TAKE = (
    update(JOBS)
    .where(JOBS.c.id.in_(bindparam("ids", expanding=True)), _UNREPORTED, _FREE)
    .values(report_lease_until=bindparam("until"))
    .returning(JOBS.c.id)
)
_SIBLINGS = (
    select(*_JOB_COLUMNS).where(JOBS.c.run_id.in_(bindparam("run_ids", expanding=True))).order_by(JOBS.c.id)
)
_RELEASE = (
    update(JOBS)
    .where(JOBS.c.id == bindparam("b_id"))
    .values(
        report_lease_until=bindparam("b_until"),
        reported_state=bindparam("b_state"),
        reported_description=bindparam("b_description"),
        check_run_id=bindparam("b_check_run"),
        report_error=bindparam("b_error"),
        report_attempts=JOBS.c.report_attempts + 1,
    )
)

# PostgreSQL: every lease of a batch given back by one statement, the rows given as arrays
# (executemany is one round trip per row there); the rows locked in id order first.
_GIVEN_BACK = select(
    func.unnest(bindparam("ids", type_=postgresql.ARRAY(Integer))).label("id"),
    func.unnest(bindparam("untils", type_=postgresql.ARRAY(DateTime))).label("until"),
    func.unnest(bindparam("states", type_=postgresql.ARRAY(String))).label("state"),
    func.unnest(bindparam("descriptions", type_=postgresql.ARRAY(String))).label("description"),
    func.unnest(bindparam("check_runs", type_=postgresql.ARRAY(String))).label("check_run"),
    func.unnest(bindparam("errors", type_=postgresql.ARRAY(String))).label("error"),
).subquery("given_back")
_RELEASE_BATCH = (
    update(JOBS)
    .where(
        JOBS.c.id == _GIVEN_BACK.c.id,
        JOBS.c.id.in_(
            select(JOBS.c.id)
            .where(JOBS.c.id.in_(bindparam("lock_ids", expanding=True)))
            .order_by(JOBS.c.id)
            .with_for_update()
        ),
    )
    .values(
        report_lease_until=_GIVEN_BACK.c.until,
        reported_state=_GIVEN_BACK.c.state,
        reported_description=_GIVEN_BACK.c.description,
        check_run_id=_GIVEN_BACK.c.check_run,
        report_error=_GIVEN_BACK.c.error,
        report_attempts=JOBS.c.report_attempts + 1,
    )
)

ShowsCheckRuns = Callable[[Event, str], bool]  # (event, forge instance): jobs shown as check runs


def _view(row: Any) -> JobView:
    return JobView(
        row.name, row.task, row.context, row.state, row.description, row.started_at, row.finished_at
    )


def _lease_all(
    db: Database, public_url: str, candidates: Any, params: dict[str, Any], check_runs: ShowsCheckRuns
) -> list[_Leased]:
    """Take the report leases of the ``candidates`` (a statement above, with ``params``) that
    have something new and that nobody holds, and read what to post, in one transaction: their
    rows locked (in id order) and read, then leased with one conditional UPDATE (several workers
    or watchers never post the same change twice). Two statements however many jobs; a third
    reads the runs' other jobs where the forge shows check runs (each check run lists them).
    The leased jobs in id order."""
    moment = now()
    with db.transaction() as connection:
        rows = connection.execute(candidates, {**params, "moment": moment}).all()
        if not rows:
            return []
        taken = set(
            connection.execute(
                _TAKE, {"ids": [row.id for row in rows], "moment": moment, "until": moment + db.leases.lease}
            ).scalars()
        )
        rows = [row for row in rows if row.id in taken]
        events: dict[int, Event] = {}
        for row in rows:
            if row.run_id not in events:
                events[row.run_id] = Event.from_json(row.event_json)
        listed = sorted({row.run_id for row in rows if check_runs(events[row.run_id], row.instance)})
        siblings: dict[int, list[JobView]] = {}
        if listed:
            for row in connection.execute(_SIBLINGS, {"run_ids": listed}):
                siblings.setdefault(row.run_id, []).append(_view(row))
    leased = []
    for row in rows:
        event = events[row.run_id]
        pr = event.pull_request
        report = StatusReport(
            context=row.context,
            state=row.state,
            description=row.description,
            target_url=job_url(public_url, row.run_id, row.task),
            pull_request=pr.number if pr else None,
            source_repo=pr.source_repo if pr and pr.fork else None,
            ref=pr.source_branch if pr else (event.branch or event.tag),
        )
        leased.append(
            _Leased(
                row.id,
                report,
                event,
                row.instance,
                row.sha,
                _view(row),
                row.run_id,
                (row.namespace, row.workflow_name),
                tuple(siblings.get(row.run_id, ())),
                row.check_run_id,
                (row.reported_state, row.reported_description),
                troubled=row.report_lease_until is not None or bool(row.report_error),
                report_error=row.report_error or "",
            )
        )
    return leased


def _shows_check_runs(forges: ForgeRegistry) -> ShowsCheckRuns:
    def shows(event: Event, instance: str) -> bool:
        try:
            forge = forges.get(event.forge, instance)
        except Exception:  # posting finds (and records) the same error
            return False
        return bool(getattr(forge, "reports_check_runs", False))

    return shows


def report_job(
    db: Database, forges: ForgeRegistry, public_url: str, job_id: int, logs: JobLogs | None = None
) -> bool:
    """Post a job's state if the forge does not show it yet. True when something was posted.
    ``logs`` reads a failed job's log for its check run (where the forge shows check runs)."""
    return report_jobs(db, forges, public_url, [job_id], logs).posted > 0


def _post(forges: ForgeRegistry, leased: _Leased, logs: JobLogs | None) -> _Done:
    """Post one leased job's state (or find that the forge shows it already)."""
    report, event = leased.report, leased.event
    check_run_id = leased.check_run_id
    try:
        forge = forges.get(event.forge, leased.instance)
        check_runs = getattr(forge, "reports_check_runs", False)
        shown = for_forge(forge.kind, report)
        if not check_runs and leased.troubled and _already_shown(forge, leased, shown):
            return _Done(shown=report)  # the reporter that died had posted it
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
        return _Done(error=str(exc), hold=exc.retry_after, transient=exc)
    except ForgeError as exc:
        # Retrying will not help (no access, unknown repository): record it and move on.
        log.warning("could not report %s on %s: %s", report.context, leased.sha[:7], exc)
        return _Done(shown=report, error=str(exc), check_run_id=check_run_id)
    return _Done(shown=report, check_run_id=check_run_id, posted=True)


def _already_shown(forge: Forge, leased: _Leased, report: StatusReport) -> bool:
    """Whether the forge shows ``report`` already (an earlier reporter posted it and died, or
    its answer was lost, before recording that): then it is not posted a second time."""
    try:
        shown = forge.statuses(status_repo(leased.event), leased.sha)
    except ForgeError as exc:  # cannot tell: post it (a repeat is harmless, a gap is not)
        log.info("could not read the statuses of %s: %s", leased.sha[:7], exc)
        return False
    wanted = (report.context, report.state, report.description)
    return any((s.context, s.state, s.description) == wanted for s in shown)


def _post_check_run(forge: CheckRunForge, leased: _Leased, logs: JobLogs | None) -> str:
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


def _release_all(db: Database, leased: list[_Leased], done: dict[int, _Done]) -> None:
    """Give the leases back, recording for each job what was posted (if anything) and the error
    (if any); a job with no outcome (cut short) is given back as it was. One statement, run
    once per job (executemany; on PostgreSQL once for all, from arrays). A rate limit that
    asked to wait keeps its lease that long."""
    moment = now()
    params = []
    for item in sorted(leased, key=lambda item: item.job_id):  # in id order, as every batch: no deadlocks
        outcome = done.get(item.job_id, _Done())
        shown = (outcome.shown.state, outcome.shown.description) if outcome.shown else item.reported
        params.append(
            {
                "b_id": item.job_id,
                "b_until": moment + timedelta(seconds=outcome.hold) if outcome.hold else None,
                "b_state": shown[0],
                "b_description": shown[1],
                "b_check_run": outcome.check_run_id or item.check_run_id,
                "b_error": outcome.error[:2000] if outcome.error else item.report_error,
            }
        )
    with db.transaction() as connection:
        if len(params) > 1 and connection.dialect.name == "postgresql":
            connection.execute(
                _RELEASE_BATCH,
                {
                    "lock_ids": [row["b_id"] for row in params],
                    "ids": [row["b_id"] for row in params],
                    "untils": [row["b_until"] for row in params],
                    "states": [row["b_state"] for row in params],
                    "descriptions": [row["b_description"] for row in params],
                    "check_runs": [row["b_check_run"] for row in params],
                    "errors": [row["b_error"] for row in params],
                },
            )
        else:
            connection.execute(_RELEASE, params)


def status_repo(event: Event) -> Repository:
    """The repository whose commit carries the statuses: the one the event happened in.

    A forge may place a pull request's statuses elsewhere (GitLab: on a fork's commit; Pagure:
    on the pull request) from the report's ``pull_request``/``source_repo``/``ref``."""
    return event.repository


def report_run(
    db: Database, forges: ForgeRegistry, public_url: str, run_id: int, logs: JobLogs | None = None
) -> Outcome:
    """Post every unreported job state of a run. Raises the first transient error after trying all."""
    leased = _lease_all(db, public_url, _CANDIDATES_OF_RUN, {"run_id": run_id}, _shows_check_runs(forges))
    return _report(db, forges, leased, logs)


def report_jobs(
    db: Database, forges: ForgeRegistry, public_url: str, job_ids: list[int], logs: JobLogs | None = None
) -> Outcome:
    """Post these jobs' states where the forge does not show them yet: their leases taken and
    given back in one transaction each, one request per state (renewed while they are in
    flight). Raises the first transient error after trying all."""
    ids = list(dict.fromkeys(job_ids))
    if not ids:
        return Outcome()
    shows = _shows_check_runs(forges)
    leased = _lease_all(db, public_url, _CANDIDATES_BY_ID, {"ids": sorted(ids)}, shows)
    by_id = {item.job_id: item for item in leased}
    return _report(db, forges, [by_id[pk] for pk in ids if pk in by_id], logs)


def _report(db: Database, forges: ForgeRegistry, leased: list[_Leased], logs: JobLogs | None) -> Outcome:
    """Post the leased jobs' states (their leases renewed meanwhile) and give the leases back."""
    if not leased:
        return Outcome()
    done: dict[int, _Done] = {}
    try:
        with db.leases.keep_all(Job, [item.job_id for item in leased]):  # however long the forge takes
            for item in leased:
                done[item.job_id] = _post(forges, item, logs)
    finally:
        _release_all(db, leased, done)
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
