"""The watcher at scale: 10,000 concurrent Workflows, transitions at 200/s (issue 19).

The database is filled directly (a run and its job per Workflow, the ``queued`` status already
reported) and the Kubernetes API emulator holds the Workflows, so no worker or web tier takes
part: only ``forgeflow watcher`` (its own process, PostgreSQL, the argo executor against the
emulator, statuses to a fake GitHub that answers at once). This process plays Argo's
controller: every Workflow goes to Running, then the first ``SUCCEEDED`` of them to Succeeded,
at ``RATE`` transitions per second. Each transition must reach the forge exactly once.

Figures: report lag (the controller's change to the status at the forge) p50/p99/max, the
watcher's CPU per transition, repeated and missing reports, and the watcher's memory (RSS and
PSS, peak) at rest with 10,000 Workflows listed and under the load. The naive poller's baseline
is in the Watch section (at 10,000 Workflows it would need 10,000 GETs a second).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field

from pytest_httpserver import HTTPServer
from sqlalchemy import insert, select
from werkzeug.serving import WSGIRequestHandler

from benchmarks.common import PYTHON, WORK, Proc, cpu_seconds, free_port, start
from benchmarks.pipeline import (
    CONTEXT,
    NAMESPACE,
    REPO,
    SECRET,
    BenchRepo,
    Sampler,
    at_steady_rate,
    database,
    sha_of,
    unit_status,
)
from service.events import Event, EventKind, Repository
from service.store.db import Database
from service.store.models import Job, Run, RunPhase
from tests.argo_executor.world import write_kubeconfig
from tests.k8s_emulator import K8sEmulator
from tests.support.fake_github import FakeGitHub

# concurrent Workflows, all listed and watched; of them, SUCCEEDED also finish (env: a smaller try)
WORKFLOWS = int(os.environ.get("BENCH_SCALE_WORKFLOWS", "10000"))
SUCCEEDED = int(os.environ.get("BENCH_SCALE_SUCCEEDED", "2000"))  # WORKFLOWS + SUCCEEDED transitions
RATE = 200.0  # transitions per second
LAG_TARGET, CPU_TARGET_MS, RSS_TARGET_MIB = 1.0, 3.0, 150.0
CLONE_URL = "https://github.com/octo/hello.git"


@dataclass
class ScaleResult:
    workflows: int = WORKFLOWS
    transitions: int = 0
    lag: list[float] = field(default_factory=list)  # seconds, per transition reported
    duplicates: int = 0
    missing: int = 0
    cpu_ms: float = 0.0  # the watcher's, per transition
    seconds: float = 0.0  # from the first change to the last report
    start_seconds: float = 0.0  # from the watcher's start to its watch (the first list applied)
    harness_cpu_share: float = 0.0  # of one core: this process (the emulator, the fake GitHub)
    watcher_cpu_share: float = 0.0  # of one core, while the changes came and were reported
    memory_mib: dict[str, float] = field(default_factory=dict)


def fill(database_url: str, k8s: K8sEmulator) -> list[tuple[str, str]]:
    """WORKFLOWS runs (one job each, ``queued`` reported) and their Workflows; (name, sha) each."""
    db = Database(database_url)
    db.migrate()
    repo = Repository(namespace="octo", name="hello", clone_url=CLONE_URL)
    shas = [sha_of(i, "scale") for i in range(WORKFLOWS)]
    names = [f"scale-{i}" for i in range(WORKFLOWS)]
    runs = [
        {
            "trigger_key": f"scale-{i}",
            "forge": "github",
            "instance": "",  # the one GitHub instance configured
            "repo": REPO,
            "sha": shas[i],
            "ref": "refs/heads/main",
            "event_kind": "push",
            "event_json": Event(
                forge="github", kind=EventKind.PUSH, repository=repo, sha=shas[i], ref="refs/heads/main"
            ).to_json(),
            "executor": "argo",
            "namespace": NAMESPACE,
            "workflow_name": names[i],
            "phase": RunPhase.SUBMITTED,
        }
        for i in range(WORKFLOWS)
    ]
    with db.session() as session:
        session.execute(insert(Run), runs)
        ids = dict(session.execute(select(Run.trigger_key, Run.id)).tuples().all())
        jobs = [
            {
                "run_id": ids[f"scale-{i}"],
                "name": "unit",
                "task": "unit",
                "context": CONTEXT,
                "state": "pending",
                "description": "queued",
                "reported_state": "pending",
                "reported_description": "queued",
            }
            for i in range(WORKFLOWS)
        ]
        session.execute(insert(Job), jobs)
    db.dispose()
    for i in range(WORKFLOWS):
        labels = {
            "app.kubernetes.io/managed-by": "forgeflow",
            "forgeflow.dev/run": str(ids[f"scale-{i}"]),
            "forgeflow.dev/sha": shas[i],
        }
        body = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": names[i], "namespace": NAMESPACE, "labels": labels},
            "spec": {"entrypoint": "main", "templates": [{"name": "main", "dag": {"tasks": []}}]},
            "status": {"phase": "Pending"},
        }
        k8s.create(body, NAMESPACE)
    return list(zip(names, shas, strict=True))


def move(k8s: K8sEmulator, name: str, phase: str) -> None:
    k8s.patch_status(NAMESPACE, name, unit_status(name, phase))


def reported(github: FakeGitHub) -> tuple[dict[tuple[str, str], float], Counter[tuple[str, str, str]]]:
    """(sha, running|success) → when it first arrived; and how often each status arrived."""
    found: dict[tuple[str, str], float] = {}
    posted: Counter[tuple[str, str, str]] = Counter()
    with github.lock:
        for s in github.statuses:
            if s.context != CONTEXT:
                continue
            kind = "running" if s.state == "pending" and "running" in s.description else s.state
            found.setdefault((s.sha, kind), s.at)
            posted[(s.sha, s.state, s.description)] += 1
    return found, posted


def run(broker_url: str) -> ScaleResult:
    result = ScaleResult()
    with ExitStack() as exits:
        # GitHub keeps connections alive; werkzeug's server closes each one unless told HTTP/1.1
        exits.callback(setattr, WSGIRequestHandler, "protocol_version", WSGIRequestHandler.protocol_version)
        WSGIRequestHandler.protocol_version = "HTTP/1.1"
        database_url = exits.enter_context(database())
        k8s = K8sEmulator(record_requests=False, history_size=100_000).start()
        exits.callback(k8s.stop)
        server = HTTPServer(host="127.0.0.1", port=free_port(), threaded=True)
        server.start()
        exits.callback(server.stop)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        github = FakeGitHub(server)
        github.budget["limit"] = 10**6  # 12,000 statuses in a minute: past a real token's 5,000 an hour
        workflows = fill(database_url, k8s)
        github.add_repo(REPO, BenchRepo({sha for _, sha in workflows}, CLONE_URL))  # type: ignore[arg-type]
        shutil.rmtree(WORK / "scale-data", ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEFLOW_")}
        env.update(
            FORGEFLOW_DATA_DIR=str(WORK / "scale-data"),
            FORGEFLOW_DATABASE_URL=database_url,
            FORGEFLOW_BROKER_URL=broker_url,
            FORGEFLOW_PUBLIC_URL="http://127.0.0.1:9",
            FORGEFLOW_GITHUB_WEBHOOK_SECRET=SECRET,
            FORGEFLOW_GITHUB_TOKEN="bench-token",  # noqa: S106 - the fake forge takes any
            FORGEFLOW_GITHUB_API_URL=github.api_url,
            FORGEFLOW_EXECUTOR="argo",
            FORGEFLOW_KUBECONFIG=str(write_kubeconfig(WORK / "scale-kubeconfig", k8s.url)),
            FORGEFLOW_NAMESPACE=NAMESPACE,
            FORGEFLOW_LOG_LEVEL="WARNING",
            FORGEFLOW_HEALTH_PORT="0",
        )
        subprocess.run([PYTHON, "-m", "service.cli", "migrate"], env=env, check=True, capture_output=True)
        started = time.monotonic()
        watcher: Proc = start("scale-watcher", [PYTHON, "-m", "service.cli", "watcher"], env)
        exits.callback(watcher.stop)
        k8s.wait_for_watches(1, timeout=180)  # listed every Workflow, now watching
        result.start_seconds = time.monotonic() - started
        time.sleep(2)
        result.memory_mib["watcher at rest (10,000 Workflows listed): RSS"] = watcher.rss_kib() / 1024
        result.memory_mib["watcher at rest (10,000 Workflows listed): PSS"] = watcher.pss_kib() / 1024
        steps = [(name, sha, "Running") for name, sha in workflows]
        steps += [(name, sha, "Succeeded") for name, sha in workflows[:SUCCEEDED]]
        changed: dict[tuple[str, str], float] = {}

        def step(i: int) -> None:
            name, sha, phase = steps[i]
            move(k8s, name, phase)
            changed[(sha, "running" if phase == "Running" else "success")] = time.monotonic()

        cpu_before, first = cpu_seconds(watcher.process.pid), time.monotonic()
        harness_before = time.process_time()
        with Sampler([watcher]) as load:
            at_steady_rate(len(steps), RATE, step)
            github.wait_for(lambda: len(set(changed) & set(reported(github)[0])) == len(changed), 120)
        result.seconds = time.monotonic() - first
        cpu = cpu_seconds(watcher.process.pid) - cpu_before
        result.harness_cpu_share = (time.process_time() - harness_before) / result.seconds
        result.watcher_cpu_share = cpu / result.seconds
        time.sleep(1)  # a repeat would have arrived by now
        arrived, posted = reported(github)
        result.transitions = len(changed)
        result.lag = [arrived[key] - at for key, at in changed.items() if key in arrived]
        result.missing = sum(1 for key in changed if key not in arrived)
        result.duplicates = sum(n - 1 for n in posted.values() if n > 1)
        result.cpu_ms = cpu * 1000 / max(1, len(changed))
        result.memory_mib["watcher under load: RSS"] = load.peak["scale-watcher"] / 1024
        result.memory_mib["watcher under load: PSS"] = load.peak_pss["scale-watcher"] / 1024
    return result
