"""``forgeflow render`` and ``forgeflow exec``: an event file and a checkout, no service needed.

Everything the service would ask the forge comes from the checkout instead: the job file and
``uses`` templates (``.forgeflow/templates/NAME.yaml``, then the service config's), and the
changed files for ``paths`` filters (its git history: ``before..after`` for a push, the merge
base of the pull request's base and head for a pull request).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from service.argo.validation import InvalidManifest, validate_manifest
from service.cli.event_files import EventFileError, event_from_file
from service.compiler import compile_workflow
from service.events import Event, EventKind
from service.jobs.durations import parse_duration
from service.jobs.loader import JobFileError, load_job_file
from service.jobs.matcher import ChangedFiles, Decision, match_jobs
from service.jobs.plan import PlanOptions, WorkflowPlan, plan_workflow
from service.jobs.templates import TemplateDocument, TemplateSource, first_of, settings_source, template_path
from service.runs.sources import job_limits, push_base, run_is_trusted
from service.settings import Settings, load_settings


class RenderError(Exception):
    pass


def explain(decisions: list[Decision]) -> list[str]:
    return [f"{d.job}: {'runs' if d.matched else 'skipped'}: {d.reason}" for d in decisions]


def _options(settings: Settings, event: Event, run_id: int) -> PlanOptions:
    return PlanOptions(
        namespace=settings.namespace,
        service_account=settings.service_account,
        default_image=settings.default_image,
        default_timeout_seconds=int(parse_duration(settings.default_timeout)),
        ttl_seconds=settings.workflow_ttl_seconds,
        run_url=f"{settings.public_url}/runs/{run_id}",
        allow_secrets=settings.policy_for(event.repository.full_name).allow_secrets,
        trusted=run_is_trusted(settings, event),
    )


def checkout_templates(repo: Path, settings: Settings) -> TemplateSource:
    """Templates from the checkout's ``.forgeflow/templates``, then from the service config."""

    def from_checkout(name: str) -> TemplateDocument | None:
        path = repo / template_path(name)
        try:
            return TemplateDocument(str(path), text=path.read_bytes())
        except OSError:
            return None

    return first_of(from_checkout, settings_source(settings.templates))


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)


def _commit(repo: Path, ref: str) -> str:
    if not ref:
        return ""
    found = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return found.stdout.strip() if found.returncode == 0 else ""


def _first_commit(repo: Path, *refs: str) -> str:
    return next((sha for sha in (_commit(repo, r) for r in refs) if sha), "")


def checkout_changed_files(repo: Path, event: Event) -> ChangedFiles:
    """The files the event changed, from the checkout's history (None when it lacks a commit)."""

    def provide() -> Sequence[str] | None:
        if event.changed_files is not None:
            return event.changed_files
        pr = event.pull_request
        if event.kind is EventKind.PULL_REQUEST and pr is not None:
            target = pr.target_branch
            base = _first_commit(repo, pr.base_sha, f"origin/{target}" if target else "", target)
            head = _first_commit(repo, pr.head_sha, event.sha)
            spec = f"{base}...{head}"
        elif event.kind is EventKind.PUSH:
            wanted = push_base(event)
            base = _first_commit(repo, wanted, f"origin/{wanted}" if wanted else "")
            head = _first_commit(repo, event.sha)
            spec = f"{base}..{head}"
        else:
            return None
        if not base or not head:
            return None
        diff = _git(repo, "diff", "--name-only", "--no-renames", spec)
        return sorted({line for line in diff.stdout.splitlines() if line}) if diff.returncode == 0 else None

    return provide


def plan_from_files(
    event_file: Path,
    repo: Path,
    settings: Settings,
    forge: str | None,
    event_type: str | None,
    run_id: int,
) -> tuple[Event, WorkflowPlan | None, list[str]]:
    try:
        event, _ = event_from_file(event_file, forge, event_type)
    except EventFileError as exc:
        raise RenderError(str(exc)) from exc
    job_path = repo / settings.job_file
    try:
        text = job_path.read_bytes()
    except OSError as exc:
        raise RenderError(f"{job_path}: cannot read: {exc.strerror}") from exc
    try:
        templates = checkout_templates(repo, settings)
        job_file = load_job_file(text, str(job_path), job_limits(settings), templates)
        decisions = match_jobs(event, job_file, checkout_changed_files(repo, event))
        lines = [f"event: {event.describe()}", *explain(decisions)]
        if not any(d.matched for d in decisions):
            return event, None, [*lines, "no job matched: nothing would be submitted"]
        plan = plan_workflow(run_id, event, job_file, decisions, _options(settings, event, run_id))
    except JobFileError as exc:
        raise RenderError(str(exc)) from exc
    lines += [f"{r.context}: not run: {r.reason}" for r in plan.refused]
    if plan.concurrency_group:
        cancel = " (cancels runs in progress)" if plan.cancel_in_progress else ""
        lines.append(f"concurrency group: {plan.concurrency_group}{cancel}")
    return event, plan, lines


def render(
    event_file: Path,
    repo: Path,
    *,
    forge: str | None = None,
    event_type: str | None = None,
    run_id: int = 1,
    settings: Settings | None = None,
) -> tuple[dict[str, Any] | None, list[str]]:
    """The Workflow an event would submit (None when no job matches) and why each job did or didn't."""
    settings = settings or load_settings()
    _, plan, lines = plan_from_files(event_file, repo, settings, forge, event_type, run_id)
    if plan is None or not plan.tasks:
        return None, lines
    manifest = compile_workflow(plan)
    try:
        validate_manifest(manifest)
    except InvalidManifest as exc:
        raise RenderError(f"the compiled Workflow is invalid: {exc}") from exc
    return manifest, lines


def _local_revision(repo: Path, sha: str) -> str:
    """The event's commit if the checkout has it, else the checkout's HEAD."""
    found = _commit(repo, sha)
    if found:
        return found
    head = _commit(repo, "HEAD")
    if not head:
        raise RenderError(f"{repo} is not a git checkout with commits")
    return head


def execute(
    event_file: Path,
    repo: Path,
    settings: Settings,
    *,
    forge: str | None = None,
    event_type: str | None = None,
    output: TextIO | None = None,
) -> str:
    """Run an event's jobs on this machine from the checkout at ``repo``; returns the final phase."""
    from service.executors.local.executor import LocalExecutor, LocalExecutorConfig

    out = output or sys.stdout
    event, plan, lines = plan_from_files(event_file, repo, settings, forge, event_type, run_id=0)
    for line in lines:
        print(line, file=out)
    if plan is None or not plan.tasks:
        raise RenderError("no job matched the event")
    revision = _local_revision(repo, event.sha)
    if revision != event.sha:
        print(
            f"note: {repo} does not have {event.sha[:12] or 'the commit'}; running its HEAD {revision[:12]}",
            file=out,
        )
    plan = replace(plan, clone_url=str(repo.resolve()), sha=revision, name=f"forgeflow-exec-{revision[:7]}")
    manifest = compile_workflow(plan)
    validate_manifest(manifest)
    executor = LocalExecutor(
        LocalExecutorConfig(
            data_dir=settings.data_dir,
            container_runtime=settings.local_container_runtime or None,
            max_parallel=settings.local_max_parallel,
            default_namespace=settings.namespace,
            detach=False,
        )
    )
    result = executor.run_foreground(manifest, out)
    status = result.get("status") or {}
    phase = str(status.get("phase") or "Unknown")
    if phase != "Succeeded" and status.get("message"):
        print(f"{phase.lower()}: {status['message']}", file=out)  # why, not only that it failed
    return phase
