"""``make chaos``, part two: deliveries through the whole pipeline while its parts fail.

forgeflow runs as deployed (``forgeflow web``, ``worker`` and ``watcher`` as processes, PostgreSQL,
``executor=argo`` against the Kubernetes API emulator, a fake GitHub), but on faults this run owns:
its own ``redis-server`` (killed and started again, empty), a database of its own reached through
a TCP proxy (silenced), ``pg_terminate_backend`` on that database's backends only, and SIGKILL for
the worker and the watcher (started again at once, as Kubernetes would). This process plays
Argo's controller: every Workflow runs, then succeeds.

Each scenario delivers signed pull requests (one run, one job each), as a forge would: a 5xx or
a broken connection is delivered again a second later. It reports what was sent, accepted and
processed (the job's ``success`` reached the forge), what was lost, duplicate runs, duplicate
transitions (the same state and description posted twice in a row for one commit), the recovery
time (from the end of the fault -- the restart, the restore -- until every delivery it stranded
moved again: done, taken by a worker, or sent to the broker anew) and the time until the last
final status (which includes working off the backlog).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import requests
from pytest_httpserver import HTTPServer

from benchmarks.common import PYTHON, WORK, Proc, free_port, start, wait_http
from benchmarks.pipeline import iso_now
from service.cli.replay import signed_headers
from tests.argo_executor.world import write_kubeconfig
from tests.k8s_emulator import K8sEmulator
from tests.support import payloads
from tests.support.fake_github import FakeGitHub
from tests.support.services import postgres_database
from tests.support.tcp_proxy import TcpProxy

SECRET = "chaos-secret"  # noqa: S105 - the run's own webhook secret
REPO, NAMESPACE, CONTEXT = "octo/hello", "ci", "forgeflow/unit"
CLONE = "https://github.com/octo/hello.git"
JOB_FILE = "version: 1\njobs:\n  unit:\n    on: [pull_request]\n    steps: [{run: 'true'}]\n"
SETTLE = 300.0  # seconds to wait for everything to finish after a fault, at most
OPEN = "('received', 'queued')"  # delivery states not yet done


class AnyCommit:
    """The fake GitHub's repository: the job file at every commit."""

    url = CLONE

    def show(self, sha: str, path: str) -> str | None:
        return JOB_FILE if path == ".forgeflow.yaml" else None


@dataclass
class FaultResult:
    name: str
    fault: str
    sent: int = 0
    accepted: int = 0
    processed: int = 0
    lost: int = 0
    duplicate_runs: int = 0
    duplicate_transitions: int = 0
    recovery_seconds: float = 0.0  # until every delivery the fault stranded moved again
    drained_seconds: float = 0.0  # until the last final status (the backlog's length, too)
    answers: Counter[int] = field(default_factory=Counter)
    slowest_answer: float = 0.0  # seconds, of any delivery attempt
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Heal:
    """When a fault ended, and the deliveries then open: id -> (attempts, sent_at)."""

    at: float
    stranded: dict[int, tuple[int, Any]]


