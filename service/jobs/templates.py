"""Job templates: ``uses: NAME`` + ``with: {...}`` in a job, resolved before validation.

A template is a job body plus ``inputs:`` (each optionally with a ``default``)::

    # .forgeflow/templates/python.yaml (or `templates: {python: ...}` in the service config)
    inputs:
      python: {default: "3.12"}
      target: {}                       # required: no default
    image: "quay.io/example/python:${{ inputs.python }}"
    steps: [{run: "make ${{ inputs.target }}"}]

``${{ inputs.NAME }}`` is replaced in every string of the body (a string that is only that
expression takes the input's value with its type). The job's own keys then win over the
template's, except ``env``, which is merged (the job's variables win). Templates are looked up
through a :data:`TemplateSource` (the repository's ``.forgeflow/templates/NAME.yaml`` first, then
the service config), so this module stays free of I/O. Templates cannot use other templates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.jobs.errors import ConfigProblem, dotted, problem_at
from service.jobs.expressions import SIMPLE, ExpressionError, substitute_simple
from service.jobs.scalars import changed_text, quote_message
from service.jobs.suggest import did_you_mean, one_of
from service.jobs.yaml_source import Limits, Located, Path, YamlError, load_located

TEMPLATE_DIR = ".forgeflow/templates"
TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_WHOLE = re.compile(r"^\$\{\{(.*)\}\}$", re.DOTALL)


@dataclass(frozen=True)
class TemplateDocument:
    """A template as found: YAML ``text`` (from a repository) or parsed ``data`` (service config)."""

    file: str
    text: str | bytes | None = None
    data: Any = None


TemplateSource = Callable[[str], TemplateDocument | None]


def template_path(name: str) -> str:
    return f"{TEMPLATE_DIR}/{name}.yaml"


def settings_source(templates: Mapping[str, Any]) -> TemplateSource:
    """Templates from the service config's ``templates:`` mapping."""

    def find(name: str) -> TemplateDocument | None:
        if name not in templates:
            return None
        return TemplateDocument(f"service config templates.{name}", data=templates[name])

    return find


def first_of(*sources: TemplateSource | None) -> TemplateSource:
    """The first source that has the template."""

    def find(name: str) -> TemplateDocument | None:
        for source in sources:
            found = source(name) if source is not None else None
            if found is not None:
                return found
        return None

    return find


@dataclass
class _Loaded:
    located: Located
    file: str


