"""Worker cost and forge API budget (issue 19, must-haves 1 and 6).

``forgeflow web``, ``forgeflow worker`` and ``forgeflow watcher`` run as deployed, on PostgreSQL
and Redis with ``executor=argo``, against the Kubernetes API emulator and a fake GitHub that
answers at once (both in this process, as in :mod:`benchmarks.pipeline`).

- **CPU per delivery**: signed pull_request deliveries whose job file has 1, 5 or 20 jobs; the
  worker process's CPU time (user + system, from ``/proc``) from the first POST until every
  run's ``queued`` statuses are at the forge and its Workflow is submitted, divided by the
  deliveries. Baseline from the same run: a bare Celery task on the same broker that posts one
  status (the floor of :mod:`benchmarks.pipeline`), CPU per task of its worker process.
- **Forge API calls per run**: every request the fake GitHub serves during a run's whole life
  (the worker's reads and ``queued`` statuses, then the watcher's ``running`` and ``success``
  once this process, as Argo's controller, moves every job's node on), per run. The budget:
  one call per status transition (three per job) plus at most three per event.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from pytest_httpserver import HTTPServer

from benchmarks.common import PYTHON, WORK, Proc, free_port, stack_env, start, wait_http
from service.cli.replay import signed_headers
from tests.argo_executor.world import write_kubeconfig
from tests.k8s_emulator import K8sEmulator
from tests.support import payloads
from tests.support.fake_github import FakeGitHub
from tests.support.services import postgres_database

SECRET = "bench-secret"  # noqa: S105 - the benchmark's own webhook secret
REPO, NAMESPACE = "octo/costs", "ci"
CLONE_URL = "https://github.com/octo/costs.git"
SIZES = (1, 5, 20)  # jobs per pull request
TARGET_SIZE, TARGET_CPU_MS = 5, 10.0
CPU_EVENTS = {1: 30, 5: 100, 20: 15}  # deliveries whose worker CPU is measured, per size
CALL_RUNS = {1: 10, 5: 10, 20: 5}  # runs followed through their whole life, per size
RATE = 40.0  # deliveries (and baseline tasks) per second
EXTRA_CALLS_PER_EVENT = 3  # the budget: one call per status transition plus this many per event
TRANSITIONS_PER_JOB = 3  # queued, running, success


def job_file(jobs: int) -> str:
    lines = ["version: 1", "jobs:"]
    for j in range(1, jobs + 1):
        lines += [f"  j{j}:", "    on: [pull_request]", "    steps: [{run: 'true'}]"]
    return "\n".join(lines) + "\n"


def sha_of(kind: str, i: int) -> str:
    return hashlib.sha1(f"{kind}-{i}".encode(), usedforsecurity=False).hexdigest()


class SizedRepo:
    """What the fake GitHub needs of the repository: each commit's job file (its size)."""

    def __init__(self) -> None:
        self.url = CLONE_URL
        self.jobs: dict[str, int] = {}

    def show(self, sha: str, path: str) -> str | None:
        jobs = self.jobs.get(sha)
        return job_file(jobs) if path == ".forgeflow.yaml" and jobs else None


@dataclass
class SizeResult:
    jobs: int
    events: int
    worker_cpu_ms: float  # per delivery
    runs: int  # followed through their whole life
    calls: Counter[str] = field(default_factory=Counter)  # kind of request -> count, all runs

    @property
    def calls_per_run(self) -> float:
        return sum(self.calls.values()) / self.runs if self.runs else 0.0

    @property
    def budget(self) -> int:
        return TRANSITIONS_PER_JOB * self.jobs + EXTRA_CALLS_PER_EVENT


@dataclass
class WorkerCostResult:
    sizes: list[SizeResult] = field(default_factory=list)
    floor_cpu_ms: float = 0.0  # per task
    idle_cpu_ms_per_s: float = 0.0  # the worker doing nothing, per second