class RedisServer:
    """A redis-server of this run's own, on a port of its own, without persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = WORK / f"redis-{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        argv = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        argv += ["--dir", str(self.dir)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import redis

                redis.Redis(port=self.port, socket_timeout=1).ping()
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Pipeline:
    """One scenario's forgeflow, with its faults at hand."""

    def __init__(self, name: str, exits: ExitStack) -> None:
        self.name = name
        self.exits = exits
        self.database_url = exits.enter_context(postgres_database())
        self.database = self.database_url.rsplit("/", 1)[1]
        self.proxy = TcpProxy(("127.0.0.1", 5432)).start()
        exits.callback(self.proxy.close)
        self.redis = RedisServer()
        self.redis.start()
        exits.callback(self.redis.kill)
        self.k8s = K8sEmulator(record_requests=False, history_size=100_000).start()
        exits.callback(self.k8s.stop)
        self.server = HTTPServer(host="127.0.0.1", port=free_port(), threaded=True)
        self.server.start()
        exits.callback(self.server.stop)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.github = FakeGitHub(self.server)
        self.github.add_repo(REPO, AnyCommit())  # type: ignore[arg-type]
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        data = WORK / f"chaos-{name}"
        shutil.rmtree(data, ignore_errors=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEFLOW_")}
        self.env.update(
            FORGEFLOW_DATA_DIR=str(data),
            FORGEFLOW_DATABASE_URL=self.database_url.replace("127.0.0.1:5432", self.proxy.address),
            FORGEFLOW_BROKER_URL=self.redis.url,
            FORGEFLOW_PUBLIC_URL=self.url,
            FORGEFLOW_HOST="127.0.0.1",
            FORGEFLOW_PORT=str(port),
            FORGEFLOW_GITHUB_WEBHOOK_SECRET=SECRET,
            FORGEFLOW_GITHUB_TOKEN="chaos-token",  # noqa: S106 - the fake forge takes any
            FORGEFLOW_GITHUB_API_URL=self.github.api_url,
            FORGEFLOW_EXECUTOR="argo",
            FORGEFLOW_KUBECONFIG=str(write_kubeconfig(WORK / f"kubeconfig-{name}", self.k8s.url)),
            FORGEFLOW_NAMESPACE=NAMESPACE,
            FORGEFLOW_LOG_LEVEL="INFO",
        )
        subprocess.run(
            [PYTHON, "-m", "service.cli", "migrate"], env=self.env, check=True, capture_output=True
        )
        self.procs: dict[str, Proc] = {}
        for part in ("web", "worker", "watcher"):
            self.start(part)
        wait_http(f"{self.url}/healthz")
        self.k8s.wait_for_watches(1, timeout=60)
        self.stop_controller = threading.Event()
        threading.Thread(target=self.controller, daemon=True).start()
        exits.callback(self.stop_controller.set)
        self.http = threading.local()
        self.lock = threading.Lock()

    # -- the parts ---------------------------------------------------------------------------------
    def start(self, part: str) -> Proc:
        proc = start(
            f"chaos-{self.name}-{part}-{len(self.procs)}", [PYTHON, "-m", "service.cli", part], self.env
        )
        self.procs[part] = proc
        self.exits.callback(proc.stop)
        return proc

    def kill(self, part: str) -> None:
        """SIGKILL, as an OOM killer or a lost node would."""
        proc = self.procs[part]
        proc.process.send_signal(signal.SIGKILL)
        proc.process.wait()

    def terminate_backends(self) -> int:
        """pg_terminate_backend on every backend of this scenario's own database."""
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
        admin.autocommit = True
        try:
            with admin.cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.database,),
                )
                return int(cursor.fetchone()[0])
        finally:
            admin.close()

    def controller(self) -> None:
        """Argo's part: every new Workflow runs, then succeeds."""
        phase: dict[str, str] = {}
        while not self.stop_controller.is_set():
            for workflow in self.k8s.objects(NAMESPACE):
                name = workflow["metadata"]["name"]
                now = phase.get(name, "")
                nxt = {"": "Running", "Running": "Succeeded"}.get(now)
                if nxt is None:
                    continue
                node = {"id": f"{name}-1", "name": f"{name}.unit", "displayName": "unit", "type": "Pod"}
                node.update(templateName="unit", phase=nxt, startedAt=iso_now())
                status: dict[str, Any] = {
                    "phase": nxt,
                    "startedAt": node["startedAt"],
                    "nodes": {node["id"]: node},
                }
                if nxt == "Succeeded":
                    node["finishedAt"] = status["finishedAt"] = iso_now()
                try:
                    self.k8s.patch_status(NAMESPACE, name, status)
                    phase[name] = nxt
                except Exception:  # deleted meanwhile
                    phase[name] = "Succeeded"
            self.stop_controller.wait(0.3)

    # -- delivering, as a forge does -------------------------------------------------------------
    def deliver(self, sha: str, number: int, result: FaultResult, deadline: float) -> None:
        if not hasattr(self.http, "session"):
            self.http.session = requests.Session()
        body = json.dumps(payloads.pull_request(REPO, CLONE, sha, number=number)).encode()
        headers = signed_headers("github", body, SECRET, "pull_request", f"chaos-{sha}")
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                response = self.http.session.post(
                    f"{self.url}/api/webhooks/github", data=body, headers=headers, timeout=30
                )
                status = response.status_code
            except requests.RequestException:
                self.http.session = requests.Session()
                status = 0
            with self.lock:
                result.slowest_answer = max(result.slowest_answer, time.monotonic() - started)
                result.answers[status] += 1
                if status in (200, 202):
                    result.accepted += 1
                    return
            time.sleep(1)  # 5xx or no answer: deliver again

    def burst(self, shas: list[str], result: FaultResult, during: Callable[[int], None]) -> None:
        """Deliver ``shas`` with 8 senders; ``during(accepted)`` runs between deliveries."""
        result.sent = len(shas)
        deadline = time.monotonic() + SETTLE
        with ThreadPoolExecutor(8) as pool:
            jobs = [pool.submit(self.deliver, sha, i + 1, result, deadline) for i, sha in enumerate(shas)]
            while not all(job.done() for job in jobs):
                during(result.accepted)
                time.sleep(0.05)
            for job in jobs:
                job.result()

    def finals(self) -> dict[str, float]:
        """sha → when its final status arrived."""
        with self.github.lock:
            return {
                s.sha: s.at for s in self.github.statuses if s.context == CONTEXT and s.state == "success"
            }

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """On this scenario's database, directly (not through the proxy)."""
        connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=self.database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def healed(self) -> Heal:
        """The fault is over: what it left unfinished (open deliveries, how far each had got)."""
        rows = self.query(
            "SELECT id, attempts, sent_at FROM deliveries WHERE state IN ('received', 'queued')"
        )
        return Heal(time.monotonic(), {pk: (attempts, sent_at) for pk, attempts, sent_at in rows})

    def recovered(self, heal: Heal) -> float:
        """Seconds from the heal until every delivery it stranded moved again: done, taken by a
        worker again, or sent to the broker again."""
        deadline = time.monotonic() + SETTLE
        waiting = dict(heal.stranded)
        while waiting and time.monotonic() < deadline:
            rows = self.query(
                "SELECT id, state, attempts, sent_at FROM deliveries WHERE id = ANY(%s)", (list(waiting),)
            )
            for pk, state, attempts, sent_at in rows:
                before_attempts, before_sent = waiting[pk]
                moved = sent_at is not None and (before_sent is None or sent_at > before_sent)
                if state not in ("received", "queued") or attempts > before_attempts or moved:
                    del waiting[pk]
            if waiting:
                time.sleep(0.5)
        return time.monotonic() - heal.at

    def settle(self, shas: list[str], heal: Heal, result: FaultResult) -> None:
        result.recovery_seconds = self.recovered(heal)
        wanted = set(shas)
        self.github.wait_for(lambda: wanted <= set(self.finals()), SETTLE)
        time.sleep(5)  # late duplicates would arrive now
        finals = self.finals()
        done = [finals[sha] for sha in shas if sha in finals]
        result.processed = len(done)
        result.lost = result.accepted - result.processed
        result.drained_seconds = max(0.0, max(done, default=heal.at) - heal.at)
        with self.github.lock:
            posts: dict[str, list[tuple[str, str]]] = {}
            for s in self.github.statuses:
                if s.context == CONTEXT:
                    posts.setdefault(s.sha, []).append((s.state, s.description))
        result.duplicate_transitions = sum(
            1 for seq in posts.values() for a, b in itertools.pairwise(seq) if a == b
        )
        [(duplicates,)] = self.query(
            "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) n FROM runs GROUP BY sha) r"
        )
        result.duplicate_runs = int(duplicates)
        workflows = Counter(
            w["metadata"]["labels"].get("forgeflow.dev/sha") for w in self.k8s.objects(NAMESPACE)
        )
        result.duplicate_runs = max(result.duplicate_runs, sum(n - 1 for n in workflows.values()))


