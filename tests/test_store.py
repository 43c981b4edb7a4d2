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
