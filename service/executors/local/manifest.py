"""Read a Workflow manifest into what the local runner executes, or say what it can't run.

:func:`build_plan` accepts the subset of Argo that forgeflow's compiler produces (a DAG of
container/script templates whose tasks may run one level of nested DAG, as matrix jobs and
``argo:`` jobs do, or a single container/script entrypoint; input parameters passed as task
arguments; git and raw input artifacts; output artifacts; retries; deadlines) and raises
:class:`UnsupportedManifest` with a message naming anything else, which the runner reports as
the workflow's ``Error`` message. Fields that only
matter on a cluster (service accounts, resources, pod GC, TTLs...) are accepted and ignored.
Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from service.executors.local.fields import (
    Retry,
    check_workspace_path,
    env_entry,
    env_from_entry,
    input_artifacts,
    output_artifacts,
    retry_strategy,
)
from service.executors.local.values import (
    UnsupportedManifest,
    check_keys,
    parse_duration,
    parse_int,
    substitute,
)

__all__ = ["Dependency", "Group", "Plan", "PodTemplate", "Retry", "Task", "UnsupportedManifest", "build_plan"]

SPEC_KEYS = {"entrypoint", "templates", "activeDeadlineSeconds", "shutdown", "arguments"}
SPEC_KEYS |= {"parallelism"}
SPEC_IGNORED = {
    "serviceAccountName", "ttlStrategy", "podGC", "podMetadata", "imagePullSecrets",
    "securityContext", "nodeSelector", "tolerations", "affinity", "priority",
    "podPriorityClassName", "podPriority", "schedulerName", "archiveLogs",
    "artifactRepositoryRef", "workflowMetadata", "podDisruptionBudget", "metrics",
    "automountServiceAccountToken", "executor", "dnsPolicy", "dnsConfig", "hostAliases",
    "volumes", "volumeClaimTemplates", "volumeClaimGC", "podSpecPatch", "artifactGC",
}  # fmt: skip
TEMPLATE_KEYS = {"name", "dag", "container", "script", "inputs", "outputs", "metadata"}
TEMPLATE_KEYS |= {"activeDeadlineSeconds", "retryStrategy", "parallelism"}
TEMPLATE_IGNORED = {
    "nodeSelector", "tolerations", "affinity", "securityContext", "serviceAccountName",
    "automountServiceAccountToken", "priorityClassName", "priority", "schedulerName",
    "podSpecPatch", "archiveLocation", "volumes", "metrics", "hostAliases", "timeout",
    "executor", "artifactGC",
}  # fmt: skip
TEMPLATE_TYPES = ("steps", "resource", "suspend", "http", "plugin", "data", "containerSet")
CONTAINER_KEYS = {"image", "command", "args", "workingDir", "env", "envFrom", "source"}
CONTAINER_IGNORED = {
    "name", "resources", "imagePullPolicy", "securityContext", "ports", "livenessProbe",
    "readinessProbe", "startupProbe", "terminationMessagePath", "terminationMessagePolicy",
    "lifecycle", "stdin", "stdinOnce", "tty", "volumeMounts",
}  # fmt: skip
TASK_KEYS = {"name", "template", "dependencies", "depends", "arguments"}
_DEPENDS_TERM = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_]*)(\.Succeeded)?$")


@dataclass(frozen=True)
class PodTemplate:
    """A container or script template, variables already substituted."""

    name: str
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    working_dir: str | None
    env: tuple[dict[str, Any], ...]
    env_from: tuple[dict[str, Any], ...]
    artifacts: tuple[dict[str, Any], ...]
    script: str | None
    deadline: float | None
    retry: Retry | None
    outputs: tuple[dict[str, Any], ...] = ()  # output artifacts, kept under the workflow's folder


@dataclass(frozen=True)
class Dependency:
    """One ``depends`` term: a task, and whether only ``Succeeded`` satisfies it."""

    task: str
    succeeded_only: bool = False

    def satisfied_by(self, phase: str) -> bool:
        """Argo: plain ``A`` means ``A.Succeeded || A.Skipped || A.Daemoned``."""
        return phase == "Succeeded" or (phase == "Skipped" and not self.succeeded_only)


@dataclass(frozen=True)
class Task:
    """One DAG task (or the single entrypoint pod, named after its template)."""

    name: str
    template: PodTemplate
    deps: tuple[Dependency, ...] = ()
    group: str | None = None  # the task of the outer DAG whose nested DAG this task is in


@dataclass(frozen=True)
class Group:
    """A task of the entrypoint DAG that runs a nested DAG: its tasks are ``<name>.<task>``."""

    name: str
    template_name: str
    deps: tuple[Dependency, ...]
    fail_fast: bool
    parallelism: int | None
    members: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """What the runner executes for one workflow."""

    entrypoint: str
    dag: bool
    tasks: tuple[Task, ...]
    fail_fast: bool
    parallelism: int | None
    deadline: float | None
    groups: tuple[Group, ...] = ()


def build_plan(manifest: dict[str, Any]) -> Plan:
    """The plan for ``manifest``; :class:`UnsupportedManifest` names what can't run locally."""
    spec = manifest.get("spec") or {}
    check_keys(spec, SPEC_KEYS | SPEC_IGNORED, "spec")
    variables = _global_variables(manifest)
    templates = _templates_by_name(spec)
    entry_name = spec.get("entrypoint")
    if not entry_name or entry_name not in templates:
        raise UnsupportedManifest(f"spec.entrypoint {entry_name!r} names no template")
    entry = templates[entry_name]
    _check_template_type(entry)
    deadline = parse_duration(spec.get("activeDeadlineSeconds"), "spec.activeDeadlineSeconds")
    parallelism = parse_int(spec.get("parallelism"), "spec.parallelism")
    # the Workflow's arguments are the entrypoint's input parameters
    inputs = _inputs(entry, spec.get("arguments") or {}, variables, "spec.arguments")
    if "dag" not in entry:
        pod = _pod_template(entry, variables | inputs)
        task = Task(entry_name, pod)
        return Plan(entry_name, False, (task,), True, parallelism, deadline)
    dag = entry["dag"] or {}
    check_keys(dag, {"tasks", "failFast"}, f"templates.{entry_name}.dag")
    template_parallelism = parse_int(entry.get("parallelism"), f"templates.{entry_name}")
    tasks, groups = _dag_tasks(dag.get("tasks") or [], templates, variables, variables | inputs)
    fail_fast = dag.get("failFast") is not False
    limits = [n for n in (parallelism, template_parallelism) if n]
    return Plan(entry_name, True, tasks, fail_fast, min(limits, default=None), deadline, groups)


