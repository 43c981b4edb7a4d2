"""A Workflow's DAG as forgeflow reads it back: which task needs which. Pure.

The run pages draw it (:mod:`service.web.graph`) and the job states name a failed need from it
(:mod:`service.runs.node_states`); both read the Workflow's own spec, so what they show is what
Argo runs.
"""

from __future__ import annotations

from typing import Any


def _dag_dependencies(task: dict[str, Any]) -> list[str]:
    deps = list(task.get("dependencies") or [])
    depends = task.get("depends")
    if isinstance(depends, str):
        deps += [
            part.strip().split(".")[0]
            for part in depends.replace("(", " ").replace(")", " ").replace("||", "&&").split("&&")
            if part.strip()
        ]
    return deps


def dependencies_of(workflow: dict[str, Any]) -> dict[str, list[str]]:
    """Each DAG task's dependencies, read from the Workflow's own spec, keyed by task path
    (tasks of nested DAG templates too, their dependencies as paths)."""
    spec = workflow.get("spec") or {}
    templates = {t.get("name"): t for t in spec.get("templates") or [] if isinstance(t, dict)}
    result: dict[str, list[str]] = {}

    def walk(template_name: Any, prefix: str, depth: int) -> None:
        template = templates.get(template_name)
        if template is None or depth > 5 or not isinstance(template.get("dag"), dict):
            return
        for task in template["dag"].get("tasks") or []:
            path = f"{prefix}{task.get('name')}"
            result[path] = [f"{prefix}{dep}" for dep in _dag_dependencies(task)]
            walk(task.get("template"), f"{path}.", depth + 1)

    walk(spec.get("entrypoint"), "", 0)
    return result
