"""The ``local`` executor: runs the very manifest Argo would run, on this machine.

Workflow objects live in a :class:`~service.executors.local.store.LocalStore` under
``config.data_dir``; each submitted Workflow is run by a detached runner process
(``python -m service.executors.local.runner``) that writes Argo's ``status.nodes`` shape back,
so the watcher and the reporter read both executors the same way. ``run_foreground`` runs one
in this process with live, ``[task]``-prefixed output, for ``forgeflow exec``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import string
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import service
from service.clock import kubernetes_time, now, parse_time
from service.executors.base import (
    ExecutorError,
    Manifest,
    RunSecret,
    WatchEvent,
    WorkflowRef,
)
from service.executors.local.nodes import ERROR, FINAL_WORKFLOW_PHASES, PENDING, RUNNING
from service.executors.local.pod_context import LineSink
from service.executors.local.proc import is_alive
from service.executors.local.runner import RUN_SECRETS, Runner
from service.executors.local.status import set_phase_labels
from service.executors.local.store import PRIVATE, LocalStore, check_name
from service.executors.local.watch import list_workflows, watch_workflows
from service.executors.log_times import strip

__all__ = ["LocalExecutor", "LocalExecutorConfig"]

STOP_MESSAGE_ANNOTATION = "forgeflow.dev/stop-message"
MSG_RUNNER_DIED = "local runner died"
MSG_RUNNER_NEVER_STARTED = "local runner never started"
UNSTARTED_GRACE_SECONDS = 60.0
RUNTIMES = ("podman", "docker")
RefList = list[WorkflowRef]
ArgList = list[str]

# Detached runners this process started, reaped (waitpid) once they exit.
_CHILDREN: list[int] = []
_CHILDREN_LOCK = threading.Lock()


@dataclass(frozen=True)
class LocalExecutorConfig:
    """Settings of the local executor (built by the service's settings module).

    ``data_dir`` holds the Workflow objects, logs, workspaces and ``secrets/``;
    ``container_runtime`` is ``None`` (run commands directly), ``"podman"`` or ``"docker"``;
    ``max_parallel`` bounds the pods running at once per Workflow; ``detach`` runs each
    Workflow in its own process (else in a thread of this process).
    """

    data_dir: Path
    container_runtime: str | None = None
    max_parallel: int = 4
    default_namespace: str = "forgeflow"
    detach: bool = True
    cache_max_bytes: int = 0  # caches kept per repository (0: no limit), least recently used go

    def __post_init__(self) -> None:
        runtime = self.container_runtime
        if runtime is not None and Path(runtime).name not in RUNTIMES:
            raise ValueError(f"container_runtime must be podman or docker, not {runtime!r}")
        if self.max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")


class LocalExecutor:
    """The :class:`~service.executors.base.Executor` that runs Workflows on this machine."""

    name = "local"

    def __init__(self, config: LocalExecutorConfig) -> None:
        self.config = config
        self.store = LocalStore(Path(config.data_dir).resolve())

    # -- the Executor protocol ---------------------------------------------------------------
    def submit(self, manifest: Manifest, secrets: Sequence[RunSecret] = ()) -> WorkflowRef:
        """Store the Workflow (with its own ``secrets``, files only this user reads, removed
        when it ends) and start its runner; an existing name is Argo's 409: no-op."""
        ref, created = self.create(manifest)
        if created:
            self.write_secrets(ref, secrets)
            self.start(ref)
        return ref

    def write_secrets(self, ref: WorkflowRef, secrets: Sequence[RunSecret]) -> None:
        """The run's own Secrets as ``<workflow dir>/secrets/<name>/<key>`` (mode 0600)."""
        root = self.store.workflow_dir(ref.namespace, ref.name) / RUN_SECRETS
        for secret in secrets:
            folder = root / _safe_part(secret.name)
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            root.chmod(0o700)
            for key, value in secret.data.items():
                path = folder / _safe_part(key)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(value)

    def get(self, ref: WorkflowRef) -> Manifest | None:
        return self.store.get(ref.namespace, ref.name)

    def list(self, label_selector: str) -> tuple[list[Manifest], str]:
        return list_workflows(self.store, label_selector)

    def watch(self, label_selector: str, resource_version: str, timeout_seconds: int) -> Iterator[WatchEvent]:
        return watch_workflows(self.store, label_selector, resource_version, timeout_seconds)

    def stop(self, ref: WorkflowRef, message: str) -> None:
        """Set ``spec.shutdown: Terminate`` (the runner notices within ~0.5 s)."""

        def shutdown(raw: Manifest) -> bool:
            if (raw.get("status") or {}).get("phase") in FINAL_WORKFLOW_PHASES:
                return False
            raw.setdefault("spec", {})["shutdown"] = "Terminate"
            annotations = raw.setdefault("metadata", {}).setdefault("annotations", {})
            annotations[STOP_MESSAGE_ANNOTATION] = message
            return True

        self.store.update(ref.namespace, ref.name, shutdown)

    def annotate(self, ref: WorkflowRef, annotations: dict[str, str]) -> None:
        def merge(raw: Manifest) -> None:
            meta = raw.setdefault("metadata", {})
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}

        if self.store.update(ref.namespace, ref.name, merge) is None:
            raise ExecutorError(f"workflow {ref.namespace}/{ref.name} not found")

    def logs(self, ref: WorkflowRef, task: str) -> str | None:
        text = self.stamped_logs(ref, task)
        return strip(text) if text is not None else None

    def stamped_logs(self, ref: WorkflowRef, task: str, max_bytes: int | None = None) -> str | None:
        """The log with each line's time (``log_times``), as the run pages show it; past
        ``max_bytes`` only its end (whole lines), where failures are."""
        path = self.store.log_path(ref.namespace, ref.name, task)
        try:
            with path.open("rb") as log:
                size = log.seek(0, os.SEEK_END)
                start = size - max_bytes if max_bytes is not None and size > max_bytes else 0
                log.seek(start)
                data = log.read()
        except FileNotFoundError:
            return None
        if start:
            data = data[data.find(b"\n") + 1 :]
        return data.decode("utf-8", errors="replace")

    # -- local extras ------------------------------------------------------------------------
    def create(self, manifest: Manifest) -> tuple[WorkflowRef, bool]:
        """Store the Workflow as ``Pending`` without running it; False if it existed."""
        obj = self._normalised(manifest)
        stored, created = self.store.create(obj)
        return WorkflowRef.of(stored), created

    def start(self, ref: WorkflowRef) -> None:
        """Start the runner of a stored ``Pending`` Workflow (detached, or in a thread)."""
        if not self.config.detach:
            runner = self._runner(ref)
            threading.Thread(target=runner.run, name=f"runner-{ref.name}", daemon=True).start()
            return
        runner_args = self._runner_args(ref)
        log_path = self.store.workflow_dir(ref.namespace, ref.name) / "runner.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        _spawn_detached(
            [sys.executable, "-m", "service.executors.local.runner", *runner_args],
            log_path,
            cwd=Path(service.__file__).resolve().parents[1],
        )

    def run_foreground(self, manifest: Manifest, output: IO[str], sink: LineSink | None = None) -> Manifest:
        """Run the Workflow in this process, streaming each task's output to ``output`` (or to
        ``sink``, which may say more than the lines).

        Every line is prefixed ``[task] ``. Ctrl-C stops it as ``stop()`` would. Returns the
        final Workflow object. A finished Workflow of the same name is replaced (``exec`` runs
        again); one still running is refused.
        """
        ref, created = self.create(manifest)
        if not created:
            phase = ((self.get(ref) or {}).get("status") or {}).get("phase")
            if phase not in FINAL_WORKFLOW_PHASES:
                raise ExecutorError(f"workflow {ref.namespace}/{ref.name} is still running")
            self.store.delete(ref.namespace, ref.name)
            ref, _ = self.create(manifest)
        final = self._runner(ref, sink=sink or LineSink(output)).run()
        if final is None:
            raise ExecutorError(f"workflow {ref.namespace}/{ref.name} was deleted while running")
        return final

    def delete(self, ref: WorkflowRef) -> bool:
        """Stop the Workflow if it runs, then remove it with its logs and workspaces."""
        self.stop(ref, "deleted")
        return self.store.delete(ref.namespace, ref.name)

    def forget_artifacts(self, ref: WorkflowRef) -> bool:
        """Remove the artifacts kept for the Workflow's jobs (``artifacts/<task>/...``; the
        run page lists them), keeping its logs and state: whether there were any."""
        check_name(ref.namespace, ref.name)
        folder = self.store.workflow_dir(ref.namespace, ref.name) / "artifacts"
        if not folder.exists():
            return False
        shutil.rmtree(folder)  # an error is the sweep's to log and retry
        return True

    def reap_orphans(self) -> RefList:
        """Mark ``Error`` the unfinished Workflows whose runner is gone (or never came)."""
        reaped = []
        for raw in self.store.all_raw():
            message = _orphan_message(raw)
            if message is None:
                continue
            ref = WorkflowRef.of(raw)
            if self.store.update(ref.namespace, ref.name, _mark_orphan(message)) is not None:
                reaped.append(ref)
        return reaped

    # -- helpers -----------------------------------------------------------------------------
    def _normalised(self, manifest: Manifest) -> Manifest:
        if not isinstance(manifest, dict) or manifest.get("kind") != "Workflow":
            raise ExecutorError("not a Workflow manifest")
        if manifest.get("apiVersion") != "argoproj.io/v1alpha1":
            raise ExecutorError(f"unsupported apiVersion {manifest.get('apiVersion')!r}")
        if not isinstance(manifest.get("metadata") or {}, dict):
            raise ExecutorError("metadata is not a mapping")
        meta = dict(manifest.get("metadata") or {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ExecutorError("the Workflow has neither metadata.name nor generateName")
            alphabet = string.ascii_lowercase + string.digits
            meta["name"] = meta["generateName"] + "".join(secrets.choice(alphabet) for _ in range(5))
        meta["namespace"] = meta.get("namespace") or self.config.default_namespace
        return {**manifest, "metadata": meta}

    def _runner_args(self, ref: WorkflowRef) -> ArgList:
        args = ["--data-dir", str(self.store.data_dir), "--namespace", ref.namespace]
        args += ["--name", ref.name, "--max-parallel", str(self.config.max_parallel)]
        if self.config.container_runtime:
            args += ["--container-runtime", self.config.container_runtime]
        if self.config.cache_max_bytes:
            args += ["--cache-max-bytes", str(self.config.cache_max_bytes)]
        return args

    def _runner(self, ref: WorkflowRef, sink: LineSink | None = None) -> Runner:
        return Runner(
            self.store,
            ref.namespace,
            ref.name,
            max_parallel=self.config.max_parallel,
            runtime=self.config.container_runtime,
            sink=sink,
            cache_max_bytes=self.config.cache_max_bytes,
        )


def _safe_part(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise ExecutorError(f"invalid Secret name or key {name!r}")
    return name


def _spawn_detached(argv: ArgList, log_path: Path, cwd: Path) -> None:
    """Start a runner in its own session that outlives this process; its output goes to
    ``log_path``. No Popen object is kept (it would warn when collected while the runner, by
    design, still runs); exited runners are reaped here so they leave no zombies."""
    _reap_children()
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), env.get("PYTHONPATH", "")]))
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
    with _CHILDREN_LOCK:
        _CHILDREN.append(pid)


