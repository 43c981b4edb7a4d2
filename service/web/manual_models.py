"""The body and answer of ``POST /api/runs`` (a manual run): validated by these models, and
described by them in the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

FORGES = ("github", "gitlab", "forgejo", "pagure", "local")
MAX_JOBS = 100
MAX_INPUTS = 50
REPO_PATTERN = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$"
REF_PATTERN = r"^[^\s\x00-\x1f\x7f~^:?*\[\\]{1,255}$"
JOB_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
# what each field must be, in the words the API answers with
PROBLEMS = {
    "forge": f"forge must be one of {', '.join(FORGES)}",
    "repo": "repo must be namespace/name",
    "ref": "ref must be a branch, a tag (refs/tags/NAME) or a commit",
    "jobs": "jobs must be a list of job names",
    "inputs": "inputs must be an object of names to strings or booleans",
    "instance": "instance and sender are strings",
    "sender": "instance and sender are strings",
    "wait": "wait is a number of seconds, at most 30",
}
MAX_WAIT_SECONDS = 30.0


class ManualRunRequest(BaseModel):
    """``{"forge": "github", "repo": "octo/hello", "ref": "main", "jobs": ["deploy"]}``"""

    model_config = ConfigDict(extra="ignore", frozen=True)

    forge: Literal["github", "gitlab", "forgejo", "pagure", "local"]
    repo: Annotated[str, StringConstraints(pattern=REPO_PATTERN, max_length=255)]
    ref: Annotated[str, StringConstraints(pattern=REF_PATTERN)] = Field(
        description="a branch, refs/heads/NAME, refs/tags/NAME or a 40-hex commit"
    )
    jobs: list[Annotated[str, StringConstraints(pattern=JOB_PATTERN)]] = Field(
        default_factory=list, max_length=MAX_JOBS, description="only these `on: manual` jobs"
    )
    instance: Annotated[str, StringConstraints(max_length=255)] = Field(
        "", description="which configured instance of the forge, when there are several"
    )
    sender: Annotated[str, StringConstraints(max_length=100)] = Field("api", description="who asked")
    inputs: dict[str, str | bool | int | float] = Field(
        default_factory=dict,
        max_length=MAX_INPUTS,
        description="values for the jobs' `on.manual.inputs` (checked by the worker against the job file)",
    )
    wait: Annotated[float, Field(ge=0, le=MAX_WAIT_SECONDS, strict=True)] = Field(
        0.0, description="seconds (at most 30) to wait for the worker's decision, answered as `decided`"
    )

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        """``octo/../other`` would name another repository in the forge's API paths (and the
        repository policies' globs would read it as ``octo/*``)."""
        if any(part in (".", "..") for part in value.split("/")):
            raise ValueError("a repository name has no '.' or '..' parts")
        return value

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, value: dict[str, str | bool | int | float]) -> dict[str, str | bool | int | float]:
        """Inputs become environment variables: a NUL cannot be in one (nor in a process's)."""
        if any("\x00" in item for pair in value.items() for item in map(str, pair)):
            raise ValueError("an input has a NUL character")
        return value

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str) -> str:
        """What ``git check-ref-format`` refuses besides the pattern's characters: a leading
        '-' (an option to git), '..', '@{', '//', a part starting with '.', a '.lock' or '/' end."""
        parts = value.split("/")
        if (
            value.startswith("-")
            or ".." in value
            or "@{" in value
            or value.endswith((".lock", "/", "."))
            or any(not part or part.startswith(".") for part in parts)
        ):
            raise ValueError("not a git ref name")
        return value


class DecidedJob(BaseModel):
    name: str
    context: str
    state: str
    description: str


class DecidedRun(BaseModel):
    id: int
    phase: str
    url: str
    jobs: list[DecidedJob]


class Decided(BaseModel):
    outcome: str = Field(
        description="the worker's outcome, e.g. 'no job matched: build: not triggered manually'"
    )
    run: DecidedRun | None = Field(None, description="the run it started, if any")


class ManualRunAccepted(BaseModel):
    accepted: str = Field(description="the stored delivery's id")
    event: str
    sha: str
    decided: Decided | None = Field(
        None, description="with `wait`: what the worker decided (null: not within the wait)"
    )


def parse_manual_run(data: Any) -> tuple[ManualRunRequest | None, str]:
    """The request, or None and what is wrong with it."""
    if not isinstance(data, dict):
        return None, "send a JSON object: {forge, repo, ref, jobs?}"
    given = {key: value for key, value in data.items() if not (value is None and key != "forge")}
    for empty in ("jobs", "inputs"):  # `[]`, `{}` or "" mean "none", as they always did
        if given.get(empty) in ([], {}, ""):
            given.pop(empty)
    try:
        return ManualRunRequest.model_validate(given), ""
    except ValidationError as exc:
        first = exc.errors()[0]["loc"]
        field = str(first[0]) if first else "body"
        return None, PROBLEMS.get(field, f"{field}: {exc.errors()[0]['msg']}")
