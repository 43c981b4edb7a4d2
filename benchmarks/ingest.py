"""Ingest: signed 25 KB pull_request deliveries against the web tier as deployed (gunicorn),
next to the bare ceiling and the usual verify-and-publish design, on the same server settings."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from benchmarks.common import (
    PYTHON,
    ROOT,
    WORK,
    Memory,
    Proc,
    free_port,
    have,
    postgres_cpu_seconds,
    redis_cpu_seconds,
    start,
    wait_http,
)
from service.cli.main import DEFAULT_THREADS, DEFAULT_WORKERS
from service.cli.replay import signed_headers
from tests.support import payloads

SECRET = "bench-secret"  # noqa: S105 - the benchmark's own webhook secret
# gunicorn settings shared by every contestant: forgeflow web's own defaults, as deployed
WORKERS, THREADS = DEFAULT_WORKERS, DEFAULT_THREADS
CONNECTIONS, SECONDS, ROUNDS, BODY_KIB = 16, 2, 8, 25
USUAL_QUEUE = "usual"  # where verify-and-publish sends payloads


@dataclass
class IngestResult:
    name: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    peak_rss_mib: float
    server_cpu_ms: float = 0.0  # per request: the gunicorn processes
    postgres_cpu_ms: float = 0.0  # per request: the PostgreSQL server
    redis_cpu_ms: float = 0.0  # per request: the Redis server
    rates: tuple[float, ...] = ()  # accepted/s of every round
    peak_pss_mib: float = 0.0  # the largest single process's (a gunicorn worker's, or the master's)

    @property
    def per_second(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0


def body_25k() -> bytes:
    payload = payloads.pull_request("octo/hello", "https://github.com/octo/hello.git", "a" * 40)
    payload["pull_request"]["body"] = ""
    size = len(json.dumps(payload).encode())
    payload["pull_request"]["body"] = "x" * (BODY_KIB * 1024 - size)
    return json.dumps(payload).encode()


def _gunicorn(name: str, app: str, env: dict[str, str]) -> tuple[Proc, str]:
    port = free_port()
    argv = [
        str(Path(PYTHON).with_name("gunicorn")),
        "-w",
        str(WORKERS),
        "--threads",
        str(THREADS),
        "-k",
        "gthread",
        "-b",
        f"127.0.0.1:{port}",
        "--no-control-socket",
        "--reuse-port",
        "--access-logfile",
        "-",  # as forgeflow's web process logs every request
        app,
    ]
    return start(name, argv, env), f"http://127.0.0.1:{port}"


def _forgeflow_web(env: dict[str, str]) -> tuple[Proc, str]:
    port = free_port()
    env = dict(env, FORGEFLOW_PORT=str(port), FORGEFLOW_HOST="127.0.0.1")
    argv = [PYTHON, "-m", "service.cli", "web", "--workers", str(WORKERS), "--threads", str(THREADS)]
    return start("forgeflow", argv, env), f"http://127.0.0.1:{port}"


def _load(url: str, seconds: int, body_file: Path, signature: str, proc: Proc) -> IngestResult:
    out = WORK / f"wrk-{proc.name}.json"
    peak, peak_pss = [0], [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.rss_kib())
            peak_pss[0] = max(peak_pss[0], *proc.pss_each_kib().values())
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu_before, pg_before, redis_before = proc.cpu_seconds(), postgres_cpu_seconds(), redis_cpu_seconds()
    env = dict(os.environ, WRK_JSON=str(out))
    subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(CONNECTIONS),
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "benchmarks" / "wrk_post.lua"),
            f"{url}/api/webhooks/github",
            "--",
            str(body_file),
            signature,
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    server_cpu, pg_cpu = proc.cpu_seconds() - cpu_before, postgres_cpu_seconds() - pg_before
    redis_cpu = redis_cpu_seconds() - redis_before
    stop.set()
    sampler.join()
    data = json.loads(out.read_text())
    served = max(1, data["requests"])
    errors = data["errors_status"] + data["errors_connect"] + data["errors_read"] + data["errors_timeout"]
    return IngestResult(
        proc.name,
        data["requests"],
        data["duration_us"] / 1e6,
        errors,
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
        peak[0] / 1024,
        server_cpu * 1000 / served,
        pg_cpu * 1000 / served,
        redis_cpu * 1000 / served,
        peak_pss_mib=peak_pss[0] / 1024,
    )


def run(
    database_url: str, broker_url: str, seconds: int = SECONDS, rounds: int = ROUNDS
) -> tuple[list[IngestResult], dict[str, float]]:
    """The three contestants, each measured ``rounds`` times in turn (A, B, C, A, B, C, ...) in
    short rounds, so a machine whose speed drifts from second to second treats them alike; each
    result sums its rounds (its rate is the mean). Also the web process's memory readings."""
    if not have("wrk"):
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    WORK.mkdir(parents=True, exist_ok=True)
    body = body_25k()
    body_file = WORK / "pull_request-25k.json"
    body_file.write_bytes(body)
    signature = signed_headers("github", body, SECRET, "pull_request")["X-Hub-Signature-256"]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEFLOW_")}
    env = dict(
        base_env,
        FORGEFLOW_DATA_DIR=str(WORK / "data"),
        FORGEFLOW_DATABASE_URL=database_url,
        FORGEFLOW_BROKER_URL=broker_url,
        FORGEFLOW_GITHUB_WEBHOOK_SECRET=SECRET,
        FORGEFLOW_LOG_LEVEL="WARNING",
        FORGEFLOW_EXECUTOR="local",
    )
    subprocess.run([PYTHON, "-m", "service.cli", "migrate"], env=env, check=True, capture_output=True)
    bench_env = dict(base_env, BENCH_SECRET=SECRET, BENCH_BROKER=broker_url, PYTHONPATH=str(ROOT))
    queue = redis.Redis.from_url(broker_url)
    servers: list[tuple[Proc, str]] = []
    memory: Memory = {}
    try:
        servers.append(_forgeflow_web(env))
        servers.append(_gunicorn("bare-flask-202", "benchmarks.baselines:bare", bench_env))
        servers.append(_gunicorn("verify-and-publish", "benchmarks.baselines:publish", bench_env))
        wait_http(f"{servers[0][1]}/healthz")
        for _, url in servers[1:]:
            wait_http(f"{url}/")
        time.sleep(1)
        memory["web at rest"] = servers[0][0].memory_mib()
        for proc, url in servers:
            _load(url, 2, body_file, signature, proc)  # warm-up
        measured: dict[str, list[IngestResult]] = {proc.name: [] for proc, _ in servers}
        for _ in range(rounds):
            for proc, url in servers:
                measured[proc.name].append(_load(url, seconds, body_file, signature, proc))
                queue.delete(USUAL_QUEUE)  # nobody consumes it here: keep Redis small
        results = [_combine(runs) for runs in measured.values()]
        ours = measured["forgeflow"]
        memory["web under ingest load"] = (
            max(r.peak_rss_mib for r in ours),
            max(r.peak_pss_mib for r in ours),
        )
    finally:
        for proc, _ in servers:
            proc.stop()
        queue.delete(USUAL_QUEUE)
        queue.close()
    return results, memory


def _combine(runs: list[IngestResult]) -> IngestResult:
    """All rounds of one contestant as one result: requests, time and CPU summed; the latency
    percentiles of its median round (wrk reports percentiles per round)."""
    requests = sum(r.requests for r in runs)
    served = max(1, requests)
    middle = sorted(runs, key=lambda r: r.p50_ms)[len(runs) // 2]
    return IngestResult(
        middle.name,
        requests,
        sum(r.seconds for r in runs),
        sum(r.errors for r in runs),
        middle.p50_ms,
        middle.p99_ms,
        max(r.peak_rss_mib for r in runs),
        sum(r.server_cpu_ms * r.requests for r in runs) / served,
        sum(r.postgres_cpu_ms * r.requests for r in runs) / served,
        sum(r.redis_cpu_ms * r.requests for r in runs) / served,
        tuple(r.per_second for r in runs),
        peak_pss_mib=max(r.peak_pss_mib for r in runs),
    )
