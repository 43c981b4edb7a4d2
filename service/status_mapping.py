"""From an Argo Workflow's ``status`` to each job's state and description. Pure.

Used for both executors: the local executor writes the same ``status.phase`` and
``status.nodes`` shape Argo does. A task is found by its node's ``displayName`` under the DAG
(a ``Retry`` node when the job retries, a ``Pod`` node otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.jobs.durations import format_duration

WORKFLOW_FINAL = frozenset({"Succeeded", "Failed", "Error"})
DEADLINE_HINTS = (
    "longer than the specified deadline",
    "deadline exceeded",
    "activeDeadlineSeconds",
)
STOP_HINTS = ("stopped with strategy", "workflow shutdown", "terminated")


@dataclass(frozen=True)
class JobUpdate:
    state: str  # pending | running | success | failure | error
    description: str
    started_at: datetime | None = None
    finished_at: datetime | None = None


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None)


def _duration(node: dict[str, Any]) -> str:
    start, end = parse_time(node.get("startedAt")), parse_time(node.get("finishedAt"))
    if start and end:
        return format_duration(max((end - start).total_seconds(), 0))
    return ""


def task_nodes(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The node of each DAG task, keyed by task name (the outermost node wins: Retry over Pod)."""
    status = workflow.get("status") or {}
    nodes: dict[str, dict[str, Any]] = status.get("nodes") or {}
    name = (workflow.get("metadata") or {}).get("name", "")
    found: dict[str, dict[str, Any]] = {}
    for node in nodes.values():
        if not isinstance(node, dict) or node.get("type") in ("DAG", "Steps", "StepGroup"):
            continue
        node_name = str(node.get("name") or "")
        display = str(node.get("displayName") or "")
        # "<wf>.<task>" is the task itself; "<wf>.<task>(0)" a retry attempt below it
        if node_name == f"{name}.{display}" or (not name and display and "(" not in display):
            current = found.get(display)
            if current is None or (current.get("type") == "Pod" and node.get("type") == "Retry"):
                found[display] = node
    return found


def dependencies_of(workflow: dict[str, Any]) -> dict[str, list[str]]:
    """Each DAG task's dependencies, read from the Workflow's own spec."""
    spec = workflow.get("spec") or {}
    entry = spec.get("entrypoint")
    for template in spec.get("templates") or []:
        if template.get("name") == entry and isinstance(template.get("dag"), dict):
            result: dict[str, list[str]] = {}
            for task in template["dag"].get("tasks") or []:
                deps = list(task.get("dependencies") or [])
                depends = task.get("depends")
                if isinstance(depends, str):
                    deps += [
                        part.strip().split(".")[0]
                        for part in depends.replace("(", " ")
                        .replace(")", " ")
                        .replace("||", "&&")
                        .split("&&")
                        if part.strip()
                    ]
                result[str(task.get("name"))] = deps
            return result
    return {}


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
        failed = [
            d
            for d in dependencies_of(workflow).get(task, [])
            if states.get(d) and states[d].state != "success"
        ]
        if stop_reason:
            return JobUpdate("error", stop_reason, started, finished)
        if failed:
            return JobUpdate("error", f"skipped: {', '.join(failed)} failed", started, finished)
        return JobUpdate("error", "skipped", started, finished)
    text = _failure_text(node, (workflow.get("status") or {}).get("nodes"))
    lowered = text.lower()
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


def job_updates(workflow: dict[str, Any], tasks: list[str], stop_reason: str = "") -> dict[str, JobUpdate]:
    """The state of every task in ``tasks``, dependencies first so skips can name them."""
    nodes = task_nodes(workflow)
    deps = dependencies_of(workflow)
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(task: str, trail: frozenset[str] = frozenset()) -> None:
        if task in seen or task in trail:
            return
        for dep in deps.get(task, []):
            visit(dep, trail | {task})
        seen.add(task)
        ordered.append(task)

    for task in tasks:
        visit(task)
    states: dict[str, JobUpdate] = {}
    for task in ordered:
        states[task] = job_update(task, nodes.get(task), workflow, states, stop_reason)
    return {task: states[task] for task in tasks}


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
