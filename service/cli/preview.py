"""``forgeflow render`` and ``forgeflow exec``: an event file and a checkout, no service needed.

The event is planned by the worker's own recipe (:mod:`service.runs.recipe`): same policy,
same namespace and service account, same trust decision, so ``render`` prints the Workflow the
worker would submit. What the service would ask the forge comes from the checkout instead
(:mod:`service.cli.checkout`); what only the forge knows (may this fork's author write?) is
assumed "no", as for anyone the service config does not list as trusted.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from service.cli.checkout import CheckoutFiles, commit_of
from service.cli.event_files import EventFileError, event_from_file
from service.events import Event
from service.jobs.loader import JobFileError
from service.jobs.matcher import Decision
from service.jobs.plan import WorkflowPlan
from service.runs.recipe import InvalidWorkflow, plan_event, workflow
from service.runs.record import waiting_description
from service.runs.trust import Trust, event_trust
from service.settings import Settings, load_settings


class RenderError(Exception):
    pass


def explain(decisions: list[Decision]) -> list[str]:
    return [f"{d.job}: {'runs' if d.matched else 'skipped'}: {d.reason}" for d in decisions]


def offline_trust(settings: Settings, event: Event) -> Trust:
    """The worker's trust decision, as far as it can be made without the forge: an author
    the service config does not list as trusted has no write access, and no commit is approved."""
    return event_trust(settings, event, lambda repo, user: False, lambda sha: False)


def plan_from_files(
    event_file: Path,
    repo: Path,
    settings: Settings,
    forge: str | None,
    event_type: str | None,
) -> tuple[Event, WorkflowPlan | None, list[str]]:
    """The event in ``event_file``, planned through the worker's recipe on the checkout ``repo``."""
    try:
        event, _ = event_from_file(event_file, forge, event_type)
    except EventFileError as exc:
        raise RenderError(str(exc)) from exc
    trust = offline_trust(settings, event)
    files = CheckoutFiles(repo, event.sha)
    try:
        planned = plan_event(files, settings, event, trust, job_file_name=str(repo / settings.job_file))
    except JobFileError as exc:
        raise RenderError(str(exc)) from exc
    if planned is None:
        raise RenderError(f"{repo / settings.job_file}: cannot read it at {trust.job_file_ref(event)[:12]}")
    lines = [f"event: {event.describe()}", *files.notes, *explain(planned.decisions)]
    if not trust.code_trusted:
        lines.append(f"untrusted code: the job file comes from {planned.ref!r} and jobs get no secrets")
    if not trust.approved:
        lines.append(f"waits for approval: {waiting_description(settings)}")
    plan = planned.plan
    if plan is None:
        return event, None, [*lines, "no job matched: nothing would be submitted"]
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
    _, plan, lines = plan_from_files(event_file, repo, settings, forge, event_type)
    if plan is None or not plan.tasks:
        return None, lines
    try:
        return workflow(plan, run_id, settings.public_url), lines
    except InvalidWorkflow as exc:
        raise RenderError(f"the compiled Workflow is invalid: {exc}") from exc


def _local_revision(repo: Path, sha: str) -> str:
    """The event's commit if the checkout has it, else the checkout's HEAD."""
    found = commit_of(repo, sha)
    if found:
        return found
    head = commit_of(repo, "HEAD")
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
    from service.executors.factory import local_config
    from service.executors.local.executor import LocalExecutor

    out = output or sys.stdout
    event, plan, lines = plan_from_files(event_file, repo, settings, forge, event_type)
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
    plan = replace(plan, clone_url=str(repo.resolve()), sha=revision)
    manifest = workflow(plan, 0, settings.public_url, name=f"forgeflow-exec-{revision[:7]}")
    executor = LocalExecutor(local_config(settings, detach=False))
    result = executor.run_foreground(manifest, out)
    status = result.get("status") or {}
    phase = str(status.get("phase") or "Unknown")
    if phase != "Succeeded" and status.get("message"):
        print(f"{phase.lower()}: {status['message']}", file=out)  # why, not only that it failed
    return phase
