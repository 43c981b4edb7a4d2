"""Post job states to the forge as commit statuses (or check runs): each change once, none lost.

The job rows are an outbox. :func:`report_job` takes a short lease on a row (a conditional
UPDATE, so several workers or watchers never post the same change twice; renewed while the post
is in flight, see :mod:`service.store.leases`), posts the difference between what forgeflow
knows and what the forge was last told, and records what it posted. After an attempt that failed
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
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from sqlalchemy import String, and_, bindparam, func, or_, select, update

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
    job_id: int = 0


@dataclass(frozen=True)
class _Done:
    """What to record when a job's report lease is given back (see :func:`_release_all`)."""

    job_id: int
    posted: StatusReport | None  # what the forge shows now (None: nothing new)
    error: str = ""
    hold: float | None = None  # keep the lease this many seconds more (a rate limit)
    check_run_id: str = ""
    counted: bool = False  # a post went out (for the caller's count)


def _view(job: Job) -> JobView:
    return JobView(
        job.name, job.task, job.context, job.state, job.description, job.started_at, job.finished_at
    )


def _lease(db: Database, public_url: str, job_id: int) -> _Leased | None:
    """Take the job's report lease (a conditional UPDATE) and read what to post, in one
    transaction. None, holding no lease, when another reporter has it or nothing is new."""
    moment = now()
    with db.session() as session:
        earlier = session.execute(
            select(Job.report_lease_until, Job.report_error).where(Job.id == job_id)
        ).first()
        result = session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                or_(Job.report_lease_until.is_(None), Job.report_lease_until < moment),
            )
            .values(report_lease_until=moment + db.leases.lease)
            .execution_options(synchronize_session=False)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        job = session.get(Job, job_id)
        if job is None:
            return None
        if not job.unreported:
            job.report_lease_until = None
            return None
        run = job.run
        event = Event.from_json(run.event_json)
        pr = event.pull_request
        report = StatusReport(
            context=job.context,
            state=job.state,
            description=job.description,
            target_url=job_url(public_url, run.id, job.task),
            pull_request=pr.number if pr else None,
            source_repo=pr.source_repo if pr and pr.fork else None,
            ref=pr.source_branch if pr else (event.branch or event.tag),
        )
        return _Leased(
            report,
            event,
            run.instance,
            run.sha,
            _view(job),
            run.id,
            (run.namespace, run.workflow_name),
            tuple(_view(j) for j in run.jobs),
            job.check_run_id,
            (job.reported_state, job.reported_description),
            troubled=earlier is not None and (earlier[0] is not None or bool(earlier[1])),
            job_id=job_id,
        )


def report_job(
    db: Database, forges: ForgeRegistry, public_url: str, job_id: int, logs: JobLogs | None = None
) -> bool:
    """Post a job's state if the forge does not show it yet. True when something was posted.
    ``logs`` reads a failed job's log for its check run (where the forge shows check runs)."""
    leased = _lease(db, public_url, job_id)
    if leased is None:
        return False
    with db.leases.keep(Job, job_id):  # renewed however long the forge takes
        done, raised = _attempt(forges, leased, logs)
    _release_all(db, [done])
    if raised is not None:
        raise raised
    return done.counted


