"""The one recipe from an event to a Workflow, used by the worker and ``forgeflow render``/``exec``.

Values in, values out: the settings (the repository's policy), the event, the repository's files
(a :class:`RepositoryFiles`: the forge for the worker, a checkout for the CLI), an optional job
selection (comment commands) and the run's :class:`~service.runs.trust.Trust` go in; the plan
comes out, and :func:`workflow` turns a plan bound to its run into a validated manifest. Nothing
here touches the database, the network or a clock, so ``forgeflow render`` prints exactly the
Workflow the worker submits (same namespace, service account, secrets policy, trust decision),
apart from the run id.

1. :func:`read_job_file`: the job file where the trust says (the event's commit, or an untrusted
   fork's target branch), with ``uses:`` templates from the same commit, then the service config;
2. :func:`plan_event`: the jobs the event (or a selection) starts, planned once;
3. :func:`workflow`: the plan given its run id, compiled and validated.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from service.argo.validation import InvalidManifest, validate_manifest
from service.compiler import compile_workflow
from service.events import Event, EventKind
from service.jobs.durations import parse_duration
from service.jobs.errors import ConfigProblem, JobFileError
from service.jobs.expressions import manual_inputs
from service.jobs.inputs import InputError, declared_inputs, resolve_inputs
from service.jobs.loader import load_job_file
from service.jobs.matcher import ChangedFiles, Decision, match_jobs
from service.jobs.model import JobFile
from service.jobs.plan import PlanOptions, WorkflowPlan, bind_run, plan_workflow
from service.jobs.required import SkippedJob, skipped_required
from service.jobs.templates import TemplateDocument, TemplateSource, first_of, settings_source, template_path
from service.jobs.yaml_source import Limits
from service.reporting.links import run_url
from service.runs.trust import Trust
from service.settings import Settings

Selector = Callable[[Event, JobFile, ChangedFiles], list[Decision]]


class RepositoryFiles(Protocol):
    """What the recipe reads from the event's repository."""

    def read(self, path: str, ref: str) -> str | bytes | None:
        """The file at ``ref`` (a commit or branch), or None when it does not exist there."""
        ...

    def changed_files(self, event: Event) -> ChangedFiles:
        """A provider of the paths the event changed (asked only when a job filters by path)."""
        ...


@dataclass(frozen=True)
class JobFileRead:
    job_file: JobFile
    ref: str  # the commit or branch it was read at


@dataclass(frozen=True)
class Planned:
    """What an event starts: every job's decision, and the plan of those that run (None when
    no job matched)."""

    job_file: JobFile
    ref: str
    decisions: list[Decision]
    plan: WorkflowPlan | None
    skipped: tuple[SkippedJob, ...] = ()  # required jobs a filter skipped: reported as passed

    @property
    def matched(self) -> bool:
        return any(d.matched for d in self.decisions)

    @property
    def reports(self) -> bool:
        """Something to record and report: jobs that run, or required ones that were skipped."""
        return self.plan is not None or bool(self.skipped)


def job_limits(settings: Settings) -> Limits:
    return Limits(
        max_bytes=settings.max_job_file_bytes,
        max_jobs=settings.max_jobs,
        max_matrix_cells=settings.max_matrix_cells,
    )


def plan_options(settings: Settings, event: Event, trust: Trust) -> PlanOptions:
    """Where and how the event's Workflow runs, and what it may reach: the repository's
    policy (its namespace, service account, granted Secrets, exceptions to the raw Argo
    fence, pod security), then the defaults. A private repository is checked out with the
    run's own credentials Secret (made by the worker when it submits, never in the manifest)."""
    repo = event.repository.full_name
    index, policy = settings.policy_entry(repo)
    if index is None:
        hint = f"a `repositories` entry matching {repo!r} in the service config (none matches yet)"
    else:
        hint = f"repositories[{index}] (match: {policy.match!r}) in the service config"
    return PlanOptions(
        namespace=policy.namespace or settings.namespace,
        service_account=policy.service_account or settings.service_account,
        default_image=settings.default_image,
        default_timeout_seconds=int(parse_duration(settings.default_timeout)),
        ttl_seconds=settings.workflow_ttl_seconds,
        allow_secrets=policy.allow_secrets,
        trusted=trust.code_trusted,
        artifact_repository=settings.artifact_repository,
        secrets=tuple((grant.name, tuple(grant.events)) for grant in policy.secrets),
        grant_hint=hint,
        argo_allow=frozenset(policy.argo_allow),
        workflow_templates=policy.workflow_templates,
        cluster_workflow_templates=policy.cluster_workflow_templates,
        pod_security=policy.pod_security,
        run_as_user=settings.pod_run_as_user,
        checkout_secret=event.repository.private,
    )


