"""A job as a GitHub check run: its status and conclusion for forgeflow's state, and the output
(title, summary with the run's job table, the failing step's log tail, annotations).

forgeflow's states map as GitHub users expect:

| job | check run |
|---|---|
| pending "queued" | ``queued`` |
| pending "waiting for approval…" (a fork's run) | completed ``action_required`` |
| running | ``in_progress`` with ``started_at`` |
| success | ``success``; ``skipped`` for a required job a filter skipped ("skipped: …") |
| failure | ``failure``; ``timed_out`` when it ran past its timeout |
| error | ``cancelled`` when superseded, cancelled, stopped or skipped after a failed need; else ``failure`` |

A failed check run carries the "Re-run failed jobs" button (``requested_action``
:data:`RERUN_FAILED`). ``external_id`` is ``<run id>/<task>``, so a button press or a re-run
request finds the job again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from service.clock import now
from service.forges.checks import Annotation, CheckAction, CheckRunReport
from service.jobs.durations import format_duration
from service.reporting.check_output import failing_step, find_annotations, tail
from service.reporting.forge_states import CANCEL_WORDS

RERUN_FAILED = "rerun-failed"
RERUN_ACTION = CheckAction("Re-run failed jobs", "Run the failed jobs of this commit again", RERUN_FAILED)
WAITING = "waiting for approval"
STATE_MARKS = {"success": "✅", "failure": "❌", "error": "⚠️", "running": "⏳", "pending": "⏸️"}

# (namespace, workflow, task) -> the job's log as the executor's archive keeps it (masked)
JobLogs = Callable[[str, str, str], "str | None"]


@dataclass(frozen=True)
class JobView:
    """What a check run shows of one job of a run (a row of the summary table too)."""

    name: str
    task: str
    context: str
    state: str
    description: str
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def duration(self) -> str:
        if self.started_at and self.finished_at:
            return format_duration(max((self.finished_at - self.started_at).total_seconds(), 0))
        return ""


def check_status(state: str, description: str) -> tuple[str, str]:
    """(status, conclusion) of a check run for forgeflow's ``state`` and ``description``."""
    text = description.strip().lower()
    if state == "pending":
        return ("completed", "action_required") if text.startswith(WAITING) else ("queued", "")
    if state == "running":
        return "in_progress", ""
    if state == "success":
        return "completed", "skipped" if text.startswith("skipped") else "success"
    if state == "failure":
        return "completed", "timed_out" if text.startswith("timed out") else "failure"
    if text.startswith(CANCEL_WORDS) or text.startswith("skipped"):
        return "completed", "cancelled"
    return "completed", "timed_out" if text.startswith("timed out") else "failure"


def external_id(run_id: int, task: str) -> str:
    return f"{run_id}/{task}"


def parse_external_id(value: str) -> tuple[int, str] | None:
    """(run id, task) of a check run forgeflow created, or None."""
    run, _, task = value.partition("/")
    return (int(run), task) if run.isdigit() and task else None


def summary_table(jobs: Sequence[JobView]) -> str:
    rows = ["| Job | Result | Duration |", "|:--|:--|--:|"]
    for job in jobs:
        mark = STATE_MARKS.get(job.state, "")
        name = job.context.removeprefix("forgeflow/")
        rows.append(f"| `{name}` | {mark} {job.state}: {job.description} | {job.duration or '-'} |")
    return "\n".join(rows)


def build_check_run(
    job: JobView,
    siblings: Sequence[JobView],
    details_url: str,
    run_id: int,
    log: str | None,
    check_run_id: str = "",
) -> CheckRunReport:
    """The check run that shows ``job`` now (``log``: its log, read only for a failed job)."""
    status, conclusion = check_status(job.state, job.description)
    title = job.description or job.state
    summary = f"**{job.context}**: {title}"
    text = ""
    notes: tuple[Annotation, ...] = ()
    actions: tuple[CheckAction, ...] = ()
    if status == "completed":
        summary += "\n\n" + summary_table(siblings)
        if conclusion in ("failure", "timed_out"):
            actions = (RERUN_ACTION,)
        if log and job.state in ("failure", "error") and conclusion != "cancelled":
            step = failing_step(log)
            if step.step:
                summary += f"\n\nThe step that failed: `{step.step}` (exit code {step.exit_code})."
            shown = tail(step.lines)
            if shown:
                what = f"step `{step.step}`" if step.step else "the job"
                text = f"### The end of the log of {what}\n\n```text\n{shown}\n```"
            notes = find_annotations(step.lines)
    summary += f"\n\n[The run's page]({details_url})"
    return CheckRunReport(
        name=job.context,
        external_id=external_id(run_id, job.task),
        details_url=details_url,
        status=status,
        conclusion=conclusion,
        started_at=job.started_at if status != "queued" else None,
        completed_at=(job.finished_at or now()) if status == "completed" else None,
        title=title,
        summary=summary,
        text=text,
        annotations=notes,
        actions=actions,
        check_run_id=check_run_id,
    )


def needs_new_check_run(reported_state: str, reported_description: str, state: str, description: str) -> bool:
    """A completed check run cannot start again: a job that waited for approval (shown as
    ``action_required``) and now runs gets a new check run."""
    was = check_status(reported_state, reported_description)[0] if reported_state else ""
    return was == "completed" and check_status(state, description)[0] != "completed"
