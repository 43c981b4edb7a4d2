"""Check runs (GitHub's Checks API) as the forge seam takes them: one job's state in GitHub's
words, and the request body that shows it.

The reporter decides what a job's check run says (``service.reporting.check_runs``); a forge that
shows check runs creates it once (``POST /repos/{owner}/{repo}/check-runs``) and then updates it
(``PATCH .../check-runs/{id}``), one request per change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from service.events import Repository

MAX_ANNOTATIONS = 50  # GitHub takes at most 50 per request
MAX_OUTPUT = 65535  # characters of a summary or text
MAX_TITLE = 255


@dataclass(frozen=True)
class Annotation:
    """A line of a file a step's output complained about."""

    path: str
    line: int
    message: str
    level: str = "failure"  # notice | warning | failure
    column: int = 0
    title: str = ""


@dataclass(frozen=True)
class CheckAction:
    """A button on a check run (``check_run`` ``requested_action`` names its identifier)."""

    label: str  # at most 20 characters
    description: str  # at most 40
    identifier: str  # at most 20


@dataclass(frozen=True)
class CheckRunReport:
    """One job's check run, in GitHub's words."""

    name: str
    external_id: str
    details_url: str
    status: str  # queued | in_progress | completed
    conclusion: str = ""  # with completed: success, failure, cancelled, skipped, timed_out, ...
    started_at: datetime | None = None  # naive UTC, as every table stores times
    completed_at: datetime | None = None
    title: str = ""
    summary: str = ""
    text: str = ""
    annotations: tuple[Annotation, ...] = ()
    actions: tuple[CheckAction, ...] = ()
    check_run_id: str = ""  # the check run to update; "" creates one


class CheckRunForge(Protocol):
    """A forge that shows jobs as check runs (``reports_check_runs`` says whether it does now)."""

    reports_check_runs: bool

    def check_run(self, repo: Repository, sha: str, report: CheckRunReport) -> str:
        """Create (no ``report.check_run_id``) or update a check run; its id."""
        ...

    def find_check_run(self, repo: Repository, sha: str, name: str, external_id: str) -> str:
        """The id of the check run ``name`` with ``external_id`` on ``sha``, or ""."""
        ...


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 20] + "\n… (cut)"


def check_run_body(report: CheckRunReport, sha: str) -> dict[str, Any]:
    """The JSON body that creates (with ``head_sha``) or updates a check run."""
    body: dict[str, Any] = {
        "name": report.name,
        "external_id": report.external_id,
        "details_url": report.details_url,
        "status": report.status,
    }
    if not report.check_run_id:
        body["head_sha"] = sha
    if report.started_at is not None:
        body["started_at"] = _time(report.started_at)
    if report.status == "completed":
        body["conclusion"] = report.conclusion
        if report.completed_at is not None:
            body["completed_at"] = _time(report.completed_at)
    if report.title:
        output: dict[str, Any] = {
            "title": report.title[:MAX_TITLE],
            "summary": _cut(report.summary or report.title, MAX_OUTPUT),
        }
        if report.text:
            output["text"] = _cut(report.text, MAX_OUTPUT)
        if report.annotations:
            output["annotations"] = [_annotation(a) for a in report.annotations[:MAX_ANNOTATIONS]]
        body["output"] = output
    if report.actions:
        body["actions"] = [
            {"label": a.label[:20], "description": a.description[:40], "identifier": a.identifier[:20]}
            for a in report.actions
        ]
    return body


def _annotation(a: Annotation) -> dict[str, Any]:
    data: dict[str, Any] = {
        "path": a.path,
        "start_line": a.line,
        "end_line": a.line,
        "annotation_level": a.level,
        "message": a.message[: 64 * 1024],
    }
    if a.column:  # GitHub takes columns only on one line, which these are
        data["start_column"] = data["end_column"] = a.column
    if a.title:
        data["title"] = a.title[:255]
    return data