def shas(name: str, count: int) -> list[str]:
    return [
        hashlib.sha1(f"chaos-{name}-{i}".encode(), usedforsecurity=False).hexdigest() for i in range(count)
    ]


def once(condition: Callable[[int], bool], action: Callable[[], None]) -> Callable[[int], None]:
    done = [False]

    def during(accepted: int) -> None:
        if not done[0] and condition(accepted):
            done[0] = True
            action()

    return during


def broker_killed(count: int = 1000) -> FaultResult:
    result = FaultResult(
        "broker killed", f"redis-server SIGKILLed with {count} deliveries in flight, back empty 5 s later"
    )
    with ExitStack() as exits:
        pipe = Pipeline("broker", exits)
        commits = shas("broker", count)
        pipe.burst(commits, result, lambda _: None)
        before = len(pipe.finals())
        pipe.redis.kill()
        result.notes.append(
            f"{count - before} of {count} deliveries were not yet processed when the broker died"
        )
        time.sleep(5)
        pipe.redis.start()
        pipe.settle(commits, pipe.healed(), result)
    return result


def connections_killed(count: int = 300) -> FaultResult:
    result = FaultResult(
        "database connections killed", "pg_terminate_backend on every backend, 3 times in the burst"
    )
    with ExitStack() as exits:
        pipe = Pipeline("backends", exits)
        commits = shas("backends", count)
        healed = [pipe.healed()]
        terminated: list[int] = []

        def kill(accepted: int) -> None:
            if len(terminated) < 3 and accepted >= count * (len(terminated) + 1) // 4:
                terminated.append(pipe.terminate_backends())
                healed[0] = pipe.healed()

        pipe.burst(commits, result, kill)
        result.notes.append(f"backends terminated: {terminated}")
        pipe.settle(commits, healed[0], result)
    return result


