"""The runner's model of one workflow run: tasks, their nodes, and Argo's DAG rules.

Pure bookkeeping over ``status.nodes`` (no processes, no files): which task may start, which
must be ``Omitted``, how a Retry node and its attempts are wired, and the DAG's final phase.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from service.executors.local_manifest import Plan, Task
from service.executors.local_nodes import (
    ERROR,
    FAILED,
    FINAL_PHASES,
    MSG_FAIL_FAST,
    MSG_OMITTED,
    OMITTED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TYPE_DAG,
    TYPE_POD,
    TYPE_RETRY,
    TYPE_SKIPPED,
    Node,
    add_child,
    child_failed_message,
    new_node,
    outbound_ids,
    set_phase,
)


@dataclass
class Attempt:
    """One running pod attempt of a task."""

    node_id: str
    number: int
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class TaskState:
    """Where one task is: its node, its running attempt, a retry waiting for its backoff."""

    task: Task
    node_id: str | None = None
    attempt: Attempt | None = None
    attempts: int = 0
    retry_at: float | None = None
    first_start: float | None = None
    done: bool = False

    @property
    def active(self) -> bool:
        return self.attempt is not None or self.retry_at is not None


class RunState:
    """``status.nodes`` of one run plus the task bookkeeping behind it."""

    def __init__(self, workflow: str, plan: Plan) -> None:
        self.workflow = workflow
        self.plan = plan
        self.nodes: dict[str, Node] = {}
        self.tasks = {t.name: TaskState(t) for t in plan.tasks}
        self.blocked_by_fail_fast = False
        if plan.dag:
            root = new_node(
                workflow,
                workflow,
                display_name=workflow,
                node_type=TYPE_DAG,
                template_name=plan.entrypoint,
                phase=RUNNING,
            )
            self.nodes[root["id"]] = root

    # -- naming ----------------------------------------------------------------------------
    @property
    def root_id(self) -> str:
        return self.workflow

    def node_name(self, task: str) -> str:
        """``<wf>.<task>`` inside the DAG; the workflow's own name for a single-pod run."""
        return f"{self.workflow}.{task}" if self.plan.dag else self.workflow

    def display_name(self, task: str) -> str:
        return task if self.plan.dag else self.workflow

    @property
    def boundary(self) -> str | None:
        return self.root_id if self.plan.dag else None

    def node(self, state: TaskState) -> Node | None:
        return self.nodes.get(state.node_id) if state.node_id else None

    def phase(self, task: str) -> str | None:
        node = self.node(self.tasks[task])
        return node["phase"] if node else None

    # -- creating nodes --------------------------------------------------------------------
    def _add(self, node: Node, state: TaskState) -> Node:
        self.nodes[node["id"]] = node
        state.node_id = node["id"]
        self._connect(state)
        return node

    def _connect(self, state: TaskState) -> None:
        """Hang the task's node under the DAG (no deps) or its dependencies' outbound nodes."""
        if not self.plan.dag or state.node_id is None:
            return
        if not state.task.deps:
            add_child(self.nodes[self.root_id], state.node_id)
            return
        for dep in state.task.deps:
            dep_id = self.tasks[dep.task].node_id
            if dep_id:
                for parent in outbound_ids(self.nodes, dep_id):
                    add_child(self.nodes[parent], state.node_id)

    def omit(self, state: TaskState) -> Node:
        """A task whose dependencies did not succeed: Argo's ``Omitted`` node."""
        name = state.task.name
        node = new_node(
            self.workflow,
            self.node_name(name),
            display_name=self.display_name(name),
            node_type=TYPE_SKIPPED,
            template_name=state.task.template.name,
            phase=OMITTED,
            boundary_id=self.boundary,
            message=MSG_OMITTED,
        )
        state.done = True
        return self._add(node, state)

    def new_attempt(self, state: TaskState) -> Attempt:
        """Create the next attempt's Pod node (and the Retry node before the first one)."""
        task, number = state.task, state.attempts
        base, display = self.node_name(task.name), self.display_name(task.name)
        if task.template.retry is None:
            pod = self._new(task, base, display, TYPE_POD, PENDING)
            self._add(pod, state)
        else:
            if state.node_id is None:
                self._add(self._new(task, base, display, TYPE_RETRY, RUNNING), state)
            pod = self._new(task, f"{base}({number})", f"{display}({number})", TYPE_POD, PENDING)
            pod["nodeFlag"] = {"retried": True}
            self.nodes[pod["id"]] = pod
            add_child(self.nodes[state.node_id or ""], pod["id"])
        state.attempts += 1
        state.attempt = Attempt(pod["id"], number)
        return state.attempt

    def _new(self, task: Task, name: str, display: str, node_type: str, phase: str) -> Node:
        return new_node(
            self.workflow,
            name,
            display_name=display,
            node_type=node_type,
            template_name=task.template.name,
            phase=phase,
            boundary_id=self.boundary,
        )

    # -- scheduling ------------------------------------------------------------------------
    def any_failed(self) -> bool:
        return any(self.phase(t) in (FAILED, ERROR) for t, s in self.tasks.items() if s.done)

    def running_count(self) -> int:
        return sum(1 for s in self.tasks.values() if s.active)

    def ready(self, state: TaskState) -> bool | None:
        """None: dependencies unfinished; True: may run; False: must be Omitted."""
        phases = []
        for dep in state.task.deps:
            dep_state = self.tasks[dep.task]
            if not dep_state.done:
                return None
            phases.append((dep, self.phase(dep.task) or ""))
        return all(dep.satisfied_by(phase) for dep, phase in phases)

    # -- finishing -------------------------------------------------------------------------
    def dag_outcome(self) -> tuple[str, str | None]:
        """The DAG's phase and message once nothing runs (Argo's failFast/branch rules)."""
        for state in self.tasks.values():
            node = self.node(state)
            if node and node["phase"] in (FAILED, ERROR):
                message = MSG_FAIL_FAST if self.blocked_by_fail_fast else None
                return node["phase"], message or child_failed_message(node["id"])
        if all(s.done for s in self.tasks.values()):
            return SUCCEEDED, None
        return FAILED, "not every task ran"

    def outbound_nodes(self) -> list[str]:
        """The DAG's ``outboundNodes``: outbound nodes of tasks nothing depends on."""
        needed = {d.task for s in self.tasks.values() for d in s.task.deps}
        out: list[str] = []
        for name, state in self.tasks.items():
            if name not in needed and state.node_id:
                out.extend(outbound_ids(self.nodes, state.node_id))
        return out

    def finish(self, stopped: bool, stop_message: str | None) -> tuple[str, str | None]:
        """Close every node once nothing runs; return the workflow's phase and message.

        A DAG's phase follows its tasks (:meth:`dag_outcome`); a single-pod run's is its pod's.
        A stopped run (shutdown, deadline) is ``Failed`` with the stop message, as in Argo.
        """
        for node in self.unfinished_nodes():
            if node["type"] != TYPE_DAG:
                set_phase(node, FAILED, stop_message)
        if self.plan.dag:
            phase, message = self.dag_outcome()
            phase, message = (FAILED, stop_message) if stopped else (phase, message)
            root = self.nodes[self.root_id]
            set_phase(root, phase, message)
            root["outboundNodes"] = self.outbound_nodes()
            return phase, message
        pod = self.node(next(iter(self.tasks.values()))) or {}
        if stopped:
            return FAILED, stop_message
        return pod.get("phase", FAILED), pod.get("message")

    def unfinished_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values() if n["phase"] not in FINAL_PHASES]


def exit_outputs(code: int | None) -> dict[str, Any] | None:
    """A node's ``outputs`` for an exit code (a string, as Argo writes it)."""
    return {"exitCode": str(code)} if code is not None else None
