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
from dataclasses import dataclass, replace
from typing import Any

from service.executors.local.depends import Expr, Not, Op, Term, all_of, parse, tasks_in
from service.executors.local.fields import (
    Retry,
    check_workspace_path,
    env_entry,
    env_from_entry,
    input_artifacts,
    output_artifacts,
    output_parameters,
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
TEMPLATE_KEYS |= {"activeDeadlineSeconds", "retryStrategy", "parallelism", "sidecars"}
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
TASK_KEYS = {"name", "template", "dependencies", "depends", "arguments", "continueOn"}
SIDECAR_KEYS = {
    "name",
    "image",
    "command",
    "args",
    "env",
    "ports",
    "resources",
    "imagePullPolicy",
    "securityContext",
}
_TASK_VARIABLE = re.compile(r"\{\{\s*tasks\.")
_TASK_OUTPUT = re.compile(r"^\{\{\s*tasks\.([-A-Za-z0-9_]+)\.outputs\.artifacts\.([-A-Za-z0-9_]+)\s*\}\}$")
_INPUT_ARTIFACT = re.compile(r"^\{\{\s*inputs\.artifacts\.([-A-Za-z0-9_]+)\s*\}\}$")
LATE = "\x00late{}\x00"
Late = dict[str, tuple[str, str]]  # sentinel -> (DAG prefix, text with {{tasks.X...}} references)


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
    output_parameters: tuple[dict[str, Any], ...] = ()  # read from files when the pod ends
    sidecars: tuple[dict[str, Any], ...] = ()  # containers beside the main one (need an engine)
    secret_mounts: tuple[tuple[str, str], ...] = ()  # (mountPath, Secret name), read-only


@dataclass(frozen=True)
class Dependency:
    """A task a DAG task waits for (named in its ``depends`` or ``dependencies``)."""

    task: str


@dataclass(frozen=True)
class Task:
    """One DAG task (or the single entrypoint pod, named after its template)."""

    name: str
    template: PodTemplate
    deps: tuple[Dependency, ...] = ()
    group: str | None = None  # the task of the outer DAG whose nested DAG this task is in
    logic: Expr | None = None  # when it runs, its dependencies finished (see :mod:`depends`)
    continue_on: tuple[bool, bool] = (False, False)  # continueOn (failed, error)


@dataclass(frozen=True)
class Group:
    """A task of the entrypoint DAG that runs a nested DAG: its tasks are ``<name>.<task>``."""

    name: str
    template_name: str
    deps: tuple[Dependency, ...]
    fail_fast: bool
    parallelism: int | None
    members: tuple[str, ...]
    logic: Expr | None = None
    continue_on: tuple[bool, bool] = (False, False)


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
    late: tuple[tuple[str, str, str], ...] = ()  # (sentinel, DAG prefix, text): values of finished tasks


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
    late: Late = {}
    inputs = _inputs(entry, spec.get("arguments") or {}, variables, "spec.arguments", late, "")
    if "dag" not in entry:
        pod = _pod_template(entry, variables | inputs)
        task = Task(entry_name, pod)
        return Plan(entry_name, False, (task,), True, parallelism, deadline)
    dag = entry["dag"] or {}
    check_keys(dag, {"tasks", "failFast"}, f"templates.{entry_name}.dag")
    template_parallelism = parse_int(entry.get("parallelism"), f"templates.{entry_name}")
    tasks, groups = _dag_tasks(dag.get("tasks") or [], templates, variables, variables | inputs, late=late)
    fail_fast = dag.get("failFast") is not False
    limits = [n for n in (parallelism, template_parallelism) if n]
    frozen = tuple((k, prefix, text) for k, (prefix, text) in late.items())
    return Plan(entry_name, True, tasks, fail_fast, min(limits, default=None), deadline, groups, frozen)


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
    template: dict[str, Any],
    arguments: dict[str, Any],
    scope: dict[str, str],
    where: str,
    late: Late,
    prefix: str,
) -> dict[str, str]:
    """The template's ``inputs.parameters.NAME`` variables: the value each argument supplies
    (its own ``{{...}}`` resolved in ``scope``, the caller's variables), else the input's
    ``value`` or ``default``; an input with none is an error, as in Argo. A value that reads
    another task's outputs (``{{tasks.X.outputs.parameters.Y}}``) is known only when the task
    starts: it stands as a sentinel, registered in ``late``, until then."""
    check_keys(arguments, {"parameters", "artifacts"}, f"{where}")
    supplied: dict[str, str] = {}
    for param in arguments.get("parameters") or []:
        check_keys(param, {"name", "value", "description"}, f"{where} parameter {param.get('name')!r}")
        if "value" in param:
            text = str(param["value"])
            if _TASK_VARIABLE.search(text):
                sentinel = LATE.format(len(late))
                late[sentinel] = (prefix, _partial(text, scope, where))
                supplied[str(param.get("name"))] = sentinel
                continue
            supplied[str(param.get("name"))] = substitute(text, scope, where)
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


