"""What the pages say about a run, in people's words: links to the forge, durations, messages.

Pure. Links are made from the repository's web address in the event, and only when that is an
``http(s)`` URL (a signed payload still chooses it). Messages replace Argo's ("child
'forgeflow-1-d91859e-1409222639' failed") with what happened to which job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from service.events import Event
from service.web.logview import LogView

# forge kind -> (commit, branch, pull request, user) paths; {repo} is the repository's web
# address, {root} the forge's
LINKS: dict[str, tuple[str, str, str, str]] = {
    "github": ("{repo}/commit/{sha}", "{repo}/tree/{branch}", "{repo}/pull/{number}", "{root}/{user}"),
    "gitlab": (
        "{repo}/-/commit/{sha}",
        "{repo}/-/tree/{branch}",
        "{repo}/-/merge_requests/{number}",
        "{root}/{user}",
    ),
    "forgejo": (
        "{repo}/commit/{sha}",
        "{repo}/src/branch/{branch}",
        "{repo}/pulls/{number}",
        "{root}/{user}",
    ),
    "pagure": (
        "{repo}/c/{sha}",
        "{repo}/tree/{branch}",
        "{repo}/pull-request/{number}",
        "{root}/user/{user}",
    ),
}
FAILED_STATES = frozenset({"failure", "error"})


@dataclass(frozen=True)
class EventLinks:
    commit: str = ""
    branch: str = ""
    pull_request: str = ""
    sender: str = ""
    repository: str = ""


def _web(url: str) -> str:
    return url.rstrip("/") if url.startswith(("https://", "http://")) and '"' not in url else ""


def event_links(event: Event) -> EventLinks:
    """Links to the commit, branch, pull request, sender and repository on the forge."""
    repo = _web(event.repository.html_url)
    paths = LINKS.get(event.forge)
    if not repo or paths is None:
        return EventLinks()
    root = _web(event.instance) or repo.rsplit("/", event.repository.full_name.count("/") + 1)[0]
    commit, branch, pull, user = paths
    pr = event.pull_request
    branch_name = event.branch or (pr.source_branch if pr else "")
    return EventLinks(
        commit=commit.format(repo=repo, sha=quote(event.sha)) if event.sha else "",
        branch=branch.format(repo=repo, branch=quote(branch_name)) if branch_name and not pr else "",
        pull_request=_web(pr.url) or pull.format(repo=repo, number=pr.number) if pr else "",
        sender=user.format(root=root, user=quote(event.sender)) if event.sender else "",
        repository=repo,
    )


def human_duration(seconds: float | None) -> str:
    """``0.4`` -> ``0.4s``, ``75`` -> ``1m 15s``, ``3700`` -> ``1h 1m``; "" when unknown."""
    if seconds is None or seconds < 0:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def span(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def job_seconds(
    started: datetime | None, finished: datetime | None, view: LogView | None, now: datetime
) -> float | None:
    """How long a job ran. The node times Argo keeps are whole seconds, so a quick job would
    show "0s": the log's own times (microseconds) are used when they say more."""
    node = span(started, finished or now)
    if view is None or not view.steps:
        return node
    first = view.first_time
    last = next((s.finished for s in reversed(view.steps) if s.finished), None)
    logged = span(first, last if finished else now)
    if node is None or (logged is not None and node < 1.0 < logged + 1.0):
        return logged if logged is not None else node
    return node


def job_message(name: str, state: str, description: str, view: LogView | None) -> str:
    """One sentence on how a job ended, e.g. "job `style` failed at step 'no trailing
    whitespace' (exit 1)"."""
    step = view.failed_step if view is not None else None
    if state in FAILED_STATES and step is not None and step.exit_code not in (None, 0):
        return f"job `{name}` failed at step '{step.name}' (exit {step.exit_code})"
    if state in FAILED_STATES and step is not None and description.startswith("failed"):
        return f"job `{name}` failed at step '{step.name}': {_plain(description)}"
    if state == "success":
        return f"job `{name}` passed"
    if state == "running":
        current = next((s for s in reversed(view.steps) if s.running), None) if view else None
        return f"job `{name}` is running step '{current.name}'" if current else f"job `{name}` is running"
    if state == "pending":
        return f"job `{name}` is {description or 'queued'}"
    return f"job `{name}`: {_plain(description) or state}"


def _plain(description: str) -> str:
    """A job description without Argo's node names."""
    if description.startswith("failed: child '") or description.startswith("error: child '"):
        return description.split(":", 1)[0]
    return description


def run_message(phase: str, message: str, jobs: list[tuple[str, str, str]]) -> str:
    """The run's headline from its jobs ``(name, state, job message)``; Argo's workflow
    message ("child '…' failed") is never shown as is."""
    failed = [(name, text) for name, state, text in jobs if state in FAILED_STATES]
    total = len(jobs)
    if phase in ("failed", "error") and failed:
        first = failed[0][1]
        more = f" ({len(failed) - 1} more failed)" if len(failed) > 1 else ""
        return f"{total - len(failed)} of {total} jobs passed; {first}{more}"
    if phase == "succeeded":
        return f"all {total} jobs passed" if total != 1 else "the job passed"
    if message and not message.startswith("child '"):
        return message
    running = sum(1 for _, state, _ in jobs if state == "running")
    done = sum(1 for _, state, _ in jobs if state not in ("pending", "running"))
    if running or done:
        return f"{done} of {total} jobs done, {running} running"
    return "waiting to start" if phase in ("created", "submitted") else message
