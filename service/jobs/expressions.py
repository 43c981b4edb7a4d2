"""``${{ ... }}`` in job files, and ``if:`` conditions: CEL over the event.

The CEL environment has two variables:

- ``event``: the event as a map (see :func:`event_context`; every key is always present, with
  zero values where the event has none, so ``event.pull_request.draft`` is ``false`` on a push);
- ``matrix``: the matrix cell's values as strings (in ``concurrency`` and ``arguments``).

Where ``${{ }}`` may be used:

- ``${{ inputs.NAME }}`` anywhere in a template (replaced when the template is used);
- ``${{ matrix.NAME }}`` in ``image``, ``env`` values, step names and scripts, ``arguments``;
- ``${{ CEL }}`` with ``event`` in ``concurrency.group`` and ``arguments`` values only: event
  data never reaches a script (steps read it from ``FORGEFLOW_*`` environment variables).

Hostile expressions are bounded: at most 1000 characters, and no comprehension macro
(``map``, ``filter``, ``all``, ``exists``, ``exists_one``) inside another one. ``matches``
runs RE2 (linear time: no pattern can backtrack for long); a literal pattern RE2 refuses
(backreferences, lookaround) is reported when the expression is compiled, not when it runs.
"""

from __future__ import annotations

import ast
import json
import re
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import celpy
import re2
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from service.events import Event

EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
SIMPLE = re.compile(r"^\s*(matrix|inputs)\.([A-Za-z_][A-Za-z0-9_-]*)\s*$")
MACRO = re.compile(r"\.\s*(map|filter|all|exists_one|exists)\s*\(")
MAX_LENGTH = 1000
# a string literal given to matches(), as a method (s.matches("re")) or a function (matches(s, "re"))
PATTERN = re.compile(
    r"""\bmatches\s*\(\s*(?:[^,()]*,\s*)?(r?(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'))\s*\)"""
)


class ExpressionError(Exception):
    """An expression that does not parse, or fails when evaluated (the message says why);
    ``offset`` is where in the expression a syntax error is, when known (0-based)."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


_ENVIRONMENT = celpy.Environment()
_LOCK = threading.Lock()  # cel-python's parser and trees are not documented as thread-safe


def _check_macros(text: str) -> None:
    """No comprehension inside another one: cel-python would take minutes over big lists."""
    macro_opens = {match.end() - 1 for match in MACRO.finditer(text)}
    stack: list[bool] = []
    for index, char in enumerate(text):
        if char == "(":
            is_macro = index in macro_opens
            if is_macro and any(stack):
                raise ExpressionError("a comprehension (map, filter, all, exists) inside another one")
            stack.append(is_macro)
        elif char == ")" and stack:
            stack.pop()


def _check_patterns(text: str) -> None:
    """Each literal ``matches()`` pattern must be one RE2 accepts."""
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own complaint to stderr
    for match in PATTERN.finditer(text):
        literal = match.group(1)
        try:
            pattern = literal[2:-1] if literal.startswith("r") else ast.literal_eval(literal)
        except (SyntaxError, ValueError):
            continue  # an escape only CEL knows: the pattern is checked when it runs
        try:
            re2.compile(pattern, options)
        except re2.error as exc:
            raise ExpressionError(
                f"matches() pattern {pattern!r} is not one RE2 accepts ({_re2_reason(exc.args)}); "
                "RE2 has no backreferences or lookaround"
            ) from exc


@lru_cache(maxsize=512)
def compile_condition(text: str) -> celpy.Runner:
    """The compiled CEL program of ``text``; :class:`ExpressionError` when it is not CEL."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"an expression is at most {MAX_LENGTH} characters")
    _check_macros(text)
    _check_patterns(text)
    tree = parse_expression(text)
    with _LOCK:
        return _ENVIRONMENT.program(tree)


@lru_cache(maxsize=512)
def parse_expression(text: str) -> Any:
    """The parse tree of ``text`` (a lark ``Tree``); :class:`ExpressionError` when it is not CEL."""
    try:
        with _LOCK:
            return _ENVIRONMENT.compile(text)
    except CELParseError as exc:
        column = getattr(exc, "column", None)
        near = f" at character {column}" if isinstance(column, int) else ""
        raise ExpressionError(
            f"not a valid CEL expression (syntax error{near}): {text!r}{syntax_hint(text)}",
            column - 1 if isinstance(column, int) and column > 0 else None,
        ) from exc
    except Exception as exc:  # the parser's own errors, e.g. on odd escapes
        raise ExpressionError(f"not a valid CEL expression: {exc}") from exc


_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
SYNTAX_HINTS = (
    (re.compile(r"\b(and|or|not)\b"), "CEL writes && for and, || for or, ! for not"),
    (re.compile(r"(?<![=!<>])=(?!=)"), "compare with == (a single = is not an operator)"),
    (re.compile(r"(?<!&)&(?!&)|(?<!\|)\|(?!\|)"), "write && and || (doubled)"),
    (re.compile(r"\$\{\{|\}\}"), "write the expression without ${{ }}"),
    (re.compile(r"\b(elif|else|if|then)\b"), "CEL's choice is condition ? a : b"),
)


def syntax_hint(text: str) -> str:
    """What a CEL syntax error most likely is, from words other languages use."""
    bare = _STRINGS.sub("''", text)
    for pattern, hint in SYNTAX_HINTS:
        if pattern.search(bare):
            return f"; {hint}"
    if bare.count("'") % 2 or bare.count('"') % 2:
        return "; a quote is not closed"
    dangling = re.search(r"(==|!=|&&|\|\||<=|>=|<|>|\+|-|\*|/|%|!|\bin|\.)\s*$", bare)
    if dangling:
        return f"; the expression ends after {dangling.group(1).strip()!r}: something is missing there"
    if "?" in bare and ":" not in bare:
        return "; a choice is written condition ? value-if-true : value-if-false"
    if bare.count("(") != bare.count(")"):
        return "; the parentheses do not pair up"
    return ""


