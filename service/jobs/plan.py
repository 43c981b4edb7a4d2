"""From a triggered job file to a :class:`WorkflowPlan`: everything the compiler needs, resolved.

Pure. The plan fixes images, timeouts, environment, matrix cells and DAG dependencies; the
service config (not the job file) gives namespace, service account and whether secrets may be
used. A run is planned before it is recorded: :func:`bind_run` then gives the plan its run's id
(the Workflow's deterministic name, run id + commit, its run label and link, and the
``FORGEFLOW_RUN_ID``/``FORGEFLOW_RUN_URL`` variables). Per-job details live in :mod:`units`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from service.events import Event, EventKind
from service.jobs.errors import ConfigProblem, JobFileError, dotted
from service.jobs.expressions import ExpressionError, event_context, interpolate, manual_inputs, text_value
from service.jobs.matcher import Decision
from service.jobs.model import JobFile
from service.jobs.plan_types import (
    LABEL_PREFIX,
    MANAGED_BY,
    RUN_LABEL,
    GroupPlan,
    Pairs,
    PlanOptions,
    RawArgo,
    RefusedJob,
    RetryPlan,
    TaskPlan,
    WorkflowPlan,
)
from service.jobs.units import build_units, step_title, task_name

__all__ = [
    "LABEL_PREFIX",
    "MANAGED_BY",
    "RUN_LABEL",
    "GroupPlan",
    "Pairs",
    "PlanOptions",
    "RawArgo",
    "RefusedJob",
    "RetryPlan",
    "TaskPlan",
    "WorkflowPlan",
    "bind_run",
    "checkout_secret_name",
    "event_environment",
    "label_value",
    "plan_workflow",
    "source_clone_url",
    "step_title",
    "task_name",
    "workflow_name",
]


def label_value(text: str) -> str:
    """A valid Kubernetes label value (≤ 63, alnum at both ends) that stays recognisable."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", ".", text).strip("._-")
    if len(value) > 63:
        digest = hashlib.sha256(text.encode()).hexdigest()[:10]
        value = value[:52].rstrip("._-") + "-" + digest
    return value


def workflow_name(run_id: int, sha: str) -> str:
    return f"forgeflow-{run_id}-{sha[:7]}"


CHECKOUT_SECRET_SUFFIX = "-checkout"  # noqa: S105 (a name, not a password)


def checkout_secret_name(workflow: str) -> str:
    """The run's own Secret with the checkout's credentials (made when it is submitted)."""
    return workflow + CHECKOUT_SECRET_SUFFIX


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
    if event.kind is EventKind.SCHEDULE:
        values.append(("FORGEFLOW_SCHEDULE", event.extra.get("schedule", "")))
    for name, value in sorted(manual_inputs(event).items()):  # validated when the run was asked for
        values.append((input_variable(name), text_value(value)))
    return tuple(values)


def input_variable(name: str) -> str:
    """``FORGEFLOW_INPUT_TARGET`` for the manual input ``target``."""
    return "FORGEFLOW_INPUT_" + re.sub(r"[^A-Za-z0-9_]", "_", name).upper()


def source_clone_url(event: Event) -> str:
    """Where the commit lives: a pull request's source repository (maybe a fork)."""
    pr = event.pull_request
    if pr is not None and pr.source_repo is not None and pr.source_repo.clone_url:
        return pr.source_repo.clone_url
    return event.repository.clone_url


RUN_URL_ANNOTATION = f"{LABEL_PREFIX}/run-url"
UNBOUND = 0  # the run id of a plan not bound to a run yet


def plan_workflow(
    event: Event,
    job_file: JobFile,
    decisions: Sequence[Decision],
    options: PlanOptions,
) -> WorkflowPlan:
    """The plan for the jobs ``decisions`` matched; a job whose need is not in the run is
    skipped (unless the need is optional or its ``if:`` runs without it, see :mod:`flow`).
    Not bound to a run yet (see :func:`bind_run`).

    Raises :class:`JobFileError` for what only the event or the service config reveal: a
    secret the service config forbids, an argument or concurrency group that fails to evaluate.
    """
    run_id, run_url = UNBOUND, ""
    chosen = [d.job for d in decisions if d.matched]
    units = build_units(event, job_file, chosen, options, decisions)
    concurrency_group, cancel = _concurrency(event, job_file)
    return WorkflowPlan(
        name=workflow_name(run_id, event.sha),
        namespace=options.namespace,
        service_account=options.service_account,
        ttl_seconds=options.ttl_seconds,
        clone_url=source_clone_url(event),
        sha=event.sha,
        labels=(
            MANAGED_BY,
            (RUN_LABEL, str(run_id)),
            (f"{LABEL_PREFIX}/forge", label_value(event.forge)),
            (f"{LABEL_PREFIX}/repo", label_value(event.repository.full_name)),
            (f"{LABEL_PREFIX}/sha", event.sha),
            *(((f"{LABEL_PREFIX}/pr", str(event.pull_request.number)),) if event.pull_request else ()),
        ),
        annotations=(
            (f"{LABEL_PREFIX}/repo", event.repository.full_name),
            (f"{LABEL_PREFIX}/event", event.describe()),
            (RUN_URL_ANNOTATION, run_url),
        ),
        event_env=event_environment(event, run_id, run_url),
        tasks=units.tasks,
        groups=units.groups,
        argo=units.argo,
        refused=units.refused,
        concurrency_group=concurrency_group,
        cancel_in_progress=cancel,
        artifact_repository=options.artifact_repository,
        pod_security=options.pod_security,
        run_as_user=options.run_as_user,
        checkout_secret=checkout_secret_name(workflow_name(run_id, event.sha))
        if options.checkout_secret
        else "",
    )


def bind_run(plan: WorkflowPlan, run_id: int, run_url: str) -> WorkflowPlan:
    """``plan`` as the plan of run ``run_id`` (whose page is ``run_url``)."""
    name = workflow_name(run_id, plan.sha)
    return replace(
        plan,
        name=name,
        checkout_secret=checkout_secret_name(name) if plan.checkout_secret else "",
        labels=_with(plan.labels, {RUN_LABEL: str(run_id)}),
        annotations=_with(plan.annotations, {RUN_URL_ANNOTATION: run_url}),
        event_env=_with(plan.event_env, {"FORGEFLOW_RUN_ID": str(run_id), "FORGEFLOW_RUN_URL": run_url}),
    )


def _with(pairs: Pairs, values: Mapping[str, str]) -> Pairs:
    return tuple((key, values.get(key, value)) for key, value in pairs)


MAX_GROUP = 255


def _concurrency(event: Event, job_file: JobFile) -> tuple[str, bool]:
    """The run's concurrency group, evaluated (at most 255 characters), and cancel-in-progress."""
    spec = job_file.concurrency
    if spec is None:
        return "", False
    try:
        group = interpolate(spec.group, {"event": event_context(event), "matrix": {}})
    except ExpressionError as exc:
        path = ("concurrency", "group")
        file, line, column = job_file.where(path)
        raise JobFileError([ConfigProblem(file, line, column, dotted(path), str(exc))]) from exc
    if len(group) > MAX_GROUP or not group.isprintable():  # stored and shown: no control characters
        digest = hashlib.sha256(group.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        shown = "".join(ch if ch.isprintable() else "?" for ch in group)
        group = shown[: MAX_GROUP - 17] + "-" + digest
    return group, spec.cancel_in_progress
