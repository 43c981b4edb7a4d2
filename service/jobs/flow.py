"""How the matched jobs of a run depend on each other: plan-time skips and Argo ``depends``.

A need that is not in the run (its triggers, paths or ``if:`` left it out, or it was skipped
itself) stops the job that needs it -- "skipped: publish did not run (if: ... is false)" --
unless the need is ``optional`` or the job's ``if:`` runs without it (``always()``,
``failure()``, see :mod:`conditions`). A need that fails or is skipped while the run goes on
is Argo's business: each job's task gets ``dependencies`` (the plain case, as before) or a
``depends`` expression saying in which outcomes of its needs it runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from service.jobs.conditions import OUTCOMES, depends_expression, uses_status
from service.jobs.matcher import Decision
from service.jobs.model import JobFile

MAX_REASON = 200


@dataclass
class Flow:
    """The plan-time verdict on the matched jobs."""

    skipped: dict[str, str] = field(default_factory=dict)  # job -> "skipped: X did not run (...)"
    depends: dict[str, str] = field(default_factory=dict)  # job -> Argo depends (when not plain)
    needs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # job -> needs in the run


def _short(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def plan_flow(
    job_file: JobFile,
    decisions: Sequence[Decision],
    refused: Mapping[str, str],
    tasks: Mapping[str, str],
) -> Flow:
    """Skips and ``depends`` for the matched jobs; ``refused`` ones never run, ``tasks`` maps a
    job to its main-DAG task."""
    by_job = {d.job: d for d in decisions}
    chosen = [d.job for d in decisions if d.matched]
    flow = Flow()
    why_absent: dict[str, str] = {j: d.reason for j, d in by_job.items() if not d.matched}
    why_absent.update(refused)

    def absent(job: str) -> bool:
        return job not in chosen or job in refused or job in flow.skipped

    changed = True
    while changed:  # skips only ever spread, so this ends
        changed = False
        for job in chosen:
            if job in refused or job in flow.skipped:
                continue
            spec = job_file.jobs[job]
            missing = [n.job for n in spec.needs if not n.optional and absent(n.job)]
            counted = [
                n.job
                for n in spec.needs
                if not n.optional and not absent(n.job) and not job_file.jobs[n.job].continue_on_error
            ]
            possible = set(OUTCOMES) if counted else {"O"}
            if not missing:
                possible = ({"S"} | possible) if counted else {"S"}
            else:
                possible.discard("S")
            if not by_job[job].outcomes & possible:
                first = missing[0] if missing else ""
                detail = why_absent.get(first, "")
                detail = detail.removeprefix("skipped: ")
                flow.skipped[job] = _short(f"skipped: {first} did not run ({detail})")
                why_absent[job] = f"{first} did not run"
                changed = True
    for job in chosen:
        if job in refused or job in flow.skipped:
            continue
        spec = job_file.jobs[job]
        present = [n for n in spec.needs if not absent(n.job)]
        flow.needs[job] = tuple(n.job for n in present)
        counted = [n.job for n in present if not n.optional and not job_file.jobs[n.job].continue_on_error]
        waited = [n.job for n in present if n.job not in counted]
        lacking = any(not n.optional and absent(n.job) for n in spec.needs)
        plain = not uses_status(spec.if_) and not lacking and not any(n.optional for n in present)
        if plain or not present:
            continue
        possible = set(OUTCOMES) if counted else {"O"}
        if not lacking:
            possible = ({"S"} | possible) if counted else {"S"}
        else:
            possible.discard("S")
        outcomes = frozenset(by_job[job].outcomes & possible)
        flow.depends[job] = depends_expression(
            _effective(outcomes, lacking),
            [tasks[j] for j in counted],
            [tasks[j] for j in waited],
        )
    return flow


def _effective(outcomes: frozenset[str], missing: bool) -> frozenset[str]:
    """The outcomes to compile, over the needs in the run. With a need missing the run's
    outcome is never ``S``: it is ``F`` when a need in the run fails, else ``O`` -- also when
    every need in the run succeeded, so ``O`` takes in their ``S``."""
    if missing and "O" in outcomes:
        return outcomes | {"S"}
    return outcomes
