"""Jobs' logs kept in the database (table ``workflow_logs``): on the ``argo`` executor the
watcher copies each job's log here while it runs and when it ends (the pods go with ``podGC``),
and the run pages read them from here (the web tier holds no Kubernetes credentials). The
database, not the data dir, because web and watcher run as separate pods without a shared volume.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.clock import now
from service.store.db import Database
from service.store.models import WorkflowLog

MAX_ARCHIVED_CHARS = 2 * 1024 * 1024


def clip(text: str) -> str:
    """At most :data:`MAX_ARCHIVED_CHARS` of ``text``: its end, where failures are."""
    if len(text) <= MAX_ARCHIVED_CHARS:
        return text
    dropped = len(text) - MAX_ARCHIVED_CHARS
    return f"(forgeflow kept the last {MAX_ARCHIVED_CHARS} characters; {dropped} dropped)\n" + text[dropped:]


class DatabaseLogArchive:
    """Archived logs in forgeflow's database (its own engine, opened on first use)."""

    def __init__(self, database: Database | str) -> None:
        self._db = database if isinstance(database, Database) else None
        self._url = database if isinstance(database, str) else ""
        self._owned = self._db is None

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self._url)
        return self._db

    def get(self, namespace: str, workflow: str, task: str) -> str | None:
        with self.db.session() as session:
            return session.scalars(
                select(WorkflowLog.text).where(
                    WorkflowLog.namespace == namespace,
                    WorkflowLog.workflow == workflow,
                    WorkflowLog.task == task,
                )
            ).first()

    def put(self, namespace: str, workflow: str, task: str, text: str, *, grow_only: bool = False) -> None:
        """Store a job's log; ``grow_only``: only over a shorter one (a live copy)."""
        text = clip(text)
        try:
            with self.db.session() as session:
                row = session.scalars(
                    select(WorkflowLog).where(
                        WorkflowLog.namespace == namespace,
                        WorkflowLog.workflow == workflow,
                        WorkflowLog.task == task,
                    )
                ).first()
                if row is None:
                    session.add(WorkflowLog(namespace=namespace, workflow=workflow, task=task, text=text))
                elif grow_only and len(row.text) >= len(text):
                    return
                else:
                    row.text, row.stored_at = text, now()
        except IntegrityError:
            pass  # another watcher replica archived it at the same moment

    def close(self) -> None:
        if self._owned and self._db is not None:
            self._db.dispose()
