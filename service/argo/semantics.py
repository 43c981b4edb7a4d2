"""Semantic checks of Argo manifests: rules Argo's controller enforces at submit time that a
schema cannot express -- object and label names, template/step/task names, references from
the entrypoint, steps, DAG tasks and hooks to templates, DAG dependencies and cycles.

The checks read the raw manifest (plain dicts, YAML spelling) and tolerate wrong shapes,
which are the structural check's to report: where a list is expected and a string found,
there is simply nothing to check. ``{{...}}`` expressions are never checked. Every check
yields errors as "path: message" strings.
"""

import re
from collections.abc import Iterator, Mapping
from typing import Any

from service.argo import names
from service.argo.paths import child

TEMPLATE_TYPES = (
    "container",
    "containerSet",
    "script",
    "resource",
    "dag",
    "steps",
    "suspend",
    "data",
    "http",
    "plugin",
)
REFERENCE_FIELDS = ("template", "templateRef", "inline")
TASK_RESULTS = frozenset(
    {"Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed"}
)
CONCURRENCY_POLICIES = frozenset({"Allow", "Forbid", "Replace", ""})

# An operand of a DAG task's `depends` expression: "task" or "task.Result" (as Argo parses it).
_DEPENDS_OPERAND = re.compile(r"([a-zA-Z0-9][-a-zA-Z0-9]*?)\.([A-Z][a-zA-Z]+)|([a-zA-Z0-9][-a-zA-Z0-9]*)")


def _mapping(value: object) -> Mapping[str, Any]:
    """``value`` if it is an object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def _items(value: object) -> list[Any]:
    """``value`` if it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def _name(value: object) -> str | None:
    """The ``name`` of an object, if it has a string one."""
    name = _mapping(value).get("name")
    return name if isinstance(name, str) else None


# --- the document ------------------------------------------------------------------------


def manifest_errors(manifest: Mapping[str, Any]) -> Iterator[str]:
    """Semantic errors of a Workflow, (Cluster)WorkflowTemplate or CronWorkflow."""
    kind = str(manifest.get("kind"))
    yield from metadata_errors(kind, _mapping(manifest.get("metadata")), "metadata")
    spec, path = _mapping(manifest.get("spec")), "spec"
    if kind == "CronWorkflow":
        yield from _cron_errors(spec, path)
        spec, path = _mapping(spec.get("workflowSpec")), "spec.workflowSpec"
    yield from spec_errors(spec, path, entrypoint_required=kind in ("Workflow", "CronWorkflow"))


def metadata_errors(kind: str, metadata: Mapping[str, Any], path: str) -> Iterator[str]:
    """The object's name (or generateName), label keys and values, annotation keys."""
    name, prefix = metadata.get("name"), metadata.get("generateName")
    if not name and not prefix:
        yield f"{path}: name or generateName is required"
    if isinstance(name, str) and name and (problem := names.object_name_problem(kind, name)):
        yield f"{path}.name: {name!r} {problem}"
    if isinstance(prefix, str) and prefix and (problem := names.generate_name_problem(prefix)):
        yield f"{path}.generateName: {prefix!r} {problem}"
    yield from label_errors(metadata.get("labels"), f"{path}.labels", templated=False)
    yield from _annotation_errors(metadata.get("annotations"), f"{path}.annotations")


def label_errors(labels: object, path: str, *, templated: bool) -> Iterator[str]:
    """Kubernetes label rules; with ``templated``, values holding ``{{...}}`` are skipped."""
    for key, value in _mapping(labels).items():
        if isinstance(key, str) and (problem := names.label_key_problem(key)):
            yield f"{child(path, key)}: label key {key!r}: {problem}"
        if not isinstance(value, str) or (templated and names.is_templated(value)):
            continue
        if problem := names.label_value_problem(value):
            yield f"{child(path, key)}: label value {value!r} {problem}"


def _annotation_errors(annotations: object, path: str) -> Iterator[str]:
    """Annotation keys follow the label key rules (values are free)."""
    for key in _mapping(annotations):
        if isinstance(key, str) and (problem := names.label_key_problem(key)):
            yield f"{child(path, key)}: annotation key {key!r}: {problem}"


def _cron_errors(spec: Mapping[str, Any], path: str) -> Iterator[str]:
    """A CronWorkflow needs a schedule and a known concurrency policy."""
    if spec.get("schedules") == []:
        yield f"{path}.schedules: at least one schedule is required"
    policy = spec.get("concurrencyPolicy")
    if isinstance(policy, str) and policy not in CONCURRENCY_POLICIES:
        yield f"{path}.concurrencyPolicy: {policy!r} is not one of Allow, Forbid, Replace"


# --- the workflow spec ---------------------------------------------------------------------