def _reap_children() -> None:
    with _CHILDREN_LOCK:
        running = []
        for pid in _CHILDREN:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if done == 0:
                running.append(pid)
        _CHILDREN[:] = running


def _orphan_message(raw: Manifest) -> str | None:
    phase = (raw.get("status") or {}).get("phase", PENDING)
    if phase not in (PENDING, RUNNING):
        return None
    runner = (raw.get(PRIVATE) or {}).get("runner")
    if runner:
        return None if is_alive(runner) else MSG_RUNNER_DIED
    created = (raw.get("metadata") or {}).get("creationTimestamp", "")
    return MSG_RUNNER_NEVER_STARTED if _older_than(created, UNSTARTED_GRACE_SECONDS) else None


def _older_than(timestamp: str, seconds: float) -> bool:
    then = parse_time(timestamp)
    return then is not None and (now() - then).total_seconds() > seconds


def _mark_orphan(message: str) -> Callable[[Manifest], bool]:
    """An update that ends an orphaned Workflow in ``Error`` (if it still is one)."""

    def mark(raw: Manifest) -> bool:
        if _orphan_message(raw) is None:
            return False
        status = raw.setdefault("status", {})
        for node in (status.get("nodes") or {}).values():
            if node.get("phase") in (PENDING, RUNNING):
                node["phase"], node["message"], node["finishedAt"] = ERROR, message, kubernetes_time()
        status.update(phase=ERROR, message=message, finishedAt=kubernetes_time())
        set_phase_labels(raw, ERROR)
        raw.setdefault(PRIVATE, {})["runner"] = raw.get(PRIVATE, {}).get("runner") or "reaped"
        return True

    return mark
