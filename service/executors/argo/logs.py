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

from service.argo.names import fnv32a
from service.executors.base import Manifest
from service.store.workflow_logs import MAX_ARCHIVED_CHARS, DatabaseLogArchive, clip

__all__ = ["MAX_ARCHIVED_CHARS", "DatabaseLogArchive", "LogArchive", "clip"]

POD_NAME_FORMAT = "workflows.argoproj.io/pod-name-format"
MAX_PREFIX = 253 - 10 - 1  # Argo: maxK8sResourceNameLength - k8sNamingHashLength - 1
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


class LogArchive(Protocol):
    def get(self, namespace: str, workflow: str, task: str) -> str | None: ...

    def put(
        self, namespace: str, workflow: str, task: str, text: str, *, grow_only: bool = False
    ) -> None: ...

    def close(self) -> None: ...
