"""Label and field selectors with the syntax and semantics of the Kubernetes API server.

Label selectors (``labelSelector=``) are comma-joined requirements:

- equality: ``a=b``, ``a==b``; inequality: ``a!=b`` (also matches objects without ``a``);
- sets: ``a in (x,y)``, ``a notin (x,y)`` (``notin`` also matches objects without ``a``);
- existence: ``a``; absence: ``!a``;
- numeric comparison: ``a>1``, ``a<10`` (the label must exist and be an integer).

Field selectors (``fieldSelector=``) support ``=``, ``==`` and ``!=`` on the fields a resource
declares (custom resources: ``metadata.name`` and ``metadata.namespace`` only).

A malformed selector raises :class:`SelectorError`; the server answers it with 400 BadRequest.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_KEY = rf"(?:{_DNS_LABEL}(?:\.{_DNS_LABEL})*/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"

_EXISTS = re.compile(rf"(?P<neg>!?)\s*(?P<key>{_KEY})")
_EQUALS = re.compile(rf"(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})")
_SET = re.compile(rf"(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)")
_COMPARE = re.compile(rf"(?P<key>{_KEY})\s*(?P<op>[<>])\s*(?P<value>-?[0-9]+)")
_FIELD = re.compile(r"(?P<key>[A-Za-z0-9_.]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^,]*)")

Labels = Mapping[str, str]
LabelMatcher = Callable[[Labels], bool]
FieldMatcher = Callable[[Mapping[str, Any]], bool]


class SelectorError(ValueError):
    """A selector that the real API server would reject with 400 BadRequest."""


def _split_requirements(text: str) -> list[str]:
    """Split at the commas that are not inside ``( … )`` value sets."""
    parts: list[str] = []
    depth = 0
    start = 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    if depth != 0:
        raise SelectorError(f"unbalanced parentheses in selector {text!r}")
    return [part.strip() for part in parts]


def _int_or_none(value: str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _requirement(part: str) -> LabelMatcher:
    """Compile one requirement into a predicate over a labels mapping."""
    if match := _SET.fullmatch(part):
        key, op = match["key"], match["op"]
        if not match["values"].strip():
            raise SelectorError(f"for 'in', 'notin' operators, values set can't be empty: {part!r}")
        values = frozenset(value.strip() for value in match["values"].split(","))
        if not all(re.fullmatch(_VALUE, value) for value in values):
            raise SelectorError(f"invalid value in requirement {part!r}")
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQUALS.fullmatch(part):
        key, op, value = match["key"], match["op"], match["value"]
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _COMPARE.fullmatch(part):
        key, bound = match["key"], int(match["value"])
        if match["op"] == ">":
            return lambda labels: (n := _int_or_none(labels.get(key))) is not None and n > bound
        return lambda labels: (n := _int_or_none(labels.get(key))) is not None and n < bound
    if match := _EXISTS.fullmatch(part):
        key = match["key"]
        if match["neg"]:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(f"unable to parse requirement {part!r}")


def _match_all(predicates: Iterable[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    predicates = tuple(predicates)
    if not predicates:
        return lambda _: True
    if len(predicates) == 1:
        return predicates[0]
    return lambda value: all(predicate(value) for predicate in predicates)


@functools.lru_cache(maxsize=256)
def parse_label_selector(text: str | None) -> LabelMatcher:
    """Compile a label selector into ``predicate(labels) -> bool``; empty selects everything."""
    if not text or not text.strip():
        return _match_all(())
    parts = _split_requirements(text)
    if any(not part for part in parts):
        raise SelectorError(f"empty requirement in selector {text!r}")
    return _match_all(_requirement(part) for part in parts)


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for step in path.split("."):
        value = value.get(step) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@functools.lru_cache(maxsize=256)
def parse_field_selector(text: str | None, supported: frozenset[str]) -> FieldMatcher:
    """Compile a field selector over the ``supported`` dotted paths into ``predicate(obj)``."""
    if not text or not text.strip():
        return _match_all(())
    predicates: list[FieldMatcher] = []
    for part in _split_requirements(text):
        match = _FIELD.fullmatch(part)
        if match is None:
            raise SelectorError(f"invalid field selector requirement {part!r}")
        path, op, value = match["key"], match["op"], match["value"].strip()
        if path not in supported:
            raise SelectorError(f'field label not supported: "{path}"')
        predicates.append(_field_requirement(path, value, negated=op == "!="))
    return _match_all(predicates)


def _field_requirement(path: str, value: str, *, negated: bool) -> FieldMatcher:
    if negated:
        return lambda obj: _field_value(obj, path) != value
    return lambda obj: _field_value(obj, path) == value
