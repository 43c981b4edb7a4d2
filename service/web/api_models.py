"""The JSON API's models: they validate every request and describe every answer, and the
OpenAPI document (:mod:`service.web.openapi`) is generated from them, so the two cannot differ.

A query string is validated as a whole (:func:`parse_query`): an unknown or repeated
parameter, or a value of the wrong type or range, is a 400 that names the parameter and says
why; nothing reaches the database unchecked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from werkzeug.datastructures import MultiDict

MAX_ID = 2**31 - 1  # the id columns are 32-bit integers
Phase = Literal["created", "submitted", "running", "succeeded", "failed", "error", "config-error", "waiting"]
EventKindName = Literal[
    "push", "tag", "pull_request", "comment", "release", "manual", "rerun", "schedule", "action"
]
ForgeName = Literal["github", "gitlab", "forgejo", "pagure", "local"]
JobStateName = Literal["pending", "running", "success", "failure", "error"]
ActionName = Literal["rerun", "rerun-failed", "cancel", "approve"]
RepoName = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")
]
Text255 = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]
RunId = Annotated[int, Field(ge=1, le=MAX_ID)]
Cursor = Annotated[str, StringConstraints(pattern=r"^r[1-9][0-9]{0,9}$")]


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunsQuery(_Query):
    """Filters of ``GET /api/runs`` (and of the ``/runs`` page)."""

    forge: ForgeName | None = Field(None, description="the forge kind")
    instance: Text255 | None = Field(None, description="the configured forge instance, e.g. github.com")
    repo: RepoName | None = Field(None, description="namespace/name, exactly")
    branch: Text255 | None = Field(None, description="the pushed branch, or a pull request's source branch")
    pr: RunId | None = Field(None, description="a pull/merge request number")
    sha: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{4,64}$")] | None = Field(
        None, description="a commit, or the start of one (at least 4 hex digits)"
    )
    state: Phase | None = Field(None, description="the run's phase")
    event: EventKindName | None = Field(None, description="what started the run")
    since: datetime | None = Field(None, description="runs created at or after this time (ISO 8601)")
    until: datetime | None = Field(None, description="runs created before this time (ISO 8601)")
    limit: int = Field(50, ge=1, le=200, description="runs per page")
    cursor: Cursor | None = Field(None, description="next_cursor of the previous page")

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        if value is not None and not 1970 <= value.year <= 9999:
            raise ValueError("the year must be between 1970 and 9999")
        return value

    @property
    def before_id(self) -> int | None:
        return int(self.cursor[1:]) if self.cursor else None


class LogQuery(_Query):
    """``GET /api/runs/{run_id}/jobs/{task}/log``: the log from a character offset on."""

    offset: int = Field(0, ge=0, le=2**40, description="where the previous chunk ended (next_offset)")
    format: Literal["text", "html"] = Field("text", description="plain text, or HTML lines for the page")


class Empty(_Query):
    """Endpoints that take no query parameters."""


class EventLinksOut(BaseModel):
    commit: str = ""
    branch: str = ""
    pull_request: str = ""
    sender: str = ""
    repository: str = ""


class JobOut(BaseModel):
    name: str
    task: str
    context: str
    state: JobStateName | str
    description: str
    summary: str = Field(description="how the job went, in words")
    reported_state: str
    started_at: str | None
    finished_at: str | None
    duration_seconds: float | None
    log_url: str


class WorkflowOut(BaseModel):
    namespace: str
    name: str


class RunOut(BaseModel):
    id: int
    url: str
    forge: str
    instance: str
    repository: str
    sha: str
    ref: str
    branch: str
    event: str = Field(description="what started the run: push, pull_request, comment, manual, ...")
    sender: str
    pull_request: int | None
    phase: Phase | str
    message: str = Field(description="the run's own message (as the executor gave it)")
    summary: str = Field(description="how the run went, in words")
    executor: str
    workflow: WorkflowOut
    created_at: str | None
    finished_at: str | None
    links: EventLinksOut
    actions: list[ActionName] = Field(description="what the caller may do to this run now")
    jobs: list[JobOut]


class RunPage(BaseModel):
    runs: list[RunOut]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null: no more")


class LogChunk(BaseModel):
    offset: int
    next_offset: int
    complete: bool = Field(description="the job is over and this is the end of its log")
    text: str = Field("", description="format=text: the log from offset on, whole lines")
    html: str = Field("", description="format=html: the same lines as the page shows them")


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: ActionName
    request_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")] | None = Field(
        None, description="an idempotency key: the same key again is the same request"
    )


class ActionAccepted(BaseModel):
    accepted: str = Field(description="the id of the stored request; the worker carries it out")
    action: ActionName
    run: int


class StatusOut(BaseModel):
    context: str
    state: str
    description: str
    target_url: str


class ErrorOut(BaseModel):
    error: str


class HealthOut(BaseModel):
    ok: bool
    checks: dict[str, str] = Field(default_factory=dict)


class MeOut(BaseModel):
    role: Literal["anonymous", "user", "admin"]
    forge: str
    instance: str
    login: str


Q = TypeVar("Q", bound=_Query)


class BadQuery(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_query(model: type[Q], args: MultiDict[str, str], *, strict: bool = True) -> Q:
    """The query string as ``model``; :class:`BadQuery` says which parameter is wrong and why.
    ``strict=False`` (pages) ignores parameters the model does not know and empty ones."""
    values: dict[str, Any] = {}
    for name in args:
        given = args.getlist(name)
        if name not in model.model_fields:
            if strict:
                raise BadQuery(f"unknown query parameter {name[:40]!r}")
            continue
        if len(given) > 1:
            raise BadQuery(f"{name}: give it once")
        if given[0] == "" and not strict:
            continue
        values[name] = given[0]
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise BadQuery(validation_reason(exc)) from exc


def validation_reason(exc: ValidationError) -> str:
    """The first problem of a validation error, in one line: ``limit: Input should be ...``."""
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def parse_run_id(text: str) -> int:
    """A run id from a path: digits, 1 to 2^31-1."""
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or not 1 <= int(text) <= MAX_ID:
        raise BadQuery(f"run id must be a number from 1 to {MAX_ID}")
    return int(text)
