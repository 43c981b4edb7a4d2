"""Scheduled jobs fire once per tick, whatever the number of replicas (issue 16)."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy import select

from service.events import Event, EventKind, Repository
from service.jobs.loader import load_job_file
from service.jobs.matcher import match_jobs
from service.runs.schedules import fire_schedules, latest_tick, record_schedules
from service.store.db import Database
from service.store.models import Delivery, Schedule
from tests.support.services import postgres_database

REPO = Repository("octo", "hello", "https://github.com/octo/hello.git", default_branch="main")
JOB_FILE = """\
version: 1
jobs:
  nightly:
    on: {schedule: [{cron: "0 3 * * *", branch: main}, {cron: "*/15 * * * *"}]}
    steps: [make nightly]
  release-branch:
    on: {schedule: [{cron: "0 4 * * 1", branch: release}]}
    steps: [make]
  build: {steps: [make]}
"""


def push(branch: str = "main") -> Event:
    return Event("github", EventKind.PUSH, REPO, "a" * 40, ref=f"refs/heads/{branch}", branch=branch)


def fired_events(db: Database) -> list[Event]:
    with db.session() as session:
        return [
            Event.from_json(d.event_json) for d in session.scalars(select(Delivery).order_by(Delivery.id))
        ]


@pytest.mark.postgres
def test_a_scheduled_job_fires_once_per_tick_with_two_replicas():
    with postgres_database() as url:
        db = Database(url)
        db.migrate()
        try:
            record_schedules(db, push(), "github.com", load_job_file(JOB_FILE))
            with db.session() as session:
                crons = sorted(s.cron for s in session.scalars(select(Schedule)))
            assert crons == ["*/15 * * * *", "0 3 * * *"]  # release's schedule waits for a push there
            with db.session() as session:  # recorded before the tick
                for row in session.scalars(select(Schedule)):
                    row.created_at = datetime(2026, 1, 1)
            moment = datetime(2026, 3, 4, 3, 7, 30)
            barrier = threading.Barrier(2)
            results: list[list[int]] = []

            def replica() -> None:
                barrier.wait()
                results.append(fire_schedules(db, moment))

            threads = [threading.Thread(target=replica) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(len(r) for r in results) in ([0, 2], [1, 1])
            assert fire_schedules(db, moment) == []  # the same ticks again: nothing
            events = fired_events(db)
            assert sorted((e.extra["schedule"], e.extra["tick"]) for e in events) == [
                ("*/15 * * * *", "2026-03-04T03:00:00Z"),
                ("0 3 * * *", "2026-03-04T03:00:00Z"),
            ]
            assert len(fire_schedules(db, datetime(2026, 3, 4, 3, 16))) == 1  # the next quarter
            # the scheduled event runs the jobs of its schedule, on the branch
            decisions = {d.job: d.matched for d in match_jobs(events[0], load_job_file(JOB_FILE))}
            assert decisions == {"nightly": True, "release-branch": False, "build": False}
            # a push that drops the schedules forgets them
            record_schedules(db, push(), "github.com", load_job_file("version: 1\njobs: {b: {steps: [x]}}\n"))
            assert fire_schedules(db, datetime(2026, 3, 4, 3, 31)) == []
        finally:
            db.dispose()


def test_ticks_missed_for_long_are_not_caught_up(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 's.sqlite'}")
    db.migrate()
    record_schedules(db, push(), "", load_job_file(JOB_FILE))
    with db.session() as session:
        for row in session.scalars(select(Schedule)):
            row.created_at = datetime(2026, 1, 1)
    assert latest_tick("0 3 * * *", datetime(2026, 3, 4, 3, 0, 0)) == datetime(2026, 3, 4, 3, 0)
    assert len(fire_schedules(db, datetime(2026, 3, 4, 5, 10))) == 1  # only */15; 03:00 is 2 h old
    db.dispose()