class _Resolver:
    def __init__(
        self,
        located: Located,
        file: str,
        source: TemplateSource | None,
        limits: Limits,
        names: tuple[str, ...],
    ) -> None:
        self.located, self.file, self.source, self.limits = located, file, source, limits
        self.names = names
        self.cache: dict[str, _Loaded | ConfigProblem | None] = {}
        self.problems: list[ConfigProblem] = []

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(problem_at(self.located, self.file, path, message))

    def load(self, name: str, at: Path) -> _Loaded | None:
        if name not in self.cache:
            if len(self.cache) >= self.limits.max_templates:
                self.problem(at, f"more than {self.limits.max_templates} different templates")
                return None
            self.cache[name] = self._fetch(name)
        found = self.cache[name]
        if isinstance(found, ConfigProblem):
            self.problems.append(found)
            return None
        if found is None:
            known = f" (templates: {one_of(self.names)})" if self.names else ""
            hint = did_you_mean(name, self.names) or known
            where = f"looked for {template_path(name)} and in the service config"
            self.problem(at, f"no template named {name!r}{hint} ({where})")
        return found

    def _fetch(self, name: str) -> _Loaded | ConfigProblem | None:
        document = self.source(name) if self.source is not None else None
        if document is None:
            return None
        if document.text is None:
            return _Loaded(Located(document.data, {}), document.file)
        try:
            located = load_located(document.text, self.limits)
        except YamlError as exc:
            return ConfigProblem(document.file, exc.line, exc.column, "", exc.message, syntax=True)
        return _Loaded(located, document.file)

    def resolve(self, name: str, job: dict[str, Any]) -> dict[str, Any] | None:
        base: Path = ("jobs", name)
        uses = job.get("uses")
        if not isinstance(uses, str) or not TEMPLATE_NAME.match(uses):
            self.problem((*base, "uses"), "uses names a template: letters, digits, '-', '_' or '.'")
            return None
        loaded = self.load(uses, (*base, "uses"))
        if loaded is None:
            return None
        tfile, tdata = loaded.file, loaded.located.data
        if not isinstance(tdata, dict):
            self.problems.append(
                ConfigProblem(tfile, 1, 1, "", "a template is a mapping: a job body and inputs")
            )
            return None
        values = self._inputs(uses, loaded, job.get("with"), base)
        if values is None:
            return None
        if "uses" in tdata:
            self._template_problem(loaded, ("uses",), "a template cannot use another template")
            return None
        body: dict[str, Any] = {}
        for key, value in tdata.items():
            if key == "inputs":
                continue
            body[key] = self._substitute(value, values, loaded, (key,))
        own = {k: v for k, v in job.items() if k not in ("uses", "with")}
        merged = {**body, **own}
        if isinstance(body.get("env"), dict) and isinstance(own.get("env"), dict):
            merged["env"] = {**body["env"], **own["env"]}
            for key in body["env"]:
                if key not in own["env"]:
                    self._adopt(loaded, ("env", key), base)
        for key in body:
            if key not in own:
                self._adopt(loaded, (key,), base)
        return merged

    def _inputs(self, uses: str, loaded: _Loaded, given: Any, base: Path) -> dict[str, Any] | None:
        declared = loaded.located.data.get("inputs") or {}
        has_with = given is not None
        if not isinstance(declared, dict):
            self._template_problem(loaded, ("inputs",), "inputs is a mapping of input names")
            return None
        if given is None:
            given = {}
        if not isinstance(given, dict):
            self.problem((*base, "with"), "with is a mapping of input values")
            return None
        values: dict[str, Any] = {}
        ok = True
        for key, spec in declared.items():
            if spec is not None and not (isinstance(spec, dict) and set(spec) <= {"default", "description"}):
                self._template_problem(
                    loaded, ("inputs", key), "an input is {default: VALUE, description: TEXT}"
                )
                ok = False
            elif key in given:
                values[key] = given[key]
            elif isinstance(spec, dict) and "default" in spec:
                values[key] = spec["default"]
                at: Path = ("inputs", key, "default")
                written = changed_text(loaded.located, at, spec["default"])
                if written is not None:
                    self._template_problem(loaded, at, quote_message(written, spec["default"]))
                    ok = False
            else:
                place: Path = (*base, "with") if has_with else (*base, "uses")
                self.problem(place, f"template {uses!r} needs input {key!r}: add with: {{{key}: ...}}")
                ok = False
        for key, value in given.items():
            if key not in declared:
                hint = did_you_mean(str(key), [str(k) for k in declared])
                self.problem((*base, "with", key), f"template {uses!r} has no input {key!r}{hint}")
                ok = False
            elif isinstance(value, dict | list):
                self.problem((*base, "with", key), "an input value is a string, number or boolean")
                ok = False
        return values if ok else None

    def _substitute(self, value: Any, values: dict[str, Any], loaded: _Loaded, path: Path) -> Any:
        if isinstance(value, dict):
            return {k: self._substitute(v, values, loaded, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._substitute(v, values, loaded, (*path, i)) for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        whole = _WHOLE.match(value)
        if whole and "${{" not in whole.group(1):
            simple = SIMPLE.match(whole.group(1))
            if simple and simple.group(1) == "inputs" and simple.group(2) in values:
                return values[simple.group(2)]
        try:
            return substitute_simple(value, "inputs", values)
        except ExpressionError as exc:
            self._template_problem(loaded, path, f"{exc}; declare it under inputs")
            return value

    def _template_problem(self, loaded: _Loaded, path: Path, message: str) -> None:
        line, column = loaded.located.position(path)
        self.problems.append(ConfigProblem(loaded.file, line, column, dotted(path), message))

    def _adopt(self, loaded: _Loaded, prefix: Path, base: Path) -> None:
        """Positions below ``prefix`` of the template become those of the job's paths."""
        for path, position in loaded.located.positions.items():
            if path[: len(prefix)] == prefix:
                self.located.positions[(*base, *path)] = position
        self.located.positions.setdefault((*base, *prefix), loaded.located.position(prefix))
        self.located.files[(*base, *prefix)] = loaded.file


def resolve_uses(
    located: Located, file: str, source: TemplateSource | None, limits: Limits, names: tuple[str, ...] = ()
) -> tuple[list[ConfigProblem], set[str]]:
    """Replace every job's ``uses``/``with`` by the template's body, in ``located`` itself.

    Returns the problems found and the jobs they are about (whose other errors would only
    repeat them).
    """
    data = located.data
    jobs = data.get("jobs") if isinstance(data, dict) else None
    if not isinstance(jobs, dict):
        return [], set()
    resolver = _Resolver(located, file, source, limits, names)
    failed: set[str] = set()
    for name, job in list(jobs.items()):
        if not isinstance(job, dict):
            continue
        before = len(resolver.problems)
        if "uses" in job:
            merged = resolver.resolve(str(name), job)
            if merged is not None:
                jobs[name] = merged
        elif "with" in job:
            resolver.problem(("jobs", name, "with"), "with gives the inputs of a template: add uses")
        if len(resolver.problems) > before:
            failed.add(str(name))
    return list(dict.fromkeys(resolver.problems)), failed