def evaluate(text: str, variables: Mapping[str, Any]) -> Any:
    """``text`` evaluated with ``variables`` (plain JSON values), as a plain Python value."""
    program = compile_condition(text)
    activation = {name: json_to_cel(value) for name, value in variables.items()}
    try:
        with _LOCK:
            result = program.evaluate(activation)
    except CELEvalError as exc:
        raise ExpressionError(f"{text!r} failed: {_eval_message(exc)}") from exc
    except (RecursionError, ArithmeticError, ValueError, TypeError, KeyError) as exc:
        raise ExpressionError(f"{text!r} failed: {exc}") from exc
    if isinstance(result, CELEvalError):
        raise ExpressionError(f"{text!r} failed: {_eval_message(result)}")
    return _plain(result)


def evaluate_condition(text: str, variables: Mapping[str, Any]) -> bool:
    """An ``if:`` condition's value; it must be a boolean."""
    result = evaluate(text, variables)
    if not isinstance(result, bool):
        raise ExpressionError(f"{text!r} is {result!r}, not true or false")
    return result


def _eval_message(exc: CELEvalError) -> str:
    """The error without cel-python's dump of the whole activation."""
    text = str(exc.args[0]) if exc.args else str(exc)
    text = text.split(" (in activation", 1)[0]
    if text == "match error" and len(exc.args) >= 3:  # a pattern computed at run time
        text = f"matches(): the pattern is not one RE2 accepts ({_re2_reason(exc.args[2])})"
    return text if len(text) <= 200 else text[:197] + "..."


def _re2_reason(args: Any) -> str:
    """RE2's complaint (it comes as bytes, wrapped in the exception's arguments)."""
    reason = args[0] if isinstance(args, tuple) and args else args
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


def _plain(value: Any) -> Any:
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.IntType | celtypes.UintType):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.ListType):
        return [_plain(v) for v in value]
    if isinstance(value, celtypes.MapType):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, celtypes.NullType):
        return None
    return str(value)


def text_value(value: Any) -> str:
    """How a value reads inside a string: ``true``, ``3``, ``3.12``, ``a,b``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(text_value(v) for v in value)
    return str(value)


def expressions_in(text: str) -> list[str]:
    """The inside of every ``${{ ... }}`` in ``text``, stripped."""
    return [match.strip() for match in EXPRESSION.findall(text)]


def substitute_simple(text: str, kind: str, values: Mapping[str, Any]) -> str:
    """``text`` with ``${{ kind.NAME }}`` replaced; other expressions are left as written.

    Raises :class:`ExpressionError` for a ``kind.NAME`` that ``values`` lacks.
    """

    def replace(match: re.Match[str]) -> str:
        simple = SIMPLE.match(match.group(1))
        if simple is None or simple.group(1) != kind:
            return match.group(0)
        name = simple.group(2)
        if name not in values:
            raise ExpressionError(f"no {kind} value named {name!r}")
        return text_value(values[name])

    return EXPRESSION.sub(replace, text)


def interpolate(text: str, variables: Mapping[str, Any]) -> str:
    """``text`` with every ``${{ CEL }}`` replaced by its value."""
    return EXPRESSION.sub(lambda m: text_value(evaluate(m.group(1).strip(), variables)), text)


def manual_inputs(event: Event) -> dict[str, Any]:
    """A manual run's inputs (validated when the run was asked for), by name."""
    try:
        value = json.loads(event.extra.get("inputs") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def event_context(event: Event) -> dict[str, Any]:
    """The ``event`` CEL variable: every key present, zero values where the event has none."""
    pr = event.pull_request
    repo = event.repository
    comment = event.comment
    labels = list(pr.labels) if pr else []
    source = pr.source_repo if pr and pr.source_repo else repo
    jobs = [j for j in event.extra.get("jobs", "").split(",") if j]
    return {
        "forge": event.forge,
        "kind": event.kind.value,
        "action": event.action,
        "sha": event.sha,
        "short_sha": event.short_sha,
        "ref": event.ref,
        "branch": event.branch,
        "tag": event.tag,
        "before": event.before,
        "sender": event.sender,
        "created": event.created,
        "target_branch": event.target_branch,
        "labels": labels,
        "clone_url": source.clone_url,
        "jobs": jobs,
        "files": list(event.changed_files or ()),
        "inputs": manual_inputs(event),
        "schedule": event.extra.get("schedule", ""),
        "repository": {
            "namespace": repo.namespace,
            "name": repo.name,
            "full_name": repo.full_name,
            "default_branch": repo.default_branch,
            "private": repo.private,
            "clone_url": repo.clone_url,
            "html_url": repo.html_url,
        },
        "pull_request": {
            "number": pr.number if pr else 0,
            "title": pr.title if pr else "",
            "author": pr.author if pr else "",
            "source_branch": pr.source_branch if pr else "",
            "target_branch": pr.target_branch if pr else "",
            "base_sha": pr.base_sha if pr else "",
            "head_sha": pr.head_sha if pr else "",
            "fork": pr.fork if pr else False,
            "draft": pr.draft if pr else False,
            "labels": labels,
            "url": pr.url if pr else "",
        },
        "comment": {
            "body": comment.body if comment else "",
            "author": comment.author if comment else "",
        },
    }
