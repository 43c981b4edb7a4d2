"""The report leases of job rows: taking them (with what to post) and giving them back.

:mod:`service.reporting.reporter` posts; this module holds its transactions. Taking leases is
one transaction of prebuilt statements: the candidate rows (unreported, nobody holding them)
locked in id order and read with their runs, then leased by one conditional UPDATE, so several
workers or watchers never post the same change twice; the runs' other jobs are read too where
the forge shows check runs (a check run lists them). A new run's jobs are written with their
leases taken (:class:`HeldJobs`): their writer posts their first states next. Giving leases back
records what the forge shows now, one statement for the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import DateTime, Integer, String, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql

from service.clock import now
from service.events import Event
from service.forges.base import StatusReport, TransientForgeError
from service.forges.registry import ForgeRegistry
from service.reporting.check_runs import JobView
from service.reporting.links import job_url
from service.store.db import Database
from service.store.models import JOBS, RUNS


@dataclass(frozen=True)
class Leased:
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
class Done:
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
CANDIDATES_BY_ID = _CANDIDATES.where(JOBS.c.id.in_(bindparam("ids", expanding=True)))
CANDIDATES_OF_RUN = _CANDIDATES.where(JOBS.c.run_id == bindparam("run_id"))
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


def lease_all(
    db: Database, public_url: str, candidates: Any, params: dict[str, Any], check_runs: ShowsCheckRuns
) -> list[Leased]:
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
        leased.append(
            Leased(
                row.id,
                _report(public_url, row.run_id, row, event),
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


def _report(public_url: str, run_id: int, job: Any, event: Event) -> StatusReport:
    """What to post for a job (a row or a :class:`JobView`) of run ``run_id``."""
    pr = event.pull_request
    return StatusReport(
        context=job.context,
        state=job.state,
        description=job.description,
        target_url=job_url(public_url, run_id, job.task),
        pull_request=pr.number if pr else None,
        source_repo=pr.source_repo if pr and pr.fork else None,
        ref=pr.source_branch if pr else (event.branch or event.tag),
    )


@dataclass(frozen=True)
class HeldJobs:
    """New jobs of a run, written with their report leases taken by the process that wrote
    them (their first states are posted next, by it: nobody takes them meanwhile, and they
    need not be taken and read back). As written."""

    run_id: int
    event: Event
    instance: str
    sha: str
    workflow: tuple[str, str]  # (namespace, name)
    jobs: tuple[tuple[int, JobView], ...]  # (id, the job), in id order


def held_leases(public_url: str, held: HeldJobs) -> list[Leased]:
    """The held jobs as leased ones (new rows: nothing reported, no earlier attempt)."""
    siblings = tuple(view for _, view in held.jobs)
    return [
        Leased(
            job_id,
            _report(public_url, held.run_id, view, held.event),
            held.event,
            held.instance,
            held.sha,
            view,
            held.run_id,
            held.workflow,
            siblings,
        )
        for job_id, view in held.jobs
    ]


def shows_check_runs(forges: ForgeRegistry) -> ShowsCheckRuns:
    def shows(event: Event, instance: str) -> bool:
        try:
            forge = forges.get(event.forge, instance)
        except Exception:  # posting finds (and records) the same error
            return False
        return bool(getattr(forge, "reports_check_runs", False))

    return shows


def release_all(db: Database, leased: list[Leased], done: dict[int, Done]) -> None:
    """Give the leases back, recording for each job what was posted (if anything) and the error
    (if any); a job with no outcome (cut short) is given back as it was. One statement, run
    once per job (executemany; on PostgreSQL once for all, from arrays). A rate limit that
    asked to wait keeps its lease that long."""
    moment = now()
    params = []
    for item in sorted(leased, key=lambda item: item.job_id):  # in id order, as every batch: no deadlocks
        outcome = done.get(item.job_id, Done())
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
