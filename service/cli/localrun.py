"""``forgeflow exec``: run an event's jobs here, the way the cluster would, and say how it goes.

Each job runs in its ``image:`` through podman or docker when one answers (``info`` succeeds:
a docker client without its daemon is no engine), with the same mounts and environment as its
pod. Without one, exec refuses and names ``--on-host``, which runs the steps on this machine
with its own tools and says so. While it runs: each job's log line by line, prefixed with the
job's task; a progress line when a job starts a step or ends (jobs done / total, what runs);
at the end a summary table. The exit code is 0 only when every job succeeded.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from service.cli.checkout import commit_of, git
from service.cli.preview import Preview, RenderError
from service.executors.local.engine import ENGINES, available_engine
from service.executors.local.pod_context import LineSink
from service.jobs.plan import TaskPlan
from service.runs.node_states import JobUpdate, job_updates
from service.runs.recipe import workflow
from service.settings import Settings

STEP_MARK = "==> "
DONE = ("success", "failure", "error")
POLL_SECONDS = 0.25


def engine_for(settings: Settings, preferred: str | None, on_host: bool, images: list[str]) -> str | None:
    """The engine to run the jobs' images with (None: on this host). Raises RenderError when
    none answers and ``--on-host`` was not given."""
    if on_host:
        return None
    found = available_engine(preferred or settings.local_container_runtime or None)
    if found:
        return found
    installed = [e for e in ENGINES if shutil.which(e)]
    why = (
        "; ".join(f"{e} is installed but `{e} info` fails (is its service running?)" for e in installed)
        or "neither podman nor docker is installed"
    )
    shown = ", ".join(images[:4]) + (", ..." if len(images) > 4 else "")
    raise RenderError(
        f"no container engine answers here: {why}. The jobs run in their images"
        f"{f' ({shown})' if shown else ''}; start "
        "podman or docker, or run the steps directly on this machine with --on-host (its own "
        "tools, not the images)"
    )


class ProgressSink(LineSink):
    """Each log line as ``[task] text``; a progress line when a job starts a step or ends."""

    def __init__(self, stream: TextIO, tasks: list[TaskPlan], where: str) -> None:
        super().__init__(stream)
        self.tasks = tasks
        self.where = where
        self.steps: dict[str, str] = {}  # task -> the step it runs
        self.states: dict[str, JobUpdate] = {}
        self.said = ""
        self.lock = threading.Lock()

    def line(self, task: str, text: str) -> None:
        with self.lock:
            self.stream.write(f"[{task}] {text}\n")
            owner = self._owner(task)
            if text.startswith(STEP_MARK) and owner:
                self.steps[owner] = text[len(STEP_MARK) :]
                self._progress()
            self.stream.flush()

    def _owner(self, task: str) -> str:
        """The job's task a log prefix belongs to (``smoke.one`` of an Argo job: ``smoke``)."""
        names = [t.task for t in self.tasks if task == t.task or task.startswith(f"{t.task}.")]
        return max(names, key=len, default="")

    def update(self, manifest: dict[str, Any]) -> None:
        states = job_updates(manifest, [t.task for t in self.tasks])
        with self.lock:
            self.states = states
            self._progress()
            self.stream.flush()

    def _progress(self) -> None:
        done = [t for t in self.tasks if self.states.get(t.task, JobUpdate("pending", "")).state in DONE]
        skipped = [t for t in done if self.states[t.task].description.startswith("skipped")]
        failed = [t for t in done if self.states[t.task].state != "success" and t not in skipped]
        running = [
            f"{label(t)} [{self.steps[t.task]}]" if t.task in self.steps else label(t)
            for t in self.tasks
            if t not in done
            and (t.task in self.steps or self.states.get(t.task, JobUpdate("", "")).state == "running")
        ]
        text = f"{len(done)}/{len(self.tasks)} jobs done"
        if failed:
            text += f", {len(failed)} failed"
        if skipped:
            text += f", {len(skipped)} skipped"
        if running:
            text += f"; running{self.where}: {', '.join(running)}"
        if text != self.said:
            self.said = text
            self.stream.write(f"-- {text}\n")


def label(task: TaskPlan) -> str:
    """``test (python=3.12)``: the job as its commit status names it."""
    return task.context.removeprefix("forgeflow/")


