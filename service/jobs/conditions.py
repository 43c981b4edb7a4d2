"""Status functions in ``if:``: ``always()``, ``success()``, ``failure()``, ``cancelled()``.

A condition is CEL over ``event`` that may also ask how the job's needs ended. The event part
is known when the run is planned; the needs' outcome only while it runs. So a condition is
evaluated once for each outcome the needs can have together:

- ``S``: every need that counts succeeded (``success()``);
- ``F``: a need that counts failed or errored (``failure()``);
- ``O``: otherwise: a need that counts did not run (skipped, omitted), none failed.

A need that counts is a required need that is not ``continue-on-error`` (those, and optional
needs, are waited for but never stop the job). ``always()`` is true in all three;
``cancelled()`` is never true when a job could start, because a stopped run starts no new job
(on Argo as locally). A condition without status functions means ``success() && (condition)``,
as in GitHub Actions. The outcomes a condition selects compile into an Argo ``depends``
expression (see :func:`depends_expression`); the local executor evaluates it as Argo does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from service.jobs.expressions import ExpressionError, evaluate_condition

STATUS_VARIABLE = "_status"
FUNCTIONS = ("always", "success", "failure", "cancelled")
OUTCOMES = ("S", "F", "O")
_TOKENS = re.compile(
    r"""(?P<string>r?(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'))"""
    r"""|(?P<call>(?<![\w.])(?:always|success|failure|cancelled)\s*\(\s*\))"""
)


def uses_status(text: str | None) -> bool:
    """Whether ``text`` calls a status function (outside string literals)."""
    return bool(text) and any(m.group("call") for m in _TOKENS.finditer(text or ""))


def rewrite(text: str) -> str:
    """``text`` with each status function call read from the ``_status`` map instead."""

    def replace(match: re.Match[str]) -> str:
        call = match.group("call")
        if call is None:
            return match.group(0)
        return f"{STATUS_VARIABLE}.{call.split('(')[0].strip()}"

    return _TOKENS.sub(replace, text)


def _flags(outcome: str) -> dict[str, bool]:
    return {"always": True, "success": outcome == "S", "failure": outcome == "F", "cancelled": False}


def selected_outcomes(
    text: str | None, variables: Mapping[str, Any], possible: Sequence[str] = OUTCOMES
) -> frozenset[str]:
    """The outcomes (of ``possible``) in which the job runs; :class:`ExpressionError` when the
    condition fails to evaluate."""
    if text is None:
        return frozenset(o for o in possible if o == "S")
    if not uses_status(text):
        return frozenset(o for o in possible if o == "S" and evaluate_condition(text, variables))
    program = rewrite(text)
    chosen = set()
    for outcome in possible:
        if evaluate_condition(program, {**variables, STATUS_VARIABLE: _flags(outcome)}):
            chosen.add(outcome)
    return frozenset(chosen)


def check(text: str) -> None:
    """Compile-time check of a condition with status functions (each outcome is tried later)."""
    from service.jobs.expressions import compile_condition

    compile_condition(rewrite(text) if uses_status(text) else text)


def depends_expression(outcomes: frozenset[str], counted: Sequence[str], waited: Sequence[str]) -> str:
    """The Argo ``depends`` for a job that runs in ``outcomes``.

    ``counted`` are the DAG tasks of the needs that count, ``waited`` the others (optional and
    continue-on-error needs). Argo evaluates ``depends`` once every task it names has finished,
    so every need is named; ``(X.Succeeded || !X.Succeeded)`` names ``X`` without a condition.
    Argo has no ``Omitted`` result: an omitted task is neither Succeeded, Failed, Errored nor
    Skipped, which is how ``O`` is told apart.
    """
    success = " && ".join(f"{t}.Succeeded" for t in counted)
    failure = " || ".join(f"{t}.Failed || {t}.Errored" for t in counted)
    parts: list[str] = []
    named: set[str] = set()
    if not counted:
        if "S" not in outcomes:
            raise ExpressionError("no outcome left to run in")
    elif outcomes == {"S"}:
        parts.append(success)
        named |= set(counted)
    elif outcomes == {"F"}:
        parts.append(f"({failure})")
        named |= set(counted)
    elif outcomes == {"S", "F"}:
        parts.append(f"({success} || {failure})")
        named |= set(counted)
    elif outcomes == {"F", "O"}:
        parts.append(f"!({success})")
        named |= set(counted)
    elif outcomes == {"S", "O"}:
        parts.append(f"!({failure})")
        named |= set(counted)
    elif outcomes == {"O"}:
        parts.append(f"!({success}) && !({failure})")
        named |= set(counted)
    elif not outcomes:
        raise ExpressionError("no outcome left to run in")
    rest = [t for t in (*counted, *waited) if t not in named]
    return " && ".join([*parts, *(f"({t}.Succeeded || !{t}.Succeeded)" for t in rest)])
