"""Argo's controller, as far as forgeflow can tell, for Workflows of one job (the multi-replica
test and benchmarks): each new Workflow goes to Running, then to Succeeded."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from tests.k8s_emulator import K8sEmulator
from tests.support.fake_github import FakeGitHub


class Controller:
    """Argo's controller, as far as forgeflow can tell: every new Workflow goes to Running, then
    to Succeeded once the forge has been told it runs (or ``hold`` seconds later), so no
    transition is skipped. Follows the emulator's event history, not lists of every object."""

    def __init__(
        self, k8s: K8sEmulator, github: FakeGitHub, namespace: str, job: str, hold: float = 5.0
    ) -> None:
        self.k8s, self.github, self.namespace, self.job, self.hold = k8s, github, namespace, job, hold
        self.stop_event = threading.Event()
        self.running: dict[str, tuple[str, float]] = {}  # sha -> (Workflow name, since)
        self.finished: set[str] = set()
        self.moved: dict[tuple[str, str], float] = {}  # (sha, phase) -> monotonic time
        self._rv = int(k8s.resource_version)
        self._seen_statuses = 0
        self._told_running: set[str] = set()
        self.thread = threading.Thread(target=self._run, name="argo-controller", daemon=True)

    def start(self) -> Controller:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        while not self.stop_event.wait(0.05):
            self.step()

    def step(self) -> None:
        events = self.k8s.store.events_since(self._rv) or []
        for event in events:
            self._rv = event.resource_version
            meta = event.obj["metadata"]
            if event.type == "ADDED" and event.resource.plural == "workflows":
                self._move(meta["name"], meta["labels"]["forgeflow.dev/sha"], "Running")
        with self.github.lock:
            fresh = self.github.statuses[self._seen_statuses :]
            self._seen_statuses += len(fresh)
        self._told_running |= {
            s.sha for s in fresh if s.state == "pending" and "running" in s.description.lower()
        }
        moment = time.monotonic()
        for sha, (name, since) in list(self.running.items()):
            if sha in self._told_running or moment - since > self.hold:
                self._move(name, sha, "Succeeded")

    def _move(self, name: str, sha: str, phase: str) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        node: dict[str, Any] = {
            "id": f"{name}-1",
            "name": f"{name}.{self.job}",
            "displayName": self.job,
            "type": "Pod",
            "templateName": self.job,
            "phase": phase,
            "startedAt": now,
        }
        status: dict[str, Any] = {"phase": phase, "startedAt": now, "nodes": {node["id"]: node}}
        if phase == "Succeeded":
            node["finishedAt"] = status["finishedAt"] = now
        self.k8s.patch_status(self.namespace, name, status)
        self.moved[(sha, phase)] = time.monotonic()
        if phase == "Running":
            self.running[sha] = (name, time.monotonic())
        else:
            self.running.pop(sha, None)
            self.finished.add(sha)