def repository_templates(files: RepositoryFiles, ref: str, settings: Settings) -> TemplateSource:
    """``uses: NAME`` templates: the repository's ``.forgeflow/templates/NAME.yaml`` at ``ref``,
    then the service config's."""

    def from_repository(name: str) -> TemplateDocument | None:
        path = template_path(name)
        text = files.read(path, ref)
        return TemplateDocument(path, text=text) if text is not None else None

    return first_of(from_repository, settings_source(settings.templates))


def read_job_file(
    files: RepositoryFiles, settings: Settings, event: Event, trust: Trust, name: str = ""
) -> JobFileRead | None:
    """The job file the run uses (None when there is none), its problems reported as ``name``
    (default: its path in the repository). Raises ``JobFileError``."""
    ref = trust.job_file_ref(event)
    text = files.read(settings.job_file, ref)
    if text is None:
        return None
    templates = repository_templates(files, ref, settings)
    job_file = load_job_file(text, name or settings.job_file, job_limits(settings), templates)
    return JobFileRead(job_file, ref)


def plan_event(
    files: RepositoryFiles,
    settings: Settings,
    event: Event,
    trust: Trust,
    select_jobs: Selector | None = None,
    *,
    job_file_name: str = "",
) -> Planned | None:
    """Read the job file, pick the jobs (``select_jobs``, default: the event's triggers) and plan
    them, once. None when the repository has no job file there. Raises ``JobFileError`` for a
    broken job file, including what only the event or the policy reveal."""
    found = read_job_file(files, settings, event, trust, job_file_name)
    if found is None:
        return None
    if event.kind is EventKind.MANUAL:
        event = with_inputs(event, found.job_file, settings.job_file)
    decisions = (select_jobs or match_jobs)(event, found.job_file, files.changed_files(event))
    plan = None
    if any(d.matched for d in decisions):
        plan = plan_workflow(event, found.job_file, decisions, plan_options(settings, event, trust))
    required = settings.policy_for(event.repository.full_name).required_jobs
    taken = [task.task for task in plan.tasks] if plan else []
    skipped = skipped_required(found.job_file, decisions, required, taken)
    return Planned(found.job_file, found.ref, decisions, plan, skipped)


def with_inputs(event: Event, job_file: JobFile, file: str) -> Event:
    """A manual event with its inputs checked against the jobs' ``on.manual.inputs`` and their
    defaults filled in; a wrong input is a problem of the run's job file (``JobFileError``)."""
    given = manual_inputs(event)
    jobs = [j for j in event.extra.get("jobs", "").split(",") if j]
    declared = declared_inputs(job_file, jobs)
    if not declared and not given:
        return event
    try:
        resolved = resolve_inputs(declared, given)
    except InputError as exc:
        raise JobFileError([ConfigProblem(file, 0, 0, "on.manual.inputs", str(exc))]) from exc
    return replace(event, extra={**event.extra, "inputs": json.dumps(resolved, sort_keys=True)})


class InvalidWorkflow(InvalidManifest):
    """forgeflow built a Workflow Argo would refuse (a bug, not the user's); ``manifest`` is it."""

    def __init__(self, errors: list[str], manifest: dict[str, Any]) -> None:
        super().__init__(errors)
        self.manifest = manifest


def workflow(plan: WorkflowPlan, run_id: int, public_url: str, *, name: str = "") -> dict[str, Any]:
    """The Workflow manifest of run ``run_id`` (named ``name`` rather than after the run, for
    ``forgeflow exec``): bound, compiled and validated (raises :class:`InvalidWorkflow` when it
    would be refused)."""
    bound = bind_run(plan, run_id, run_url(public_url, run_id))
    manifest = compile_workflow(replace(bound, name=name) if name else bound)
    if plan.tasks:
        try:
            validate_manifest(manifest)
        except InvalidManifest as exc:
            raise InvalidWorkflow(exc.errors, manifest) from exc
    return manifest
