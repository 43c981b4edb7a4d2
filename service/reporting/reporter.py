"""Post job states to the forge as commit statuses: each change once, none lost.

The job rows are an outbox. :func:`report_job` takes a short lease on a row (a conditional
UPDATE, so several workers or watchers never post the same change twice), posts the difference
between what forgeflow knows and what the forge was last told, and records what it posted.
A transient forge error releases the lease and is raised for the caller to retry; the periodic
sweep picks up anything left behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_, select, update

from service.clock import now
from service.events import Event, Repository
from service.forges.base import ForgeError, StatusReport, TransientForgeError
from service.forges.registry import ForgeRegistry
from service.reporting.forge_states import for_forge
from service.reporting.links import job_url
from service.store.db import Database
from service.store.models import Job, Run

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)


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


def _lease(db: Database, public_url: str, job_id: int) -> _Leased | None:
    """Take the job's report lease (a conditional UPDATE) and read what to post, in one
    transaction. None, holding no lease, when another reporter has it or nothing is new."""
    moment = now()
    with db.session() as session:
        result = session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                or_(Job.report_lease_until.is_(None), Job.report_lease_until < moment),
            )
            .values(report_lease_until=moment + LEASE)
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
        return _Leased(report, event, run.instance, run.sha)


def report_job(db: Database, forges: ForgeRegistry, public_url: str, job_id: int) -> bool:
    """Post a job's state if the forge does not show it yet. True when something was posted."""
    leased = _lease(db, public_url, job_id)
    if leased is None:
        return False
    report, event = leased.report, leased.event
    error = ""
    try:
        forge = forges.get(event.forge, leased.instance)
        forge.set_status(status_repo(event), leased.sha, for_forge(forge.kind, report))
    except TransientForgeError as exc:
        error = str(exc)
        _release(db, job_id, None, error)
        raise
    except ForgeError as exc:
        # Retrying will not help (no access, unknown repository): record it and move on.
        error = str(exc)
        log.warning("could not report %s on %s: %s", report.context, leased.sha[:7], exc)
    except BaseException:
        _release(db, job_id, None, "")
        raise
    _release(db, job_id, report, error)
    return not error


def _release(db: Database, job_id: int, posted: StatusReport | None, error: str) -> None:
    """Give the lease back, recording what was posted (if anything) and the error (if any)."""
    values: dict[str, object] = {"report_lease_until": None}
    if posted is not None:
        values.update(reported_state=posted.state, reported_description=posted.description)
    if error:
        values["report_error"] = error[:2000]
    with db.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(**values, report_attempts=Job.report_attempts + 1)
            .execution_options(synchronize_session=False)
        )


def status_repo(event: Event) -> Repository:
    """The repository whose commit carries the statuses: the one the event happened in.

    A forge may place a pull request's statuses elsewhere (GitLab: on a fork's commit; Pagure:
    on the pull request) from the report's ``pull_request``/``source_repo``/``ref``."""
    return event.repository


def report_run(db: Database, forges: ForgeRegistry, public_url: str, run_id: int) -> Outcome:
    """Post every unreported job state of a run. Raises the first transient error after trying all."""
    with db.session() as session:
        job_ids = list(
            session.scalars(
                select(Job.id)
                .where(Job.run_id == run_id)
                .where(or_(Job.state != Job.reported_state, Job.description != Job.reported_description))
                .order_by(Job.id)
            )
        )
    return report_jobs(db, forges, public_url, job_ids)


def report_jobs(db: Database, forges: ForgeRegistry, public_url: str, job_ids: list[int]) -> Outcome:
    """Post these jobs' states where the forge does not show them yet. Raises the first
    transient error after trying all."""
    posted = failed = 0
    first_error: TransientForgeError | None = None
    for job_id in job_ids:
        try:
            posted += report_job(db, forges, public_url, job_id)
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
