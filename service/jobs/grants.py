"""What a repository's jobs may reach: the Secrets its policy grants, and the raw Argo fence.

Secrets are granted, not requested: the service config lists, per repository (glob), the
Secret names its jobs may use and for which event kinds (default: none at all); an untrusted
run (a fork's pull request by an author without write access) never gets any. A job that asks
for a Secret:

- the policy does not grant at all, or while ``allow_secrets: false``: a config problem at the
  line that asks for it (the run reports a failing ``forgeflow/config``), saying where to grant it;
- granted, but the run is untrusted, or the event is not one it is granted for: the job (and
  the jobs that need it) do not run and end as ``error`` saying why.

Raw ``argo:`` templates must stay inside the fence of :mod:`service.argo.fence` unless the
policy names an exception (``argo_allow``), and ``workflowTemplate:`` jobs run only the
WorkflowTemplates the policy grants; each refusal is a config problem at its line.
Pure: the policy comes in as :class:`~service.jobs.plan_types.PlanOptions`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import Any

from service.argo.fence import fence_problems
from service.events import Event
from service.jobs.errors import ConfigProblem, dotted
from service.jobs.model import JobFile, JobSpec
from service.jobs.plan_types import PlanOptions
from service.jobs.yaml_source import Path

Problem = Callable[[Path, str], None]  # (path in the job file, message)


def secret_refs(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Secret names raw Argo templates refer to, with where: ``env``/``envFrom``
    (``secretKeyRef``, ``secretRef``), ``secret`` volumes and projections, and every Argo
    ``...Secret`` selector (artifact credentials such as ``usernameSecret``,
    ``accessKeySecret``, HTTP auth)."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = (*path, str(key))
            if isinstance(item, dict) and "secret" in str(key).lower():
                name = item.get("secretName", item.get("name"))
                if name is not None:
                    yield here, str(name)
                    continue
            yield from secret_refs(item, here)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from secret_refs(item, (*path, index))


def asked_secrets(job: JobSpec) -> list[tuple[Path, str]]:
    """The Secrets a job asks for, each with where it is asked (relative to the job)."""
    asked: list[tuple[Path, str]] = [(("secrets", i), name) for i, name in enumerate(job.secrets)]
    if job.argo is not None:
        for index, template in enumerate(job.argo.templates):
            for where, name in secret_refs(template, ("argo", "templates", index)):
                asked.append((where, name))
    return asked


def granted_for(options: PlanOptions) -> dict[str, tuple[str, ...]]:
    """Each granted Secret and the event kinds it is granted for (grants of one name add up)."""
    grants: dict[str, tuple[str, ...]] = {}
    for name, events in options.secrets:
        grants[name] = tuple(dict.fromkeys((*grants.get(name, ()), *events)))
    return grants


def check_secrets(
    name: str, job: JobSpec, event: Event, options: PlanOptions, problem: Problem
) -> str | None:
    """Report what the job asks for that is never granted (``problem``); the reason the job
    does not run (untrusted, or not granted for this event), or None."""
    asked = asked_secrets(job)
    if not asked:
        return None
    repo = event.repository.full_name
    if not options.allow_secrets:
        where = "secrets" if job.secrets else "argo"
        wanted = ", ".join(dict.fromkeys(secret for _, secret in asked))
        problem(
            ("jobs", name, where),
            f"the service config does not allow Kubernetes Secrets for {repo} (asked for {wanted})",
        )
        return None
    grants = granted_for(options)
    missing = False
    for path, secret in asked:
        if secret not in grants:
            missing = True
            problem(
                ("jobs", name, *path),
                f"the Secret {secret!r} is not granted to {repo}; grant it under `secrets` of "
                f"{options.grant_hint}",
            )
    if missing:
        return None
    names = list(dict.fromkeys(secret for _, secret in asked))
    if not options.trusted:
        return f"not run: untrusted runs never get secrets ({', '.join(names)})"
    kind = event.kind.value
    for secret in names:
        if kind not in grants[secret]:
            events = ", ".join(grants[secret]) or "no events"
            return f"not run: the Secret {secret!r} is granted to {repo} only for {events}, not {kind}"
    return None


def check_template_ref(name: str, job: JobSpec, options: PlanOptions, problem: Problem) -> None:
    """A ``workflowTemplate:`` job runs only a template the policy grants: the operator's
    WorkflowTemplates in the run's namespace (``workflow_templates``, default any) and
    ClusterWorkflowTemplates (``cluster_workflow_templates``, default none: they serve every
    namespace, so a repository may not pick one it was not given). The same goes for every
    ``templateRef`` inside the job's raw ``argo:`` templates (a DAG task or step)."""
    ref = job.workflow_template
    if ref is not None:
        refused = template_refused(ref.name, ref.cluster_scope, options)
        if refused:
            problem(("jobs", name, "workflowTemplate"), refused)
    if job.argo is None:
        return
    for index, template in enumerate(job.argo.templates):
        for where, found in _template_refs(template, ("argo", "templates", index)):
            refused = template_refused(str(found.get("name", "")), found.get("clusterScope") is True, options)
            if refused:
                problem(("jobs", name, *where, "templateRef"), refused)