def kind_of(method: str, path: str) -> str:
    """A request to the fake GitHub, by what it is for."""
    path = path.split("?", 1)[0]
    if method == "POST" and "/statuses/" in path:
        return "POST status"
    if "/contents/" in path:
        return "GET file"
    if "/pulls/" in path and path.endswith("/files"):
        return "GET changed files"
    if "/statuses" in path:
        return "GET statuses"
    if path.rstrip("/").count("/") == 3 and path.startswith("/repos/"):
        return "GET repository"
    return f"{method} {path.split('/', 4)[-1][:40]}"


class WorkerCostBench:
    def __init__(self, database_url: str, broker_url: str, exits: ExitStack) -> None:
        self.exits = exits
        shutil.rmtree(WORK / "cost-data", ignore_errors=True)
        WORK.mkdir(parents=True, exist_ok=True)
        self.k8s = K8sEmulator(record_requests=False, history_size=100_000).start()
        exits.callback(self.k8s.stop)
        self.server = HTTPServer(host="127.0.0.1", port=free_port(), threaded=True)
        self.server.start()
        exits.callback(self.server.stop)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.github = FakeGitHub(self.server)
        self.repo = SizedRepo()
        self.github.add_repo(REPO, self.repo)  # type: ignore[arg-type]
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        kubeconfig = write_kubeconfig(WORK / "cost-kubeconfig", self.k8s.url)
        self.env = stack_env(
            WORK / "cost-data",
            database_url,
            broker_url,
            port,
            self.github.api_url,
            kubeconfig,
            NAMESPACE,
            SECRET,
        )
        self.broker_url = broker_url
        self.http = requests.Session()
        self.numbers = iter(range(1, 10**6))
        self.result = WorkerCostResult()

    # -- processes -------------------------------------------------------------------------------
    def start_forgeflow(self) -> tuple[Proc, Proc]:
        migrate = [PYTHON, "-m", "service.cli", "migrate"]
        subprocess.run(migrate, env=self.env, check=True, capture_output=True)
        web = start("cost-web", [PYTHON, "-m", "service.cli", "web", "--workers", "1"], self.env)
        worker = start("cost-worker", [PYTHON, "-m", "service.cli", "worker"], self.env)
        watcher = start("cost-watcher", [PYTHON, "-m", "service.cli", "watcher"], self.env)
        for proc in (web, worker, watcher):
            self.exits.callback(proc.stop)
        wait_http(f"{self.url}/healthz")
        self.k8s.wait_for_watches(1, timeout=30)
        time.sleep(1)  # the worker's relay and consumer are up
        return worker, watcher

    def start_floor(self) -> Proc:
        env = dict(self.env, BENCH_BROKER=self.broker_url, PYTHONPATH=str(Path.cwd()))
        argv = [
            PYTHON, "-m", "celery", "-A", "benchmarks.baselines:floor", "worker", "--pool", "threads",
            "--concurrency", "4", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        floor = start("cost-floor-worker", argv, env)
        self.exits.callback(floor.stop)
        return floor

    # -- deliveries ------------------------------------------------------------------------------
    def post(self, sha: str) -> None:
        number = next(self.numbers)
        payload = payloads.pull_request(REPO, CLONE_URL, sha, number=number)
        body = json.dumps(payload).encode()
        headers = signed_headers("github", body, SECRET, "pull_request", f"cost-{number}")
        response = self.http.post(f"{self.url}/api/webhooks/github", data=body, headers=headers, timeout=10)
        if response.status_code != 202:
            raise RuntimeError(f"delivery for {sha[:7]}: {response.status_code} {response.text}")

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        if not self.github.wait_for(predicate, timeout):
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")

    def statuses_of(self, shas: set[str], state: str, fragment: str = "") -> int:
        with self.github.lock:
            return sum(
                1
                for s in self.github.statuses
                if s.sha in shas and s.state == state and fragment in s.description
            )

    def submitted(self, shas: set[str]) -> list[dict[str, Any]]:
        objects = self.k8s.objects(NAMESPACE)
        return [o for o in objects if o["metadata"]["labels"].get("forgeflow.dev/sha") in shas]

    def started(self, jobs: int, shas: list[str]) -> None:
        """Deliver one pull request per sha at RATE; wait for every queued status and Workflow."""
        for sha in shas:
            self.repo.jobs[sha] = jobs
        began = time.monotonic()
        for i, sha in enumerate(shas):
            delay = began + i / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.post(sha)
        wanted = set(shas)
        self.wait(lambda: self.statuses_of(wanted, "pending", "queued") >= jobs * len(shas), 60, "queued")
        deadline = time.monotonic() + 60
        while len(self.submitted(wanted)) < len(shas):
            if time.monotonic() > deadline:
                raise RuntimeError("not every run was submitted")
            time.sleep(0.05)

    def move(self, workflows: list[dict[str, Any]], phase: str) -> None:
        """As Argo's controller: every task node of each Workflow to ``phase``."""
        for wf in workflows:
            name = wf["metadata"]["name"]
            tasks = [t["name"] for t in wf["spec"]["templates"][0]["dag"]["tasks"]]
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            nodes = {}
            for i, task in enumerate(tasks):
                node = {"id": f"{name}-{i}", "name": f"{name}.{task}", "displayName": task}
                node |= {"type": "Pod", "templateName": task, "phase": phase, "startedAt": at}
                if phase == "Succeeded":
                    node["finishedAt"] = at
                nodes[node["id"]] = node
            status: dict[str, Any] = {"phase": phase, "startedAt": at, "nodes": nodes}
            if phase == "Succeeded":
                status["finishedAt"] = at
            self.k8s.patch_status(NAMESPACE, name, status)

    # -- the measurements ------------------------------------------------------------------------
    def calls(self, jobs: int) -> SizeResult:
        """Runs of ``jobs`` jobs through their whole life; every request the forge served."""
        runs = CALL_RUNS[jobs]
        batch = next(self.numbers)
        shas = [sha_of(f"calls{jobs}-{batch}", i) for i in range(runs)]
        wanted = set(shas)
        with self.github.lock:
            first = len(self.github.requests)
        self.started(jobs, shas)
        workflows = self.submitted(wanted)
        self.move(workflows, "Running")
        self.wait(lambda: self.statuses_of(wanted, "pending", "running") >= jobs * runs, 60, "running")
        self.move(workflows, "Succeeded")
        self.wait(lambda: self.statuses_of(wanted, "success") >= jobs * runs, 60, "success")
        time.sleep(0.5)  # anything more the processes had to say about these runs
        with self.github.lock:
            served = self.github.requests[first:]
        return SizeResult(jobs, 0, 0.0, runs, Counter(kind_of(m, p) for m, p in served))

    def cpu(self, worker: Proc, jobs: int) -> float:
        """The worker's CPU per delivery (ms) over CPU_EVENTS[jobs] pull requests."""
        count = CPU_EVENTS[jobs]
        shas = [sha_of(f"cpu{jobs}", i) for i in range(count)]
        before = worker.cpu_seconds()
        self.started(jobs, shas)
        time.sleep(0.2)  # the last delivery is marked done
        return (worker.cpu_seconds() - before) * 1000 / count

    def idle(self, worker: Proc, seconds: float = 1.0) -> float:
        before = worker.cpu_seconds()
        time.sleep(seconds)
        return (worker.cpu_seconds() - before) * 1000 / seconds

    def floor(self, floor: Proc, count: int = 100) -> float:
        """CPU per task (ms) of a bare Celery worker posting one status per task."""
        from benchmarks.baselines import floor as floor_app

        floor_app.conf.broker_url = self.broker_url
        shas = [sha_of("cost-floor", i) for i in range(count)]
        url = f"{self.github.api_url}/repos/octo/floor/statuses/"
        floor_app.send_task("floor.report", args=[url + sha_of("cost-floor", -1)])  # warm-up
        self.wait(lambda: self.statuses_of({sha_of("cost-floor", -1)}, "pending") >= 1, 60, "floor warm-up")
        before = floor.cpu_seconds()
        began = time.monotonic()
        for i, sha in enumerate(shas):
            delay = began + i / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            floor_app.send_task("floor.report", args=[url + sha])
        self.wait(lambda: self.statuses_of(set(shas), "pending") >= count, 60, "floor")
        time.sleep(0.2)
        return (floor.cpu_seconds() - before) * 1000 / count


def run(broker_url: str) -> WorkerCostResult:
    started = time.monotonic()

    def say(what: str) -> None:
        print(f"  worker cost: {what} ({time.monotonic() - started:.0f} s)", flush=True)

    with ExitStack() as exits:
        database_url = exits.enter_context(postgres_database())
        bench = WorkerCostBench(database_url, broker_url, exits)
        floor = bench.start_floor()
        worker, watcher = bench.start_forgeflow()
        say("processes up")
        result = bench.result
        result.floor_cpu_ms = bench.floor(floor)
        floor.stop()
        say("baseline measured")
        bench.calls(1)  # warm-up: first requests, first compile
        by_size = {jobs: bench.calls(jobs) for jobs in SIZES}
        say("API calls counted")
        for jobs in SIZES:
            by_size[jobs].events = CPU_EVENTS[jobs]
            by_size[jobs].worker_cpu_ms = bench.cpu(worker, jobs)
        result.idle_cpu_ms_per_s = bench.idle(worker)
        result.sizes = [by_size[jobs] for jobs in SIZES]
        say("worker CPU measured")
        watcher.process.kill()  # its own exit on SIGTERM is slow (issue 19), and measured elsewhere
    say("stopped")
    return result


def section(result: WorkerCostResult) -> list[str]:
    """The ``make bench`` section: CPU per delivery against the target, API calls per run."""
    verdict = lambda ok: "**met**" if ok else "**not met**"  # noqa: E731
    by = {s.jobs: s for s in result.sizes}
    target = by[TARGET_SIZE].worker_cpu_ms
    lines = [
        "### Worker cost and forge API budget",
        "",
        "Signed pull_request deliveries at "
        f"{RATE:.0f}/s to `forgeflow web`; `forgeflow worker` (Celery on Redis, PostgreSQL) reads the "
        "job file from a fake GitHub, plans, posts every job's `queued` status and submits the "
        "Workflow to the Kubernetes API emulator. CPU per delivery is the worker process's CPU time "
        "until every status and Workflow is there, over all the deliveries. Baseline: a bare Celery "
        "task on the same broker posting one status, CPU per task of its worker.",
        "",
        "| jobs per pull request | deliveries | worker CPU per delivery |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {s.jobs} | {s.events} | {s.worker_cpu_ms:.1f} ms |" for s in result.sizes]
    lines += [
        f"| baseline: bare Celery task posting one status | 100 | {result.floor_cpu_ms:.1f} ms |",
        "",
        f"Target ≤ {TARGET_CPU_MS:.0f} ms CPU per delivery with {TARGET_SIZE} jobs: "
        f"{verdict(target <= TARGET_CPU_MS)} ({target:.1f} ms, "
        f"{target / max(result.floor_cpu_ms, 1e-9):.1f}x "
        f"the baseline). The idle worker uses {result.idle_cpu_ms_per_s:.1f} ms of CPU per second "
        "(included above).",
        "",
        "Forge API calls per run: every request the fake GitHub served while runs went through their "
        "whole life (the worker's reads and `queued` statuses; the watcher's `running` and `success` "
        "as the benchmark moved every job's node on; no job filters by path, so nothing asks for the "
        "changed files). Budget: one call per status transition "
        f"({TRANSITIONS_PER_JOB} per job) plus at most {EXTRA_CALLS_PER_EVENT} per event.",
        "",
        "| jobs | runs | calls per run | of which | budget | within |",
        "|---:|---:|---:|---|---:|---|",
    ]
    for s in result.sizes:
        kinds = ", ".join(f"{kind} {n / s.runs:g}" for kind, n in sorted(s.calls.items()))
        ok = s.calls_per_run <= s.budget
        lines.append(f"| {s.jobs} | {s.runs} | {s.calls_per_run:g} | {kinds} | {s.budget} | {verdict(ok)} |")
    within = all(s.calls_per_run <= s.budget for s in result.sizes)
    lines += ["", f"One call per status transition plus at most three per event: {verdict(within)}.", ""]
    return lines