def _partial(text: str, scope: dict[str, str], where: str) -> str:
    """``text`` with every variable but ``tasks.*`` substituted."""
    parts = re.split(r"(\{\{\s*tasks\.[^}]*\}\})", text)
    return "".join(p if p.startswith("{{") else substitute(p, scope, where) for p in parts)


def _artifact_sources(
    arguments: dict[str, Any], prefix: str, inherited: dict[str, tuple[str, str]], where: str
) -> dict[str, tuple[str, str]]:
    """Argument artifacts passed by ``from``: name -> (task path, its output artifact)."""
    found: dict[str, tuple[str, str]] = {}
    for artifact in arguments.get("artifacts") or []:
        name, source = str(artifact.get("name") or ""), str(artifact.get("from") or "")
        check_keys(artifact, {"name", "from", "optional"}, f"{where} artifact {name!r}")
        task = _TASK_OUTPUT.match(source)
        passed = _INPUT_ARTIFACT.match(source)
        if task:
            found[name] = (prefix + task.group(1), task.group(2))
        elif passed and passed.group(1) in inherited:
            found[name] = inherited[passed.group(1)]
        elif passed and artifact.get("optional"):
            continue
        else:
            raise UnsupportedManifest(f"{where}: artifact {name!r} from {source!r}")
    return found


def _with_sources(pod: PodTemplate, sources: dict[str, tuple[str, str]]) -> PodTemplate:
    """The pod's input artifacts, those passed by tasks marked with where they come from."""
    artifacts = []
    for artifact in pod.artifacts:
        item = dict(artifact)
        if str(item.get("name")) in sources:
            item["from"] = sources[str(item.get("name"))]
        elif not ({"git", "raw", "s3"} & set(item)):
            if not item.get("optional"):
                raise UnsupportedManifest(
                    f"failed to resolve inputs.artifacts.{item.get('name')} of template {pod.name!r}"
                )
            continue
        artifacts.append(item)
    return replace(pod, artifacts=tuple(artifacts))


def _continue_on(raw: dict[str, Any], where: str) -> tuple[bool, bool]:
    value = raw.get("continueOn") or {}
    check_keys(value, {"failed", "error"}, f"{where} continueOn")
    return bool(value.get("failed")), bool(value.get("error"))


