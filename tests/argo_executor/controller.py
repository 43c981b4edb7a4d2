"""An emulated Argo workflow controller for the Kubernetes API emulator.

Every Workflow created in the emulator (through the official client, over HTTP) is run through
the local executor in threads of this process (``detach=False``): the very manifest, with
Argo's ``status.nodes`` shape. As the local copy changes, its ``status`` and Argo's phase labels
are written back into the emulator's object (a MODIFIED watch event, as Argo's controller
makes), the ``workflows.argoproj.io/pod-name-format: v2`` annotation is set, each started pod
appears under its v2 pod name with the task's log as its ``main`` log, and a ``spec.shutdown``
written through the API stops the local run. ``pause()`` holds status writes back (a slow
controller); ``pod_gc`` deletes a Workflow's pods once it ends, as ``podGC:
OnWorkflowCompletion`` does.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from service.executors.argo.logs import POD_NAME_FORMAT, pod_name
from service.executors.base import RunSecret, WorkflowRef
from service.executors.local.executor import LocalExecutor, LocalExecutorConfig
from tests.k8s_emulator import K8sEmulator

FINAL = frozenset({"Succeeded", "Failed", "Error"})
ARGO_LABELS = ("workflows.argoproj.io/phase", "workflows.argoproj.io/completed")


@dataclass
class _Tracked:
    ref: WorkflowRef
    local_version: str = ""
    stopped: bool = False
    final: bool = False
    pods: dict[str, str] | None = None  # pod name → the log text last written


class EmulatedController:
    def __init__(self, k8s: K8sEmulator, data_dir: Path, *, poll: float = 0.05, pod_gc: bool = False):
        self.k8s = k8s
        self.local = LocalExecutor(LocalExecutorConfig(data_dir=data_dir, detach=False, max_parallel=4))
        self.poll = poll
        self.pod_gc = pod_gc
        self.tracked: dict[tuple[str, str], _Tracked] = {}
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._loop, name="emulated-argo", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30) -> None:
        """Stop the loop, terminate what still runs locally, and wait until it has ended."""
        self._stop.set()
        self._thread.join(timeout=10)
        deadline = time.monotonic() + timeout
        for tracked in self.tracked.values():
            self.local.stop(tracked.ref, "the test ended")
            while time.monotonic() < deadline:
                phase = ((self.local.get(tracked.ref) or {}).get("status") or {}).get("phase")
                if phase in FINAL:
                    break
                time.sleep(0.05)
        if self.errors:
            raise AssertionError(f"the emulated controller failed: {self.errors!r}")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None):
        self.stop()

    def pause(self) -> None:
        """Stop writing status back (the local runs go on)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def local_phase(self, namespace: str, name: str) -> str:
        return str(((self.local.get(WorkflowRef(namespace, name)) or {}).get("status") or {}).get("phase"))

    # -- the loop --------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self._running.is_set():
                    self.sync()
            except Exception as exc:
                self.errors.append(exc)
            self._stop.wait(self.poll)

    def sync(self) -> None:
        present = set()
        for obj in self.k8s.objects():
            meta = obj["metadata"]
            key = (meta["namespace"], meta["name"])
            present.add(key)
            tracked = self.tracked.get(key)
            if tracked is None:
                if (obj.get("spec") or {}).get("suspend"):
                    continue  # a suspended Workflow starts nothing until it is resumed
                tracked = self.tracked[key] = self._start(obj)
            if (obj.get("spec") or {}).get("shutdown") and not tracked.stopped:
                tracked.stopped = True
                message = (meta.get("annotations") or {}).get("forgeflow.dev/stop-message", "")
                self.local.stop(tracked.ref, message)
            if not tracked.final:
                self._copy_status(tracked)
        for key in set(self.tracked) - present:
            tracked = self.tracked.pop(key)
            self.local.stop(tracked.ref, "deleted")

    def _start(self, obj: dict[str, Any]) -> _Tracked:
        meta = obj["metadata"]
        manifest = {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "metadata": {
                key: meta[key] for key in ("name", "namespace", "labels", "annotations") if key in meta
            },
            "spec": obj.get("spec") or {},
        }
        ref = self.local.submit(manifest, self._artifact_secrets(obj))
        return _Tracked(ref, pods={})

    def _artifact_secrets(self, obj: dict[str, Any]) -> list[RunSecret]:
        """The Secrets the Workflow's pods use (git artifacts' credentials, env, envFrom,
        volumes), read from the cluster as the kubelet and Argo's executor get them; the local
        run finds them as its own (a missing one fails its pod, as on a cluster)."""
        names = set(_secret_names(obj.get("spec") or {}))
        secrets = []
        for name in sorted(names):
            found = self.k8s.get(obj["metadata"]["namespace"], name, "secrets")
            if found is not None:
                data = {k: base64.b64decode(v).decode() for k, v in (found.get("data") or {}).items()}
                secrets.append(RunSecret(name, data))
        return secrets

    def _copy_status(self, tracked: _Tracked) -> None:
        local = self.local.get(tracked.ref)
        if local is None:
            return
        version = str(local["metadata"].get("resourceVersion"))
        if version == tracked.local_version:
            return
        tracked.local_version = version
        status = local.get("status") or {}
        labels = {k: v for k, v in (local["metadata"].get("labels") or {}).items() if k in ARGO_LABELS}
        self._write_pods(tracked, status)

        def write(obj: dict[str, Any]) -> None:
            obj["status"] = status
            meta = obj["metadata"]
            meta.setdefault("labels", {}).update(labels)
            meta.setdefault("annotations", {})[POD_NAME_FORMAT] = "v2"

        ns, name = tracked.ref.namespace, tracked.ref.name
        self.k8s.update(ns, name, write)
        if status.get("phase") in FINAL:
            tracked.final = True
            if self.pod_gc:
                for pod in tracked.pods or {}:
                    self.k8s.delete(ns, pod, "pods")

    def _write_pods(self, tracked: _Tracked, status: dict[str, Any]) -> None:
        pods = tracked.pods if tracked.pods is not None else {}
        for node in (status.get("nodes") or {}).values():
            if node.get("type") != "Pod" or node.get("phase") == "Pending":
                continue
            task = str(node.get("displayName") or "").split("(")[0]
            text = self.local.logs(tracked.ref, task) or ""
            pod = pod_name(tracked.ref.name, node, "v2")
            if pods.get(pod) != text:
                self.k8s.set_pod_log(tracked.ref.namespace, pod, text)
                pods[pod] = text
        tracked.pods = pods


def _secret_names(value: Any) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("usernameSecret", "passwordSecret", "secretKeyRef", "secretRef") and isinstance(
                item, dict
            ):
                found.append(str(item.get("name")))
            elif key == "secret" and isinstance(item, dict):
                found.append(str(item.get("secretName")))
            else:
                found += _secret_names(item)
    elif isinstance(value, list):
        for item in value:
            found += _secret_names(item)
    return found