def database_silent(count: int = 300, seconds: float = 20.0) -> FaultResult:
    result = FaultResult(
        "database silent", f"a proxy stops forwarding for {seconds:.0f} s in the burst (nothing answers)"
    )
    with ExitStack() as exits:
        pipe = Pipeline("silent", exits)
        commits = shas("silent", count)
        healed = [pipe.healed()]

        def silence() -> None:
            pipe.proxy.silence()

            def restore() -> None:
                time.sleep(seconds)
                pipe.proxy.restore()
                healed[0] = pipe.healed()

            threading.Thread(target=restore, daemon=True).start()

        pipe.burst(commits, result, once(lambda accepted: accepted >= count // 3, silence))
        while not pipe.proxy.forwarding:
            time.sleep(0.1)
        pipe.settle(commits, healed[0], result)
    return result


def part_killed(part: str, count: int = 300) -> FaultResult:
    result = FaultResult(f"{part} killed", f"forgeflow {part} SIGKILLed mid-burst, started again 1 s later")
    with ExitStack() as exits:
        pipe = Pipeline(part, exits)
        commits = shas(part, count)
        healed = [pipe.healed()]

        def kill() -> None:
            pipe.kill(part)
            time.sleep(1)
            pipe.start(part)
            healed[0] = pipe.healed()

        pipe.burst(commits, result, once(lambda accepted: accepted >= count // 2, kill))
        pipe.settle(commits, healed[0], result)
    return result


SCENARIOS: dict[str, Callable[[], FaultResult]] = {
    "broker": broker_killed,
    "backends": connections_killed,
    "silent": database_silent,
    "worker": lambda: part_killed("worker"),
    "watcher": lambda: part_killed("watcher"),
}