def _dag_tasks(
    raw_tasks: list[dict[str, Any]],
    templates: dict[str, dict[str, Any]],
    variables: dict[str, str],
    scope: dict[str, str],
    group: str | None = None,
    *,
    late: Late,
    inherited: dict[str, tuple[str, str]] | None = None,
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
        where = f"DAG task {name!r} arguments"
        arguments = raw.get("arguments") or {}
        inputs = _inputs(template, arguments, scope, where, late, prefix)
        sources = _artifact_sources(arguments, prefix, inherited or {}, where)
        logic = _dependencies(raw, set(names))
        deps = tuple(Dependency(prefix + t) for t in tasks_in(logic))
        graph[name] = set(tasks_in(logic))
        logic = _prefixed(logic, prefix)
        continue_on = _continue_on(raw, f"DAG task {name!r}")
        if "dag" not in template:
            pod = _with_sources(_pod_template(template, variables | inputs), sources)
            tasks.append(Task(prefix + name, pod, deps, group, logic, continue_on))
            continue
        if group is not None:
            raise UnsupportedManifest(f"DAG task {name!r}: nested DAG templates more than one level deep")
        nested = template["dag"] or {}
        check_keys(nested, {"tasks", "failFast"}, f"templates.{template['name']}.dag")
        nested_tasks = nested.get("tasks") or []
        members, _ = _dag_tasks(
            nested_tasks, templates, variables, variables | inputs, group=name, late=late, inherited=sources
        )
        parallelism = parse_int(template.get("parallelism"), f"templates.{template['name']}")
        fail_fast = nested.get("failFast") is not False
        members_names = tuple(t.name for t in members)
        groups.append(
            Group(name, template["name"], deps, fail_fast, parallelism, members_names, logic, continue_on)
        )
        tasks += members
    _check_acyclic(graph)
    return tuple(tasks), tuple(groups)


def _dependencies(raw: dict[str, Any], names: set[str]) -> Expr | None:
    """The task's ``depends`` logic (``dependencies: [a, b]`` is ``a && b``)."""
    name = raw["name"]
    if raw.get("dependencies") and raw.get("depends"):
        raise UnsupportedManifest(f"DAG task {name!r}: both 'depends' and 'dependencies'")
    logic: Expr | None
    if raw.get("depends"):
        logic = parse(str(raw["depends"]), f"DAG task {name!r}")
    else:
        logic = all_of([str(dep) for dep in raw.get("dependencies") or []])
    for dep in tasks_in(logic):
        if dep not in names or dep == name:
            raise UnsupportedManifest(f"DAG task {name!r}: depends on unknown task {dep!r}")
    return logic


def _prefixed(logic: Expr | None, prefix: str) -> Expr | None:
    """The logic with its task names as paths (``group.task`` in a nested DAG)."""
    if logic is None or not prefix:
        return logic
    if isinstance(logic, Term):
        return Term(prefix + logic.task, logic.result)
    if isinstance(logic, Not):
        return Not(_prefixed(logic.inner, prefix) or logic.inner)
    return Op(
        logic.op, _prefixed(logic.left, prefix) or logic.left, _prefixed(logic.right, prefix) or logic.right
    )


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
    secret_mounts = _secret_mounts(template, body.get("volumeMounts") or [], where)
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
        output_parameters=output_parameters(template.get("outputs") or {}, where),
        sidecars=tuple(_sidecar(s, where) for s in template.get("sidecars") or ()),
        secret_mounts=secret_mounts,
    )


def _sidecar(sidecar: dict[str, Any], where: str) -> dict[str, Any]:
    label = f"{where} sidecar {sidecar.get('name')!r}"
    check_keys(sidecar, SIDECAR_KEYS, label)
    if not sidecar.get("image") or not sidecar.get("name"):
        raise UnsupportedManifest(f"{label}: needs a name and an image")
    for entry in sidecar.get("env") or ():
        if "valueFrom" in entry:
            raise UnsupportedManifest(f"{label}: env valueFrom")
    return dict(sidecar)


def _secret_mounts(template: dict[str, Any], mounts: list[Any], where: str) -> tuple[tuple[str, str], ...]:
    """The template's mounts of Secret volumes (the only volumes run here)."""
    volumes = {str(v.get("name")): v for v in template.get("volumes") or [] if isinstance(v, dict)}
    found = []
    for mount in mounts:
        volume = volumes.get(str((mount or {}).get("name")))
        secret = (volume or {}).get("secret")
        if not isinstance(secret, dict) or not secret.get("secretName") or not mount.get("mountPath"):
            raise UnsupportedManifest(f"{where}: volumeMounts of anything but Secret volumes")
        found.append((str(mount["mountPath"]), str(secret["secretName"])))
    return tuple(found)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise UnsupportedManifest(f"{where} is not a list")
    return tuple(str(item) for item in value)
