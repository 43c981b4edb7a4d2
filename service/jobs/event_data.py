"""Event data never runs as code in raw Argo templates (``argo:`` jobs).

A job's ``arguments`` become its entry template's input parameters. When an argument carries
event data (``${{ event.branch }}``: anything a forge user can choose), Argo would splice
``{{inputs.parameters.branch}}`` into whatever text names it: a script's ``source`` or a
container's ``command``/``args`` would run a branch called ``$(touch${IFS}pwned)`` as code.
So such references are refused there; the one safe way in is an environment variable
(``env: [{name: BRANCH, value: "{{inputs.parameters.branch}}"}]``, then ``"$BRANCH"``), which
is never parsed by a shell.

What carries event data is followed through the templates: a parameter passed on from a
tainted one (steps, DAG tasks, ``inline`` templates, hooks), a loop's ``{{item}}`` over one, the
outputs of a step whose template saw event data, and the Workflow's annotations (forgeflow
writes the event's description there). Plain ``{{ }}`` tags and Argo's ``{{= }}`` expressions
are both read. Pure: the job file's data in, problems (with their paths) out.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.jobs.expressions import expressions_in

Path = tuple[str | int, ...]

SINKS = ("source", "command", "args")  # where Argo's substitution becomes code or a command line
TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = r"""(?:\s*\.\s*([A-Za-z0-9_][-A-Za-z0-9_]*)|\s*\[\s*['"]([^'"]+)['"]\s*\])"""
PARAMETER = re.compile(r"inputs\s*\.\s*parameters" + _NAME + "?")
OUTPUTS = re.compile(r"\b(steps|tasks)" + _NAME + r"\s*\.\s*outputs")
ITEM = re.compile(r"(?<![\w.])item\b")
ANNOTATIONS = re.compile(r"\bworkflow\s*\.\s*(annotations|outputs)\b")
SAFE_EXPRESSION = re.compile(r"^\s*matrix\s*\.\s*[A-Za-z_][A-Za-z0-9_-]*\s*$")


@dataclass(frozen=True)
class Leak:
    """A reference to event data where Argo would splice it into code."""

    path: Path  # relative to the job's ``argo.templates``
    message: str


def carries_event_data(value: str) -> bool:
    """Whether a job ``arguments`` value takes anything from the event (``${{ }}`` other than a
    plain ``matrix.NAME``, which is the job file's own content)."""
    return any(not SAFE_EXPRESSION.match(inside) for inside in expressions_in(value))


def leaks(
    templates: Sequence[Mapping[str, Any]], entrypoint: str, arguments: Mapping[str, str]
) -> list[Leak]:
    """Every place in ``templates`` where event data from ``arguments`` would become code."""
    tainted_args = {name: value for name, value in arguments.items() if carries_event_data(value)}
    scan = _Scan(templates)
    scan.taint(entrypoint, set(tainted_args))
    scan.propagate()
    return scan.report(tainted_args)


@dataclass
class _Scope:
    """What is event data inside one template: tainted parameters, and for an ``inline``
    template of a loop over event data, ``{{item}}``."""

    params: set[str]
    item: bool = False

    def any(self) -> bool:
        return bool(self.params) or self.item


class _Scan:
    """The templates (named ones and the ``inline`` ones inside them, each by its path), what
    is tainted in each, and who calls whom."""

    def __init__(self, templates: Sequence[Mapping[str, Any]]) -> None:
        self.by_name: dict[str, Path] = {}
        self.templates: dict[Path, Mapping[str, Any]] = {}
        for index, template in enumerate(templates):
            if isinstance(template, Mapping):
                path: Path = (index,)
                if isinstance(template.get("name"), str):
                    self.by_name.setdefault(template["name"], path)
                self.templates[path] = template
                self.templates.update(_inline_templates(template, path))
        self.scopes = {path: _Scope(set()) for path in self.templates}
        self.callers: dict[Path, set[Path]] = {}  # a template -> the templates that call it
        for path, template in self.templates.items():
            for call_path, call in _all_calls(template, path):
                callee = self._callee(call, call_path)
                if callee is not None:
                    self.callers.setdefault(callee, set()).add(path)

    def _callee(self, call: Mapping[str, Any], call_path: Path) -> Path | None:
        if isinstance(call.get("inline"), Mapping):
            return (*call_path, "inline")
        name = call.get("template")
        return self.by_name.get(name) if isinstance(name, str) else None

    def taint(self, name: str, params: set[str]) -> None:
        path = self.by_name.get(name)
        if path is not None:
            self.scopes[path].params |= params

    def propagate(self) -> None:
        """Follow event data through call sites until nothing new is tainted: a template is
        looked at again when its own taint, or a callee's, changed."""
        pending = deque(self.templates)
        queued = set(pending)
        while pending:
            path = pending.popleft()
            queued.discard(path)
            for changed in self._calls(path):
                for again in (changed, *self.callers.get(changed, ())):
                    if again not in queued:
                        pending.append(again)
                        queued.add(again)

    def _tainted_siblings(self, path: Path) -> set[str]:
        """The steps and tasks of a template whose callee sees event data (their outputs may
        carry it)."""
        tainted = set()
        for name, (call_path, call) in _call_sites(self.templates[path], path):
            callee = self._callee(call, call_path)
            if callee is not None and self.scopes[callee].any():
                tainted.add(name)
        return tainted

    def _calls(self, path: Path) -> list[Path]:
        """Taint what this template's call sites pass on; the callees whose taint grew."""
        scope, siblings = self.scopes[path], self._tainted_siblings(path)
        changed = []
        for call_path, call in _all_calls(self.templates[path], path):
            loop = any(
                _tainted(text, scope, siblings)
                for key in ("withParam", "withItems", "withSequence")
                for text in _strings(call.get(key))
            )
            params = set()
            arguments = call.get("arguments")
            for parameter in _list(arguments.get("parameters") if isinstance(arguments, Mapping) else None):
                if not (isinstance(parameter, Mapping) and isinstance(parameter.get("name"), str)):
                    continue
                if any(_tainted(t, scope, siblings, item=loop) for t in _strings(parameter.get("value"))):
                    params.add(parameter["name"])
            callee = self._callee(call, call_path)
            if callee is None:
                continue
            inline = callee[-1] == "inline"
            target = self.scopes[callee]
            item = loop and inline  # {{item}} reaches an inline template's own text
            if not params <= target.params or (item and not target.item):
                target.params |= params
                target.item = target.item or item
                changed.append(callee)
        return changed

    def report(self, tainted_args: Mapping[str, str]) -> list[Leak]:
        found: list[Leak] = []
        for path, template in self.templates.items():
            scope, siblings = self.scopes[path], self._tainted_siblings(path)
            for where, text in _sinks(template, path):
                for tag, name in _tainted_refs(text, scope, siblings):
                    found.append(Leak(where, _message(tag, name, where, tainted_args)))
        return found


# -- walking a template ---------------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _walk(value: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) under ``value``, not descending into ``inline`` templates (their
    own scope) — the ``inline`` mapping itself is yielded."""
    yield path, value
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "inline" and isinstance(item, Mapping):
                yield (*path, key), item
                continue
            yield from _walk(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, index))


def _inline_templates(template: Mapping[str, Any], path: Path) -> Iterator[tuple[Path, Mapping[str, Any]]]:
    for where, value in _walk(template, path):
        if where and where[-1] == "inline" and isinstance(value, Mapping) and where != path:
            yield where, value
            yield from _inline_templates(value, where)


def _all_calls(template: Mapping[str, Any], path: Path) -> Iterator[tuple[Path, Mapping[str, Any]]]:
    """Call sites in a template: steps, DAG tasks, hooks, exit handlers (a mapping that names a
    ``template`` or holds an ``inline`` one)."""
    for where, value in _walk(template, path):
        if where == path or not isinstance(value, Mapping) or (where and where[-1] == "inline"):
            continue
        if isinstance(value.get("template"), str) or isinstance(value.get("inline"), Mapping):
            yield where, value


def _call_sites(
    template: Mapping[str, Any], path: Path
) -> Iterator[tuple[str, tuple[Path, Mapping[str, Any]]]]:
    """Named steps and tasks: what ``{{steps.NAME.outputs...}}`` can refer to."""
    for where, call in _all_calls(template, path):
        name = call.get("name")
        if isinstance(name, str):
            yield name, (where, call)


def _sinks(template: Mapping[str, Any], path: Path) -> Iterator[tuple[Path, str]]:
    for where, value in _walk(template, path):
        if not where or where[-1] not in SINKS:
            continue
        if any(part == "arguments" for part in where[len(path) :]):
            continue  # a call site's arguments are passed on, not run
        for index, text in enumerate(_strings(value)):
            yield ((*where, index) if isinstance(value, list | tuple) else where), text


# -- references --------------------------------------------------------------------------


def _refs(text: str) -> Iterator[tuple[str, str, str]]:
    """(kind, name, tag) for each reference in ``text``'s ``{{ }}`` tags: kind ``param`` (name
    ``*``: all of them, or one computed), ``output`` (of a step or task), ``item`` or
    ``workflow`` (its annotations and global outputs)."""
    for match in TAG.finditer(text):
        tag, inner = match.group(0), match.group(1)
        for found in PARAMETER.finditer(inner):
            yield "param", found.group(1) or found.group(2) or "*", tag
        for found in OUTPUTS.finditer(inner):
            yield "output", found.group(2) or found.group(3), tag
        if ITEM.search(inner):
            yield "item", "item", tag
        if ANNOTATIONS.search(inner):
            yield "workflow", "value", tag


def _tainted_refs(
    text: str, scope: _Scope, siblings: set[str], item: bool = False
) -> Iterator[tuple[str, str]]:
    """(tag, name) of each reference in ``text`` to event data."""
    for kind, name, tag in _refs(text):
        if (
            (kind == "param" and scope.params and (name == "*" or name in scope.params))
            or (kind == "output" and name in siblings)
            or (kind == "item" and (item or scope.item))
            or kind == "workflow"
        ):
            yield tag, name


def _tainted(text: str, scope: _Scope, siblings: set[str], item: bool = False) -> bool:
    return next(_tainted_refs(text, scope, siblings, item), None) is not None


def _message(tag: str, name: str, where: Path, tainted_args: Mapping[str, str]) -> str:
    sink = next((str(p) for p in reversed(where) if p in SINKS), "source")
    variable = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper() or "VALUE"
    origin = {name: tainted_args[name]} if name in tainted_args else tainted_args
    given = ", ".join(f"{key}: {value!r}" for key, value in sorted(origin.items()))
    source = f" (arguments {{{given}}})" if given else ""
    what = "run as code" if sink == "source" else f"spliced into the container's {sink}"
    return (
        f"{tag} carries event data{source} and would be {what}: pass it as an environment "
        f'variable instead, env: [{{name: {variable}, value: "{tag}"}}], and use "${variable}"'
    )
