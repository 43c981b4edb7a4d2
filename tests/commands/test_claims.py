"""A command of a comment is handled by one worker at a time, and taken over only from one that
died (its claim older than the lease), however often the forge delivers the comment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from service.clock import now
from service.commands.handle import CLAIM_LEASE, claim
from service.commands.parse import Command
from service.store.db import Database
from service.store.models import CommandRecord

SMOKE = Command("smoke", (), 1)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'forgeflow.sqlite'}")
    database.migrate()
    yield database
    database.dispose()


def claimed_ago(db: Database, key: str, age: timedelta) -> None:
    with db.session() as session:
        session.execute(update(CommandRecord).where(CommandRecord.key == key).values(claimed_at=now() - age))


def test_a_second_delivery_while_the_first_is_handled_is_not_handled_again(db: Database):
    assert claim(db, "k", SMOKE, "alice")
    assert not claim(db, "k", SMOKE, "alice")  # the first worker is still at it


def test_a_command_whose_worker_died_is_taken_over_once(db: Database):
    assert claim(db, "k", SMOKE, "alice")
    claimed_ago(db, "k", CLAIM_LEASE + timedelta(seconds=1))
    assert claim(db, "k", SMOKE, "alice")  # the redelivery takes it over ...
    assert not claim(db, "k", SMOKE, "alice")  # ... and holds it


def test_a_finished_command_is_never_handled_again(db: Database):
    assert claim(db, "k", SMOKE, "alice")
    with db.session() as session:
        session.execute(update(CommandRecord).where(CommandRecord.key == "k").values(state="done"))
    claimed_ago(db, "k", CLAIM_LEASE * 10)
    assert not claim(db, "k", SMOKE, "alice")