def summary(tasks: list[TaskPlan], states: dict[str, JobUpdate]) -> list[str]:
    """A table: job, result, time, and what happened when it did not succeed."""
    rows = []
    for task in tasks:
        state = states.get(task.task, JobUpdate("error", "did not run"))
        took = ""
        if state.started_at and state.finished_at:
            took = f"{max((state.finished_at - state.started_at).total_seconds(), 0):.0f}s"
        why = "" if state.state == "success" else state.description
        result = "skipped" if state.description.startswith("skipped") else state.state
        rows.append((label(task), result, took, why))
    width = max([len("job"), *(len(r[0]) for r in rows)])
    lines = [f"{'job':<{width}}  {'result':<8}  {'time':>5}  ", "-" * (width + 19)]
    lines += [f"{r[0]:<{width}}  {r[1]:<8}  {r[2]:>5}  {r[3]}".rstrip() for r in rows]
    bad = sum(1 for r in rows if r[1] != "success")
    lines.append(
        f"{len(rows) - bad} of {len(rows)} jobs succeeded" if bad else f"all {len(rows)} jobs succeeded"
    )
    return lines


def _follow(executor: Any, namespace: str, name: str, sink: ProgressSink, stop: threading.Event) -> None:
    while not stop.wait(POLL_SECONDS):
        current = executor.get(_ref(namespace, name))
        if current is not None:
            sink.update(current)


def _ref(namespace: str, name: str) -> Any:
    from service.executors.base import WorkflowRef

    return WorkflowRef(namespace, name)


def _revision(repo: Path, sha: str, out: TextIO) -> str:
    """The event's commit if the checkout has it, else its HEAD (said)."""
    found = commit_of(repo, sha)
    if not found:
        found = commit_of(repo, "HEAD")
        if not found:
            raise RenderError(f"{repo} is not a git checkout with commits")
        print(
            f"note: {repo} does not have {sha[:12] or 'the commit'}; running its HEAD {found[:12]}", file=out
        )
    if git(repo, "status", "--porcelain", "--untracked-files=no").stdout.strip():
        print(
            f"note: uncommitted changes are not run: the jobs check out {found[:12]} "
            "(the job file itself is read from the working tree)",
            file=out,
        )
    return found


def execute(
    found: Preview,
    repo: Path,
    settings: Settings,
    out: TextIO,
    *,
    on_host: bool = False,
    engine: str | None = None,
) -> int:
    """Run the previewed event's jobs here; the exit code (0: every job succeeded)."""
    from service.executors.factory import local_config
    from service.executors.local.executor import LocalExecutor

    for line in found.lines:
        print(line, file=out)
    plan = found.plan
    if plan is None or not plan.tasks:
        raise RenderError("no job would run for this event")
    images = sorted({t.image for t in plan.tasks if t.image})
    runtime = engine_for(settings, engine, on_host, images)
    if not found.trust.approved:
        print(
            f"note: on the server this waits for {settings.comment_prefix} ok-to-test; exec runs it now",
            file=out,
        )
    if runtime is None:
        print(
            f"running on this host with its own tools: the jobs' images ({', '.join(images) or 'none'}) "
            "are not used (--on-host)",
            file=out,
        )
    else:
        print(f"running each job in its image with {runtime}", file=out)
    revision = _revision(repo, found.event.sha, out)
    bound = replace(plan, clone_url=str(repo.resolve()), sha=revision)
    manifest = workflow(bound, 0, settings.public_url, name=f"forgeflow-exec-{revision[:7]}")
    executor = LocalExecutor(replace(local_config(settings, detach=False), container_runtime=runtime))
    tasks = list(plan.tasks)
    sink = ProgressSink(out, tasks, "" if runtime else " on this host")
    meta = manifest["metadata"]
    stop = threading.Event()
    follower = threading.Thread(
        target=_follow,
        args=(executor, meta.get("namespace") or settings.namespace, meta["name"], sink, stop),
        daemon=True,
    )
    follower.start()
    try:
        result = executor.run_foreground(manifest, out, sink=sink)
    finally:
        stop.set()
        follower.join(timeout=5)
    status = result.get("status") or {}
    phase = str(status.get("phase") or "Unknown")
    states = job_updates(result, [t.task for t in tasks])
    sink.update(result)
    if phase != "Succeeded" and status.get("message"):
        print(f"{phase.lower()}: {status['message']}", file=out)  # why, not only that it failed
    for line in summary(tasks, states):
        print(line, file=out)
    print(f"workflow {phase}", file=out)
    return 0 if phase == "Succeeded" else 1
