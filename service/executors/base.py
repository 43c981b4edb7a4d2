"""The executor seam: where a compiled Argo ``Workflow`` manifest runs, and how it is observed.

Two implementations share this interface: ``argo`` (Workflow custom objects through the
``kubernetes`` client) and ``local`` (the same manifest run on this machine). Both expose the
Workflow as an Argo-shaped object (``metadata``, ``spec``, ``status.phase``, ``status.nodes``),
so the watcher and the reporter are one code path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Manifest = dict[str, Any]

WatchType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]


@dataclass(frozen=True)
class WorkflowRef:
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Manifest) -> WorkflowRef:
        meta = obj.get("metadata") or {}
        return cls(namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""))


@dataclass(frozen=True)
class WatchEvent:
    type: WatchType
    object: Manifest

    @property
    def resource_version(self) -> str:
        return str((self.object.get("metadata") or {}).get("resourceVersion") or "")


@dataclass(frozen=True)
class RunSecret:
    """A Secret only one run uses (its checkout's credentials), made in the Workflow's
    namespace when the Workflow is submitted, owned by it and gone with it. ``data`` maps keys
    to values; it is never logged or shown."""

    name: str
    data: dict[str, str] = field(repr=False)


class ExecutorError(Exception):
    """A failure the caller should not retry (bad manifest, forbidden)."""


class TransientExecutorError(ExecutorError):
    """A failure worth retrying with backoff (API 5xx, connection refused, timeouts)."""


class ResourceVersionExpired(ExecutorError):
    """The resourceVersion a watch resumed from is too old (HTTP 410 Gone): relist."""


class Executor(Protocol):
    name: str

    def submit(self, manifest: Manifest, secrets: Sequence[RunSecret] = ()) -> WorkflowRef:
        """Create the Workflow, and ``secrets`` in its namespace owned by it (nothing of the run
        starts before they exist; a failed submit leaves none behind). Idempotent: if it already
        exists (409), return its ref (its secrets made again if they are missing)."""
        ...

    def get(self, ref: WorkflowRef) -> Manifest | None:
        """The Workflow as it is now, or None when it no longer exists."""
        ...

    def list(self, label_selector: str) -> tuple[list[Manifest], str]:
        """All Workflows matching the selector, and the list's resourceVersion."""
        ...

    def watch(self, label_selector: str, resource_version: str, timeout_seconds: int) -> Iterator[WatchEvent]:
        """Changes after ``resource_version`` until ``timeout_seconds`` pass.

        Raises :class:`ResourceVersionExpired` when the version is too old to resume from.
        """
        ...

    def stop(self, ref: WorkflowRef, message: str) -> None:
        """Ask the Workflow to stop (Argo ``spec.shutdown: Terminate``); no-op when finished."""
        ...

    def annotate(self, ref: WorkflowRef, annotations: dict[str, str]) -> None:
        """Merge annotations into the Workflow's metadata (reporting bookkeeping)."""
        ...

    def logs(self, ref: WorkflowRef, task: str) -> str | None:
        """The log of one DAG task (by its task name), or None when there is none (yet)."""
        ...
