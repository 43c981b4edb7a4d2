"""The Workflow: one DAG (``main``) with one task per job, failFast off so independent jobs
all run.

- A steps job is a container template (:mod:`.pods`) that fetches the source as an Argo git
  input artifact at the exact commit and runs the steps through a fixed driver script: steps
  are arguments and event data only environment variables, so nothing a forge user controls
  is ever spliced into a script (and ``{{`` is escaped, see :mod:`.escape`).
- A matrix job is a task running a nested DAG template with one task per cell, with its own
  ``failFast`` (the job's ``fail-fast``) and ``parallelism`` (``max-parallel``): a failing cell
  stops the start of its siblings only, and a job that needs the matrix job waits for all cells.
- A raw Argo job's templates are included with names prefixed by its task; the task runs its
  entry template. A workflowTemplate job is a ``templateRef`` task. Both get the job's
  ``arguments`` as parameters.
- A job's ``artifacts`` go when the Workflow goes (``artifactGC``, see :func:`artifact_gc`);
  what raw Argo and WorkflowTemplates keep is theirs to decide.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

from service.compiler.handoff import group_inputs, task_fields
from service.compiler.pods import container_security, pod_security, pod_template, secured
from service.jobs.plan import RawArgo, TaskPlan, WorkflowPlan

ENTRYPOINT = "main"
# Extra time for the whole workflow beyond its longest chain of job timeouts (pod scheduling,
# image pulls, git clone).
DEADLINE_SLACK_SECONDS = 600
POD_GC_DELAY = "60s"  # how long finished pods stay for their logs to be copied
REFERENCES = ("template", "onExit")

Manifest = dict[str, Any]


class _Names:
    """Template names, unique within the Workflow."""

    def __init__(self, taken: list[str]) -> None:
        self.taken = set(taken)

    def unique(self, wanted: str) -> str:
        base = re.sub(r"[^a-z0-9-]+", "-", wanted.lower()).strip("-")[:120] or "template"
        name, counter = base, 2
        while name in self.taken:
            name, counter = f"{base}-{counter}", counter + 1
        self.taken.add(name)
        return name


def _rename_references(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every template reference (task/step ``template``, ``onExit``, hooks) renamed."""
    if isinstance(value, list):
        return [_rename_references(item, names) for item in value]
    if not isinstance(value, dict):
        return value
    result = {}
    for key, item in value.items():
        if key in REFERENCES and isinstance(item, str) and item in names:
            result[key] = names[item]
        elif key in ("container", "script", "inline", "resource", "templateRef"):
            result[key] = item  # no references to our templates below these
        else:
            result[key] = _rename_references(item, names)
    return result


def _raw_templates(
    raw: RawArgo, names: _Names, security: Manifest | None
) -> tuple[dict[str, str], list[Manifest]]:
    renamed = {str(t["name"]): names.unique(f"{raw.task}-{t['name']}") for t in raw.templates}
    templates = []
    for template in raw.templates:
        copy = _rename_references(dict(template), renamed)
        copy["name"] = renamed[str(template["name"])]
        templates.append(secured(copy, security))
    return renamed, templates


def _dag_task(task: TaskPlan, template: str | None, dependencies: tuple[str, ...]) -> Manifest:
    entry: Manifest = {"name": task.name}
    if task.template_ref is not None:
        name, entry_template, cluster = task.template_ref
        ref: Manifest = {"name": name, "template": entry_template}
        if cluster:
            ref["clusterScope"] = True
        entry["templateRef"] = ref
    else:
        entry["template"] = template
    if dependencies:
        entry["dependencies"] = list(dependencies)
    if task.arguments:
        entry["arguments"] = {"parameters": [{"name": k, "value": v} for k, v in task.arguments]}
    # needs' outputs and artifacts reach only steps jobs (argo: jobs have their own templates)
    handoff = task.handoff if task.kind == "steps" else replace(task.handoff, inputs=())
    task_fields(entry, handoff, nested=bool(task.group))
    return entry


def _task_seconds(task: TaskPlan) -> int:
    if task.retries is None:
        return task.timeout_seconds
    return task.retries.worst_case_seconds(task.timeout_seconds)


def critical_path_seconds(plan: WorkflowPlan) -> int:
    """The longest chain of job timeouts (retries included) through the main DAG."""
    groups = {g.task: g for g in plan.groups}
    own: dict[str, int] = {}
    deps: dict[str, tuple[str, ...]] = {}
    for task in plan.tasks:
        if not task.group:
            own[task.task], deps[task.task] = _task_seconds(task), task.dependencies
    for name, group in groups.items():
        cells = [_task_seconds(t) for t in plan.tasks if t.group == name]
        waves = math.ceil(len(cells) / group.max_parallel) if group.max_parallel else 1
        own[name], deps[name] = waves * max(cells, default=0), group.dependencies
    memo: dict[str, int] = {}

    def longest(name: str) -> int:
        if name not in memo:
            memo[name] = own[name] + max((longest(d) for d in deps[name] if d in own), default=0)
        return memo[name]

    return max((longest(name) for name in own), default=0)


