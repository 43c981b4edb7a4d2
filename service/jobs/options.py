"""The parts of a job beyond its triggers: matrix, retries, resources, artifacts, Argo forms."""

from __future__ import annotations

import re
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

from service.jobs.durations import parse_duration
from service.jobs.triggers import Strict, shorthand

STRING = {"type": "string"}
DURATION_SCHEMA = {
    "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": r"^\s*(\d+\s*[dhms]?\s*)+$"}]
}
Duration = Annotated[int, BeforeValidator(parse_duration), WithJsonSchema(DURATION_SCHEMA)]
Scalar = str | bool | int | float
AXIS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")
QUANTITY = re.compile(r"^(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_]{0,62}$")
SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
FIELD_NAME = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9]{0,62}$")
PARAMETER_NAME = re.compile(r"^[A-Za-z0-9_][-A-Za-z0-9_]{0,62}$")


class Step(Strict):
    model_config = ConfigDict(json_schema_extra=shorthand(STRING))

    run: str = Field(min_length=1)
    name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"run": value} if isinstance(value, str) else value


def _printable(name: str, values: tuple[Scalar, ...]) -> None:
    """Matrix values name the cells' statuses (``forgeflow/tests (python=3.12)``), which the
    forge shows and the database keeps: no control characters (PostgreSQL refuses NUL)."""
    for value in values:
        if isinstance(value, str) and not value.isprintable():
            raise ValueError(f"matrix {name} value {value!r}: no control characters")


class Matrix(BaseModel):
    """``{axis: [values], include: [{...}], exclude: [{...}]}``; every other key is an axis."""

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, tuple[Scalar, ...]] = Field(init=False)

    include: tuple[dict[str, Scalar], ...] = ()
    exclude: tuple[dict[str, Scalar], ...] = ()

    @property
    def axes(self) -> dict[str, tuple[Scalar, ...]]:
        return dict(self.__pydantic_extra__ or {})

    @model_validator(mode="after")
    def _names(self) -> Matrix:
        for name, values in self.axes.items():
            if not AXIS_NAME.match(name):
                raise ValueError(f"matrix axis {name!r}: use letters, digits, '-' or '_'")
            if not values:
                raise ValueError(f"matrix axis {name!r} has no values")
            _printable(name, values)
        for entry in (*self.include, *self.exclude):
            for name in entry:
                if not AXIS_NAME.match(name):
                    raise ValueError(f"matrix key {name!r}: use letters, digits, '-' or '_'")
                _printable(name, (entry[name],))
        if not self.axes and not self.include:
            raise ValueError("a matrix needs at least one axis or include entry")
        return self


class Retries(Strict):
    """``retries: 2`` or ``{limit: 2, backoff: 10s, factor: 2, max-backoff: 5m, policy: ...}``."""

    model_config = ConfigDict(json_schema_extra=shorthand({"type": "integer", "minimum": 1, "maximum": 10}))

    limit: int = Field(ge=1, le=10)
    backoff: Duration = 10
    factor: int = Field(default=2, ge=1, le=10)
    max_backoff: Duration = Field(default=300, alias="max-backoff")
    policy: Literal["Always", "OnFailure", "OnError", "OnTransientError"] = "Always"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"limit": value}
        return value


def _quantity(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and not QUANTITY.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (like 500m, 2, 1Gi)")
    return value


QUANTITY_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": QUANTITY.pattern}]}
Quantity = Annotated[str, BeforeValidator(_quantity), WithJsonSchema(QUANTITY_SCHEMA)]


class Amounts(Strict):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class Resources(Strict):
    """``{cpu: 2, memory: 4Gi}`` (requests) or ``{requests: {...}, limits: {...}}``."""

    model_config = ConfigDict(
        json_schema_extra=shorthand(
            {
                "type": "object",
                "properties": {"cpu": QUANTITY_SCHEMA, "memory": QUANTITY_SCHEMA},
                "additionalProperties": False,
            }
        )
    )

    requests: Amounts | None = None
    limits: Amounts | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        keys = set(value) if isinstance(value, dict) else set()
        if keys & {"cpu", "memory"} and not keys & {"requests", "limits"}:
            return {"requests": value}
        return value


class Artifact(Strict):
    """A path (file or folder) of the checkout kept after the job: ``dist/`` or ``{name, path}``."""

    model_config = ConfigDict(json_schema_extra=shorthand(STRING))

    path: str
    name: str = ""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        clean = value.strip().rstrip("/")
        if not clean or clean.startswith("/") or ".." in clean.split("/") or "{{" in clean:
            raise ValueError(f"{value!r}: an artifact is a path inside the checkout, without '..'")
        return clean

    @model_validator(mode="after")
    def _named(self) -> Artifact:
        if not self.name:
            name = re.sub(r"[^A-Za-z0-9_-]+", "-", self.path).strip("-_")[:63] or "artifact"
            object.__setattr__(self, "name", name)
        if not ARTIFACT_NAME.match(self.name):
            raise ValueError(f"artifact name {self.name!r}: use letters, digits, '-' or '_'")
        return self


class ArgoJob(Strict):
    """Raw Argo: templates (validated as strictly as generated ones) and the one the task runs."""

    entrypoint: str
    templates: tuple[dict[str, Any], ...] = Field(min_length=1)


class WorkflowTemplateRef(Strict):
    """``workflowTemplate: NAME`` (its template ``main``) or ``{name, template, cluster-scope}``."""

    model_config = ConfigDict(json_schema_extra=shorthand(STRING))

    name: str
    template: str = "main"
    cluster_scope: bool = Field(default=False, alias="cluster-scope")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SECRET_NAME.match(value) or len(value) > 253:
            raise ValueError(f"{value!r} is not a Kubernetes object name")
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        if not FIELD_NAME.match(value):
            raise ValueError(f"{value!r} is not an Argo template name")
        return value


class Concurrency(Strict):
    """The run's concurrency group (``${{ CEL }}`` allowed) and whether a new run stops older ones."""

    model_config = ConfigDict(json_schema_extra=shorthand(STRING))

    group: str = Field(min_length=1, max_length=500)
    cancel_in_progress: bool = Field(default=False, alias="cancel-in-progress")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"group": value} if isinstance(value, str) else value


def secret_names(value: tuple[str, ...]) -> tuple[str, ...]:
    for name in value:
        if not SECRET_NAME.match(name) or len(name) > 253:
            raise ValueError(f"{name!r} is not a Kubernetes Secret name")
    if len(set(value)) != len(value):
        raise ValueError("a secret is listed twice")
    return value
