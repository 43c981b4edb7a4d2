"""From an Argo Workflow's ``status`` to each job's state and description. Pure.

Used for both executors: the local executor writes the same ``status.phase`` and
``status.nodes`` shape Argo does. A task is found by its node's ``displayName`` under the DAG
(a ``Retry`` node when the job retries, a ``Pod`` node otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.clock import parse_time
from service.dag import dependencies_of
from service.jobs.durations import format_duration

WORKFLOW_FINAL = frozenset({"Succeeded", "Failed", "Error"})
DEADLINE_HINTS = (
    "longer than the specified deadline",
    "deadline exceeded",
    "activeDeadlineSeconds",
)
STOP_HINTS = ("stopped with strategy", "workflow shutdown", "terminated")
# what Argo says when a Workflow passes artifacts (or caches) and no artifact repository is set
NO_ARTIFACT_REPOSITORY = ("artifact repository", "archive location", "artifactrepository")
MSG_NO_ARTIFACT_REPOSITORY = (
    "error: this job passes artifacts or caches, and Argo has no artifact repository: configure "
    "one in the Argo controller or name one with forgeflow's artifact_repository setting"
)
ANNOTATION_IF = "forgeflow.dev/if"


@dataclass(frozen=True)
class JobUpdate:
    state: str  # pending | running | success | failure | error
    description: str
    started_at: datetime | None = None
    finished_at: datetime | None = None


def _duration(node: dict[str, Any]) -> str:
    start, end = parse_time(node.get("startedAt")), parse_time(node.get("finishedAt"))
    if start and end:
        return format_duration(max((end - start).total_seconds(), 0))
    return ""


def task_nodes(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The node of each DAG task, keyed by its path: ``lint``, or ``tests.3-12`` for the task
    ``3-12`` of the nested DAG that the task ``tests`` runs (a matrix job's cell). A task's node
    is the outermost one: a Retry node over its Pod attempts, a DAG node over its children."""
    status = workflow.get("status") or {}
    nodes: dict[str, dict[str, Any]] = status.get("nodes") or {}
    name = (workflow.get("metadata") or {}).get("name", "")
    found: dict[str, dict[str, Any]] = {}
    for node in nodes.values():
        if not isinstance(node, dict):
            continue
        node_name = str(node.get("name") or "")
        display = str(node.get("displayName") or "")
        if name and node_name.startswith(f"{name}."):
            # "<wf>.<task>" is the task itself; "<wf>.<task>(0)" a retry attempt below it
            path = node_name[len(name) + 1 :]
        elif (
            not name
            and display
            and "(" not in display
            and node.get("type") not in ("DAG", "Steps", "StepGroup")
        ):
            path = display
        else:
            continue
        current = found.get(path)
        if current is None or (current.get("type") == "Pod" and node.get("type") == "Retry"):
            found[path] = node
    return found


def _failure_text(node: dict[str, Any], nodes: dict[str, dict[str, Any]] | None = None) -> str:
    """Why a node failed; for a Retry node, its last attempt says it best."""
    if node.get("type") == "Retry" and nodes:
        prefix = f"{node.get('name')}("
        attempts = [
            nodes[c]
            for c in node.get("children") or []
            if c in nodes and str(nodes[c].get("name")).startswith(prefix)
        ]
        if attempts:
            node = attempts[-1]
    message = str(node.get("message") or "").strip()
    exit_code = str((node.get("outputs") or {}).get("exitCode") or "")
    if not message and exit_code:
        message = f"exit code {exit_code}"
    return message


def job_update(
    task: str,
    node: dict[str, Any] | None,
    workflow: dict[str, Any],
    states: dict[str, JobUpdate],
    stop_reason: str = "",
) -> JobUpdate:
    """The state of one task, given its node (or None) and the states found so far."""
    status = workflow.get("status") or {}
    wf_phase = str(status.get("phase") or "")
    wf_message = str(status.get("message") or "")
    if node is None:
        if wf_phase in WORKFLOW_FINAL:
            reason = stop_reason or (f"did not run: {wf_message}" if wf_message else "did not run")
            return JobUpdate("error", reason, finished_at=parse_time(status.get("finishedAt")))
        return JobUpdate("pending", "queued")
    phase = str(node.get("phase") or "Pending")
    started, finished = parse_time(node.get("startedAt")), parse_time(node.get("finishedAt"))
    took = _duration(node)
    if phase == "Pending":
        if wf_phase in WORKFLOW_FINAL:
            return JobUpdate("error", stop_reason or "did not run", started, finished)
        return JobUpdate("pending", "queued", started)
    if phase == "Running":
        if wf_phase in WORKFLOW_FINAL:
            return JobUpdate(
                "error",
                stop_reason or f"stopped: {wf_message or 'workflow ended'}",
                started,
                finished,
            )
        return JobUpdate("running", "running", started)
    if phase == "Succeeded":
        return JobUpdate("success", f"passed in {took}" if took else "passed", started, finished)
    if phase in ("Omitted", "Skipped"):
        return _skipped(task, workflow, states, stop_reason, started, finished)
    text = _failure_text(node, (workflow.get("status") or {}).get("nodes"))
    lowered = text.lower()
    if any(h in lowered for h in NO_ARTIFACT_REPOSITORY):
        return JobUpdate("error", MSG_NO_ARTIFACT_REPOSITORY, started, finished)
    if stop_reason and (any(h in lowered for h in STOP_HINTS) or not text):
        return JobUpdate("error", stop_reason, started, finished)
    if any(h.lower() in lowered for h in DEADLINE_HINTS):
        return JobUpdate("failure", f"timed out after {took}" if took else "timed out", started, finished)
    if phase == "Failed":
        suffix = f" ({took})" if took else ""
        return JobUpdate(
            "failure", f"failed: {text}{suffix}" if text else f"failed{suffix}", started, finished
        )
    return JobUpdate("error", f"error: {text}" if text else "error", started, finished)


