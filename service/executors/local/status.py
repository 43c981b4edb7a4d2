"""Writing a local Workflow's ``status`` back to the store, as Argo's controller would.

The :class:`StatusWriter` claims a ``Pending`` Workflow for one runner (recording the runner's
process identity, so :meth:`LocalExecutor.reap_orphans` can tell when it died), then replaces
``status`` after every change and keeps Argo's phase labels
(``workflows.argoproj.io/phase``, ``workflows.argoproj.io/completed``) in step.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from service.clock import kubernetes_time
from service.executors.base import Manifest
from service.executors.local.nodes import (
    FINAL_WORKFLOW_PHASES,
    PENDING,
    RUNNING,
    SUCCEEDED,
    Node,
    refresh_progress,
)
from service.executors.local.proc import process_identity
from service.executors.local.store import PRIVATE, LocalStore, public

PHASE_LABEL = "workflows.argoproj.io/phase"
COMPLETED_LABEL = "workflows.argoproj.io/completed"


class StatusWriter:
    """Owns one Workflow's ``status`` while a runner runs it."""

    def __init__(self, store: LocalStore, namespace: str, name: str) -> None:
        self.store, self.namespace, self.name = store, namespace, name
        self.status: dict[str, Any] = {}

    def claim(self) -> Manifest | None:
        """Mark the Workflow ``Running`` for this process; None if it is not ours to run."""
        identity = process_identity_here()
        claimed: list[Manifest] = []

        def claim(raw: Manifest) -> bool:
            status = raw.get("status") or {}
            if status.get("phase", PENDING) != PENDING or (raw.get(PRIVATE) or {}).get("runner"):
                return False
            raw.setdefault(PRIVATE, {})["runner"] = identity
            raw["status"] = self.status = {
                "phase": RUNNING,
                "startedAt": kubernetes_time(),
                "progress": "0/0",
            }
            set_phase_labels(raw, RUNNING)
            claimed.append(raw)
            return True

        self.store.update(self.namespace, self.name, claim)
        return public(claimed[0]) if claimed else None

    def save(self, nodes: dict[str, Node] | None) -> Manifest | None:
        """Write ``status`` with ``nodes``; None when the Workflow was deleted meanwhile."""
        if nodes is not None:
            self.status["nodes"] = nodes
            self.status["progress"] = refresh_progress(nodes)
        status = copy.deepcopy(self.status)

        def write(raw: Manifest) -> None:
            raw["status"] = status
            set_phase_labels(raw, status.get("phase", RUNNING))

        return self.store.update(self.namespace, self.name, write)

    def finish(self, phase: str, message: str | None, nodes: dict[str, Node]) -> Manifest | None:
        """Write the final phase, message, ``finishedAt`` and Argo's completion conditions."""
        self.status["phase"] = phase
        self.status["finishedAt"] = kubernetes_time()
        if message and phase != SUCCEEDED:
            self.status["message"] = message
        self.status["conditions"] = [
            {"type": "PodRunning", "status": "False"},
            {"type": "Completed", "status": "True"},
        ]
        return self.save(nodes)


def set_phase_labels(raw: Manifest, phase: str) -> None:
    """Argo's phase/completed labels, which label-selector watches rely on."""
    labels = raw.setdefault("metadata", {}).setdefault("labels", {})
    labels[PHASE_LABEL] = phase
    labels[COMPLETED_LABEL] = "true" if phase in FINAL_WORKFLOW_PHASES else "false"


def process_identity_here() -> str:
    """This process's identity (see :func:`local_proc.process_identity`)."""
    return process_identity(os.getpid()) or f"{os.getpid()}:"
