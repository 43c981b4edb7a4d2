"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.store.db import Database
from service.store.models import Base
from tests.support.services import postgres_database


def schema_differences(db: Database) -> list:
    db.migrate()
    with db.engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def test_sqlite_schema_matches_models(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'f.sqlite'}")
    try:
        assert schema_differences(db) == [], "run tools/regenerate_initial_migration.py"
        db.migrate()  # a second upgrade is a no-op
    finally:
        db.dispose()


@pytest.mark.postgres
def test_postgres_schema_matches_models():
    with postgres_database() as url:
        db = Database(url)
        try:
            assert schema_differences(db) == []
        finally:
            db.dispose()


def test_the_newest_revisions_are_alembics_heads():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from service.store.db import MIGRATIONS, head_revisions

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revisions() == frozenset(ScriptDirectory.from_config(config).get_heads())


def test_a_database_behind_is_upgraded_and_one_at_the_newest_revision_is_left_alone(tmp_path: Path):
    from alembic import command
    from alembic.config import Config

    from service.store.db import MIGRATIONS, head_revisions

    db = Database(f"sqlite:///{tmp_path / 'f.sqlite'}")
    try:
        assert db.schema_revisions() == frozenset()
        db.migrate()
        assert db.schema_revisions() == head_revisions()
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with db.engine.begin() as connection:  # as if the newest migration had not run yet
            config.attributes["connection"] = connection
            command.downgrade(config, "-1")
        assert db.schema_revisions() and db.schema_revisions() != head_revisions()
        db.migrate()
        assert db.schema_revisions() == head_revisions()
    finally:
        db.dispose()