def _attempt(
    forges: ForgeRegistry, leased: _Leased, logs: JobLogs | None
) -> tuple[_Done, BaseException | None]:
    """Post one leased job's state (the caller keeps its lease fresh meanwhile): what to record
    when the lease is given back, and the error to raise after that (if any)."""
    report, event, job_id = leased.report, leased.event, leased.job_id
    check_run_id = leased.check_run_id
    try:
        forge = forges.get(event.forge, leased.instance)
        check_runs = getattr(forge, "reports_check_runs", False)
        if (
            not check_runs
            and leased.troubled
            and _already_shown(forge, leased, for_forge(forge.kind, report))
        ):
            return _Done(job_id, report), None  # the reporter that died had posted it
        for attempt in (1, 2):
            try:
                if check_runs:
                    check_run_id = _post_check_run(cast(CheckRunForge, forge), leased, logs)
                else:
                    forge.set_status(status_repo(event), leased.sha, for_forge(forge.kind, report))
                break
            except TransientForgeError as exc:
                if attempt == 2 or exc.retry_after is None or exc.retry_after > MAX_INLINE_WAIT:
                    raise
                log.info("%s: rate limited, posting again in %.1fs", report.context, exc.retry_after)
                time.sleep(exc.retry_after)
    except TransientForgeError as exc:
        return _Done(job_id, None, str(exc), hold=exc.retry_after), exc
    except ForgeError as exc:
        # Retrying will not help (no access, unknown repository): record it and move on.
        log.warning("could not report %s on %s: %s", report.context, leased.sha[:7], exc)
        return _Done(job_id, report, str(exc), check_run_id=check_run_id), None
    except BaseException as exc:
        return _Done(job_id, None), exc
    return _Done(job_id, report, check_run_id=check_run_id, counted=True), None


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


_JOBS = JOBS
# one statement for every lease given back (executemany); a NULL keeps the column as it was
_RELEASE = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("b_id"))
    .values(
        report_lease_until=bindparam("b_until"),
        reported_state=func.coalesce(bindparam("b_state", type_=String), _JOBS.c.reported_state),
        reported_description=func.coalesce(
            bindparam("b_description", type_=String), _JOBS.c.reported_description
        ),
        check_run_id=func.coalesce(bindparam("b_check_run", type_=String), _JOBS.c.check_run_id),
        report_error=func.coalesce(bindparam("b_error", type_=String), _JOBS.c.report_error),
        report_attempts=_JOBS.c.report_attempts + 1,
    )
)


def _release_all(db: Database, done: list[_Done]) -> None:
    """Give the leases back in one transaction (one statement), recording for each job what
    was posted (if anything) and the error (if any); a ``hold`` keeps a lease that many seconds
    more (a rate limit asked to wait that long)."""
    if not done:
        return
    moment = now()
    rows = [
        {
            "b_id": item.job_id,
            "b_until": moment + timedelta(seconds=item.hold) if item.hold else None,
            "b_state": item.posted.state if item.posted is not None else None,
            "b_description": item.posted.description if item.posted is not None else None,
            "b_check_run": item.check_run_id or None,
            "b_error": item.error[:2000] if item.error else None,
        }
        for item in done
    ]
    with db.transaction() as connection:
        connection.execute(_RELEASE, rows)


def status_repo(event: Event) -> Repository:
    """The repository whose commit carries the statuses: the one the event happened in.

    A forge may place a pull request's statuses elsewhere (GitLab: on a fork's commit; Pagure:
    on the pull request) from the report's ``pull_request``/``source_repo``/``ref``."""
    return event.repository


def report_run(
    db: Database, forges: ForgeRegistry, public_url: str, run_id: int, logs: JobLogs | None = None
) -> Outcome:
    """Post every unreported job state of a run: their leases taken in one transaction and
    given back in one more, whatever the number of jobs. Raises the first transient error after
    trying all."""
    leased = _lease_run(db, public_url, run_id)
    if not leased:
        return Outcome()
    posted = failed = 0
    first_error: BaseException | None = None
    done: list[_Done] = []
    with ExitStack() as kept:
        for item in leased:
            kept.enter_context(db.leases.keep(Job, item.job_id))  # renewed however long it takes
        try:
            for item in leased:
                result, raised = _attempt(forges, item, logs)
                done.append(result)
                posted += result.counted
                if isinstance(raised, TransientForgeError):
                    failed += 1
                    first_error = first_error or raised
                elif raised is not None:
                    first_error = raised
                    break
        finally:
            finished = {item.job_id for item in done}
            done += [_Done(item.job_id, None) for item in leased if item.job_id not in finished]
            _release_all(db, done)
    if first_error is not None:
        raise first_error
    return Outcome(posted, failed)


