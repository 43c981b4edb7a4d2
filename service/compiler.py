"""Compile a :class:`WorkflowPlan` into an Argo ``Workflow`` manifest. Pure; golden-tested.

The Workflow is one DAG with one task per job. Each task is a container template that fetches
the source as an Argo git input artifact at the exact commit and runs the job's steps in order
through a fixed driver script: the steps are passed as arguments (``sh -c DRIVER forgeflow
NAME1 SCRIPT1 NAME2 SCRIPT2 ...``) and event data only as environment variables, so nothing a
forge user controls is ever spliced into a script.
"""

from __future__ import annotations

from typing import Any

from service.jobs.plan import LABEL_PREFIX, TaskPlan, WorkflowPlan

SOURCE_PATH = "/workspace/source"
ENTRYPOINT = "main"
# Extra time for the whole workflow beyond its longest chain of job timeouts (pod scheduling,
# image pulls, git clone).
DEADLINE_SLACK_SECONDS = 600

DRIVER = r"""n=0
while [ "$#" -ge 2 ]; do
  n=$((n + 1)); name=$1; script=$2; shift 2
  printf '==> %s\n' "$name"
  sh -e -c "$script" || {
    rc=$?
    printf "::forgeflow-failed::step '%s' failed with exit code %s\n" "$name" "$rc"
    exit "$rc"
  }
done
"""

Manifest = dict[str, Any]


def _env(pairs: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in pairs]


def task_template(task: TaskPlan, plan: WorkflowPlan) -> Manifest:
    """The container template that runs one job's steps."""
    args = [DRIVER, "forgeflow"]
    for name, script in task.steps:
        args += [name, script]
    env = (
        *plan.event_env,
        ("FORGEFLOW_JOB", task.job),
        ("FORGEFLOW_CONTEXT", task.context),
        *task.env,
    )
    return {
        "name": task.task,
        "metadata": {"labels": {f"{LABEL_PREFIX}/task": task.task}},
        "activeDeadlineSeconds": task.timeout_seconds,
        "inputs": {
            "artifacts": [
                {
                    "name": "source",
                    "path": SOURCE_PATH,
                    "git": {"repo": plan.clone_url, "revision": plan.sha},
                }
            ]
        },
        "container": {
            "image": task.image,
            "command": ["sh", "-c"],
            "args": args,
            "workingDir": SOURCE_PATH,
            "env": _env(env),
        },
    }


def critical_path_seconds(tasks: tuple[TaskPlan, ...]) -> int:
    """The longest chain of job timeouts through the DAG."""
    by_name = {t.task: t for t in tasks}
    memo: dict[str, int] = {}

    def longest(name: str) -> int:
        if name not in memo:
            task = by_name[name]
            memo[name] = task.timeout_seconds + max(
                (longest(d) for d in task.dependencies if d in by_name), default=0
            )
        return memo[name]

    return max((longest(t.task) for t in tasks), default=0)


def compile_workflow(plan: WorkflowPlan) -> Manifest:
    """The Argo Workflow for ``plan``."""
    dag_tasks: list[Manifest] = []
    for task in plan.tasks:
        entry: Manifest = {"name": task.task, "template": task.task}
        if task.dependencies:
            entry["dependencies"] = list(task.dependencies)
        dag_tasks.append(entry)
    # Independent jobs all run even when one fails (Argo's default failFast would stop them).
    templates: list[Manifest] = [{"name": ENTRYPOINT, "dag": {"failFast": False, "tasks": dag_tasks}}]
    templates += [task_template(task, plan) for task in plan.tasks]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": plan.name,
            "namespace": plan.namespace,
            "labels": dict(plan.labels),
            "annotations": dict(plan.annotations),
        },
        "spec": {
            "entrypoint": ENTRYPOINT,
            "serviceAccountName": plan.service_account,
            "activeDeadlineSeconds": critical_path_seconds(plan.tasks) + DEADLINE_SLACK_SECONDS,
            "ttlStrategy": {"secondsAfterCompletion": plan.ttl_seconds},
            "podGC": {"strategy": "OnWorkflowCompletion"},
            "templates": templates,
        },
    }
