"""Scheduled jobs: ``on: {schedule: [{cron: "0 3 * * *", branch: main}]}``.

How forgeflow learns them: whenever the worker processes a push to a branch, it records the
schedules the job file at that commit declares for that branch (the repository's default
branch when an entry names none) and forgets the ones it no longer declares. So a schedule
starts with the first push that adds it, and stops with the push that removes it.

Firing, exactly once across any number of watcher (or ``serve``) replicas: each sweep looks for
the latest tick of every recorded schedule and stores a ``schedule`` delivery whose id names
the repository, branch, cron and tick. The deliveries table's unique key lets one replica
store it; every other attempt finds it there and does nothing. From then on it travels like a
webhook delivery (relay, worker): the worker resolves the branch's head at that moment and
runs the jobs whose schedule matches, with statuses on that commit. A tick missed for longer
than ``GRACE`` (all replicas down) is skipped, not caught up.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cronsim import CronSim
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from service.events import Event, EventKind, Repository
from service.store.db import Database
from service.store.models import Delivery, DeliveryState, Schedule

if TYPE_CHECKING:  # the job language is the worker's: the watcher only fires schedules
    from service.jobs.model import JobFile

log = logging.getLogger(__name__)
GRACE = timedelta(hours=1)


def declared(event: Event, job_file: JobFile) -> set[str]:
    """The crons the job file schedules on the pushed branch."""
    crons = set()
    for job in job_file.jobs.values():
        for entry in job.on.schedule or ():
            if (entry.branch or event.repository.default_branch) == event.branch:
                crons.add(entry.cron)
    return crons


def record_schedules(db: Database, event: Event, instance: str, job_file: JobFile | None) -> None:
    """After a push to a branch: keep exactly the schedules its job file declares for it."""
    if event.kind is not EventKind.PUSH or not event.branch:
        return
    crons = declared(event, job_file) if job_file is not None else set()
    repo = event.repository.full_name
    key = (Schedule.forge == event.forge, Schedule.instance == instance, Schedule.repo == repo)
    with db.session() as session:
        rows = session.scalars(select(Schedule).where(*key, Schedule.branch == event.branch)).all()
        known = {row.cron: row for row in rows}
        for cron, row in known.items():
            if cron not in crons:
                session.delete(row)
            else:
                row.repository_json = json.dumps(event.to_dict()["repository"])
        for cron in sorted(crons - set(known)):
            session.add(
                Schedule(
                    forge=event.forge,
                    instance=instance,
                    repo=repo,
                    branch=event.branch,
                    cron=cron,
                    repository_json=json.dumps(event.to_dict()["repository"]),
                )
            )
    if not crons:
        with db.session() as session:
            session.execute(delete(Schedule).where(*key, Schedule.branch == event.branch))


def latest_tick(cron: str, moment: datetime) -> datetime:
    """The latest time at or before ``moment`` the cron names (UTC, naive)."""
    start = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return next(CronSim(cron, start, reverse=True))


def fire_schedules(db: Database, moment: datetime) -> list[int]:
    """Store a delivery for every schedule tick due now that no replica stored yet."""
    with db.session() as session:
        rows = [
            (r.forge, r.instance, r.repo, r.branch, r.cron, r.repository_json, r.created_at)
            for r in session.scalars(select(Schedule).order_by(Schedule.id))
        ]
    fired = []
    for forge, instance, repo, branch, cron, repository_json, created in rows:
        tick = latest_tick(cron, moment)
        if tick < created or moment - tick > GRACE:
            continue
        event = Event(
            forge=forge,
            kind=EventKind.SCHEDULE,
            repository=Repository(**json.loads(repository_json)),
            sha="",
            ref=f"refs/heads/{branch}",
            branch=branch,
            sender="forgeflow",
            extra={"schedule": cron, "tick": tick.strftime("%Y-%m-%dT%H:%M:00Z")},
        )
        delivery = Delivery(
            forge=forge,
            instance=instance,
            delivery_id=f"schedule:{repo}:{branch}:{cron}:{tick:%Y-%m-%dT%H:%M}"[:255],
            event_type="schedule",
            event_json=event.to_json(),
            state=DeliveryState.RECEIVED,
        )
        try:
            with db.session() as session:
                session.add(delivery)
                session.flush()
                fired.append(delivery.id)
        except IntegrityError:
            continue  # another replica stored this tick
        log.info("schedule %r of %s@%s fired for %s", cron, repo, branch, tick)
    return fired
