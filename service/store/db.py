"""The database seam: PostgreSQL in production, a SQLite file by default.

``Database(url)`` owns the engine and session factory; ``migrate()`` brings the schema to the
newest Alembic revision (under an advisory lock on PostgreSQL, so concurrent starts are safe);
a schema that is at the newest revision already is left alone without importing Alembic (every
process migrates at its start, and Alembic with its templates costs each of them ~30 MiB).
On PostgreSQL every wait is bounded (``bounds``; see :mod:`service.store.timeouts`): a database
that is unreachable or stops answering is an error within seconds, never a hang.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.store import timeouts
from service.store.leases import LEASE, LeaseKeeper
from service.store.timeouts import Bounds

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK_ID = 7_406_531  # pg_advisory_lock key for schema upgrades


def head_revisions(versions: Path = MIGRATIONS / "versions") -> frozenset[str]:
    """The newest revisions of the migrations (those no other revision follows), read from the
    ``revision``/``down_revision`` assignments of the revision files as Alembic does."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for path in versions.glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            value = ast.literal_eval(node.value) if "revision" in names or "down_revision" in names else None
            if "revision" in names and isinstance(value, str):
                revisions.add(value)
            if "down_revision" in names and value:
                followed.update([value] if isinstance(value, str) else value)
    return frozenset(revisions - followed)


class Database:
    def __init__(
        self, url: str, *, pool_size: int = 5, bounds: Bounds | None = None, lease: timedelta = LEASE
    ) -> None:
        self.url = url
        self.lease = lease  # how long a lease this process takes lasts unless renewed
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.bounds = bounds or Bounds()
        # No pre-ping (it costs a round trip per checkout on the web's hot path): a connection
        # the server dropped fails once, is discarded by the pool, and the caller retries.
        kwargs: dict[str, Any] = {"future": True, "pool_recycle": 1800}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size * 2
            kwargs["pool_timeout"] = self.bounds.connect  # every connection busy: fail, not queue
            if parsed.get_driver_name() == "psycopg2":
                kwargs["connect_args"] = timeouts.connect_args(self.bounds)
                timeouts.install(self.bounds)
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._lock = threading.Lock()
        self._leases: LeaseKeeper | None = None

    @property
    def leases(self) -> LeaseKeeper:
        """Renews the leases this process holds on rows of this database (see
        :mod:`service.store.leases`)."""
        with self._lock:
            if self._leases is None:
                self._leases = LeaseKeeper(self, lease=self.lease)
            return self._leases

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in one transaction, committed on success and rolled back on error: for
        plain (Core) statements on hot paths, which skip the ORM's unit of work."""
        with self.engine.begin() as connection:
            yield connection

    def schema_revisions(self) -> frozenset[str]:
        """The revisions the schema is at (none for an empty database)."""
        try:
            with self.engine.connect() as connection:
                versions = connection.execute(text("SELECT version_num FROM alembic_version"))
                return frozenset(versions.scalars())
        except DBAPIError:  # no alembic_version table yet
            return frozenset()

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision (no time bound: another process may hold
        the lock while it migrates, and a migration may rewrite a large table). Nothing to do,
        and Alembic not imported, when the schema is at the newest revision already."""
        if self.schema_revisions() == head_revisions():
            return
        from alembic import command  # only here: alembic and its templates cost every process MiBs
        from alembic.config import Config

        with timeouts.deadline(None), self.engine.begin() as connection:
            if not self.is_sqlite:
                connection.execute(text("SET LOCAL statement_timeout = 0"))
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_ID})
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except (OperationalError, DBAPIError):
            return False

    def dispose(self) -> None:
        if self._leases is not None:
            self._leases.close()
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
