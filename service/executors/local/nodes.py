"""Argo-shaped ``status.nodes`` for the local executor: ids, node records, phases, progress.

Everything here is pure. Node ids follow Argo's ``Workflow.NodeID``: the workflow's own node is
named and identified by the workflow name; any other node ``N`` gets the id
``<workflow>-<fnv32a(N)>`` in decimal, so ids match what Argo would produce for the same run.
"""

from __future__ import annotations

from typing import Any

from service.argo.names import node_id
from service.clock import kubernetes_time

Node = dict[str, Any]

# Node phases (Argo's NodePhase) and node types (Argo's NodeType) the local executor uses.
PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
ERROR = "Error"
OMITTED = "Omitted"
SKIPPED = "Skipped"

FINAL_PHASES = frozenset({SUCCEEDED, FAILED, ERROR, OMITTED, SKIPPED})
FINAL_WORKFLOW_PHASES = frozenset({SUCCEEDED, FAILED, ERROR})

TYPE_DAG = "DAG"
TYPE_POD = "Pod"
TYPE_RETRY = "Retry"
TYPE_SKIPPED = "Skipped"

HOST_NODE_NAME = "local"

# Messages worded as Argo words them, so a reader of either executor sees the same text.
MSG_DEADLINE = "Pod was active on the node longer than the specified deadline"
MSG_WORKFLOW_DEADLINE = "Step exceeded its deadline"
MSG_OMITTED = "omitted: depends condition not met"
MSG_NO_MORE_RETRIES = "No more retries left"
MSG_MAX_DURATION = "Max duration limit exceeded"
MSG_FAIL_FAST = "template has failed or errored children and failFast enabled"


def stopped_message(strategy: str) -> str:
    """Argo's node and workflow message after ``spec.shutdown`` took effect."""
    return f"Stopped with strategy '{strategy}'"


def exit_code_message(code: int) -> str:
    """Argo's message for a main container that exited non-zero."""
    return f"Error (exit code {code})"


def child_failed_message(node_id: str) -> str:
    """Argo's message for a boundary node whose child failed."""
    return f"child '{node_id}' failed"


def new_node(
    workflow_name: str,
    name: str,
    *,
    display_name: str,
    node_type: str,
    template_name: str,
    phase: str,
    boundary_id: str | None = None,
    message: str | None = None,
) -> Node:
    """A fresh node record, started now (and finished now when created in a final phase)."""
    node: Node = {
        "id": node_id(workflow_name, name),
        "name": name,
        "displayName": display_name,
        "type": node_type,
        "templateName": template_name,
        "phase": phase,
        "startedAt": kubernetes_time(),
    }
    if boundary_id:
        node["boundaryID"] = boundary_id
    if message:
        node["message"] = message
    if node_type == TYPE_POD:
        node["hostNodeName"] = HOST_NODE_NAME
    if phase in FINAL_PHASES:
        node["finishedAt"] = node["startedAt"]
    return node


def set_phase(node: Node, phase: str, message: str | None = None) -> None:
    """Move ``node`` to ``phase`` (stamping ``finishedAt`` once final) and set its message."""
    node["phase"] = phase
    if message:
        node["message"] = message
    if phase in FINAL_PHASES and not node.get("finishedAt"):
        node["finishedAt"] = kubernetes_time()


def add_child(node: Node, child_id: str) -> None:
    """Append ``child_id`` to ``node.children`` once."""
    children = node.setdefault("children", [])
    if child_id not in children:
        children.append(child_id)


def outbound_ids(nodes: dict[str, Node], nid: str) -> list[str]:
    """The node ids that dependents hang from, as Argo's ``getOutboundNodes`` computes them."""
    node = nodes[nid]
    if node["type"] == TYPE_RETRY:
        children = node.get("children") or []
        return [children[-1]] if children else [nid]
    if node["type"] == TYPE_DAG and node.get("outboundNodes"):
        return list(node["outboundNodes"])
    return [nid]


def pod_counts(nodes: dict[str, Node], nid: str) -> tuple[int, int]:
    """(succeeded, total) Pod nodes at or below ``nid`` (Argo's ``progress``)."""
    node = nodes[nid]
    if node["type"] == TYPE_POD:
        return (1 if node["phase"] == SUCCEEDED else 0), 1
    if node["type"] == TYPE_RETRY:
        done = total = 0
        for child in node.get("children") or []:
            d, t = pod_counts(nodes, child)
            done, total = done + d, total + t
        return done, total
    return 0, 0


def workflow_progress(nodes: dict[str, Node]) -> str:
    """The workflow's ``progress``: succeeded Pod nodes over all Pod nodes, e.g. ``"1/3"``."""
    pods = [n for n in nodes.values() if n["type"] == TYPE_POD]
    done = sum(1 for n in pods if n["phase"] == SUCCEEDED)
    return f"{done}/{len(pods)}"


def refresh_progress(nodes: dict[str, Node]) -> str:
    """Set ``progress`` on every Pod and Retry node; return the workflow's progress."""
    for nid, node in nodes.items():
        if node["type"] in (TYPE_POD, TYPE_RETRY):
            done, total = pod_counts(nodes, nid)
            node["progress"] = f"{done}/{total}"
    overall = workflow_progress(nodes)
    for node in nodes.values():
        if node["type"] == TYPE_DAG:
            node["progress"] = overall
    return overall
