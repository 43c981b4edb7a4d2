"""What jobs hand each other and bring along: needs, outputs, caches, services.

- ``needs: [build, {job: lint, artifacts: false}, {job: docs, optional: true}]``: a need's
  artifacts are unpacked at the same paths (unless ``artifacts: false``); an ``optional`` need
  never keeps the job from running (it waits for it when it is in the run).
- ``outputs: [version]``: names a step may write as ``name=value`` lines to ``$FORGEFLOW_OUTPUT``.
- ``cache: {key, paths, restore-keys}``: restored before the steps, saved after them.
- ``services: {db: {image, env, ports}}``: containers next to the job's, on localhost.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from service.jobs.images import image_problem
from service.jobs.options import STRING
from service.jobs.triggers import Strict, StrList, shorthand

OUTPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")
SERVICE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")
HASH_FILES = re.compile(r"hashFiles\(\s*(?:'[^']*'|\"[^\"]*\")(\s*,\s*(?:'[^']*'|\"[^\"]*\"))*\s*\)")
MATRIX_VALUE = re.compile(r"matrix\.[A-Za-z_][A-Za-z0-9_-]*")
MAX_CACHE_PATHS = 20


class Need(Strict):
    """``needs: [build]`` or ``needs: [{job: build, artifacts: false, optional: true}]``."""

    model_config = ConfigDict(json_schema_extra=shorthand(STRING))

    job: str
    artifacts: bool = True
    optional: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"job": value} if isinstance(value, str) else value


def needs_list(value: Any) -> Any:
    """``needs: build`` is ``needs: [build]``."""
    return [value] if isinstance(value, str | dict) else value


def _relative(value: str, what: str) -> str:
    clean = value.strip().rstrip("/")
    if not clean or clean.startswith(("/", "~")) or ".." in clean.split("/") or "{{" in clean:
        raise ValueError(f"{value!r}: a {what} is a path inside the checkout, without '..'")
    return clean


class Cache(Strict):
    """``cache: {key: "pip-${{ hashFiles('requirements.txt') }}", paths: [...], restore-keys: [...]}``."""

    key: str = Field(min_length=1, max_length=200)
    paths: StrList = Field(min_length=1)
    restore_keys: StrList = Field(default=(), alias="restore-keys")

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > MAX_CACHE_PATHS:
            raise ValueError(f"at most {MAX_CACHE_PATHS} cache paths")
        return tuple(_relative(p, "cache path") for p in value)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        for inside in re.findall(r"\$\{\{(.*?)\}\}", value, re.DOTALL):
            if not HASH_FILES.fullmatch(inside.strip()) and not MATRIX_VALUE.fullmatch(inside.strip()):
                raise ValueError(
                    f"a cache key may only use ${{{{ hashFiles('glob', ...) }}}} and matrix values, "
                    f"not {inside.strip()!r}"
                )
        return value

    @field_validator("restore_keys")
    @classmethod
    def _restore_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            if "${{" in key or not key.strip():
                raise ValueError("restore-keys are plain key prefixes")
        if len(value) > 5:
            raise ValueError("at most 5 restore-keys")
        return value


class Service(Strict):
    """A service container next to the job's: reachable on ``localhost:<port>``."""

    image: str = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    ports: tuple[int, ...] = ()
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in value.items()}
        return value

    @field_validator("env")
    @classmethod
    def _env_values(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if "{{" in item:
                raise ValueError(f"env {key}: a service's environment cannot contain '{{{{'")
        return value

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for port in value:
            if not 1 <= port <= 65535:
                raise ValueError(f"{port} is not a TCP port")
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        if "{{" in value or "${{" in value:
            raise ValueError("a service image is written out, without expressions")
        problem = image_problem(value)
        if problem:
            raise ValueError(problem)
        return value


def output_names(value: tuple[str, ...]) -> tuple[str, ...]:
    for name in value:
        if not OUTPUT_NAME.match(name):
            raise ValueError(f"output {name!r}: use letters, digits, '_' or '-'")
    if len(set(value)) != len(value):
        raise ValueError("an output is listed twice")
    return value


def service_names(value: dict[str, Service]) -> dict[str, Service]:
    for name in value:
        if not SERVICE_NAME.match(name):
            raise ValueError(f"service {name!r}: use lower-case letters, digits and '-', at most 32")
    if len(value) > 5:
        raise ValueError("at most 5 services")
    return value
