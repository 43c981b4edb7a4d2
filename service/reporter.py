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

from service.events import Event, Repository
from service.forges.base import ForgeError, StatusReport, TransientForgeError
from service.forges.registry import ForgeRegistry
from service.status_mapping import now
from service.store.db import Database
from service.store.models import Job, Run

log = logging.getLogger(__name__)
LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Outcome:
    posted: int = 0
    failed: int = 0


def run_url(public_url: str, run_id: int) -> str:
    return f"{public_url}/runs/{run_id}"


def job_url(public_url: str, run_id: int, task: str) -> str:
    return f"{run_url(public_url, run_id)}#job-{task}"


def _take_lease(db: Database, job_id: int) -> bool:
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
        return bool(result.rowcount)  # type: ignore[attr-defined]


def report_job(db: Database, forges: ForgeRegistry, public_url: str, job_id: int) -> bool:
    """Post a job's state if the forge does not show it yet. True when something was posted."""
    if not _take_lease(db, job_id):
        return False
    posted_state = ""
    posted_description = ""
    error = ""
    attempted = False
    try:
        with db.session() as session:
            job = session.get(Job, job_id)
            if job is None or not job.unreported:
                return False
            run = job.run
            event = Event.from_json(run.event_json)
            instance = run.instance
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
            sha = run.sha
        attempted = True
        try:
            forges.get(event.forge, instance).set_status(status_repo(event), sha, report)
        except TransientForgeError as exc:
            error = str(exc)
            raise
        except ForgeError as exc:
            # Retrying will not help (no access, unknown repository): record it and move on.
            error = str(exc)
            log.warning("could not report %s on %s: %s", report.context, sha[:7], exc)
        posted_state, posted_description = report.state, report.description
        return not error
    finally:
        values: dict[str, object] = {"report_lease_until": None}
        if posted_state:
            values.update(reported_state=posted_state, reported_description=posted_description)
        if error:
            values["report_error"] = error[:2000]
        with db.session() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(**values, report_attempts=Job.report_attempts + int(attempted))
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
