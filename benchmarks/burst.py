"""A burst and several replicas (issue 19): forgeflow's processes as deployed, apart, on
PostgreSQL and Redis, against the Kubernetes API emulator and a fake GitHub (the harness of the
multi-replica test, ``tests/support/replicas.py``).

- Burst: 1,000 signed pull_request deliveries posted as fast as ``forgeflow web`` (gunicorn,
  2 workers) takes them, 2 ``forgeflow worker`` processes and a watcher; from each POST to the
  first ``pending`` status of its commit at the fake forge, and the curve of first statuses
  over time. Nothing may be lost.
- Replicas: 3 ``forgeflow web``, 3 ``forgeflow worker`` and 2 ``forgeflow watcher`` processes;
  2,000 pull requests spread over the web replicas while the benchmark plays Argo's controller
  (each Workflow to Running, and once the forge heard so, to Succeeded); one worker is
  SIGKILLed mid-burst. Each Workflow must be created once, each transition reported once,
  each delivery done, and no process may log an unhandled deadlock or serialization failure.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import redis

from benchmarks.common import WORK, percentile
from tests.support.replicas import Cluster, Layout, Tally, sha_of
from tests.support.services import postgres_database

BROKER = "redis://127.0.0.1:6379/13"  # a Redis database of its own (the other benchmarks use 8)
FIRST_PORT = 18300  # ports 18300-18399
BURST_EVENTS, BURST_POSTERS = 1000, 16  # deliveries, client threads posting them
REPLICA_EVENTS, REPLICA_POSTERS = 2000, 12
REPLICA_WAIT = 150  # seconds for every run to succeed after the last POST (else: how many did)
BUCKET = 2.0  # seconds per row of the curve
# A killed worker's deliveries are taken over after its leases lapse and a sweep finds them.
REPLICA_SETTINGS = {"FORGEFLOW_SWEEP_SECONDS": "2", "FORGEFLOW_LEASE_SECONDS": "5"}


@dataclass
class BurstResult:
    latencies: list[float] = field(default_factory=list)  # POST -> first pending, seconds
    posting_seconds: float = 0.0  # first POST to last 202
    curve: list[tuple[float, int, int]] = field(default_factory=list)  # (t, accepted, first statuses)
    lost: int = 0
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per delivery, per kind of process


@dataclass
class ReplicasResult:
    tally: Tally = field(default_factory=Tally)
    posting_seconds: float = 0.0
    seconds: float = 0.0  # first POST to the last success at the forge
    succeeded: int = 0  # runs whose success reached the forge within REPLICA_WAIT
    latencies: list[float] = field(default_factory=list)  # POST -> first pending
    killed_holding: int = 0  # deliveries the killed worker held
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per event, per kind of process


def ports() -> Iterator[int]:
    yield from range(FIRST_PORT, FIRST_PORT + 100)


def fresh_broker() -> str:
    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    client.close()
    return BROKER


def cpu_by_kind(cluster: Cluster) -> dict[str, float]:
    return {
        kind: sum(p.cpu_seconds() for p in procs)
        for kind, procs in (("web", cluster.webs), ("worker", cluster.workers), ("watcher", cluster.watchers))
    }


def per_event(before: dict[str, float], after: dict[str, float], events: int) -> dict[str, float]:
    return {kind: (after[kind] - before[kind]) * 1000 / events for kind in before}


def run_burst() -> BurstResult:
    result = BurstResult()
    work = WORK / "burst"
    shutil.rmtree(work, ignore_errors=True)
    layout = Layout(webs=1, workers=2, watchers=1, web_workers=2, worker_concurrency=4)
    port = ports()
    with (
        postgres_database() as database,
        Cluster(work, database, fresh_broker(), layout, port=port.__next__) as cluster,
    ):
        cluster.start()
        time.sleep(2)  # the workers are consuming
        before = cpu_by_kind(cluster)
        accepted: list[float] = []

        started = time.monotonic()
        cluster.burst(range(BURST_EVENTS), threads=BURST_POSTERS, accepted=accepted)
        result.posting_seconds = time.monotonic() - started
        try:
            cluster.wait(lambda: len(cluster.first_pending()) >= BURST_EVENTS, 120, "every first status")
        except AssertionError as exc:
            print(f"burst: {str(exc)[:300]}")
        arrived = cluster.first_pending()
        result.cpu_ms = per_event(before, cpu_by_kind(cluster), BURST_EVENTS)
        result.lost = sum(1 for sha in cluster.posted if sha not in arrived)
        result.latencies = [arrived[sha] - cluster.sent[sha] for sha in cluster.posted if sha in arrived]
        result.curve = curve(started, accepted, list(arrived.values()))
    return result


def curve(started: float, accepted: list[float], first: list[float]) -> list[tuple[float, int, int]]:
    """Cumulative 202s and first statuses every BUCKET seconds (longer steps when it took long:
    about 20 rows)."""
    end = max([*accepted, *first, started]) - started
    step = max(BUCKET, BUCKET * math.ceil(end / BUCKET / 20))
    rows = []
    t = step
    while True:
        rows.append(
            (t, sum(1 for a in accepted if a - started <= t), sum(1 for f in first if f - started <= t))
        )
        if t >= end:
            return rows
        t += step


def run_replicas() -> ReplicasResult:
    result = ReplicasResult()
    work = WORK / "replicas"
    shutil.rmtree(work, ignore_errors=True)
    port = ports()
    with (
        postgres_database() as database,
        Cluster(
            work, database, fresh_broker(), Layout(), port=port.__next__, settings=REPLICA_SETTINGS
        ) as cluster,
    ):
        cluster.start()
        cluster.run_controller(hold=10)
        time.sleep(2)
        before = cpu_by_kind(cluster)
        started = time.monotonic()
        half = REPLICA_EVENTS // 2
        cluster.burst(range(half), threads=REPLICA_POSTERS)
        victim = cluster.workers[0]
        result.killed_holding = cluster.held_by(victim)
        victim_cpu = victim.cpu_seconds()
        cluster.kill(victim)
        cluster.burst(range(half, REPLICA_EVENTS), threads=REPLICA_POSTERS)
        result.posting_seconds = time.monotonic() - started
        try:
            cluster.wait_all_final(timeout=REPLICA_WAIT)
        except AssertionError as exc:
            print(f"replicas: {str(exc)[:300]}")
        finals = cluster.finals_at()
        result.seconds = max(finals.values() or [started]) - started
        result.succeeded = len(finals)
        after = cpu_by_kind(cluster)
        after["worker"] += victim_cpu  # its CPU until it was killed
        result.tally = cluster.tally()
        done = result.tally.deliveries.get("done", 0)
        result.cpu_ms = per_event(before, after, max(done, 1))  # per delivery done (all, once finished)
        arrived = cluster.first_pending()
        result.latencies = [arrived[sha] - cluster.sent[sha] for sha in cluster.posted if sha in arrived]
    assert set(cluster.posted) == {sha_of(i) for i in range(REPLICA_EVENTS)}
    return result


# -- RESULTS.md sections ---------------------------------------------------------------------------


def _s(seconds: float) -> str:
    return f"{seconds:.1f} s"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def burst_section(result: BurstResult) -> list[str]:
    lat = result.latencies
    p99, worst = percentile(lat, 99), max(lat or [float("nan")])
    cpu = ", ".join(f"{kind} {ms:.1f} ms" for kind, ms in result.cpu_ms.items())
    lines = [
        "### Burst",
        "",
        f"{BURST_EVENTS} signed pull_request deliveries posted as fast as `forgeflow web` (gunicorn, "
        f"2 workers) takes them ({BURST_POSTERS} client threads); 2 `forgeflow worker` processes (Celery, "
        "4 threads each) and a `forgeflow watcher` on PostgreSQL + Redis; the job file comes from a fake "
        "GitHub, Workflows go to the Kubernetes API emulator. Timed from each POST to the first `pending` "
        "status of its commit at the forge.",
        "",
        "| posted in | p50 | p99 | max | first statuses | lost |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {_s(result.posting_seconds)} | {_s(percentile(lat, 50))} | {_s(p99)} | {_s(worst)} | "
        f"{len(lat)} of {BURST_EVENTS} | {result.lost} |",
        "",
        f"Target p99 < 10 s, max < 20 s, none lost: {verdict(p99 < 10 and worst < 20 and result.lost == 0)}. "
        f"CPU per delivery: {cpu}.",
        "",
        "The curve: deliveries accepted (202) and commits with their first status, cumulative, "
        "seconds after the first POST.",
        "",
        "| t | accepted | first statuses |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {t:.0f} s | {a} | {f} |" for t, a, f in result.curve]
    return [*lines, ""]


def replicas_section(result: ReplicasResult) -> list[str]:
    t = result.tally
    lat = result.latencies
    once = (
        t.created == t.expected
        and not t.created_twice
        and not t.duplicate_statuses
        and not t.missing
        and not t.shas_without_workflow
        and t.deliveries == {"done": t.expected}
        and not t.troubles
    )
    cpu = ", ".join(f"{kind} {ms:.1f} ms" for kind, ms in result.cpu_ms.items())
    deliveries = ", ".join(f"{n} {state}" for state, n in sorted(t.deliveries.items()))
    runs = ", ".join(f"{n} {phase}" for phase, n in sorted(t.runs.items()))
    lines = [
        "### Several replicas",
        "",
        "3 `forgeflow web` (gunicorn, 1 worker each), 3 `forgeflow worker` (2 threads each) and 2 "
        "`forgeflow watcher` processes on one PostgreSQL and Redis, against the Kubernetes API emulator "
        f"and a fake GitHub. {REPLICA_EVENTS} signed pull_request deliveries spread round-robin over the "
        f"web replicas ({REPLICA_POSTERS} client threads), as fast as they take them; the benchmark plays "
        "Argo's controller (each Workflow to Running, then to Succeeded once the forge heard it runs). "
        "Halfway through the burst "
        f"one worker is SIGKILLed (it held {result.killed_holding} deliveries); leases of "
        f"{REPLICA_SETTINGS['FORGEFLOW_LEASE_SECONDS']} s and a sweep every "
        f"{REPLICA_SETTINGS['FORGEFLOW_SWEEP_SECONDS']} s hand its work to the others.",
        "",
        f"| events | posted in | succeeded at the forge | last success after | first status ({len(lat)}) p50 "
        "| p99 | max |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {t.expected} | {_s(result.posting_seconds)} | {result.succeeded} | {_s(result.seconds)} | "
        f"{_s(percentile(lat, 50))} | "
        f"{_s(percentile(lat, 99))} | {_s(max(lat or [float('nan')]))} |",
        "",
        "| Workflows created | created twice | repeated creates (409) | statuses posted | repeated | missing "
        "| deliveries | taken over | runs | unhandled errors in logs |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---|---:|",
        f"| {t.created} | {len(t.created_twice)} | {t.create_conflicts} | {t.statuses} | "
        f"{len(t.duplicate_statuses)} | {sum(len(v) for v in t.missing.values())} | {deliveries} | "
        f"{t.taken_again} | {runs} | {len(t.troubles)} |",
        "",
        f"Each Workflow created once, each transition reported once, every delivery done, no unhandled "
        f"deadlock or serialization failure: {verdict(once)}. CPU per delivery done: {cpu}. GitHub API "
        f"calls per event: {t.api_calls / max(t.expected, 1):.1f} (the fake forge's budget is raised: "
        "one token's 5,000 an hour last about 1,500 events).",
        "",
    ]
    if t.troubles:
        lines += ["First unhandled errors:", "", *[f"    {line[:200]}" for line in t.troubles[:5]], ""]
    return lines
