"""The database seam: PostgreSQL in production, a SQLite file by default.

``Database(url)`` owns the engine and session factory; ``migrate()`` brings the schema to the
newest Alembic revision (under an advisory lock on PostgreSQL, so concurrent starts are safe).
On PostgreSQL every wait is bounded (``bounds``; see :mod:`service.store.timeouts`): a database
that is unreachable or stops answering is an error within seconds, never a hang.
"""

from __future__ import annotations

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

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision (no time bound: another process may hold
        the lock while it migrates, and a migration may rewrite a large table)."""
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
