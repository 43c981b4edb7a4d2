"""What ``--explain`` says: for each job whether it runs, waits for approval, reads the target
branch's job file, is not run (a policy refuses it) or is skipped, and why.

Written for the person who wrote the job file: the trust decision in words (who is trusted,
what follows from it), then one line per job in the file's order.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from service.events import Event
from service.jobs.loader import JobFileError, load_job_file
from service.jobs.matcher import missing_requested
from service.runs.recipe import Planned
from service.runs.trust import Trust
from service.settings import Settings


def trust_lines(event: Event, trust: Trust, planned: Planned, settings: Settings) -> list[str]:
    pr = event.pull_request
    if trust.code_trusted or pr is None:
        return []
    lines = [
        f"trust: {pr.author or event.sender} opened this pull request from a fork and is not in the "
        "service config's trusted users; only the forge can say whether they have write access "
        "(assumed not here), so its code is untrusted:",
        f"  - the job file and templates are read from {planned.ref}, not from the pull request",
        "  - no job gets Kubernetes Secrets",
    ]
    if not trust.approved:
        lines.append(
            f"  - nothing runs until someone with write access comments {settings.comment_prefix} "
            "ok-to-test (again for each new commit)"
        )
    return lines


def _only_here(event: Event, planned: Planned, settings: Settings, repo: Path) -> list[str]:
    """Jobs of the checkout's own job file that the target branch's does not have."""
    if planned.ref == event.sha:
        return []
    try:
        own = load_job_file((repo / settings.job_file).read_bytes(), settings.job_file)
    except (OSError, JobFileError):
        return []
    extra = [name for name in own.jobs if name not in planned.job_file.jobs]
    if not extra:
        return []
    return [
        f"not in {planned.ref}'s job file, so not run for this pull request: {', '.join(extra)} "
        "(they run once the change is merged, or for someone with write access)"
    ]


def explain_lines(event: Event, trust: Trust, planned: Planned, settings: Settings, repo: Path) -> list[str]:
    """The trust decision, then one ``job: verdict: why`` line per job."""
    plan = planned.plan
    lines = trust_lines(event, trust, planned, settings)
    cells = Counter(task.job for task in plan.tasks) if plan else Counter()
    refused = {r.job: r.reason for r in plan.refused} if plan else {}
    elsewhere = planned.ref != event.sha
    for decision in planned.decisions:
        name = decision.job
        if not decision.matched:
            lines.append(f"{name}: skipped: {decision.reason}")
            continue
        if name in refused and not cells[name]:
            why = refused[name]
            lines.append(f"{name}: {why}" if why.startswith("skipped: ") else f"{name}: not run: {why}")
            continue
        verdict = "runs" if trust.approved else "waits for approval"
        if elsewhere:
            verdict += f", from {planned.ref}'s job file"
        if cells[name] > 1:
            verdict += f" ({cells[name]} matrix cells)"
        lines.append(f"{name}: {verdict}: {decision.reason}")
    lines += _only_here(event, planned, settings, repo)
    lines += [f"manual run: {problem}" for problem in missing_requested(event, planned.job_file)]
    if not planned.matched:
        lines.append("no job matched: nothing would be submitted")
    elif plan is not None and plan.concurrency_group:
        cancel = " (cancels runs in progress)" if plan.cancel_in_progress else ""
        lines.append(f"concurrency group: {plan.concurrency_group}{cancel}")
    return lines
