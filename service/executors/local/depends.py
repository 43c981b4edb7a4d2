"""Argo's DAG ``depends`` logic, evaluated as the workflow controller evaluates it. Pure.

``depends: "build && (test.Failed || test.Errored)"``: ``&&``, ``||``, ``!`` and parentheses
over task results ``Succeeded``, ``Failed``, ``Errored``, ``Skipped``, ``Daemoned`` (and
``AnySucceeded``/``AllFailed``, which only differ for expanded tasks: here they follow the
task's own phase). A bare task name means ``Succeeded || Skipped || Daemoned``, plus ``Failed``
and ``Errored`` when that task has ``continueOn`` for them; ``dependencies: [a, b]`` means
``a && b``. The expression is evaluated once every task it names has finished; an omitted task
is none of the results (Argo has no ``Omitted`` result to test).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from service.executors.local.values import UnsupportedManifest

RESULTS = ("Succeeded", "Failed", "Errored", "Skipped", "Daemoned", "AnySucceeded", "AllFailed")
_TOKEN = re.compile(r"\s*(&&|\|\||!|\(|\)|[A-Za-z0-9][-A-Za-z0-9_]*(?:\.[A-Za-z]+)?)")
PHASE_RESULT = {"Succeeded": "Succeeded", "Failed": "Failed", "Error": "Errored", "Skipped": "Skipped"}


@dataclass(frozen=True)
class Term:
    task: str
    result: str = ""  # "" for a bare name


@dataclass(frozen=True)
class Not:
    inner: Expr


@dataclass(frozen=True)
class Op:
    op: str  # "&&" or "||"
    left: Expr
    right: Expr


Expr = Term | Not | Op
Phases = Callable[[str], str]  # a finished task's phase
ContinueOn = Callable[[str], tuple[bool, bool]]  # a task's continueOn (failed, error)


def parse(text: str, where: str) -> Expr:
    """The expression of a ``depends`` string; :class:`UnsupportedManifest` when malformed."""
    tokens: list[str] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or not match.group(1):
            raise UnsupportedManifest(f"{where}: cannot read depends {text!r} at {text[position:]!r}")
        tokens.append(match.group(1))
        position = match.end()
    parser = _Parser(tokens, where, text)
    expr = parser.disjunction()
    if parser.index != len(tokens):
        raise UnsupportedManifest(f"{where}: cannot read depends {text!r}")
    return expr


class _Parser:
    def __init__(self, tokens: list[str], where: str, text: str) -> None:
        self.tokens, self.where, self.text, self.index = tokens, where, text, 0

    def _peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self) -> str:
        word = self._peek()
        if word is None:
            raise UnsupportedManifest(f"{self.where}: depends {self.text!r} ends too early")
        self.index += 1
        return word

    def disjunction(self) -> Expr:
        left = self.conjunction()
        while self._peek() == "||":
            self._take()
            left = Op("||", left, self.conjunction())
        return left

    def conjunction(self) -> Expr:
        left = self.unary()
        while self._peek() == "&&":
            self._take()
            left = Op("&&", left, self.unary())
        return left

    def unary(self) -> Expr:
        word = self._take()
        if word == "!":
            return Not(self.unary())
        if word == "(":
            inner = self.disjunction()
            if self._take() != ")":
                raise UnsupportedManifest(f"{self.where}: depends {self.text!r}: missing ')'")
            return inner
        if word in ("&&", "||", ")"):
            raise UnsupportedManifest(f"{self.where}: depends {self.text!r}: unexpected {word!r}")
        task, _, result = word.partition(".")
        if result and result not in RESULTS:
            raise UnsupportedManifest(f"{self.where}: depends result {word!r} (one of {', '.join(RESULTS)})")
        return Term(task, result)


def all_of(tasks: list[str]) -> Expr | None:
    """``dependencies: [a, b]`` as the expression ``a && b``."""
    expr: Expr | None = None
    for task in tasks:
        expr = Term(task) if expr is None else Op("&&", expr, Term(task))
    return expr


def tasks_in(expr: Expr | None) -> list[str]:
    """The tasks an expression names, in order, once each."""
    found: list[str] = []

    def walk(node: Expr) -> None:
        if isinstance(node, Term):
            if node.task not in found:
                found.append(node.task)
        elif isinstance(node, Not):
            walk(node.inner)
        else:
            walk(node.left)
            walk(node.right)

    if expr is not None:
        walk(expr)
    return found


def evaluate(expr: Expr | None, phase: Phases, continue_on: ContinueOn) -> bool:
    """Whether the task runs, its dependencies' phases known (all of them final)."""
    if expr is None:
        return True
    if isinstance(expr, Not):
        return not evaluate(expr.inner, phase, continue_on)
    if isinstance(expr, Op):
        if expr.op == "&&":
            return evaluate(expr.left, phase, continue_on) and evaluate(expr.right, phase, continue_on)
        return evaluate(expr.left, phase, continue_on) or evaluate(expr.right, phase, continue_on)
    result = PHASE_RESULT.get(phase(expr.task), "")
    if expr.result in ("", "AnySucceeded", "AllFailed"):
        if expr.result == "AnySucceeded":
            return result == "Succeeded"
        if expr.result == "AllFailed":
            return result == "Failed"
        failed, error = continue_on(expr.task)
        allowed = (
            {"Succeeded", "Skipped"} | ({"Failed"} if failed else set()) | ({"Errored"} if error else set())
        )
        return result in allowed
    return result == expr.result
