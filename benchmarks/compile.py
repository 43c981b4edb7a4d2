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
from service.jobs.plan import plan_workflow
from service.jobs.yaml_source import Limits
from tests.test_compiler import EVENTS, OPTIONS

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


def _timed(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls, in ms, and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1000, result


def measure(instances: int) -> CompileResult:
    text = job_file_text(instances)
    repeat = 20 if instances <= 100 else 5
    load_ms, job_file = _timed(lambda: load_job_file(text, limits=LIMITS), repeat)
    match_ms, decisions = _timed(lambda: match_jobs(EVENT, job_file), repeat)
    plan_ms, plan = _timed(lambda: plan_workflow(42, EVENT, job_file, decisions, OPTIONS), repeat)
    compile_ms, manifest = _timed(lambda: compile_workflow(plan), repeat)
    validate_ms, _ = _timed(lambda: validate_manifest(manifest), repeat)
    tasks = sum(1 for t in manifest["spec"]["templates"] if "container" in t)
    return CompileResult(
        instances,
        tasks,
        {
            "parse + validate job file": load_ms,
            "match": match_ms,
            "plan": plan_ms,
            "compile": compile_ms,
            "validate manifest": validate_ms,
        },
    )


def measure_once(instances: int) -> dict[str, Any]:
    """One run, end to end (for profiling): the validated manifest."""
    job_file = load_job_file(job_file_text(instances), limits=LIMITS)
    plan = plan_workflow(42, EVENT, job_file, match_jobs(EVENT, job_file), OPTIONS)
    manifest = compile_workflow(plan)
    validate_manifest(manifest)
    return manifest


def run() -> list[CompileResult]:
    measure(10)  # warm-up: imports, pydantic schema builds
    gc.collect()
    gc.freeze()  # as a worker does once warmed up (Context.warm_up)
    return [measure(n) for n in SIZES]


if __name__ == "__main__":
    for result in run():
        print(result.instances, result.tasks, f"{result.total_ms:.1f} ms", result.stages_ms)
