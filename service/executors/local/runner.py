"""The local "workflow controller": runs one stored Workflow to its end on this machine.

``python -m service.executors.local.runner --data-dir D --namespace N --name W`` is what
``LocalExecutor.submit`` starts, detached. The runner claims the Workflow (only a ``Pending``
one, only once), plans it (:mod:`local_manifest`), then loops: it starts ready DAG tasks (each
attempt in a thread, see :mod:`local_pod`), applies Argo's rules as they finish (retries,
``Omitted`` dependents, failFast), watches ``spec.shutdown`` and the deadlines, and writes
``status`` back to the store after every node change.
"""

from __future__ import annotations

import argparse
import copy
import queue
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from service.executors.base import Manifest
from service.executors.local.git import GitCache
from service.executors.local.late import resolve_late
from service.executors.local.manifest import UnsupportedManifest, build_plan
from service.executors.local.nodes import (
    ERROR,
    FAILED,
    MSG_MAX_DURATION,
    MSG_NO_MORE_RETRIES,
    MSG_WORKFLOW_DEADLINE,
    PENDING,
    RUNNING,
    SUCCEEDED,
    set_phase,
    stopped_message,
)
from service.executors.local.pod import run_pod
from service.executors.local.pod_context import LineSink, PodContext, PodResult
from service.executors.local.repository import ArtifactRepository
from service.executors.local.state import Attempt, RunState, TaskState, exit_outputs
from service.executors.local.status import StatusWriter
from service.executors.local.store import LocalStore

SHUTDOWN_CHECK_SECONDS = 0.25
RUN_SECRETS = "secrets"  # <workflow dir>/secrets/<name>/<key>: the run's own Secrets
Event = tuple[str, str, str, PodResult | None]


