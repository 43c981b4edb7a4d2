"""``forgeflow render`` and ``forgeflow exec``: an event file and a checkout, no service needed."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from service.argo.validation import InvalidManifest, validate_manifest
from service.compiler import compile_workflow
from service.event_files import EventFileError, event_from_file
from service.events import Event
from service.jobs.durations import parse_duration
from service.jobs.loader import JobFileError, load_job_file
from service.jobs.matcher import Decision, match_jobs
from service.jobs.plan import PlanOptions, WorkflowPlan, plan_workflow
from service.settings import Settings, load_settings


class RenderError(Exception):
    pass


def explain(decisions: list[Decision]) -> list[str]:
    return [f"{d.job}: {'runs' if d.matched else 'skipped'}: {d.reason}" for d in decisions]


def _options(settings: Settings, run_id: int) -> PlanOptions:
    return PlanOptions(
        namespace=settings.namespace,
        service_account=settings.service_account,
        default_image=settings.default_image,
        default_timeout_seconds=int(parse_duration(settings.default_timeout)),
        ttl_seconds=settings.workflow_ttl_seconds,
        run_url=f"{settings.public_url}/runs/{run_id}",
    )


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
        job_file = load_job_file(job_path.read_bytes(), str(job_path))
    except OSError as exc:
        raise RenderError(f"{job_path}: cannot read: {exc.strerror}") from exc
    except JobFileError as exc:
        raise RenderError(str(exc)) from exc
    decisions = match_jobs(event, job_file)
    lines = [f"event: {event.describe()}", *explain(decisions)]
    if not any(d.matched for d in decisions):
        return event, None, [*lines, "no job matched: nothing would be submitted"]
    return (
        event,
        plan_workflow(run_id, event, job_file, decisions, _options(settings, run_id)),
        lines,
    )


def render(
    event_file: Path,
    repo: Path,
    *,
    forge: str | None = None,
    event_type: str | None = None,
    run_id: int = 1,
) -> tuple[dict[str, Any] | None, list[str]]:
    """The Workflow an event would submit (None when no job matches) and why each job did or didn't."""
    settings = load_settings()
    _, plan, lines = plan_from_files(event_file, repo, settings, forge, event_type, run_id)
    if plan is None:
        return None, lines
    manifest = compile_workflow(plan)
    try:
        validate_manifest(manifest)
    except InvalidManifest as exc:
        raise RenderError(f"the compiled Workflow is invalid: {exc}") from exc
    return manifest, lines


def _local_revision(repo: Path, sha: str) -> str:
    """The event's commit if the checkout has it, else the checkout's HEAD."""

    def rev(ref: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    found = rev(sha) if sha else ""
    if found:
        return found
    head = rev("HEAD")
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
    from service.executors.local import LocalExecutor, LocalExecutorConfig

    out = output or sys.stdout
    event, plan, lines = plan_from_files(event_file, repo, settings, forge, event_type, run_id=0)
    for line in lines:
        print(line, file=out)
    if plan is None:
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
    return str((result.get("status") or {}).get("phase") or "Unknown")
