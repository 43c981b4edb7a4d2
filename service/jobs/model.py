"""The ``.forgeflow.yaml`` job file: its schema, strict, with the forms users write.

``version: 1`` files look like::

    version: 1
    defaults: {image: "registry.fedoraproject.org/fedora:41", timeout: 30m}
    jobs:
      lint:
        on: [pull_request, push]
        branches: [main, "release/*"]
        steps: [{run: make lint}]

Unknown keys are errors (a typo must not silently disable a filter). The README's "job file"
section is the reference; ``config/schema/forgeflow.schema.json`` is generated from here.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, WithJsonSchema, field_validator, model_validator

from service.jobs.conditions import check as check_condition
from service.jobs.errors import ValueErrorAt
from service.jobs.expressions import ExpressionError
from service.jobs.handoff import Cache, Need, Service, needs_list, output_names, service_names
from service.jobs.images import image_problem
from service.jobs.options import (
    ArgoJob,
    Artifact,
    Concurrency,
    Duration,
    Matrix,
    Resources,
    Retries,
    Scalar,
    Step,
    WorkflowTemplateRef,
    secret_names,
)
from service.jobs.triggers import (
    DEFAULT_PULL_REQUEST_TYPES,
    EVENT_NAMES,
    PULL_REQUEST_TYPES,
    Strict,
    StrList,
    Triggers,
    default_triggers,
)
from service.jobs.yaml_source import Located, Path

__all__ = [
    "DEFAULT_PULL_REQUEST_TYPES",
    "EVENT_NAMES",
    "PULL_REQUEST_TYPES",
    "Defaults",
    "JobFile",
    "JobSpec",
    "Step",
    "Triggers",
]

JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RUNS_ELSEWHERE: tuple[str, ...] = ("image", "steps", "env", "secrets", "resources", "artifacts", "retries")
RUNS_ELSEWHERE += ("outputs", "cache", "services")
VALUES_SCHEMA = {
    "type": "object",
    "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]},
}
EnvMap = Annotated[dict[str, str], WithJsonSchema(VALUES_SCHEMA)]


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


def _env_names(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if not ENV_NAME.match(key):
            raise ValueErrorAt(f"{key!r} is not a valid environment variable name", key)
        if key.startswith("FORGEFLOW_"):
            raise ValueErrorAt(f"{key!r}: names starting with FORGEFLOW_ are reserved; pick another", key)
    return value


MAX_PARALLEL = 1000  # Argo parallelism of one matrix job; more cells than this never run at once


def _image(value: str | None) -> str | None:
    problem = image_problem(value, template=True) if value is not None else ""
    if problem:
        raise ValueError(problem)
    return value


def job_name_problem(name: str) -> str:
    return f"job name {name!r}: use letters, digits, '-', '_' or '.', at most 63"


class Defaults(Strict):
    image: str | None = None
    timeout: Duration | None = None
    env: EnvMap = Field(default_factory=dict)
    retries: Retries | None = None
    resources: Resources | None = None

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return _image(value)

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        return _env_values(value)

    @field_validator("env")
    @classmethod
    def _env_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return _env_names(value)


class JobSpec(Strict):
    # reuse (resolved before validation; see service.jobs.templates)
    uses: str | None = None
    with_: dict[str, Scalar] | None = Field(default=None, alias="with")
    # when
    on: Triggers = Field(default_factory=default_triggers)
    branches: StrList | None = None
    branches_ignore: StrList | None = Field(default=None, alias="branches-ignore")
    tags: StrList | None = None
    paths: StrList | None = None
    paths_ignore: StrList | None = Field(default=None, alias="paths-ignore")
    labels: StrList | None = None
    if_: str | None = Field(default=None, alias="if", max_length=1000)
    needs: Annotated[tuple[Need, ...], BeforeValidator(needs_list)] = ()
    continue_on_error: bool = Field(default=False, alias="continue-on-error")
    # branch protection: a filter that skips the job reports it as passed, "skipped: <why>"
    required: bool = False
    # how many
    matrix: Matrix | None = None
    fail_fast: bool = Field(default=True, alias="fail-fast")
    max_parallel: int | None = Field(default=None, alias="max-parallel", ge=1, le=MAX_PARALLEL)
    # what
    image: str | None = None
    env: EnvMap = Field(default_factory=dict)
    timeout: Duration | None = None
    retries: Retries | None = None
    resources: Resources | None = None
    secrets: StrList = ()
    artifacts: tuple[Artifact, ...] = ()
    outputs: StrList = ()
    cache: Cache | None = None
    services: dict[str, Service] = Field(default_factory=dict)
    steps: tuple[Step, ...] = ()
    argo: ArgoJob | None = None
    workflow_template: WorkflowTemplateRef | None = Field(default=None, alias="workflowTemplate")
    arguments: EnvMap = Field(default_factory=dict)

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return _image(value)

    @field_validator("steps")
    @classmethod
    def _some_steps(cls, value: tuple[Step, ...]) -> tuple[Step, ...]:
        if not value:
            raise ValueError("a job needs at least one step")
        return value

    @field_validator("env", "arguments", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        return _env_values(value)

    @field_validator("env")
    @classmethod
    def _env_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return _env_names(value)

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return secret_names(value)

    @field_validator("if_", mode="before")
    @classmethod
    def _constant(cls, value: Any) -> Any:
        """``if: false`` switches a job off (YAML reads it as a boolean; CEL has the same word)."""
        return ("true" if value else "false") if isinstance(value, bool) else value

    @field_validator("if_")
    @classmethod
    def _condition(cls, value: str | None) -> str | None:
        if value is not None:
            if "${{" in value:
                bare = value.strip()
                inner = bare[3:-2].strip() if bare.startswith("${{") and bare.endswith("}}") else ""
                fix = f": if: {json.dumps(inner)}" if inner and "${{" not in inner else ""
                raise ValueError(f"if is a CEL expression already: write it without ${{{{ }}}}{fix}")
            try:
                check_condition(value)
            except ExpressionError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @field_validator("outputs")
    @classmethod
    def _outputs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return output_names(value)

    @field_validator("services")
    @classmethod
    def _services(cls, value: dict[str, Service]) -> dict[str, Service]:
        for service in value.values():
            _env_names(service.env)
        return service_names(value)

    @field_validator("needs")
    @classmethod
    def _needs(cls, value: tuple[Need, ...]) -> tuple[Need, ...]:
        names = [n.job for n in value]
        if len(set(names)) != len(names):
            raise ValueError("a job is needed twice")
        return value

    @property
    def need_names(self) -> tuple[str, ...]:
        return tuple(n.job for n in self.needs)

    @field_validator("artifacts")
    @classmethod
    def _artifact_names(cls, value: tuple[Artifact, ...]) -> tuple[Artifact, ...]:
        names = [a.name for a in value]
        if len(set(names)) != len(names):
            raise ValueError("two artifacts have the same name; give them names")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> JobSpec:
        kinds = [k for k, v in (("steps", self.steps), ("argo", self.argo)) if v]
        if self.workflow_template is not None:
            kinds.append("workflowTemplate")
        if not kinds:
            raise ValueError("a job needs steps (or argo, or workflowTemplate)")
        if len(kinds) > 1:
            message = f"a job has one of steps, argo or workflowTemplate, not {' and '.join(kinds)}"
            raise ValueErrorAt(message, kinds[-1])
        if kinds[0] != "steps":
            given = [k for k in RUNS_ELSEWHERE if getattr(self, k)]
            if given:
                raise ValueErrorAt(
                    f"{kinds[0]} jobs set {', '.join(given)} in their Argo templates", given[0]
                )
        elif self.arguments:
            raise ValueErrorAt("arguments are for argo and workflowTemplate jobs", "arguments")
        return self

    @property
    def kind(self) -> Literal["steps", "argo", "workflowTemplate"]:
        if self.argo is not None:
            return "argo"
        return "workflowTemplate" if self.workflow_template is not None else "steps"


class JobFile(Strict):
    version: Literal[1]
    defaults: Defaults = Field(default_factory=Defaults)
    concurrency: Concurrency | None = None
    jobs: dict[str, JobSpec]

    _located: Located | None = PrivateAttr(default=None)
    _file: str = PrivateAttr(default=".forgeflow.yaml")

    @field_validator("jobs")
    @classmethod
    def _job_names(cls, value: dict[str, JobSpec]) -> dict[str, JobSpec]:
        if not value:
            raise ValueError("define at least one job")
        for name in value:
            if not JOB_NAME.match(name):
                raise ValueErrorAt(job_name_problem(name), name)
        return value

    def remember(self, located: Located, file: str) -> None:
        """Keep where every value was written, for errors found after loading."""
        self._located, self._file = located, file

    def where(self, path: Path) -> tuple[str, int, int]:
        """(file, line, column) of ``path``, as loaded; line 0 when unknown."""
        if self._located is None:
            return self._file, 0, 0
        line, column = self._located.position(path)
        return self._located.file_of(path, self._file), line, column