def _one_dependency_form(tasks: list[Manifest]) -> None:
    """Argo refuses ``depends`` and ``dependencies`` in one DAG: once a task has ``depends``,
    the others' ``dependencies: [a, b]`` become ``depends: "a && b"`` (the same meaning: Argo
    expands a bare name to Succeeded, Skipped or Daemoned, and Failed/Errored on continueOn)."""
    if not any("depends" in t for t in tasks):
        return
    for task in tasks:
        if "dependencies" in task:
            names = task.pop("dependencies")
            task["depends"] = " && ".join(names)


def artifact_gc(plan: WorkflowPlan) -> Manifest:
    """Who deletes the jobs' artifacts when Argo deletes the Workflow (each artifact names the
    strategy): Argo's GC pod runs as the Workflow's own account (without one it would be the
    namespace's ``default``), and a failed deletion does not keep the Workflow from going."""
    return {"serviceAccountName": plan.service_account, "forceFinalizerRemoval": True}


def compile_workflow(plan: WorkflowPlan) -> Manifest:
    """The Argo Workflow for ``plan``."""
    main_names = plan.main_tasks()
    names = _Names(main_names)
    entries: dict[str, dict[str, str]] = {}
    raw_templates: list[Manifest] = []
    for raw in plan.argo:
        renamed, own = _raw_templates(raw, names, container_security(plan))
        entries[raw.task] = renamed
        raw_templates += own
    groups = {g.task: g for g in plan.groups}
    dag_tasks: list[Manifest] = []
    templates: list[Manifest] = []

    def unit(task: TaskPlan, template_name: str, dependencies: tuple[str, ...]) -> Manifest:
        if task.kind == "steps":
            templates.append(pod_template(template_name, task, plan))
            return _dag_task(task, template_name, dependencies)
        if task.kind == "argo":
            return _dag_task(task, entries[task.group or task.task][task.argo_entry], dependencies)
        return _dag_task(task, None, dependencies)

    for main in main_names:
        group = groups.get(main)
        if group is None:
            task = next(t for t in plan.tasks if t.task == main)
            dag_tasks.append(unit(task, main, task.dependencies))
            continue
        entry: Manifest = {"name": main, "template": main}
        if group.dependencies:
            entry["dependencies"] = list(group.dependencies)
        task_fields(entry, group.handoff, nested=False)
        dag_tasks.append(entry)
        nested: Manifest = {"name": main}
        group_inputs(nested, group.handoff)
        if group.max_parallel:
            nested["parallelism"] = group.max_parallel
        templates.append(nested)
        cells = [unit(t, names.unique(f"{main}-{t.name}"), ()) for t in plan.tasks if t.group == main]
        nested["dag"] = {"failFast": group.fail_fast, "tasks": cells}
    _one_dependency_form(dag_tasks)
    # Independent jobs all run even when one fails (Argo's default failFast would stop them).
    main_template: Manifest = {"name": ENTRYPOINT, "dag": {"failFast": False, "tasks": dag_tasks}}
    spec: Manifest = {
        "entrypoint": ENTRYPOINT,
        "serviceAccountName": plan.service_account,
        "securityContext": pod_security(plan),
        "activeDeadlineSeconds": critical_path_seconds(plan) + DEADLINE_SLACK_SECONDS,
        "ttlStrategy": {"secondsAfterCompletion": plan.ttl_seconds},
        # pods go when the Workflow ends, after a delay (Argo 3.5+; its default is 5 s) in
        # which the watcher copies the last jobs' logs even when it runs behind
        "podGC": {"strategy": "OnWorkflowCompletion", "deleteDelayDuration": POD_GC_DELAY},
        "templates": [main_template, *templates, *raw_templates],
    }
    if plan.artifact_repository:
        config_map, _, key = plan.artifact_repository.partition("/")
        spec["artifactRepositoryRef"] = {"configMap": config_map, "key": key}
    if any(t.kind == "steps" and t.artifacts for t in plan.tasks):
        spec["artifactGC"] = artifact_gc(plan)
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": plan.name,
            "namespace": plan.namespace,
            "labels": dict(plan.labels),
            "annotations": dict(plan.annotations),
        },
        "spec": spec,
    }
