"""The container template of one steps job (or matrix cell): checkout, steps, env, options."""

from __future__ import annotations

from typing import Any

from service.compiler import handoff
from service.compiler.escape import DRIVER, MASKING_DRIVER, environment, step_argument
from service.jobs.plan import LABEL_PREFIX, RetryPlan, TaskPlan, WorkflowPlan

SOURCE_PATH = "/workspace/source"
SECRETS_PATH = "/var/run/forgeflow/secrets"  # granted Secrets, read by the driver to mask them
MASK_DIR_ENV = "FORGEFLOW_MASK_DIR"
# a job's `artifacts` are deleted from the artifact repository with the Workflow, which its TTL
# (workflow_ttl_seconds) deletes; caches (key-only s3 artifacts) are not collected
ARTIFACT_GC_STRATEGY = "OnWorkflowDeletion"
Manifest = dict[str, Any]


def container_security(plan: WorkflowPlan) -> Manifest | None:
    """A job container's securityContext: the "restricted" Pod Security profile's (no
    privilege escalation, every capability dropped), or none when the policy relaxes it."""
    if plan.pod_security != "restricted":
        return None
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


CONTAINER_LISTS = ("sidecars", "initContainers")


def secured(template: Manifest, security: Manifest | None) -> Manifest:
    """A raw template whose containers (main, sidecars, init containers, container sets) get
    the plan's container securityContext where they do not say otherwise (the fence refused
    what would break it)."""
    if security is None:
        return template

    def secure(container: Any) -> Any:
        if not isinstance(container, dict):
            return container
        own = dict(container.get("securityContext") or {})
        own.setdefault("allowPrivilegeEscalation", security["allowPrivilegeEscalation"])
        capabilities = dict(own.get("capabilities") or {})
        capabilities.setdefault("drop", list(security["capabilities"]["drop"]))
        own["capabilities"] = capabilities
        return {**container, "securityContext": own}

    copy = dict(template)
    for key in ("container", "script"):
        if key in copy:
            copy[key] = secure(copy[key])
    for key in CONTAINER_LISTS:
        if isinstance(copy.get(key), list):
            copy[key] = [secure(c) for c in copy[key]]
    container_set = copy.get("containerSet")
    if isinstance(container_set, dict) and isinstance(container_set.get("containers"), list):
        copy["containerSet"] = {
            **container_set,
            "containers": [secure(c) for c in container_set["containers"]],
        }
    return copy


def pod_security(plan: WorkflowPlan) -> Manifest:
    """The Workflow's pod securityContext: RuntimeDefault seccomp always; non-root (as
    ``run_as_user`` unless the platform picks the user) under the "restricted" profile."""
    context: Manifest = {}
    if plan.pod_security == "restricted":
        context["runAsNonRoot"] = True
        if plan.run_as_user:
            context["runAsUser"] = plan.run_as_user
    context["seccompProfile"] = {"type": "RuntimeDefault"}
    return context


def source_artifact(plan: WorkflowPlan) -> Manifest:
    """The git checkout at the exact commit; with the run's own credentials Secret for a
    private repository (the token itself is never in the manifest)."""
    git: Manifest = {"repo": plan.clone_url, "revision": plan.sha}
    if plan.checkout_secret:
        git["usernameSecret"] = {"name": plan.checkout_secret, "key": "username"}
        git["passwordSecret"] = {"name": plan.checkout_secret, "key": "password"}
    return {"name": "source", "path": SOURCE_PATH, "git": git}


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
    args = [MASKING_DRIVER if task.secrets else DRIVER, "forgeflow"]
    for step_name, script in handoff.steps(task.handoff, task.steps):
        args += [step_argument(step_name), step_argument(script)]
    env = [
        *plan.event_env,
        ("FORGEFLOW_JOB", task.job),
        ("FORGEFLOW_CONTEXT", task.context),
        *handoff.environment(task.handoff),
        *task.env,
    ]
    if task.secrets:
        env.append((MASK_DIR_ENV, SECRETS_PATH))
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
        container["volumeMounts"] = [
            {"name": f"secret-{i}", "mountPath": f"{SECRETS_PATH}/{secret}", "readOnly": True}
            for i, secret in enumerate(task.secrets)
        ]
    if resources := _resources(task):
        container["resources"] = resources
    if security := container_security(plan):
        container["securityContext"] = security
    template: Manifest = {
        "name": name,
        "metadata": {"labels": {f"{LABEL_PREFIX}/task": task.task}},
        "activeDeadlineSeconds": task.timeout_seconds,
    }
    if task.retries is not None:
        template["retryStrategy"] = retry_strategy(task.retries)
    template["inputs"] = {"artifacts": [source_artifact(plan)]}
    if task.artifacts:
        # kept in the workflow's artifact repository (Argo needs one configured); a path the
        # job did not produce is not an error. Argo deletes them with the Workflow (its TTL)
        template["outputs"] = {
            "artifacts": [
                {
                    "name": artifact,
                    "path": f"{SOURCE_PATH}/{path}",
                    "optional": True,
                    "artifactGC": {"strategy": ARTIFACT_GC_STRATEGY},
                }
                for artifact, path in task.artifacts
            ]
        }
    if task.secrets:
        template["volumes"] = [
            {"name": f"secret-{i}", "secret": {"secretName": secret}} for i, secret in enumerate(task.secrets)
        ]
    template["container"] = container
    handoff.template_fields(template, task)
    return secured(template, container_security(plan))  # service sidecars too