def spec_errors(spec: Mapping[str, Any], path: str, *, entrypoint_required: bool) -> Iterator[str]:
    """Templates, the entrypoint, exit handler and hooks, and templated metadata."""
    templates = _items(spec.get("templates"))
    templates_path = f"{path}.templates"
    yield from template_list_errors(templates, templates_path)
    if spec.get("workflowTemplateRef") is not None:
        # Entrypoint, onExit and hooks may name templates of the referenced template.
        if templates:
            yield f"{templates_path}: must be empty when workflowTemplateRef is set"
    elif spec.get("templates") is None or isinstance(spec.get("templates"), list):
        # (A templates value of the wrong type is the structural check's: nothing to refer to.)
        defined = _defined_names(templates)
        yield from _entrypoint_errors(spec, path, defined, required=entrypoint_required)
        yield from _template_name_errors(spec.get("onExit"), f"{path}.onExit", defined)
        yield from _hooks_errors(spec.get("hooks"), f"{path}.hooks", defined)
    for field in ("workflowMetadata", "podMetadata"):
        labels = _mapping(spec.get(field)).get("labels")
        yield from label_errors(labels, f"{path}.{field}.labels", templated=True)


def _defined_names(templates: list[Any]) -> frozenset[str]:
    """The names of the templates in a list, the targets a reference may name."""
    return frozenset(name for template in templates if (name := _name(template)))


def _entrypoint_errors(
    spec: Mapping[str, Any], path: str, defined: frozenset[str], *, required: bool
) -> Iterator[str]:
    """The entrypoint names a template (a WorkflowTemplate may leave it out)."""
    entrypoint = spec.get("entrypoint")
    if entrypoint is None or entrypoint == "":
        if required:
            yield f"{path}.entrypoint: required (the name of the template to start with)"
        return
    yield from _template_name_errors(entrypoint, f"{path}.entrypoint", defined)


def _template_name_errors(name: object, path: str, defined: frozenset[str]) -> Iterator[str]:
    """A reference by name to a template of the same document."""
    if isinstance(name, str) and name and not names.is_templated(name) and name not in defined:
        yield f"{path}: no template named {name!r}"


def _hooks_errors(hooks: object, path: str, defined: frozenset[str]) -> Iterator[str]:
    """Lifecycle hooks: each names a template; all but "exit" need an expression."""
    for hook_name, hook in _mapping(hooks).items():
        hook_path = child(path, str(hook_name))
        hook = _mapping(hook)
        yield from _template_name_errors(hook.get("template"), f"{hook_path}.template", defined)
        if hook_name != "exit" and not hook.get("expression"):
            yield f"{hook_path}.expression: required for a hook other than 'exit'"


# --- templates -----------------------------------------------------------------------------


def template_list_errors(templates: list[Any], path: str) -> Iterator[str]:
    """A list of templates: unique valid names, and each template on its own."""
    defined = _defined_names(templates)
    seen: dict[str, str] = {}
    for index, template in enumerate(templates):
        template_path = child(path, index)
        if not isinstance(template, Mapping):
            continue
        yield from _unique_name_errors(template, template_path, "template", seen)
        yield from template_errors(template, template_path, defined)


def _unique_name_errors(item: Mapping[str, Any], path: str, what: str, seen: dict[str, str]) -> Iterator[str]:
    """``item`` has a valid name not used before (``seen`` maps names to their paths)."""
    name = item.get("name")
    if name is None or name == "":
        yield f"{path}.name: required"
        return
    if not isinstance(name, str):
        return
    if problem := names.field_name_problem(name):
        yield f"{path}.name: {what} name {name!r} {problem}"
    elif name in seen:
        yield f"{path}.name: duplicate {what} name {name!r} (also at {seen[name]})"
    else:
        seen[name] = path


def template_errors(template: Mapping[str, Any], path: str, defined: frozenset[str]) -> Iterator[str]:
    """One template: exactly one type; its steps or DAG; its pod labels."""
    kinds = [kind for kind in TEMPLATE_TYPES if template.get(kind) is not None]
    if not kinds:
        yield f"{path}: no template type; set exactly one of {', '.join(TEMPLATE_TYPES)}"
    elif len(kinds) > 1:
        yield f"{path}: several template types ({', '.join(kinds)}); set exactly one"
    dag = template.get("dag")
    if isinstance(dag, Mapping):
        yield from _dag_errors(dag, f"{path}.dag", defined)
    steps = template.get("steps")
    if isinstance(steps, list):
        yield from _steps_errors(steps, f"{path}.steps", defined)
    labels = _mapping(template.get("metadata")).get("labels")
    yield from label_errors(labels, f"{path}.metadata.labels", templated=True)


def _reference_errors(holder: Mapping[str, Any], path: str, defined: frozenset[str]) -> Iterator[str]:
    """A step or task runs exactly one of: a template by name, a templateRef, an inline one."""
    used = [field for field in REFERENCE_FIELDS if holder.get(field) not in (None, "")]
    if not used:
        yield f"{path}: set one of template, templateRef or inline"
    elif len(used) > 1:
        yield f"{path}: set only one of template, templateRef or inline (has {', '.join(used)})"
    yield from _template_name_errors(holder.get("template"), f"{path}.template", defined)
    ref = holder.get("templateRef")
    if isinstance(ref, Mapping):
        for field in ("name", "template"):
            if not ref.get(field):
                yield f"{path}.templateRef.{field}: required"
    inline = holder.get("inline")
    if isinstance(inline, Mapping):
        yield from template_errors(inline, f"{path}.inline", defined)
    yield from _template_name_errors(holder.get("onExit"), f"{path}.onExit", defined)
    yield from _hooks_errors(holder.get("hooks"), f"{path}.hooks", defined)