def _global_variables(manifest: dict[str, Any]) -> dict[str, str]:
    meta = manifest.get("metadata") or {}
    spec = manifest.get("spec") or {}
    variables = {
        "workflow.name": str(meta.get("name", "")),
        "workflow.namespace": str(meta.get("namespace", "")),
        "workflow.uid": str(meta.get("uid", "")),
        "workflow.creationTimestamp": str(meta.get("creationTimestamp", "")),
        "workflow.serviceAccountName": str(spec.get("serviceAccountName", "")),
    }
    arguments = spec.get("arguments") or {}
    check_keys(arguments, {"parameters"}, "spec.arguments")
    for param in arguments.get("parameters") or []:
        if "value" not in param:
            raise UnsupportedManifest(f"workflow parameter {param.get('name')!r} has no value")
        variables[f"workflow.parameters.{param['name']}"] = str(param["value"])
    return variables


def _templates_by_name(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    templates: dict[str, dict[str, Any]] = {}
    for template in spec.get("templates") or []:
        name = template.get("name")
        if not name or name in templates:
            raise UnsupportedManifest(f"template name {name!r} is missing or repeated")
        templates[name] = template
    return templates


def _check_template_type(template: dict[str, Any]) -> None:
    name = template.get("name")
    for kind in TEMPLATE_TYPES:
        if kind in template:
            raise UnsupportedManifest(f"template {name!r}: {kind} templates")
    kinds = [k for k in ("dag", "container", "script") if k in template]
    if len(kinds) != 1:
        raise UnsupportedManifest(f"template {name!r}: needs exactly one of dag/container/script")
    check_keys(template, TEMPLATE_KEYS | TEMPLATE_IGNORED, f"template {name!r}")


def _inputs(
    template: dict[str, Any], arguments: dict[str, Any], scope: dict[str, str], where: str
) -> dict[str, str]:
    """The template's ``inputs.parameters.NAME`` variables: the value each argument supplies
    (its own ``{{...}}`` resolved in ``scope``, the caller's variables), else the input's
    ``value`` or ``default``; an input with none is an error, as in Argo."""
    check_keys(arguments, {"parameters"}, f"{where}")
    supplied: dict[str, str] = {}
    for param in arguments.get("parameters") or []:
        check_keys(param, {"name", "value", "description"}, f"{where} parameter {param.get('name')!r}")
        if "value" in param:
            supplied[str(param.get("name"))] = substitute(str(param["value"]), scope, where)
    variables: dict[str, str] = {}
    name_of_template = template.get("name")
    for param in (template.get("inputs") or {}).get("parameters") or []:
        name = str(param.get("name") or "")
        label = f"template {name_of_template!r} input parameter {name!r}"
        check_keys(param, {"name", "value", "default", "description", "enum"}, label)
        for key in ("value", "default"):
            if key in param and name not in supplied:
                supplied[name] = substitute(str(param[key]), scope, label)
        if name not in supplied:
            raise UnsupportedManifest(f"failed to resolve inputs.parameters.{name}: not in {where}")
        variables[f"inputs.parameters.{name}"] = supplied[name]
    return variables


def _dag_tasks(
    raw_tasks: list[dict[str, Any]],
    templates: dict[str, dict[str, Any]],
    variables: dict[str, str],
    scope: dict[str, str],
    group: str | None = None,
) -> tuple[tuple[Task, ...], tuple[Group, ...]]:
    """The DAG's tasks. ``variables`` are the Workflow's; ``scope`` adds the DAG template's own
    inputs, which its tasks' arguments may use."""
    if not raw_tasks:
        raise UnsupportedManifest(f"the DAG {group or 'entrypoint'!r} has no tasks")
    names = [str(t.get("name") or "") for t in raw_tasks]
    if len(set(names)) != len(names) or not all(names):
        raise UnsupportedManifest("DAG task names are missing or repeated")
    prefix = f"{group}." if group else ""
    tasks: list[Task] = []
    groups: list[Group] = []
    graph: dict[str, set[str]] = {}
    for raw in raw_tasks:
        name = raw["name"]
        if "templateRef" in raw:
            ref = raw["templateRef"] or {}
            raise UnsupportedManifest(
                f"DAG task {name!r} uses the WorkflowTemplate {ref.get('name')!r}, which lives on a cluster:"
                " run it with the argo executor"
            )
        check_keys(raw, TASK_KEYS, f"DAG task {name!r}")
        template = templates.get(raw.get("template") or "")
        if template is None:
            raise UnsupportedManifest(f"DAG task {name!r}: template {raw.get('template')!r}")
        _check_template_type(template)
        inputs = _inputs(template, raw.get("arguments") or {}, scope, f"DAG task {name!r} arguments")
        deps = tuple(Dependency(prefix + d.task, d.succeeded_only) for d in _dependencies(raw, set(names)))
        graph[name] = {d.task for d in _dependencies(raw, set(names))}
        if "dag" not in template:
            tasks.append(Task(prefix + name, _pod_template(template, variables | inputs), deps, group))
            continue
        if group is not None:
            raise UnsupportedManifest(f"DAG task {name!r}: nested DAG templates more than one level deep")
        nested = template["dag"] or {}
        check_keys(nested, {"tasks", "failFast"}, f"templates.{template['name']}.dag")
        nested_tasks = nested.get("tasks") or []
        members, _ = _dag_tasks(nested_tasks, templates, variables, variables | inputs, group=name)
        parallelism = parse_int(template.get("parallelism"), f"templates.{template['name']}")
        fail_fast = nested.get("failFast") is not False
        groups.append(
            Group(name, template["name"], deps, fail_fast, parallelism, tuple(t.name for t in members))
        )
        tasks += members
    _check_acyclic(graph)
    return tuple(tasks), tuple(groups)


def _dependencies(raw: dict[str, Any], names: set[str]) -> tuple[Dependency, ...]:
    name = raw["name"]
    if raw.get("dependencies") and raw.get("depends"):
        raise UnsupportedManifest(f"DAG task {name!r}: both 'depends' and 'dependencies'")
    if raw.get("depends"):
        deps = [_depends_term(name, term) for term in str(raw["depends"]).split("&&")]
    else:
        deps = [Dependency(str(dep)) for dep in raw.get("dependencies") or []]
    for dep in deps:
        if dep.task not in names or dep.task == name:
            raise UnsupportedManifest(f"DAG task {name!r}: depends on unknown task {dep.task!r}")
    return tuple(deps)


def _depends_term(task: str, term: str) -> Dependency:
    match = _DEPENDS_TERM.match(term.strip())
    if not match:
        raise UnsupportedManifest(
            f"DAG task {task!r}: depends term {term.strip()!r} "
            "(only '&&'-joined task names, optionally '.Succeeded')"
        )
    return Dependency(match.group(1), bool(match.group(2)))


def _check_acyclic(deps: dict[str, set[str]]) -> None:
    done: set[str] = set()
    while len(done) < len(deps):
        ready = {n for n, d in deps.items() if n not in done and d <= done}
        if not ready:
            raise UnsupportedManifest("the DAG has a dependency cycle")
        done |= ready


def _pod_template(template: dict[str, Any], variables: dict[str, str]) -> PodTemplate:
    name = template["name"]
    where = f"template {name!r}"
    template = substitute(template, variables, where)
    body = template.get("container") or template.get("script") or {}
    check_keys(body, CONTAINER_KEYS | CONTAINER_IGNORED, where)
    if body.get("volumeMounts"):
        raise UnsupportedManifest(f"{where}: volumeMounts")
    if not body.get("image"):
        raise UnsupportedManifest(f"{where}: no image")
    working_dir = body.get("workingDir")
    if working_dir is not None:
        check_workspace_path(str(working_dir), f"{where}: workingDir")
    script = str(body.get("source", "")) if "script" in template else None
    return PodTemplate(
        name=name,
        image=str(body["image"]),
        command=_strings(body.get("command"), f"{where}: command"),
        args=_strings(body.get("args"), f"{where}: args"),
        working_dir=working_dir,
        env=tuple(env_entry(e, where) for e in body.get("env") or ()),
        env_from=tuple(env_from_entry(e, where) for e in body.get("envFrom") or ()),
        artifacts=input_artifacts(template.get("inputs") or {}, where),
        script=script,
        deadline=parse_duration(template.get("activeDeadlineSeconds"), where),
        retry=retry_strategy(template.get("retryStrategy"), where),
        outputs=output_artifacts(template.get("outputs") or {}, where),
    )


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise UnsupportedManifest(f"{where} is not a list")
    return tuple(str(item) for item in value)