def template_refused(template: str, cluster_scope: bool, options: PlanOptions) -> str:
    """Why the policy does not grant the (Cluster)WorkflowTemplate ``template`` ("" if it does)."""
    key, kind = (
        ("cluster_workflow_templates", "ClusterWorkflowTemplate")
        if cluster_scope
        else ("workflow_templates", "WorkflowTemplate")
    )
    globs = options.cluster_workflow_templates if cluster_scope else options.workflow_templates
    if any(fnmatch.fnmatchcase(template, glob) for glob in globs):
        return ""
    return (
        f"the {kind} {template!r} is not granted to this repository (grant it with "
        f"{key}: [{template}] in {options.grant_hint})"
    )


def _template_refs(value: Any, path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every ``templateRef`` in a raw template, with the path of what holds it."""
    if isinstance(value, dict):
        ref = value.get("templateRef")
        if isinstance(ref, dict):
            yield path, ref
        for key, item in value.items():
            yield from _template_refs(item, (*path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _template_refs(item, (*path, index))


def check_fence(name: str, job: JobSpec, options: PlanOptions, problem: Problem) -> None:
    """Every step outside the raw Argo fence, at its line, and WorkflowTemplates not granted."""
    check_template_ref(name, job, options, problem)
    if job.argo is None:
        return
    for index, template in enumerate(job.argo.templates):
        for refusal in fence_problems(dict(template), options.argo_allow):
            problem(
                ("jobs", name, "argo", "templates", index, *refusal.path),
                f"{refusal.message}; job files may not do this (a repository's policy can allow "
                f"it with argo_allow: [{refusal.exception}])",
            )


def policy_problems(job_file: JobFile, repo: str, options: PlanOptions) -> list[ConfigProblem]:
    """What the repository's policy would refuse in any run of ``job_file`` (``forgeflow
    validate`` with the service config): Secrets never granted (or granted for none of the
    events the job runs on), and raw Argo outside the fence."""
    problems: list[ConfigProblem] = []

    def problem(path: Path, message: str) -> None:
        file, line, column = job_file.where(path)
        problems.append(ConfigProblem(file, line, column, dotted(path), message))

    grants = granted_for(options)
    for name, job in job_file.jobs.items():
        check_fence(name, job, options, problem)
        kinds = [kind for kind, trigger in job.on if trigger is not None]
        for path, secret in asked_secrets(job):
            where = ("jobs", name, *path)
            if not options.allow_secrets or secret not in grants:
                problem(
                    where,
                    f"the Secret {secret!r} is not granted to {repo}; grant it under `secrets` of "
                    f"{options.grant_hint}",
                )
            elif not set(kinds) & set(grants[secret]):
                problem(
                    where,
                    f"the Secret {secret!r} is granted to {repo} only for {', '.join(grants[secret])}; "
                    f"this job runs on {', '.join(kinds)}",
                )
    return problems
