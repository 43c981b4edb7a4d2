"""The keys a mapping of the job file may have at a given path, read from the model itself.

``known_keys(("jobs", "lint"))`` is every key a job takes, ``known_keys(("jobs", "lint", "on",
"push"))`` those of a push trigger, so "did you mean" suggestions never drift from the schema.
"""

from __future__ import annotations

import types
import typing
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from service.jobs.yaml_source import Path

# Keys a model also takes through its shorthand form (``resources: {cpu: 2}`` for requests).
SHORTHAND_KEYS: dict[str, tuple[str, ...]] = {"Resources": ("cpu", "memory")}


def _unwrap(annotation: Any) -> list[Any]:
    """The types an annotation allows: Optional, unions, Annotated and containers opened."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for option in _unwrap(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def _child(annotation: Any, part: str | int) -> Any:
    """The annotation one step below ``annotation`` (a model's field, a list's item, a map's value)."""
    for option in _unwrap(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            if isinstance(part, str):
                for name, info in option.model_fields.items():
                    if part in (info.alias, name):
                        return info.annotation
            continue
        origin = typing.get_origin(option)
        args = typing.get_args(option)
        if origin in (tuple, list) and args and isinstance(part, int):
            return args[0]
        if origin is dict and len(args) == 2 and isinstance(part, str):
            return args[1]
    return None


@lru_cache(maxsize=256)
def _keys_at(path: Path) -> tuple[str, ...] | None:
    from service.jobs.model import JobFile

    annotation: Any = JobFile
    for part in path:
        annotation = _child(annotation, part)
        if annotation is None:
            return None
    model = _model_in(annotation)
    if model is None or model.model_config.get("extra") != "forbid":
        return None
    own = tuple(info.alias or name for name, info in model.model_fields.items())
    return own + SHORTHAND_KEYS.get(model.__name__, ())


def known_keys(path: Path) -> tuple[str, ...]:
    """The keys the mapping at ``path`` takes (empty when unknown or free-form)."""
    generic = tuple(0 if isinstance(p, int) else p for p in path)
    if len(generic) > 1 and generic[0] == "jobs":
        generic = ("jobs", "*", *generic[2:])  # any job: one cache entry
    return _keys_at(generic) or ()
