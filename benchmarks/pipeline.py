"""Time to first status and watch: forgeflow's processes as deployed, apart, against an emulated
cluster and a fake forge.

``forgeflow web`` (gunicorn), ``forgeflow worker`` and ``forgeflow watcher`` run as their own
processes on PostgreSQL and Redis with ``executor=argo``; the Kubernetes API emulator
(``tests.k8s_emulator``) and a fake GitHub that answers at once run in this process.

- Time to first status: signed pull_request deliveries at a steady rate; from each POST to the
  first ``pending`` status of its commit at the fake forge. Floor: a bare Celery task on the same
  broker that posts one status.
- Watch: with 1,000 Workflows in the emulator, this process plays Argo's controller and moves
  each to Running, then to Succeeded, at a steady rate; every transition must reach the forge
  exactly once. Baseline: a naive poller (GET every Workflow each second) on the same changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from pytest_httpserver import HTTPServer

from benchmarks.common import PYTHON, WORK, Memory, Proc, cpu_seconds, free_port, stack_env, start, wait_http
from service.cli.replay import signed_headers
from tests.argo_executor.world import write_kubeconfig
from tests.k8s_emulator import K8sEmulator
from tests.support import payloads
from tests.support.fake_github import FakeGitHub
from tests.support.services import postgres_database

SECRET = "bench-secret"  # noqa: S105 - the benchmark's own webhook secret
REPO, NAMESPACE, CONTEXT = "octo/hello", "ci", "forgeflow/unit"
JOB_FILE = "version: 1\njobs:\n  unit:\n    on: [pull_request]\n    steps: [{run: 'true'}]\n"
FIRST_STATUS_EVENTS, FIRST_STATUS_RATE = 200, 10.0  # events, events per second
FLOOR_RATE = 20.0  # the floor does not depend on the rate: it only needs the samples
WORKFLOWS, TRANSITION_RATE = 1000, 50.0  # workflows, transitions per second


class BenchRepo:
    """What the fake GitHub needs of a repository: the job file at every benchmark commit."""

    def __init__(self, shas: set[str], url: str) -> None:
        self.shas, self.url = shas, url

    def show(self, sha: str, path: str) -> str | None:
        return JOB_FILE if path == ".forgeflow.yaml" and sha in self.shas else None


@dataclass
class PipelineResult:
    first_status: list[float] = field(default_factory=list)  # seconds, per event
    floor: list[float] = field(default_factory=list)
    watch_lag: list[float] = field(default_factory=list)
    transitions: int = 0
    duplicates: int = 0
    missing: int = 0
    watcher_cpu_ms: float = 0.0  # per transition
    watch_seconds: float = 0.0
    poller_lag: list[float] = field(default_factory=list)
    poller_missed: int = 0
    poller_cpu_ms: float = 0.0
    poller_gets_per_second: float = 0.0
    memory_mib: Memory = field(default_factory=dict)
    worker_cpu_ms: float = 0.0  # per delivery, while the WORKFLOWS deliveries were handled
    web_cpu_ms: float = 0.0


def sha_of(i: int, kind: str = "bench") -> str:
    return hashlib.sha1(f"{kind}-{i}".encode(), usedforsecurity=False).hexdigest()


def iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unit_status(name: str, phase: str) -> dict[str, Any]:
    """A Workflow status as Argo's controller writes it, its one ``unit`` pod in ``phase``
    (and the Workflow with it; finished when Succeeded)."""
    node: dict[str, Any] = {
        "id": f"{name}-1",
        "name": f"{name}.unit",
        "displayName": "unit",
        "type": "Pod",
        "templateName": "unit",
        "phase": phase,
        "startedAt": iso_now(),
    }
    status: dict[str, Any] = {"phase": phase, "startedAt": node["startedAt"], "nodes": {node["id"]: node}}
    if phase == "Succeeded":
        node["finishedAt"] = status["finishedAt"] = iso_now()
    return status


def database() -> AbstractContextManager[str]:
    """A fresh PostgreSQL database, dropped afterwards (the test suite's own helper)."""
    return postgres_database()


class Sampler:
    """Peak RSS and PSS of some processes (PSS: of each process apart, the largest, in KiB),
    sampled every 0.2 s while active."""

    def __init__(self, procs: list[Proc]) -> None:
        self.procs = procs
        self.peak: dict[str, int] = {p.name: 0 for p in procs}
        self.peak_pss: dict[str, int] = {p.name: 0 for p in procs}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for proc in self.procs:
                self.peak[proc.name] = max(self.peak[proc.name], proc.rss_kib())
                largest = max(proc.pss_each_kib().values(), default=0)
                self.peak_pss[proc.name] = max(self.peak_pss[proc.name], largest)
            self.stop.wait(0.2)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def at_steady_rate(count: int, rate: float, action: Callable[[int], None]) -> None:
    """Call ``action(i)`` for i in range(count), the i-th at start + i/rate (never earlier)."""
    started = time.monotonic()
    for i in range(count):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        action(i)


def first_pending(github: FakeGitHub, context: str) -> dict[str, float]:
    """sha → when its first pending status for ``context`` arrived (monotonic)."""
    found: dict[str, float] = {}
    with github.lock:
        for status in github.statuses:
            if status.context == context and status.state == "pending" and status.sha not in found:
                found[status.sha] = status.at
    return found


class PipelineBench:
    def __init__(self, database_url: str, broker_url: str, exits: ExitStack) -> None:
        self.exits = exits
        self.result = PipelineResult()
        shutil.rmtree(WORK / "pipeline-data", ignore_errors=True)
        WORK.mkdir(parents=True, exist_ok=True)
        self.k8s = K8sEmulator(record_requests=False, history_size=100_000).start()
        exits.callback(self.k8s.stop)
        self.server = HTTPServer(host="127.0.0.1", port=free_port(), threaded=True)
        self.server.start()
        exits.callback(self.server.stop)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.github = FakeGitHub(self.server)
        self.shas = [sha_of(i) for i in range(WORKFLOWS)]
        self.github.add_repo(REPO, BenchRepo(set(self.shas), "https://github.com/octo/hello.git"))  # type: ignore[arg-type]
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.kubeconfig = write_kubeconfig(WORK / "kubeconfig", self.k8s.url)
        self.env = stack_env(
            WORK / "pipeline-data",
            database_url,
            broker_url,
            port,
            self.github.api_url,
            self.kubeconfig,
            NAMESPACE,
            SECRET,
        )
        self.broker_url = broker_url
        self.http = requests.Session()

    # -- processes -------------------------------------------------------------------------------
    def start_forgeflow(self) -> tuple[Proc, Proc, Proc]:
        migrate = [PYTHON, "-m", "service.cli", "migrate"]
        subprocess.run(migrate, env=self.env, check=True, capture_output=True)
        web = start("pipeline-web", [PYTHON, "-m", "service.cli", "web", "--workers", "2"], self.env)
        worker = start("pipeline-worker", [PYTHON, "-m", "service.cli", "worker"], self.env)
        watcher = start("pipeline-watcher", [PYTHON, "-m", "service.cli", "watcher"], self.env)
        for proc in (web, worker, watcher):
            self.exits.callback(proc.stop)
        wait_http(f"{self.url}/healthz")
        self.k8s.wait_for_watches(1, timeout=30)  # the watcher is listening
        time.sleep(2)  # let the worker and watcher settle before reading their memory at rest
        for proc in (web, worker, watcher):
            self.result.memory_mib[f"{proc.name.removeprefix('pipeline-')} at rest"] = proc.memory_mib()
        return web, worker, watcher

    def post_pull_request(self, i: int) -> float:
        payload = payloads.pull_request(REPO, "https://github.com/octo/hello.git", self.shas[i], number=i + 1)
        body = json.dumps(payload).encode()
        headers = signed_headers("github", body, SECRET, "pull_request", f"bench-{i}")
        sent = time.monotonic()
        response = self.http.post(f"{self.url}/api/webhooks/github", data=body, headers=headers, timeout=10)
        if response.status_code != 202:
            raise RuntimeError(f"delivery {i}: {response.status_code} {response.text}")
        return sent

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        if not self.github.wait_for(predicate, timeout):
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")

    # -- time to first status --------------------------------------------------------------------
    def first_status(self) -> None:
        sent: dict[str, float] = {}

        def deliver(i: int) -> None:
            sent[self.shas[i]] = self.post_pull_request(i)

        at_steady_rate(FIRST_STATUS_EVENTS, FIRST_STATUS_RATE, deliver)
        self.wait_until(
            lambda: len(first_pending(self.github, CONTEXT)) >= FIRST_STATUS_EVENTS, 60, "first statuses"
        )
        arrived = first_pending(self.github, CONTEXT)
        self.result.first_status = [arrived[sha] - at for sha, at in sent.items()]

    def floor(self) -> None:
        env = dict(self.env, BENCH_BROKER=self.broker_url, PYTHONPATH=str(Path.cwd()))
        argv = [
            PYTHON, "-m", "celery", "-A", "benchmarks.baselines:floor", "worker", "--pool", "threads",
            "--concurrency", "4", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        worker = start("floor-worker", argv, env)
        try:
            from benchmarks.baselines import floor as floor_app

            floor_app.conf.broker_url = self.broker_url
            floor_app.send_task("floor.report", args=[f"{self.github.api_url}/warm-up"])
            time.sleep(3)  # the worker is up and consuming
            sent: dict[str, float] = {}
            shas = [sha_of(i, "floor") for i in range(FIRST_STATUS_EVENTS)]

            def send(i: int) -> None:
                sent[shas[i]] = time.monotonic()
                url = f"{self.github.api_url}/repos/octo/floor/statuses/{shas[i]}"
                floor_app.send_task("floor.report", args=[url])

            at_steady_rate(FIRST_STATUS_EVENTS, FLOOR_RATE, send)
            done = lambda: len(first_pending(self.github, "floor")) >= FIRST_STATUS_EVENTS  # noqa: E731
            self.wait_until(done, 60, "floor")
            arrived = first_pending(self.github, "floor")
            self.result.floor = [arrived[sha] - at for sha, at in sent.items()]
        finally:
            worker.stop()

    # -- watch -----------------------------------------------------------------------------------
    def fill(self) -> None:
        """Deliver the rest of the pull requests: WORKFLOWS Workflows in all, every one queued."""
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(self.post_pull_request, range(FIRST_STATUS_EVENTS, WORKFLOWS)))
        self.wait_until(lambda: len(first_pending(self.github, CONTEXT)) >= WORKFLOWS, 120, "all runs")
        deadline = time.monotonic() + 60
        while len(self.k8s.objects(NAMESPACE)) < WORKFLOWS:
            if time.monotonic() > deadline:
                raise RuntimeError("not every run was submitted")
            time.sleep(0.2)

    def workflows(self) -> list[tuple[str, str]]:
        """(name, sha) of every Workflow, oldest first."""
        objects = self.k8s.objects(NAMESPACE)
        pairs = [(o["metadata"]["name"], o["metadata"]["labels"]["forgeflow.dev/sha"]) for o in objects]
        order = {sha: i for i, sha in enumerate(self.shas)}
        return sorted(pairs, key=lambda pair: order[pair[1]])

    def drive(self, workflows: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[float, float]]:
        """Move every Workflow to Running, then every one to Succeeded, at TRANSITION_RATE;
        (sha, phase) → (monotonic, wall) time of the change."""
        changed: dict[tuple[str, str], tuple[float, float]] = {}
        steps = [(name, sha, phase) for phase in ("Running", "Succeeded") for name, sha in workflows]

        def move(i: int) -> None:
            name, sha, phase = steps[i]
            self.k8s.patch_status(NAMESPACE, name, unit_status(name, phase))
            changed[(sha, phase)] = (time.monotonic(), time.time())

        at_steady_rate(len(steps), TRANSITION_RATE, move)
        return changed

    def watch(self, watcher: Proc) -> None:
        workflows = self.workflows()
        time.sleep(2)  # the watcher has seen every ADDED event
        cpu_before, started = cpu_seconds(watcher.process.pid), time.monotonic()
        changed = self.drive(workflows)
        expected = {(sha, "running"): changed[(sha, "Running")][0] for _, sha in workflows}
        expected |= {(sha, "success"): changed[(sha, "Succeeded")][0] for _, sha in workflows}

        def reported() -> dict[tuple[str, str], float]:
            found: dict[tuple[str, str], float] = {}
            with self.github.lock:
                for s in self.github.statuses:
                    if s.context != CONTEXT:
                        continue
                    kind = "running" if s.state == "pending" and "running" in s.description else s.state
                    found.setdefault((s.sha, kind), s.at)
            return found

        self.github.wait_for(lambda: len(set(expected) & set(reported())) == len(expected), 120)
        self.result.watch_seconds = time.monotonic() - started
        cpu = cpu_seconds(watcher.process.pid) - cpu_before
        arrived = reported()
        self.result.transitions = len(expected)
        self.result.watch_lag = [arrived[key] - at for key, at in expected.items() if key in arrived]
        self.result.missing = sum(1 for key in expected if key not in arrived)
        with self.github.lock:
            posted = Counter(
                (s.sha, s.state, s.description) for s in self.github.statuses if s.context == CONTEXT
            )
        self.result.duplicates = sum(n - 1 for n in posted.values() if n > 1)
        self.result.watcher_cpu_ms = cpu * 1000 / len(expected)

    def poller(self, watcher: Proc) -> None:
        """The same 2,000 changes, watched by the naive poller instead (the watcher stopped)."""
        watcher.stop()
        workflows = self.workflows()
        for name, _ in workflows:
            self.k8s.patch_status(NAMESPACE, name, {"phase": "Pending", "nodes": None, "finishedAt": None})
        names_file, out_file = WORK / "poller-names.json", WORK / "poller-seen.json"
        names_file.write_text(json.dumps([name for name, _ in workflows]))
        ready = Path(f"{out_file}.ready")
        ready.unlink(missing_ok=True)
        argv = [PYTHON, "-m", "benchmarks.poller", str(self.kubeconfig), NAMESPACE]
        argv += [str(names_file), str(out_file)]
        poller = start("naive-poller", argv, self.env)
        try:
            deadline = time.monotonic() + 60
            while not ready.exists():
                if time.monotonic() > deadline or poller.process.poll() is not None:
                    raise RuntimeError(f"the poller did not start: {poller.log.read_text()[-2000:]}")
                time.sleep(0.1)
            cpu_before, started = cpu_seconds(poller.process.pid), time.monotonic()
            changed = self.drive(workflows)
            time.sleep(3)  # a sweep or two after the last change
            cpu = cpu_seconds(poller.process.pid) - cpu_before
            elapsed = time.monotonic() - started
        finally:
            poller.stop()
        by_name = dict(workflows)
        seen = {(by_name[name], phase): at for name, phase, at in json.loads(out_file.read_text())}
        lags = [seen[key] - wall for key, (_, wall) in changed.items() if key in seen]
        self.result.poller_lag = lags
        self.result.poller_missed = len(changed) - len(lags)  # a phase passed between two GETs
        self.result.poller_cpu_ms = cpu * 1000 / len(changed)
        self.result.poller_gets_per_second = len(workflows) / max(elapsed / max(1, round(elapsed)), 1.0)


def run(broker_url: str) -> PipelineResult:
    with ExitStack() as exits:
        database_url = exits.enter_context(database())
        bench = PipelineBench(database_url, broker_url, exits)
        web, worker, watcher = bench.start_forgeflow()
        cpu = {proc.name: proc.cpu_seconds() for proc in (web, worker)}
        with Sampler([web, worker]) as load:
            bench.first_status()
            bench.fill()
        bench.result.worker_cpu_ms = (worker.cpu_seconds() - cpu[worker.name]) * 1000 / WORKFLOWS
        bench.result.web_cpu_ms = (web.cpu_seconds() - cpu[web.name]) * 1000 / WORKFLOWS
        bench.floor()
        with Sampler([watcher]) as watching:
            bench.watch(watcher)
        bench.poller(watcher)
        memory = bench.result.memory_mib
        for name, sampler in (("web", load), ("worker", load), ("watcher", watching)):
            proc = f"pipeline-{name}"
            memory[f"{name} under load"] = (sampler.peak[proc] / 1024, sampler.peak_pss[proc] / 1024)
        return bench.result
