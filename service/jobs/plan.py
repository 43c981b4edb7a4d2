"""From a triggered job file to a :class:`WorkflowPlan`: everything the compiler needs, resolved.

Pure. The plan fixes names (deterministic: run id + commit), images, timeouts, environment and
DAG dependencies; the service config (not the job file) gives namespace and service account.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from service.events import Event
from service.jobs.matcher import Decision
from service.jobs.model import JobFile

LABEL_PREFIX = "forgeflow.dev"
MANAGED_BY = ("app.kubernetes.io/managed-by", "forgeflow")


@dataclass(frozen=True)
class PlanOptions:
    """Service-side choices: where and how workflows run."""

    namespace: str
    service_account: str
    default_image: str
    default_timeout_seconds: int
    ttl_seconds: int
    run_url: str  # the run's page, for FORGEFLOW_RUN_URL and annotations


@dataclass(frozen=True)
class TaskPlan:
    """One DAG task: one job (or matrix cell), one pod running its steps in order."""

    task: str
    job: str
    context: str
    image: str
    steps: tuple[tuple[str, str], ...]  # (name, script)
    env: tuple[tuple[str, str], ...]
    timeout_seconds: int
    dependencies: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkflowPlan:
    name: str
    namespace: str
    service_account: str
    ttl_seconds: int
    clone_url: str
    sha: str
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]
    event_env: tuple[tuple[str, str], ...]
    tasks: tuple[TaskPlan, ...]


def task_name(job: str, taken: set[str]) -> str:
    """A DNS-safe DAG task name for a job, unique within the run."""
    base = re.sub(r"[^a-z0-9-]+", "-", job.lower()).strip("-")[:50] or "job"
    name = base
    counter = 2
    while name in taken:
        name = f"{base}-{counter}"
        counter += 1
    taken.add(name)
    return name


def label_value(text: str) -> str:
    """A valid Kubernetes label value (≤ 63, alnum at both ends) that stays recognisable."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", ".", text).strip("._-")
    if len(value) > 63:
        digest = hashlib.sha256(text.encode()).hexdigest()[:10]
        value = value[:52].rstrip("._-") + "-" + digest
    return value


def step_title(script: str) -> str:
    """An unnamed step is called by its first line, like ``pip install -e .``."""
    first = next((line.strip() for line in script.splitlines() if line.strip()), "step")
    return first if len(first) <= 60 else first[:57] + "..."


def workflow_name(run_id: int, sha: str) -> str:
    return f"forgeflow-{run_id}-{sha[:7]}"


def event_environment(event: Event, run_id: int, run_url: str) -> tuple[tuple[str, str], ...]:
    """Event data for steps: only ever through environment variables, never in scripts."""
    pr = event.pull_request
    values: list[tuple[str, str]] = [
        ("CI", "true"),
        ("FORGEFLOW", "true"),
        ("FORGEFLOW_RUN_ID", str(run_id)),
        ("FORGEFLOW_RUN_URL", run_url),
        ("FORGEFLOW_FORGE", event.forge),
        ("FORGEFLOW_REPO", event.repository.full_name),
        ("FORGEFLOW_CLONE_URL", source_clone_url(event)),
        ("FORGEFLOW_EVENT", event.kind.value),
        ("FORGEFLOW_ACTION", event.action),
        ("FORGEFLOW_SHA", event.sha),
        ("FORGEFLOW_REF", event.ref),
        ("FORGEFLOW_BRANCH", event.branch),
        ("FORGEFLOW_TAG", event.tag),
        ("FORGEFLOW_BEFORE", event.before),
        ("FORGEFLOW_SENDER", event.sender),
    ]
    if pr is not None:
        values += [
            ("FORGEFLOW_PR_NUMBER", str(pr.number)),
            ("FORGEFLOW_PR_TITLE", pr.title),
            ("FORGEFLOW_PR_AUTHOR", pr.author),
            ("FORGEFLOW_PR_SOURCE_BRANCH", pr.source_branch),
            ("FORGEFLOW_PR_TARGET_BRANCH", pr.target_branch),
            ("FORGEFLOW_PR_FORK", "true" if pr.fork else "false"),
        ]
    return tuple(values)


def source_clone_url(event: Event) -> str:
    """Where the commit lives: a pull request's source repository (maybe a fork)."""
    pr = event.pull_request
    if pr is not None and pr.source_repo is not None and pr.source_repo.clone_url:
        return pr.source_repo.clone_url
    return event.repository.clone_url


def plan_workflow(
    run_id: int,
    event: Event,
    job_file: JobFile,
    decisions: Sequence[Decision],
    options: PlanOptions,
) -> WorkflowPlan:
    """The plan for the jobs ``decisions`` matched; ``needs`` on jobs not in the run are dropped."""
    chosen = [d.job for d in decisions if d.matched]
    taken: set[str] = set()
    tasks_of = {job: task_name(job, taken) for job in chosen}
    defaults = job_file.defaults
    tasks = []
    for job_name in chosen:
        job = job_file.jobs[job_name]
        env = {**defaults.env, **job.env}
        tasks.append(
            TaskPlan(
                task=tasks_of[job_name],
                job=job_name,
                context=f"forgeflow/{job_name}",
                image=job.image or defaults.image or options.default_image,
                steps=tuple((step.name or step_title(step.run), step.run) for step in job.steps),
                env=tuple(sorted(env.items())),
                timeout_seconds=job.timeout or defaults.timeout or options.default_timeout_seconds,
                dependencies=tuple(tasks_of[n] for n in job.needs if n in tasks_of),
            )
        )
    return WorkflowPlan(
        name=workflow_name(run_id, event.sha),
        namespace=options.namespace,
        service_account=options.service_account,
        ttl_seconds=options.ttl_seconds,
        clone_url=source_clone_url(event),
        sha=event.sha,
        labels=(
            MANAGED_BY,
            (f"{LABEL_PREFIX}/run", str(run_id)),
            (f"{LABEL_PREFIX}/forge", label_value(event.forge)),
            (f"{LABEL_PREFIX}/repo", label_value(event.repository.full_name)),
            (f"{LABEL_PREFIX}/sha", event.sha),
            *(((f"{LABEL_PREFIX}/pr", str(event.pull_request.number)),) if event.pull_request else ()),
        ),
        annotations=(
            (f"{LABEL_PREFIX}/repo", event.repository.full_name),
            (f"{LABEL_PREFIX}/event", event.describe()),
            (f"{LABEL_PREFIX}/run-url", options.run_url),
        ),
        event_env=event_environment(event, run_id, options.run_url),
        tasks=tuple(tasks),
    )
