"""``on:`` of a job: which events start it, each with its own filters.

Written as ``on: push``, ``on: [push, tag]`` or ``on: {push: {branches: [main]}, tag: ["v*"]}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
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

from service.jobs.errors import ValueErrorAt
from service.jobs.suggest import FOREIGN_EVENTS, closest

EVENT_NAMES = ("push", "tag", "pull_request", "comment", "release", "manual", "schedule", "merge_group")
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


INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")


class ManualInput(Strict):
    """One typed input of a manual run: ``{type: choice, options: [a, b], default: a}``."""

    type: Literal["string", "boolean", "choice"] = "string"
    description: str = ""
    default: str | bool | None = None
    required: bool = False
    options: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> ManualInput:
        if self.type == "choice":
            if not self.options:
                raise ValueError("a choice input needs options")
            if self.default is not None and str(self.default) not in self.options:
                raise ValueError(f"the default {self.default!r} is not one of the options")
        elif self.options:
            raise ValueError("options are for choice inputs")
        if self.type == "boolean" and self.default is not None and not isinstance(self.default, bool):
            raise ValueError("a boolean input's default is true or false")
        if self.type == "string" and isinstance(self.default, bool):
            raise ValueError("a string input's default is a string (quote it)")
        return self


class ManualTrigger(Strict):
    """``on: manual`` or ``on: {manual: {inputs: {target: {type: choice, options: [...]}}}}``."""

    inputs: dict[str, ManualInput] = Field(default_factory=dict)

    @field_validator("inputs")
    @classmethod
    def _names(cls, value: dict[str, ManualInput]) -> dict[str, ManualInput]:
        for name in value:
            if not INPUT_NAME.match(name):
                raise ValueError(f"input {name!r}: use letters, digits, '_' or '-'")
        return value


CRON_FIELD = re.compile(r"^[A-Za-z0-9*/,\-]+$")


class ScheduleEntry(Strict):
    """``{cron: "0 3 * * *", branch: main}``: five cron fields (UTC); the branch's head runs."""

    cron: str
    branch: str = ""

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5 or not all(CRON_FIELD.match(f) for f in fields):
            raise ValueError(f"{value!r}: a cron expression has five fields, like '0 3 * * *' (UTC)")
        from cronsim import CronSim, CronSimError

        try:
            CronSim(" ".join(fields), datetime(2000, 1, 1))
        except CronSimError as exc:
            raise ValueError(f"{value!r} is not a cron expression: {exc}") from exc
        return " ".join(fields)

    @field_validator("branch")
    @classmethod
    def _branch(cls, value: str) -> str:
        if value and (
            not re.fullmatch(r"[^\s\x00-\x1f\x7f~^:?*\[\\]{1,255}", value) or value.startswith("refs/")
        ):
            raise ValueError(f"{value!r}: name one branch, like main")
        return value


def _schedule_list(value: Any) -> Any:
    if isinstance(value, dict | str):
        value = [value]
    if isinstance(value, list):
        return [{"cron": v} if isinstance(v, str) else v for v in value]
    return value


ScheduleList = Annotated[tuple[ScheduleEntry, ...], BeforeValidator(_schedule_list)]


class MergeGroupTrigger(Strict):
    """GitHub's merge queue: ``branches`` are the branches the queue merges into."""

    branches: StrList | None = None
    branches_ignore: StrList | None = Field(default=None, alias="branches-ignore")


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
    manual: ManualTrigger | None = None
    schedule: ScheduleList | None = None
    merge_group: MergeGroupTrigger | None = None

    @model_validator(mode="before")
    @classmethod
    def _forms(cls, value: Any) -> Any:
        """``on: push``, ``on: [push, tag]`` or ``on: {push: {...}, tag: [v*]}``."""
        if isinstance(value, str):
            if value not in EVENT_NAMES:
                raise ValueError(_unknown_event(value))
            value = [value]
        if isinstance(value, list):
            names: dict[str, Any] = {}
            for index, item in enumerate(value):
                if not isinstance(item, str):
                    raise ValueErrorAt(
                        "on: is a list of event names (on: [push, tag]) or a mapping with each "
                        "event's filters (on: {push: {}, tag: ['v*']}), not both in one",
                        index,
                    )
                if item not in EVENT_NAMES:
                    raise ValueErrorAt(_unknown_event(item), index)
                names[item] = None
            value = names
        if isinstance(value, dict):
            unknown = [k for k in value if k not in EVENT_NAMES]
            if unknown:
                raise ValueErrorAt(_unknown_event(str(unknown[0])), unknown[0])
            return {k: (({} if k != "schedule" else []) if v is None else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _some_times(self) -> Triggers:
        if self.schedule is not None and not self.schedule:
            raise ValueError("schedule needs times: on: {schedule: [{cron: '0 3 * * *', branch: main}]}")
        return self


def _unknown_event(word: str) -> str:
    if "," in word:
        names = ", ".join(w.strip() for w in word.split(",") if w.strip())
        return f"unknown event {word!r}: several events are a list: on: [{names}]"
    near = FOREIGN_EVENTS.get(word.lower()) or closest(word, EVENT_NAMES)
    hint = f"; did you mean {near!r}?" if near else ""
    return f"unknown event {word!r}{hint} (on: takes {', '.join(EVENT_NAMES)})"


def default_triggers() -> Triggers:
    """A job without ``on:`` answers pushes and pull requests."""
    return Triggers(push=PushTrigger(), pull_request=PullRequestTrigger())
