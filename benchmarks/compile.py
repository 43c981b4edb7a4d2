"""Compile: job file → plan → Argo Workflow → strict validation, for runs of 10, 100 and 1,000
job instances (matrix cells), in this process. Each stage is timed apart so growth shows where
it comes from."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.argo.validation import validate_manifest
from service.compiler import compile_workflow
from service.jobs.loader import load_job_file
from service.jobs.matcher import match_jobs
from service.jobs.plan import bind_run, plan_workflow
from service.jobs.yaml_source import Limits
from tests.test_compiler import EVENTS, OPTIONS, RUN_URL

SIZES = (10, 100, 1000)
LIMITS = Limits(max_jobs=5000, max_matrix_cells=5000)
EVENT = EVENTS["pr"]  # the golden tests' pull request event and plan options


def job_file_text(instances: int) -> str:
    """``lint`` + a 4-wide matrix ``tests`` + ``report`` that needs both: ``instances`` in all."""
    shards = max(1, (instances - 2) // 4)
    extra = instances - 2 - 4 * shards
    shard_list = ", ".join(str(i) for i in range(shards))
    include = "".join(f"\n        - {{python: '3.9', shard: {shards + i}}}" for i in range(extra))
    return f"""\
version: 1
defaults: {{image: "registry.fedoraproject.org/fedora:41", timeout: 20m}}
jobs:
  lint:
    on: [pull_request]
    steps: [{{name: ruff, run: ruff check .}}]
  tests:
    on: [pull_request]
    needs: [lint]
    image: "python:${{{{ matrix.python }}}}"
    env: {{SHARD: "${{{{ matrix.shard }}}}", PYTHONHASHSEED: "0"}}
    retries: 2
    matrix:
      python: ['3.10', '3.11', '3.12', '3.13']
      shard: [{shard_list}]
      include:{include or " []"}
    steps:
      - {{name: install, run: pip install -e .}}
      - {{name: "shard ${{{{ matrix.shard }}}}", run: "pytest --shard $SHARD"}}
  report:
    on: [pull_request]
    needs: [tests]
    if: "event.pull_request.draft == false"
    steps: [{{run: echo done}}]
"""


@dataclass
class CompileResult:
    instances: int
    tasks: int
    stages_ms: dict[str, float]  # median per stage

    @property
    def total_ms(self) -> float:
        return sum(self.stages_ms.values())


ROUNDS = 9  # each round times every size once, so a drifting machine slows all sizes alike


Stages = list[tuple[str, Callable[[], Any]]]


def _stages(text: str) -> tuple[Stages, int]:
    """The stages of one run, each a call on the previous stage's (kept) result; and how many
    container templates the run compiles to."""
    job_file = load_job_file(text, limits=LIMITS)
    decisions = match_jobs(EVENT, job_file)
    plan = bind_run(plan_workflow(EVENT, job_file, decisions, OPTIONS), 42, RUN_URL)
    manifest = compile_workflow(plan)
    tasks = sum(1 for t in manifest["spec"]["templates"] if "container" in t)
    stages: Stages = [
        ("parse + validate job file", lambda: load_job_file(text, limits=LIMITS)),
        ("match", lambda: match_jobs(EVENT, job_file)),
        ("plan", lambda: bind_run(plan_workflow(EVENT, job_file, decisions, OPTIONS), 42, RUN_URL)),
        ("compile", lambda: compile_workflow(plan)),
        ("validate manifest", lambda: validate_manifest(manifest)),
    ]
    return stages, tasks


def _round(stages: Stages, calls: int) -> dict[str, float]:
    """Each stage's mean time over ``calls`` calls, in ms."""
    times = {}
    for name, stage in stages:
        start = time.perf_counter()
        for _ in range(calls):
            stage()
        times[name] = (time.perf_counter() - start) / calls * 1000
    return times


def measure(sizes: tuple[int, ...] = SIZES, rounds: int = ROUNDS) -> list[CompileResult]:
    """Every size, in turns: each round runs each size's stages (small sizes several times, about
    as much work as the largest); a stage's figure is its median over the rounds."""
    prepared = {n: _stages(job_file_text(n)) for n in sizes}
    stages = {n: prepared[n][0] for n in sizes}
    calls = {n: max(1, max(sizes) // n) for n in sizes}
    samples: dict[int, list[dict[str, float]]] = {n: [] for n in sizes}
    for _ in range(rounds):
        for n in sizes:
            samples[n].append(_round(stages[n], calls[n]))
    results = []
    for n in sizes:
        names = [name for name, _ in stages[n]]
        medians = {name: sorted(s[name] for s in samples[n])[rounds // 2] for name in names}
        results.append(CompileResult(n, prepared[n][1], medians))
    return results


def measure_once(instances: int) -> dict[str, Any]:
    """One run, end to end (for profiling): the validated manifest."""
    job_file = load_job_file(job_file_text(instances), limits=LIMITS)
    plan = bind_run(plan_workflow(EVENT, job_file, match_jobs(EVENT, job_file), OPTIONS), 42, RUN_URL)
    manifest = compile_workflow(plan)
    validate_manifest(manifest)
    return manifest


def run() -> list[CompileResult]:
    measure((10,), rounds=1)  # warm-up: imports, pydantic schema builds
    gc.collect()
    gc.freeze()  # as a worker does once warmed up (Context.warm_up)
    return measure()


if __name__ == "__main__":
    for result in run():
        print(result.instances, result.tasks, f"{result.total_ms:.1f} ms", result.stages_ms)
