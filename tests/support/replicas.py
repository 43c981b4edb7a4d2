"""Several replicas of forgeflow's production processes on one database and broker (issue 19).

``forgeflow web``, ``forgeflow worker`` and ``forgeflow watcher`` run as OS processes started
through the CLI, as in production, on one PostgreSQL database and one broker (Redis or
RabbitMQ), with ``executor=argo`` pointed at the Kubernetes API emulator and the forge a fake
GitHub, both over real HTTP in this process. :class:`~tests.support.argo_controller.Controller`
plays Argo's controller: it moves each Workflow to Running and, once the forge has heard so, to
Succeeded. :meth:`Cluster.tally` counts what must happen exactly once: creates of each Workflow at the
emulator, each status transition at the forge, each delivery done. The multi-replica test
(``tests/e2e/test_replicas.py``) and the benchmarks (``benchmarks/burst.py``) share it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, create_engine, text

from service.cli.replay import signed_headers
from tests.argo_executor.world import write_kubeconfig
from tests.k8s_emulator import K8sEmulator
from tests.support import payloads
from tests.support.argo_controller import Controller
from tests.support.fake_github import FakeGitHub
from tests.support.processes import Process

SECRET = "replicas-secret"
REPO, CLONE_URL, NAMESPACE, JOB, CONTEXT = (
    "octo/hello",
    "https://github.com/octo/hello.git",
    "ci",
    "unit",
    "forgeflow/unit",
)
JOB_FILE = f"version: 1\njobs:\n  {JOB}:\n    on: [pull_request]\n    steps: [{{run: 'true'}}]\n"
WORKFLOW_CREATES = "/apis/argoproj.io/v1alpha1/namespaces/ci/workflows"
# what no process may leave unhandled in its log (PostgreSQL's words and psycopg2's classes)
TROUBLE = (
    "deadlock detected",
    "could not serialize",
    "SerializationFailure",
    "DeadlockDetected",
    "Traceback",
)


def sha_of(i: int) -> str:
    return hashlib.sha1(f"replicas-{i}".encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Layout:
    webs: int = 3
    workers: int = 3
    watchers: int = 2
    web_workers: int = 1  # gunicorn processes of each ``forgeflow web``
    worker_concurrency: int = 2  # threads of each ``forgeflow worker``


class JobFiles:
    """What the fake GitHub needs of the repository: the job file at every commit asked for."""

    url = CLONE_URL

    def show(self, sha: str, path: str) -> str | None:
        return JOB_FILE if path == ".forgeflow.yaml" else None


@dataclass
class Tally:
    """What happened, counted: the test asserts on it, the benchmark reports it."""

    expected: int = 0  # distinct deliveries posted (pull requests)
    created: int = 0  # Workflows the emulator created (201)
    create_conflicts: int = 0  # repeated creates of an existing Workflow (409)
    created_twice: list[str] = field(default_factory=list)  # Workflows created more than once
    shas_without_workflow: list[str] = field(default_factory=list)
    deliveries: dict[str, int] = field(default_factory=dict)  # state -> count, in the database
    runs: dict[str, int] = field(default_factory=dict)  # phase -> count
    taken_again: int = 0  # deliveries taken by a second worker (a dead holder's lease lapsed)
    statuses: int = 0
    api_calls: int = 0  # requests the fake GitHub answered
    duplicate_statuses: list[tuple[str, str, str]] = field(default_factory=list)  # (sha, state, words)
    missing: dict[str, list[str]] = field(default_factory=dict)  # transition -> shas never told
    troubles: list[str] = field(default_factory=list)  # log lines of unhandled errors


class Cluster:
    """The emulator, the fake GitHub and forgeflow's processes; stopped by :meth:`close`."""

    def __init__(
        self,
        work: Path,
        database_url: str,
        broker_url: str,
        layout: Layout,
        *,
        port: Callable[[], int],
        settings: dict[str, str] | None = None,
        history: int = 100_000,
    ) -> None:
        self.work, self.database_url, self.layout = work, database_url, layout
        work.mkdir(parents=True, exist_ok=True)
        self.k8s = K8sEmulator(history_size=history).start()
        self.server = HTTPServer(host="127.0.0.1", port=port(), threaded=True)
        self.server.start()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.github = FakeGitHub(self.server)
        self.github.add_repo(REPO, JobFiles())  # type: ignore[arg-type]
        # GitHub's 5,000 calls an hour per token run out after about 1,500 events; what is
        # measured here is forgeflow, not waiting out the forge's budget (a GitHub App's is larger)
        self.github.budget["limit"] = 100_000_000
        self.ports = [port() for _ in range(layout.webs)]
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEFLOW_")}
        self.env.update(
            FORGEFLOW_DATA_DIR=str(work / "data"),
            FORGEFLOW_DATABASE_URL=database_url,
            FORGEFLOW_BROKER_URL=broker_url,
            FORGEFLOW_PUBLIC_URL=self.urls[0],
            FORGEFLOW_HOST="127.0.0.1",
            FORGEFLOW_GITHUB_WEBHOOK_SECRET=SECRET,
            FORGEFLOW_GITHUB_TOKEN="replicas-token",
            FORGEFLOW_GITHUB_API_URL=self.github.api_url,
            FORGEFLOW_EXECUTOR="argo",
            FORGEFLOW_KUBECONFIG=str(write_kubeconfig(work / "kubeconfig", self.k8s.url)),
            FORGEFLOW_NAMESPACE=NAMESPACE,
            FORGEFLOW_LOG_LEVEL="WARNING",
            FORGEFLOW_HEALTH_PORT="0",
            FORGEFLOW_WORKER_CONCURRENCY=str(layout.worker_concurrency),
            **(settings or {}),
        )
        self.webs: list[Process] = []
        self.workers: list[Process] = []
        self.watchers: list[Process] = []
        self.posted: dict[str, str] = {}  # sha -> delivery id
        self.sent: dict[str, float] = {}  # sha -> monotonic time of its first POST
        self._local = threading.local()
        self.controller: Controller | None = None
        self._engine: Engine | None = None

    # -- processes ------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Process:
        log = self.work / f"{name}.log"
        with log.open("wb") as handle:
            popen = subprocess.Popen(
                [sys.executable, "-m", "service.cli", *argv], env=env, stdout=handle, stderr=subprocess.STDOUT
            )
        return Process(name, popen, log)

    def start(self, timeout: float = 120) -> Cluster:
        subprocess.run(
            [sys.executable, "-m", "service.cli", "migrate"],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        for i, port in enumerate(self.ports):
            argv = ["web", "--workers", str(self.layout.web_workers)]
            self.webs.append(self._spawn(f"web-{i}", argv, {**self.env, "FORGEFLOW_PORT": str(port)}))
        self.workers = [self._spawn(f"worker-{i}", ["worker"], self.env) for i in range(self.layout.workers)]
        self.watchers = [
            self._spawn(f"watcher-{i}", ["watcher"], self.env) for i in range(self.layout.watchers)
        ]
        deadline = time.monotonic() + timeout
        for url in self.urls:
            self._wait_http(f"{url}/healthz", deadline)
        self.k8s.wait_for_watches(self.layout.watchers, timeout=max(1.0, deadline - time.monotonic()))
        return self

    def _wait_http(self, url: str, deadline: float) -> None:
        while True:
            self.check_alive()
            try:
                requests.get(url, timeout=2)
                return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{url} did not answer in time; logs:\n{self.log_tails()}") from None
                time.sleep(0.2)

    @property
    def processes(self) -> list[Process]:
        return [*self.webs, *self.workers, *self.watchers]

    def check_alive(self) -> None:
        dead = [p.name for p in self.processes if p.popen.poll() is not None and p.popen.returncode != -9]
        if dead:
            raise AssertionError(f"{', '.join(dead)} exited early; logs:\n{self.log_tails()}")

    def kill(self, process: Process) -> None:
        """SIGKILL: no chance to give anything back (its leases lapse, its messages are lost)."""
        process.popen.send_signal(signal.SIGKILL)
        process.popen.wait(timeout=10)

    def log_tails(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.log.read_text(errors='replace')[-chars:]}" for p in self.processes
        )

    def close(self) -> None:
        if self.controller:
            self.controller.stop()
        for process in self.processes:  # SIGTERM to all at once, then wait for each
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.stop()
        if self._engine is not None:
            self._engine.dispose()
        self.server.stop()
        self.k8s.stop()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- deliveries -----------------------------------------------------------------------------

    def post(self, i: int, replica: int | None = None, delivery: str | None = None) -> requests.Response:
        """Pull request number i + 1 at commit ``sha_of(i)``, signed, to web replica ``replica``
        (default: round robin); 202 expected, or 200 "duplicate" when posted before. Thread-safe
        (one HTTP session per thread)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        sha = sha_of(i)
        payload = payloads.pull_request(REPO, CLONE_URL, sha, number=i + 1)
        body = json.dumps(payload).encode()
        delivery = delivery or self.posted.get(sha) or f"replicas-{i}"
        headers = signed_headers("github", body, SECRET, "pull_request", delivery)
        url = self.urls[(i if replica is None else replica) % len(self.urls)]
        again = sha in self.posted
        self.sent.setdefault(sha, time.monotonic())
        try:
            response = session.post(f"{url}/api/webhooks/github", data=body, headers=headers, timeout=30)
        except requests.ConnectionError:  # a kept-alive connection the server closed meanwhile:
            again = True  # send it again, as a forge's redelivery would (same delivery id)
            response = session.post(f"{url}/api/webhooks/github", data=body, headers=headers, timeout=30)
        if again and response.status_code == 200 and response.json().get("duplicate"):
            self.posted[sha] = delivery
            return response
        if response.status_code != 202:
            raise AssertionError(f"delivery {i} to {url}: {response.status_code} {response.text[:300]}")
        self.posted[sha] = delivery
        return response

    def burst(
        self,
        numbers: Iterable[int],
        threads: int = 8,
        replica: int | None = None,
        accepted: list[float] | None = None,
    ) -> None:
        """Post these pull requests from ``threads`` threads at once; ``accepted`` collects when
        each 202 came (monotonic)."""

        def post(i: int) -> None:
            self.post(i, replica)
            if accepted is not None:
                accepted.append(time.monotonic())

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(post, numbers))

    # -- watching the outcome -------------------------------------------------------------------

    def run_controller(self, hold: float = 5.0) -> Controller:
        self.controller = Controller(self.k8s, self.github, NAMESPACE, JOB, hold).start()
        return self.controller

    def first_pending(self) -> dict[str, float]:
        """sha → when the forge got its first ``pending`` status (monotonic)."""
        found: dict[str, float] = {}
        with self.github.lock:
            for status in self.github.statuses:
                if status.context == CONTEXT and status.state == "pending":
                    found.setdefault(status.sha, status.at)
        return found

    def finals_at(self) -> dict[str, float]:
        """sha → when the forge was told its job succeeded (monotonic)."""
        with self.github.lock:
            return {
                s.sha: s.at for s in self.github.statuses if s.context == CONTEXT and s.state == "success"
            }

    def finals(self) -> set[str]:
        return set(self.finals_at())

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for {what}; logs:\n{self.log_tails()}"
                )
            time.sleep(0.2)

    def wait_all_final(self, timeout: float) -> None:
        expected = set(self.posted)
        self.wait(lambda: expected <= self.finals(), timeout, f"{len(expected)} runs to succeed at the forge")

    def tally(self) -> Tally:
        tally = Tally(expected=len(self.posted))
        creates = Counter(
            (r.body or {}).get("metadata", {}).get("name", "")
            for r in self.k8s.requests
            if r.method == "POST" and r.path == WORKFLOW_CREATES and r.status == 201
        )
        tally.created = sum(creates.values())
        tally.created_twice = sorted(name for name, n in creates.items() if n > 1)
        tally.create_conflicts = sum(
            1
            for r in self.k8s.requests
            if r.method == "POST" and r.path == WORKFLOW_CREATES and r.status == 409
        )
        shas = {o["metadata"]["labels"]["forgeflow.dev/sha"] for o in self.k8s.objects(NAMESPACE)}
        tally.shas_without_workflow = sorted(set(self.posted) - shas)
        with self.github.lock:
            mine = [s for s in self.github.statuses if s.context == CONTEXT]
        tally.statuses = len(mine)
        tally.api_calls = int(self.github.budget["used"])
        counted = Counter((s.sha, s.state, s.description) for s in mine)
        tally.duplicate_statuses = sorted(key for key, n in counted.items() if n > 1)
        told = {
            "queued": {
                s.sha for s in mine if s.state == "pending" and "running" not in s.description.lower()
            },
            "running": {s.sha for s in mine if s.state == "pending" and "running" in s.description.lower()},
            "success": {s.sha for s in mine if s.state == "success"},
        }
        tally.missing = {
            kind: sorted(set(self.posted) - shas) for kind, shas in told.items() if set(self.posted) - shas
        }
        with self.database() as connection:
            rows = connection.execute(text("SELECT state, count(*) FROM deliveries GROUP BY state"))
            tally.deliveries = {str(state): int(n) for state, n in rows}
            rows = connection.execute(text("SELECT phase, count(*) FROM runs GROUP BY phase"))
            tally.runs = {str(phase): int(n) for phase, n in rows}
            again = connection.execute(text("SELECT count(*) FROM deliveries WHERE attempts > 1")).scalar()
            tally.taken_again = int(again or 0)
        tally.troubles = self.troubles()
        return tally

    def database(self) -> Any:
        """A connection to the processes' database (for counting, never for writing)."""
        if self._engine is None:
            self._engine = create_engine(self.database_url, pool_size=1)
        return self._engine.connect()

    def held_by(self, process: Process) -> int:
        """How many open deliveries ``process`` holds a lease on right now."""
        with self.database() as connection:
            held = connection.execute(
                text(
                    "SELECT count(*) FROM deliveries WHERE leased_by LIKE :who"
                    " AND state IN ('received', 'queued') AND lease_until > now() AT TIME ZONE 'utc'"
                ),
                {"who": f"%:{process.popen.pid}:%"},
            ).scalar()
        return int(held or 0)

    def troubles(self) -> list[str]:
        found: list[str] = []
        for process in self.processes:
            for line in process.log.read_text(errors="replace").splitlines():
                if any(word in line for word in TROUBLE):
                    found.append(f"{process.name}: {line}")
        return found
