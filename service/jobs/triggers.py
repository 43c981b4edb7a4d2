"""``on:`` of a job: which events start it, each with its own filters.

Written as ``on: push``, ``on: [push, tag]`` or ``on: {push: {branches: [main]}, tag: ["v*"]}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

EVENT_NAMES = ("push", "tag", "pull_request", "comment", "release", "manual")
PULL_REQUEST_TYPES = ("opened", "synchronize", "reopened", "closed", "labeled", "ready_for_review")
DEFAULT_PULL_REQUEST_TYPES = ("opened", "synchronize", "reopened")


def str_list(value: Any) -> Any:
    """Accept ``x`` as shorthand for ``[x]``."""
    return [value] if isinstance(value, str) else value


STRINGS_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
StrList = Annotated[tuple[str, ...], BeforeValidator(str_list), WithJsonSchema(STRINGS_SCHEMA)]


def shorthand(*forms: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """JSON Schema for a model that also accepts short ``forms`` (``on: push`` for a mapping)."""

    def extra(schema: dict[str, Any]) -> None:
        full = dict(schema)
        schema.clear()
        for key in ("title", "description"):
            if key in full:
                schema[key] = full.pop(key)
        schema["anyOf"] = [*forms, full]

    return extra


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PushTrigger(Strict):
    branches: StrList | None = None
    branches_ignore: StrList | None = Field(default=None, alias="branches-ignore")
    paths: StrList | None = None
    paths_ignore: StrList | None = Field(default=None, alias="paths-ignore")


class TagTrigger(Strict):
    model_config = ConfigDict(json_schema_extra=shorthand(STRINGS_SCHEMA))

    tags: StrList | None = None

    @model_validator(mode="before")
    @classmethod
    def _list_form(cls, value: Any) -> Any:
        return {"tags": value} if isinstance(value, list | str) else value


class PullRequestTrigger(Strict):
    types: tuple[Literal[PULL_REQUEST_TYPES], ...] = DEFAULT_PULL_REQUEST_TYPES  # type: ignore[valid-type]
    branches: StrList | None = None
    branches_ignore: StrList | None = Field(default=None, alias="branches-ignore")
    paths: StrList | None = None
    paths_ignore: StrList | None = Field(default=None, alias="paths-ignore")
    labels: StrList | None = None

    @field_validator("types", mode="before")
    @classmethod
    def _types(cls, value: Any) -> Any:
        return str_list(value)


class CommentTrigger(Strict):
    command: str = "test"

    @field_validator("command")
    @classmethod
    def _word(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", value):
            raise ValueError("a command is one lower-case word, like 'test' or 'smoke'")
        return value


class EmptyTrigger(Strict):
    pass


EVENT_SCHEMA = {"type": "string", "enum": list(EVENT_NAMES)}


class Triggers(Strict):
    """The normalised ``on:``: each present key means the job answers that event."""

    model_config = ConfigDict(
        json_schema_extra=shorthand(EVENT_SCHEMA, {"type": "array", "items": EVENT_SCHEMA})
    )

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


def default_triggers() -> Triggers:
    """A job without ``on:`` answers pushes and pull requests."""
    return Triggers(push=PushTrigger(), pull_request=PullRequestTrigger())
