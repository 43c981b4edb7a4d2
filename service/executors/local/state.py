"""The runner's model of one workflow run: tasks, their nodes, and Argo's DAG rules.

Pure bookkeeping over ``status.nodes`` (no processes, no files): which task may start, which
must be ``Omitted``, how a Retry node and its attempts are wired, and the DAG's final phase.
A task of the entrypoint DAG may run a nested DAG (a :class:`Group`): it gets a ``DAG`` node
``<wf>.<task>`` once its dependencies are met, its tasks nodes ``<wf>.<task>.<inner>`` below
it, and its own failFast (no new task starts after one failed) and parallelism.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.executors.local.depends import Expr, evaluate
from service.executors.local.manifest import Dependency, Group, Plan, Task
from service.executors.local.nodes import (
    ERROR,
    FAILED,
    FINAL_PHASES,
    MSG_FAIL_FAST,
    MSG_OMITTED,
    OMITTED,
    PENDING,
    RUNNING,
    SKIPPED,
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


@dataclass
class GroupState:
    """Where one nested DAG is: its node, whether it ended, whether failFast stopped it."""

    group: Group
    node_id: str | None = None
    done: bool = False
    blocked: bool = False


class RunState:
    """``status.nodes`` of one run plus the task bookkeeping behind it."""

    def __init__(self, workflow: str, plan: Plan) -> None:
        self.workflow = workflow
        self.plan = plan
        self.nodes: dict[str, Node] = {}
        self.tasks = {t.name: TaskState(t) for t in plan.tasks}
        self.groups = {g.name: GroupState(g) for g in plan.groups}
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
        return task.rsplit(".", 1)[-1] if self.plan.dag else self.workflow

    @property
    def boundary(self) -> str | None:
        return self.root_id if self.plan.dag else None

    def boundary_of(self, task: Task) -> str | None:
        """A task's boundary: its nested DAG's node, or the workflow's DAG."""
        if task.group is not None:
            return self.groups[task.group].node_id
        return self.boundary

    def node(self, state: TaskState) -> Node | None:
        return self.nodes.get(state.node_id) if state.node_id else None

    def phase(self, task: str) -> str | None:
        """The phase of a task or of a nested DAG, by name."""
        node_id = self.groups[task].node_id if task in self.groups else self.tasks[task].node_id
        node = self.nodes.get(node_id) if node_id else None
        return node["phase"] if node else None

    def is_done(self, name: str) -> bool:
        return self.groups[name].done if name in self.groups else self.tasks[name].done

    # -- creating nodes --------------------------------------------------------------------
    def _add(self, node: Node, state: TaskState) -> Node:
        self.nodes[node["id"]] = node
        state.node_id = node["id"]
        self._connect(state)
        return node

    def _connect(self, state: TaskState) -> None:
        if self.plan.dag and state.node_id is not None:
            self._hang(state.node_id, state.task.deps, self.boundary_of(state.task) or self.root_id)

    def _hang(self, node_id: str, deps: tuple[Dependency, ...], parent_id: str) -> None:
        """Hang a node under its DAG (no deps) or its dependencies' outbound nodes."""
        if not deps:
            add_child(self.nodes[parent_id], node_id)
            return
        for dep in deps:
            dep_id = (
                self.groups[dep.task].node_id if dep.task in self.groups else self.tasks[dep.task].node_id
            )
            if dep_id:
                for parent in outbound_ids(self.nodes, dep_id):
                    add_child(self.nodes[parent], node_id)

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
            boundary_id=self.boundary_of(state.task),
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
            boundary_id=self.boundary_of(task),
        )

    # -- nested DAGs -------------------------------------------------------------------------
    def _group_node(self, state: GroupState, node_type: str, phase: str, message: str | None) -> None:
        group = state.group
        node = new_node(
            self.workflow,
            self.node_name(group.name),
            display_name=group.name,
            node_type=node_type,
            template_name=group.template_name,
            phase=phase,
            boundary_id=self.boundary,
            message=message,
        )
        self.nodes[node["id"]] = node
        state.node_id = node["id"]
        self._hang(node["id"], group.deps, self.root_id)

    def _members(self, state: GroupState) -> list[TaskState]:
        return [self.tasks[m] for m in state.group.members]

    def _member_failed(self, state: GroupState) -> bool:
        return any(self.phase(m.task.name) in (FAILED, ERROR) for m in self._members(state) if m.done)

    def _update_groups(self) -> bool:
        """Start, omit or close nested DAGs as their dependencies and tasks allow."""
        changed = False
        for state in self.groups.values():
            if state.done:
                continue
            if state.node_id is None:
                ready = self._ready(state.group.deps, state.group.logic)
                if ready is False:
                    self._group_node(state, TYPE_SKIPPED, OMITTED, MSG_OMITTED)
                    state.done = True
                    for member in self._members(state):
                        member.done = True
                    changed = True
                elif ready and not self._main_blocked():
                    self._group_node(state, TYPE_DAG, RUNNING, None)
                    changed = True
                continue
            members = self._members(state)
            if any(m.active for m in members):
                continue
            stopped = state.group.fail_fast and self._member_failed(state)
            if all(m.done for m in members) or stopped:
                self._close_group(state, stopped and not all(m.done for m in members))
                changed = True
        return changed

    def _close_group(self, state: GroupState, blocked: bool, stop_message: str | None = None) -> None:
        members = self._members(state)
        for member in members:
            member.done = True
        node = self.nodes[state.node_id or ""]
        failed = [m for m in members if self.phase(m.task.name) in (FAILED, ERROR)]
        if stop_message:
            set_phase(node, FAILED, stop_message)
        elif failed:
            set_phase(
                node, FAILED, MSG_FAIL_FAST if blocked else child_failed_message(failed[0].node_id or "")
            )
        else:
            set_phase(node, SUCCEEDED)
        needed = {d.task for m in members for d in m.task.deps}
        node["outboundNodes"] = [
            out
            for m in members
            if m.task.name not in needed and m.node_id
            for out in outbound_ids(self.nodes, m.node_id)
        ]
        state.done = True

    # -- scheduling ------------------------------------------------------------------------
    def _top_level(self) -> list[str]:
        return [*(n for n, s in self.tasks.items() if s.task.group is None), *self.groups]

    def any_failed(self) -> bool:
        """Whether a task of the entrypoint DAG (or a nested DAG as a whole) failed."""
        return any(self.phase(n) in (FAILED, ERROR) for n in self._top_level() if self.is_done(n))

    def running_count(self, group: str | None = None) -> int:
        return sum(1 for s in self.tasks.values() if s.active and (group is None or s.task.group == group))

    def _ready(self, deps: tuple[Dependency, ...], logic: Expr | None) -> bool | None:
        if not all(self.is_done(dep.task) for dep in deps):
            return None
        return evaluate(logic, lambda task: self.phase(task) or "", self.continue_on)

    def continue_on(self, name: str) -> tuple[bool, bool]:
        """A task's (or nested DAG's) ``continueOn``: (failed, error)."""
        return (
            self.groups[name].group.continue_on if name in self.groups else self.tasks[name].task.continue_on
        )

    def ready(self, state: TaskState) -> bool | None:
        """None: dependencies unfinished; True: may run; False: must be Omitted."""
        return self._ready(state.task.deps, state.task.logic)

    def _main_blocked(self) -> bool:
        if self.plan.fail_fast and self.any_failed():
            self.blocked_by_fail_fast = True
            return True
        return False

    def schedule(self, max_parallel: int, start: Callable[[TaskState], None]) -> bool:
        """Omit, start (through ``start``) and close what Argo's DAG rules allow now."""
        any_change = changed = False
        while True:
            changed = self._update_groups()
            for state in self.tasks.values():
                if state.node_id is not None or state.done:
                    continue
                group = self.groups.get(state.task.group or "")
                if group is not None and (group.node_id is None or group.done):
                    continue
                ready = self.ready(state)
                if ready is False:
                    self.omit(state)
                    changed = True
                elif not ready or (group is None and self._main_blocked()):
                    continue
                elif group is not None and group.group.fail_fast and self._member_failed(group):
                    group.blocked = True
                elif self.running_count() < max_parallel and self._has_room(group):
                    start(state)
                    changed = True
            any_change = any_change or changed
            if not changed:
                return any_change

    def _has_room(self, group: GroupState | None) -> bool:
        limit = group.group.parallelism if group is not None else None
        return limit is None or self.running_count(group.group.name if group else None) < limit

    # -- finishing -------------------------------------------------------------------------
    def item_node(self, name: str) -> Node | None:
        """The node of a task or nested DAG, by name (None before it has one)."""
        return self._item_node(name)

    def _item_node(self, name: str) -> Node | None:
        node_id = self.groups[name].node_id if name in self.groups else self.tasks[name].node_id
        return self.nodes.get(node_id) if node_id else None

    def _deps_of(self, name: str) -> tuple[Dependency, ...]:
        return self.groups[name].group.deps if name in self.groups else self.tasks[name].task.deps

    def _branch_phase(self, name: str, memo: dict[str, str]) -> str:
        """Argo's branch phase: a finished task's own phase; an omitted one inherits a failure
        of a task before it (Failed/Error win over Succeeded)."""
        if name not in memo:
            node = self._item_node(name)
            phase = node["phase"] if node else ""
            if phase in ("", OMITTED, SKIPPED):
                inherited = [self._branch_phase(d.task, memo) for d in self._deps_of(name)]
                phase = next((p for p in inherited if p in (FAILED, ERROR)), SUCCEEDED)
            memo[name] = phase
        return memo[name]

    def dag_outcome(self) -> tuple[str, str | None]:
        """The DAG's phase and message once nothing runs (Argo's ``assessDAGPhase``: the
        branch phases of the tasks nothing depends on, a failure with ``continueOn`` excused)."""
        top = self._top_level()
        needed = {d.task for n in top for d in self._deps_of(n)}
        memo: dict[str, str] = {}
        for name in top:
            if name in needed:
                continue
            phase = self._branch_phase(name, memo)
            failed, error = self.continue_on(name)
            if phase in (FAILED, ERROR) and not ((phase == FAILED and failed) or (phase == ERROR and error)):
                node = self._item_node(name)
                message = MSG_FAIL_FAST if self.blocked_by_fail_fast else None
                culprit = node if node and node["phase"] in (FAILED, ERROR) else self._first_failed(name)
                return phase, message or child_failed_message(culprit["id"] if culprit else name)
        if all(self.is_done(n) for n in top):
            return SUCCEEDED, None
        return FAILED, "not every task ran"

    def _first_failed(self, name: str) -> Node | None:
        for dep in self._deps_of(name):
            node = self._item_node(dep.task)
            if node and node["phase"] in (FAILED, ERROR):
                return node
            found = self._first_failed(dep.task)
            if found:
                return found
        return None

    def outbound_nodes(self) -> list[str]:
        """The DAG's ``outboundNodes``: outbound nodes of tasks nothing depends on."""
        top = self._top_level()
        needed = {d.task for s in self.tasks.values() if s.task.group is None for d in s.task.deps}
        needed |= {d.task for g in self.groups.values() for d in g.group.deps}
        out: list[str] = []
        for name in top:
            node = self._item_node(name)
            if name not in needed and node is not None:
                out.extend(outbound_ids(self.nodes, node["id"]))
        return out

    def finish(self, stopped: bool, stop_message: str | None) -> tuple[str, str | None]:
        """Close every node once nothing runs; return the workflow's phase and message.

        A DAG's phase follows its tasks (:meth:`dag_outcome`); a single-pod run's is its pod's.
        A stopped run (shutdown, deadline) is ``Failed`` with the stop message, as in Argo.
        """
        for node in self.unfinished_nodes():
            if node["type"] != TYPE_DAG:
                set_phase(node, FAILED, stop_message)
        for group in self.groups.values():
            if group.node_id is not None and not group.done:
                self._close_group(group, group.blocked, stop_message if stopped else None)
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