def _condition(workflow: dict[str, Any], task: str) -> str:
    """The ``if:`` (with status functions) a task's template carries, if any."""
    for template in (workflow.get("spec") or {}).get("templates") or []:
        meta = template.get("metadata") or {} if isinstance(template, dict) else {}
        labels = meta.get("labels") or {}
        if labels.get("forgeflow.dev/task") in (task, f"{task}."):
            return str((meta.get("annotations") or {}).get(ANNOTATION_IF) or "")
        if str(labels.get("forgeflow.dev/task") or "").startswith(f"{task}."):
            return str((meta.get("annotations") or {}).get(ANNOTATION_IF) or "")
    return ""


def _skipped(
    task: str,
    workflow: dict[str, Any],
    states: dict[str, JobUpdate],
    stop_reason: str,
    started: datetime | None,
    finished: datetime | None,
) -> JobUpdate:
    """Why a task did not run: a need failed (error), a need did not run (its state), or its
    ``if:`` did not ask for its needs' outcome (success, "skipped: if: ... is false")."""
    if stop_reason:
        return JobUpdate("error", stop_reason, started, finished)
    deps = [d for d in dependencies_of(workflow).get(task, []) if states.get(d)]
    failed = [d for d in deps if states[d].state != "success"]
    ran = [d for d in failed if not states[d].description.startswith("skipped")]
    if ran:
        return JobUpdate("error", f"skipped: {', '.join(ran)} failed", started, finished)
    if failed:  # its needs were skipped themselves (a failure further up)
        return JobUpdate("error", f"skipped: {', '.join(failed)} did not run", started, finished)
    not_run = [d for d in deps if states[d].description.startswith("skipped")]
    if not_run:
        return JobUpdate("success", f"skipped: {', '.join(not_run)} did not run", started, finished)
    condition = _condition(workflow, task)
    if condition:
        return JobUpdate("success", f"skipped: if: {condition} is false", started, finished)
    return JobUpdate("error", "skipped", started, finished)


def job_updates(workflow: dict[str, Any], tasks: list[str], stop_reason: str = "") -> dict[str, JobUpdate]:
    """The state of every task in ``tasks``, dependencies first so skips can name them."""
    nodes = task_nodes(workflow)
    deps = dependencies_of(workflow)
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(task: str, trail: frozenset[str] = frozenset()) -> None:
        if task in seen or task in trail:
            return
        parent = task.rsplit(".", 1)[0] if "." in task else ""
        for dep in [*deps.get(task, []), *([parent] if parent else [])]:
            visit(dep, trail | {task})
        seen.add(task)
        ordered.append(task)

    for task in tasks:
        visit(task)
    states: dict[str, JobUpdate] = {}
    for task in ordered:
        node = nodes.get(task)
        parent = task.rsplit(".", 1)[0] if "." in task else ""
        if node is None and parent and parent in states:
            states[task] = _unstarted_child(parent, nodes.get(parent), states[parent], stop_reason)
            if states[task].state != "pending":
                continue
        states[task] = job_update(task, node, workflow, states, stop_reason)
    return {task: states[task] for task in tasks}


def _unstarted_child(
    parent: str, node: dict[str, Any] | None, update: JobUpdate, stop_reason: str
) -> JobUpdate:
    """A task of a nested DAG that has no node: skipped with its parent, or stopped by the
    parent's failFast once a sibling failed (Argo starts no new task then)."""
    phase = str((node or {}).get("phase") or "")
    if phase in ("Omitted", "Skipped"):
        return update
    if phase in ("Failed", "Error"):
        reason = stop_reason or f"skipped: another cell of {parent} failed (fail-fast)"
        return JobUpdate("error", reason, finished_at=update.finished_at)
    return JobUpdate("pending", "queued")
