"""The container template of one steps job (or matrix cell): checkout, steps, env, options."""

from __future__ import annotations

from typing import Any

from service.compiler import handoff
from service.compiler.escape import DRIVER, environment, step_argument
from service.jobs.plan import LABEL_PREFIX, RetryPlan, TaskPlan, WorkflowPlan

SOURCE_PATH = "/workspace/source"
Manifest = dict[str, Any]


def retry_strategy(retries: RetryPlan) -> Manifest:
    """Argo's retryStrategy: ``limit`` retries after the first attempt, exponential backoff."""
    return {
        "limit": retries.limit,
        "retryPolicy": retries.policy,
        "backoff": {
            "duration": f"{retries.backoff_seconds}s",
            "factor": retries.factor,
            "cap": f"{retries.max_backoff_seconds}s",
        },
    }


def _resources(task: TaskPlan) -> Manifest:
    resources: Manifest = {}
    if task.requests:
        resources["requests"] = dict(task.requests)
    if task.limits:
        resources["limits"] = dict(task.limits)
    return resources


def pod_template(name: str, task: TaskPlan, plan: WorkflowPlan) -> Manifest:
    """The container template that runs one job's steps, named ``name``."""
    args = [DRIVER, "forgeflow"]
    for step_name, script in handoff.steps(task.handoff, task.steps):
        args += [step_argument(step_name), step_argument(script)]
    env = [
        *plan.event_env,
        ("FORGEFLOW_JOB", task.job),
        ("FORGEFLOW_CONTEXT", task.context),
        *handoff.environment(task.handoff),
        *task.env,
    ]
    container: Manifest = {
        "image": task.image,
        "command": ["sh", "-c"],
        "args": args,
        "workingDir": SOURCE_PATH,
        # values read from needs' outputs are Argo parameters, filled in when the job starts
        "env": environment(env) + [{"name": k, "value": v} for k, v in task.handoff.output_env],
    }
    if task.secrets:
        container["envFrom"] = [{"secretRef": {"name": secret}} for secret in task.secrets]
    if resources := _resources(task):
        container["resources"] = resources
    template: Manifest = {
        "name": name,
        "metadata": {"labels": {f"{LABEL_PREFIX}/task": task.task}},
        "activeDeadlineSeconds": task.timeout_seconds,
    }
    if task.retries is not None:
        template["retryStrategy"] = retry_strategy(task.retries)
    template["inputs"] = {
        "artifacts": [
            {
                "name": "source",
                "path": SOURCE_PATH,
                "git": {"repo": plan.clone_url, "revision": plan.sha},
            }
        ]
    }
    if task.artifacts:
        # kept in the workflow's artifact repository (Argo needs one configured); a path the
        # job did not produce is not an error
        template["outputs"] = {
            "artifacts": [
                {"name": artifact, "path": f"{SOURCE_PATH}/{path}", "optional": True}
                for artifact, path in task.artifacts
            ]
        }
    template["container"] = container
    handoff.template_fields(template, task)
    return template
