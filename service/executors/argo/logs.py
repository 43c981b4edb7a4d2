"""Job logs on Argo: which pod ran a DAG task, its ``main`` container's log, and an archive.

Argo names a task's pod after its node (``workflow/util/pod_name.go``): with the default
``POD_NAMES=v2`` the pod is ``<workflow>-<templateName>-<fnv32a(node name)>`` (the prefix cut to
242 characters), with ``v1`` it is the node id. A Workflow says which it used in its
``workflows.argoproj.io/pod-name-format`` annotation; without one forgeflow tries v2, then v1.
A retried task has one pod per attempt (``<wf>.<task>(0)``, ``(1)``, ...): their logs are joined
with a header per retry, as the local executor writes them.

The Workflow's ``podGC: OnWorkflowCompletion`` deletes the pods when the run ends, so the
watcher archives each job's log once the job reaches a final state
(:meth:`ArgoExecutor.archive_log`) in the database table ``workflow_logs``; ``logs()`` serves
the archived text first. The database (not the data dir) because web and watcher run as
separate pods without a shared volume.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.argo.names import fnv32a
from service.clock import now
from service.executors.base import Manifest
from service.store.db import Database
from service.store.models import WorkflowLog

POD_NAME_FORMAT = "workflows.argoproj.io/pod-name-format"
MAX_PREFIX = 253 - 10 - 1  # Argo: maxK8sResourceNameLength - k8sNamingHashLength - 1
MAX_ARCHIVED_CHARS = 2 * 1024 * 1024
MAIN_CONTAINER = "main"

ReadLog = Callable[[str], "str | None"]  # pod name → its main container's log, None if no pod


def pod_name(workflow: str, node: dict[str, Any], version: str) -> str:
    """The pod Argo created for ``node`` of ``workflow`` under pod naming ``version``."""
    if version == "v1":
        return str(node.get("id") or "")
    name = str(node.get("name") or "")
    if name == workflow:
        return workflow
    template = str(node.get("templateName") or (node.get("templateRef") or {}).get("template") or "")
    prefix = f"{workflow}-{template}" if template else workflow
    return f"{prefix[:MAX_PREFIX]}-{fnv32a(name)}"


def naming_versions(workflow: Manifest) -> list[str]:
    annotations = (workflow.get("metadata") or {}).get("annotations") or {}
    first = "v1" if annotations.get(POD_NAME_FORMAT) == "v1" else "v2"
    return [first, "v2" if first == "v1" else "v1"]


def task_pods(workflow: Manifest, task: str) -> list[dict[str, Any]]:
    """The Pod nodes of a DAG task (every retry attempt, nested steps too), oldest first."""
    name = str((workflow.get("metadata") or {}).get("name") or "")
    own = f"{name}.{task}"
    nodes = ((workflow.get("status") or {}).get("nodes") or {}).values()
    pods = [
        node
        for node in nodes
        if isinstance(node, dict)
        and node.get("type") == "Pod"
        and (
            node.get("name") == own
            or str(node.get("name") or "").startswith((own + "(", own + "."))
            or (node.get("name") == name and node.get("displayName") == task)
        )
    ]
    return sorted(pods, key=lambda n: (str(n.get("startedAt") or ""), str(n.get("name") or "")))


def task_log(workflow: Manifest, task: str, read: ReadLog) -> str | None:
    """The log of ``task``: its pods' ``main`` logs joined; None when no pod has one (yet)."""
    name = str((workflow.get("metadata") or {}).get("name") or "")
    versions = naming_versions(workflow)
    parts: list[str] = []
    found = False
    for node in task_pods(workflow, task):
        text = None
        for version in versions:
            text = read(pod_name(name, node, version))
            if text is not None:
                break
        display = str(node.get("displayName") or task)
        if "(" in display and not display.endswith("(0)"):
            number = display.rsplit("(", 1)[1].rstrip(")")
            parts.append(f"----- forgeflow: retry {number} ({display}) -----\n")
        if text is not None:
            found = True
            parts.append(text if text.endswith("\n") or not text else text + "\n")
    return "".join(parts) if found else None


def clip(text: str) -> str:
    """At most :data:`MAX_ARCHIVED_CHARS` of ``text``: its end, where failures are."""
    if len(text) <= MAX_ARCHIVED_CHARS:
        return text
    dropped = len(text) - MAX_ARCHIVED_CHARS
    return f"(forgeflow kept the last {MAX_ARCHIVED_CHARS} characters; {dropped} dropped)\n" + text[dropped:]


class LogArchive(Protocol):
    def get(self, namespace: str, workflow: str, task: str) -> str | None: ...

    def put(
        self, namespace: str, workflow: str, task: str, text: str, *, grow_only: bool = False
    ) -> None: ...

    def close(self) -> None: ...


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