class Runner:
    """Runs one Workflow; create it, call :meth:`run`, get the final object back."""

    def __init__(
        self,
        store: LocalStore,
        namespace: str,
        name: str,
        *,
        max_parallel: int = 4,
        runtime: str | None = None,
        sink: LineSink | None = None,
        poll: float = 0.1,
        cache_max_bytes: int = 0,
    ) -> None:
        self.store, self.namespace, self.name = store, namespace, name
        self.repository = ArtifactRepository(store.data_dir, cache_max_bytes)
        self.max_parallel, self.runtime, self.sink, self.poll = max_parallel, runtime, sink, poll
        self.dir = store.workflow_dir(namespace, name)
        self.git = GitCache(self.dir / "git")
        self.events: queue.Queue[Event] = queue.Queue()
        self.external_stop = threading.Event()
        self.writer = StatusWriter(store, namespace, name)
        self.state: RunState | None = None
        self.stop_reason: str | None = None
        self.deadline: float | None = None
        self._next_shutdown_check = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    def run(self) -> Manifest | None:
        """Run the Workflow if it is ``Pending`` and unclaimed; return it as it ends."""
        workflow = self.writer.claim()
        if workflow is None:
            return self.store.get(self.namespace, self.name)
        try:
            plan = build_plan(workflow)
        except UnsupportedManifest as exc:
            return self._finish_without_nodes(ERROR, str(exc))
        except Exception as exc:  # a malformed manifest must end in Error, not crash the runner
            return self._finish_without_nodes(ERROR, f"invalid Workflow manifest: {exc!r}")
        self.state = RunState(self.name, plan)
        self.max_parallel = min(n for n in (self.max_parallel, plan.parallelism) if n)
        if plan.deadline is not None:
            self.deadline = time.monotonic() + plan.deadline
        try:
            self._save()
            self._loop()
        except KeyboardInterrupt:
            self._stop("Terminate")
            self._wait_idle()
        except Exception as exc:  # a bug here must end the run, not leave it Running
            return self._crashed(exc)
        if self.stop_reason == "deleted":
            shutil.rmtree(self.dir, ignore_errors=True)
            return None
        return self._finish()

    def _loop(self) -> None:
        while True:
            self._check_shutdown()
            self._check_deadline()
            if self.stop_reason == "deleted":
                self._wait_idle()
                return
            self._start_due_retries()
            self._schedule()
            if not self._run_state().running_count():
                return
            self._drain()

    def _run_state(self) -> RunState:
        assert self.state is not None
        return self.state

    # -- events from attempt threads ------------------------------------------------------------
    def _drain(self, timeout: float | None = None) -> None:
        try:
            event = self.events.get(timeout=self.poll if timeout is None else timeout)
        except queue.Empty:
            return
        while True:
            self._handle(*event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return

    def _handle(self, kind: str, task: str, node_id: str, result: PodResult | None) -> None:
        state = self._run_state()
        node = state.nodes[node_id]
        if kind == "running":
            if node["phase"] == PENDING:
                set_phase(node, RUNNING)
                self._save()
            return
        assert result is not None
        task_state = state.tasks[task]
        task_state.attempt = None
        phase, message = result.phase, result.message
        if result.cancelled:
            phase, message = FAILED, self._stop_message()
        set_phase(node, phase, message)
        if (outputs := exit_outputs(result.exit_code)) is not None:
            node["outputs"] = outputs
            if result.parameters:
                outputs["parameters"] = [{"name": k, "value": v} for k, v in result.parameters]
        if task_state.task.template.retry is not None:
            self._after_retry_attempt(task_state, node)
        else:
            task_state.done = True
        self._save()

    def _after_retry_attempt(self, task_state: TaskState, attempt_node: dict[str, Any]) -> None:
        retry = task_state.task.template.retry
        assert retry is not None and task_state.node_id is not None
        retry_node = self._run_state().nodes[task_state.node_id]
        phase = attempt_node["phase"]
        if "outputs" in attempt_node:
            retry_node["outputs"] = copy.deepcopy(attempt_node["outputs"])
        if phase == SUCCEEDED:
            self._end_task(task_state, phase, None)
            return
        if not retry.retries(phase) or self.stop_reason:
            self._end_task(task_state, phase, self._stop_message() or attempt_node.get("message"))
            return
        if retry.limit is not None and task_state.attempts > retry.limit:
            self._end_task(task_state, phase, MSG_NO_MORE_RETRIES)
            return
        elapsed = time.monotonic() - (task_state.first_start or time.monotonic())
        if retry.max_duration is not None and elapsed >= retry.max_duration:
            self._end_task(task_state, phase, MSG_MAX_DURATION)
            return
        task_state.retry_at = time.monotonic() + retry.delay(task_state.attempts)

    def _end_task(self, task_state: TaskState, phase: str, message: str | None) -> None:
        node = self._run_state().node(task_state)
        if node is not None:
            set_phase(node, phase, message)
        task_state.done, task_state.retry_at = True, None

    # -- starting work ---------------------------------------------------------------------------
    def _schedule(self) -> None:
        if self.stop_reason:
            return
        if self._run_state().schedule(self.max_parallel, self._start_attempt):
            self._save()

    def _start_due_retries(self) -> None:
        for task_state in self._run_state().tasks.values():
            if task_state.retry_at is not None and time.monotonic() >= task_state.retry_at:
                task_state.retry_at = None
                self._start_attempt(task_state)
                self._save()

    def _start_attempt(self, task_state: TaskState) -> None:
        state = self._run_state()
        attempt = state.new_attempt(task_state)
        if task_state.first_start is None:
            task_state.first_start = time.monotonic()
        name = task_state.task.name
        header = None
        if attempt.number > 0:
            header = f"----- forgeflow: retry {attempt.number} ({name}({attempt.number})) -----"
        try:
            template = resolve_late(task_state.task.template, state)
        except UnsupportedManifest as exc:
            self.events.put(("done", name, attempt.node_id, PodResult(ERROR, str(exc))))
            return
        ctx = PodContext(
            task=name,
            node_id=attempt.node_id,
            template=template,
            pod_dir=self.dir / "pods" / f"{name}-{attempt.number}",
            log_path=self.store.log_path(self.namespace, self.name, name),
            data_dir=self.store.data_dir,
            git=self.git,
            runtime=self.runtime,
            header=header,
            sink=self.sink,
            artifacts_dir=self.dir / "artifacts" / name,
            artifacts_root=self.dir / "artifacts",
            repository=self.repository,
            own_secrets=self.dir / RUN_SECRETS,
        )
        thread = threading.Thread(
            target=self._attempt_thread, args=(ctx, attempt), name=f"pod-{name}", daemon=True
        )
        thread.start()

    def _attempt_thread(self, ctx: PodContext, attempt: Attempt) -> None:
        def running() -> None:
            self.events.put(("running", ctx.task, attempt.node_id, None))

        try:
            result = run_pod(ctx, attempt.cancel, running)
        except Exception as exc:  # never leave the main loop waiting for this attempt
            result = PodResult(ERROR, f"local executor error: {exc!r}")
        self.events.put(("done", ctx.task, attempt.node_id, result))

    # -- stopping --------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the run to stop as ``spec.shutdown: Terminate`` would (signal-safe)."""
        self.external_stop.set()

    def _check_shutdown(self) -> None:
        if self.external_stop.is_set():
            self._stop("Terminate")
        if time.monotonic() < self._next_shutdown_check:
            return
        self._next_shutdown_check = time.monotonic() + SHUTDOWN_CHECK_SECONDS
        raw = self.store.get_raw(self.namespace, self.name)
        if raw is None:
            self._stop("deleted")
            return
        shutdown = (raw.get("spec") or {}).get("shutdown")
        if shutdown in ("Terminate", "Stop"):
            self._stop(shutdown)

    def _check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self._stop("deadline")

    def _stop(self, reason: str) -> None:
        """Stop starting work; cancel running attempts unless the strategy is ``Stop``."""
        if self.stop_reason and self.stop_reason != "Stop":
            return
        self.stop_reason = reason
        state = self._run_state() if self.state else None
        for task_state in state.tasks.values() if state else ():
            if task_state.retry_at is not None:
                self._end_task(task_state, FAILED, self._stop_message())
            if task_state.attempt is not None and reason != "Stop":
                task_state.attempt.cancel.set()

    def _stop_message(self) -> str | None:
        if self.stop_reason in ("Terminate", "Stop"):
            return stopped_message(self.stop_reason)
        if self.stop_reason == "deadline":
            return MSG_WORKFLOW_DEADLINE
        return None

    def _wait_idle(self) -> None:
        state = self.state
        while state is not None and state.running_count():
            self._drain(timeout=0.5)

    # -- finishing -------------------------------------------------------------------------------
    def _finish(self) -> Manifest | None:
        state = self._run_state()
        phase, message = state.finish(bool(self.stop_reason), self._stop_message())
        shutil.rmtree(self.dir / RUN_SECRETS, ignore_errors=True)  # the run's own Secrets end with it
        return self.writer.finish(phase, message, state.nodes)

    def _finish_without_nodes(self, phase: str, message: str) -> Manifest | None:
        shutil.rmtree(self.dir / RUN_SECRETS, ignore_errors=True)
        return self.writer.finish(phase, message, {})

    def _crashed(self, exc: Exception) -> Manifest | None:
        """End the run in ``Error`` after a bug in the runner, killing what still runs."""
        message = f"local runner failed: {exc!r}"
        try:
            self._stop("Terminate")
            self._wait_idle()
        finally:
            for node in self._run_state().unfinished_nodes():
                set_phase(node, ERROR, message)
        return self.writer.finish(ERROR, message, self._run_state().nodes)

    def _save(self) -> Manifest | None:
        """Write the nodes to the store; a deleted Workflow stops the run."""
        saved = self.writer.save(self.state.nodes if self.state else None)
        if saved is None and self.stop_reason != "deleted" and self.state is not None:
            self._stop("deleted")
        return saved


def main(argv: list[str] | None = None) -> int:
    """Entry point of the detached runner process."""
    parser = argparse.ArgumentParser(prog="python -m service.executors.local.runner")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--max-parallel", type=int, default=4)
    parser.add_argument("--container-runtime", default=None)
    parser.add_argument("--cache-max-bytes", type=int, default=0)
    options = parser.parse_args(argv)
    runner = Runner(
        LocalStore(options.data_dir),
        options.namespace,
        options.name,
        max_parallel=options.max_parallel,
        runtime=options.container_runtime,
        cache_max_bytes=options.cache_max_bytes,
    )
    signal.signal(signal.SIGTERM, lambda *_: runner.request_stop())
    runner.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
