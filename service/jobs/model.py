"""The ``.forgeflow.yaml`` job file: its schema, strict, with the forms users write.

``version: 1`` files look like::

    version: 1
    defaults: {image: "registry.fedoraproject.org/fedora:41", timeout: 30m}
    jobs:
      lint:
        on: [pull_request, push]
        branches: [main, "release/*"]
        steps: [{run: make lint}]

Unknown keys are errors (a typo must not silently disable a filter).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from service.jobs.durations import parse_duration

JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EVENT_NAMES = ("push", "tag", "pull_request", "comment", "release", "manual")
PULL_REQUEST_TYPES = ("opened", "synchronize", "reopened", "closed", "labeled", "ready_for_review")
DEFAULT_PULL_REQUEST_TYPES = ("opened", "synchronize", "reopened")


def _str_list(value: Any) -> Any:
    """Accept ``x`` as shorthand for ``[x]``."""
    return [value] if isinstance(value, str) else value


StrList = Annotated[tuple[str, ...], BeforeValidator(_str_list)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Duration = Annotated[int, BeforeValidator(parse_duration)]


class Step(_Strict):
    run: str = Field(min_length=1)
    name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"run": value} if isinstance(value, str) else value


class PushTrigger(_Strict):
    branches: StrList | None = None
    branches_ignore: StrList | None = Field(default=None, alias="branches-ignore")


class TagTrigger(_Strict):
    tags: StrList | None = None

    @model_validator(mode="before")
    @classmethod
    def _list_form(cls, value: Any) -> Any:
        return {"tags": value} if isinstance(value, list | str) else value


class PullRequestTrigger(_Strict):
    types: tuple[Literal[PULL_REQUEST_TYPES], ...] = DEFAULT_PULL_REQUEST_TYPES  # type: ignore[valid-type]
    branches: StrList | None = None
    branches_ignore: StrList | None = Field(default=None, alias="branches-ignore")

    @field_validator("types", mode="before")
    @classmethod
    def _types(cls, value: Any) -> Any:
        return _str_list(value)


class CommentTrigger(_Strict):
    command: str = "test"

    @field_validator("command")
    @classmethod
    def _word(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", value):
            raise ValueError("a command is one lower-case word, like 'test' or 'smoke'")
        return value


class EmptyTrigger(_Strict):
    pass


class Triggers(_Strict):
    """The normalised ``on:``: each present key means the job answers that event."""

    push: PushTrigger | None = None
    tag: TagTrigger | None = None
    pull_request: PullRequestTrigger | None = None
    comment: CommentTrigger | None = None
    release: EmptyTrigger | None = None
    manual: EmptyTrigger | None = None

    @model_validator(mode="before")
    @classmethod
    def _forms(cls, value: Any) -> Any:
        """``on: push``, ``on: [push, tag]`` or ``on: {push: {...}, tag: [v*]}``."""
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            names: dict[str, Any] = {}
            for item in value:
                if not isinstance(item, str):
                    raise ValueError("list items of 'on' are event names")
                names[item] = {}
            value = names
        if isinstance(value, dict):
            unknown = [k for k in value if k not in EVENT_NAMES]
            if unknown:
                raise ValueError(f"unknown event {unknown[0]!r}; 'on' takes {', '.join(EVENT_NAMES)}")
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value


class Defaults(_Strict):
    image: str | None = None
    timeout: Duration | None = None
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        return _env_values(value)


def _env_values(value: Any) -> Any:
    """Environment values are strings; numbers and booleans are written as YAML spells them."""
    if not isinstance(value, dict):
        return value
    result: dict[Any, Any] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            item = "true" if item else "false"
        elif isinstance(item, int | float):
            item = str(item)
        result[key] = item
    return result


class JobSpec(_Strict):
    on: Triggers = Field(
        default_factory=lambda: Triggers(push=PushTrigger(), pull_request=PullRequestTrigger())
    )
    branches: StrList | None = None
    branches_ignore: StrList | None = Field(default=None, alias="branches-ignore")
    image: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    timeout: Duration | None = None
    needs: StrList = ()
    steps: tuple[Step, ...]

    @field_validator("steps")
    @classmethod
    def _some_steps(cls, value: tuple[Step, ...]) -> tuple[Step, ...]:
        if not value:
            raise ValueError("a job needs at least one step")
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        return _env_values(value)

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not ENV_NAME.match(key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
            if key.startswith("FORGEFLOW_"):
                raise ValueError(f"{key!r}: names starting with FORGEFLOW_ are reserved")
        return value


class JobFile(_Strict):
    version: Literal[1]
    defaults: Defaults = Field(default_factory=Defaults)
    jobs: dict[str, JobSpec]

    @field_validator("jobs")
    @classmethod
    def _job_names(cls, value: dict[str, JobSpec]) -> dict[str, JobSpec]:
        if not value:
            raise ValueError("define at least one job")
        for name in value:
            if not JOB_NAME.match(name):
                raise ValueError(f"job name {name!r}: use letters, digits, '-', '_' or '.', at most 63")
        return value