def _steps_errors(groups: list[Any], path: str, defined: frozenset[str]) -> Iterator[str]:
    """A steps template: step names unique across all groups; every step's reference."""
    seen: dict[str, str] = {}
    for group_index, group in enumerate(groups):
        for step_index, step in enumerate(_items(group)):
            if not isinstance(step, Mapping):
                continue
            step_path = child(child(path, group_index), step_index)
            yield from _unique_name_errors(step, step_path, "step", seen)
            yield from _reference_errors(step, step_path, defined)


# --- DAGs ----------------------------------------------------------------------------------


def _dag_errors(dag: Mapping[str, Any], path: str, defined: frozenset[str]) -> Iterator[str]:
    """A DAG: unique task names, references, known dependencies, no cycles, known targets."""
    tasks_path = f"{path}.tasks"
    if dag.get("tasks") is None or dag.get("tasks") == []:
        yield f"{tasks_path}: a DAG needs at least one task"
    tasks = [(child(tasks_path, i), task) for i, task in enumerate(_items(dag.get("tasks")))]
    tasks = [(task_path, task) for task_path, task in tasks if isinstance(task, Mapping)]
    seen: dict[str, str] = {}
    for task_path, task in tasks:
        yield from _unique_name_errors(task, task_path, "task", seen)
    known = frozenset(name for _, task in tasks if (name := _name(task)))
    uses_depends = any(task.get("depends") for _, task in tasks)
    graph: dict[str, list[str]] = {}
    for task_path, task in tasks:
        yield from _reference_errors(task, task_path, defined)
        yield from _dependency_style_errors(task, task_path, uses_depends)
        found: list[str] = []
        yield from _dependency_errors(task, task_path, known, found)
        name = _name(task)
        if name is not None and name not in graph:
            graph[name] = found
    if cycle := find_cycle(graph):
        yield f"{tasks_path}: dependency cycle: {' -> '.join(cycle)}"
    yield from _target_errors(dag.get("target"), f"{path}.target", known)


def _dependency_style_errors(task: Mapping[str, Any], path: str, uses_depends: bool) -> Iterator[str]:
    """Argo's rules for DAGs with dependencies: one style per DAG, no leading digit."""
    if uses_depends and task.get("dependencies"):
        yield f"{path}: cannot use both 'depends' and 'dependencies' in one DAG"
    name = _name(task)
    if name and name[0].isdigit() and (uses_depends or task.get("dependencies")):
        yield f"{path}.name: {name!r} cannot start with a digit in a DAG with dependencies"


def _dependency_errors(
    task: Mapping[str, Any], path: str, known: frozenset[str], found: list[str]
) -> Iterator[str]:
    """Tasks named in ``dependencies`` and ``depends`` exist; appends them to ``found``."""
    for index, dependency in enumerate(_items(task.get("dependencies"))):
        if not isinstance(dependency, str):
            continue
        if dependency in known:
            found.append(dependency)
        else:
            yield f"{path}.dependencies[{index}]: no task named {dependency!r} in this DAG"
    depends = task.get("depends")
    if not isinstance(depends, str) or names.is_templated(depends):
        return
    for dependency, result in parse_depends(depends):
        if dependency not in known:
            yield f"{path}.depends: no task named {dependency!r} in this DAG"
        elif result is not None and result not in TASK_RESULTS:
            yield f"{path}.depends: {dependency}.{result}: unknown task result {result!r}"
        else:
            found.append(dependency)


def parse_depends(expression: str) -> list[tuple[str, str | None]]:
    """The (task, result or None) operands of a ``depends`` expression, as Argo reads them."""
    operands: list[tuple[str, str | None]] = []
    for match in _DEPENDS_OPERAND.finditer(expression):
        if match.group(1):
            operands.append((match.group(1), match.group(2)))
        else:
            operands.append((match.group(3), None))
    return operands


def _target_errors(target: object, path: str, known: frozenset[str]) -> Iterator[str]:
    """``target`` names (space-separated) tasks of the DAG."""
    if not isinstance(target, str):
        return
    for name in target.split():
        if not names.is_templated(name) and name not in known:
            yield f"{path}: no task named {name!r} in this DAG"


def find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """A dependency cycle as [a, b, ..., a] (a depends on b ...), or None; iterative DFS."""
    state: dict[str, bool] = {}  # False: on the current path; True: fully explored
    for root in graph:
        if root in state:
            continue
        state[root] = False
        path = [root]
        stack = [iter(graph.get(root, ()))]
        while stack:
            for dependency in stack[-1]:
                if dependency not in state:
                    state[dependency] = False
                    path.append(dependency)
                    stack.append(iter(graph.get(dependency, ())))
                    break
                if state[dependency] is False:
                    return [*path[path.index(dependency) :], dependency]
            else:
                state[path.pop()] = True
                stack.pop()
    return None