_UNREPORTED = or_(
    _JOBS.c.state != _JOBS.c.reported_state, _JOBS.c.description != _JOBS.c.reported_description
)
_FREE = or_(_JOBS.c.report_lease_until.is_(None), _JOBS.c.report_lease_until < bindparam("moment"))
_CANDIDATES = select(_JOBS.c.id, _JOBS.c.report_lease_until, _JOBS.c.report_error).where(
    _JOBS.c.run_id == bindparam("run_id"), _UNREPORTED, _FREE
)
_TAKE = (
    update(_JOBS)
    .where(_JOBS.c.id.in_(bindparam("ids", expanding=True)), _UNREPORTED, _FREE)
    .values(report_lease_until=bindparam("until"))
    .returning(_JOBS.c.id)
)
_RUN_AND_JOBS = (
    select(
        RUNS.c.event_json, RUNS.c.instance, RUNS.c.sha, RUNS.c.namespace, RUNS.c.workflow_name,
        _JOBS.c.id, _JOBS.c.name, _JOBS.c.task, _JOBS.c.context, _JOBS.c.state,
        _JOBS.c.description, _JOBS.c.started_at, _JOBS.c.finished_at, _JOBS.c.check_run_id,
        _JOBS.c.reported_state, _JOBS.c.reported_description,
    )
    .select_from(_JOBS.join(RUNS, RUNS.c.id == _JOBS.c.run_id))
    .where(_JOBS.c.run_id == bindparam("run_id"))
    .order_by(_JOBS.c.id)
)  # fmt: skip
_UNLEASE = (
    update(_JOBS).where(_JOBS.c.id.in_(bindparam("ids", expanding=True))).values(report_lease_until=None)
)


def _lease_run(db: Database, public_url: str, run_id: int) -> list[_Leased]:
    """Take the report lease of every unreported job of the run that nobody holds, and read
    what to post, in one transaction (the batch form of :func:`_lease`)."""
    moment = now()
    with db.transaction() as connection:
        earlier = {
            row.id: row for row in connection.execute(_CANDIDATES, {"run_id": run_id, "moment": moment})
        }
        if not earlier:
            return []
        params = {"ids": sorted(earlier), "moment": moment, "until": moment + db.leases.lease}
        taken = set(connection.execute(_TAKE, params).scalars())
        if not taken:
            return []
        jobs = connection.execute(_RUN_AND_JOBS, {"run_id": run_id}).all()
        settled = [
            j.id
            for j in jobs
            if j.id in taken and (j.state, j.description) == (j.reported_state, j.reported_description)
        ]
        if settled:  # reported meanwhile: nothing new after all
            connection.execute(_UNLEASE, {"ids": settled})
    if not jobs:
        return []
    run = jobs[0]
    event = Event.from_json(run.event_json)
    pr = event.pull_request
    siblings = tuple(
        JobView(j.name, j.task, j.context, j.state, j.description, j.started_at, j.finished_at) for j in jobs
    )
    leased = []
    for job, view in zip(jobs, siblings, strict=True):
        if job.id not in taken or job.id in settled:
            continue
        report = StatusReport(
            context=job.context,
            state=job.state,
            description=job.description,
            target_url=job_url(public_url, run_id, job.task),
            pull_request=pr.number if pr else None,
            source_repo=pr.source_repo if pr and pr.fork else None,
            ref=pr.source_branch if pr else (event.branch or event.tag),
        )
        before = earlier[job.id]
        leased.append(
            _Leased(
                report,
                event,
                run.instance,
                run.sha,
                view,
                run_id,
                (run.namespace, run.workflow_name),
                siblings,
                job.check_run_id,
                (job.reported_state, job.reported_description),
                troubled=before.report_lease_until is not None or bool(before.report_error),
                job_id=job.id,
            )
        )
    return leased


def report_jobs(
    db: Database, forges: ForgeRegistry, public_url: str, job_ids: list[int], logs: JobLogs | None = None
) -> Outcome:
    """Post these jobs' states where the forge does not show them yet. Raises the first
    transient error after trying all."""
    posted = failed = 0
    first_error: TransientForgeError | None = None
    for job_id in job_ids:
        try:
            posted += report_job(db, forges, public_url, job_id, logs)
        except TransientForgeError as exc:
            failed += 1
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return Outcome(posted, failed)


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
