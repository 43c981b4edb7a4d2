"""``make bench``: every benchmark, each figure next to its ceiling or baseline from the same run,
written to ``benchmarks/RESULTS.md`` (newest run first; earlier runs are kept below it).

Needs PostgreSQL and Redis on 127.0.0.1 (as ``make test`` does) and ``wrk`` (``apt-get install
wrk``). ``--only ingest,compile,pipeline,watch-scale,worker-cost,burst,replicas`` runs a subset;
``--no-write`` prints without writing. ``BENCH_BROKER`` names the Redis database the benchmarks use
(default db 8).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

from benchmarks import burst, ingest, pipeline, watch_scale, worker_cost
from benchmarks import compile as compile_bench
from benchmarks.common import PSS_TARGET_MIB, ROOT, Memory, have, machine, percentile
from tests.support.services import POSTGRES, REDIS, reachable

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
MARKER = "<!-- runs: newest first; make bench inserts here -->"
BROKER = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/8")  # another Redis db per bench run
HEADER = f"""# Benchmark results

Rerun with `make bench` (about 10 minutes on 2 cores; `--only` picks sections); it inserts a
new section below and keeps the earlier ones. Absolute figures drift on shared machines: compare
each figure with its ceiling or baseline from the same run. How to read them and where the time
goes: `benchmarks/NOTES.md`.

{MARKER}
"""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def spread(values: list[float]) -> str:
    if not values:
        return "| - | - | - | 0 |"
    p50, p99 = percentile(values, 50), percentile(values, 99)
    return f"| {ms(p50)} | {ms(p99)} | {ms(max(values))} | {len(values)} |"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def ingest_section(results: list[ingest.IngestResult]) -> list[str]:
    by_name = {r.name: r for r in results}
    ours, bare, usual = by_name["forgeflow"], by_name["bare-flask-202"], by_name["verify-and-publish"]
    share = ours.per_second / bare.per_second if bare.per_second else 0.0
    lines = [
        "### Ingest",
        "",
        f"Signed {ingest.BODY_KIB} KiB GitHub `pull_request` deliveries, each with a new delivery id; "
        f"gunicorn {ingest.WORKERS} workers x {ingest.THREADS} threads (gthread, `reuse_port`: forgeflow "
        "web's defaults) for every contestant; "
        f"`wrk -t1 -c{ingest.CONNECTIONS} -d{ingest.SECONDS}s` after a 2 s warm-up; PostgreSQL + Redis. "
        f"The contestants take turns, {ingest.ROUNDS} short rounds each, so that the machine's drifting "
        "speed treats them alike; a rate is all of a contestant's accepted deliveries over all its "
        "rounds' time, p50 and p99 are its median round's, and the last column lists every round's rate.",
        "",
        "| contestant | accepted/s | p50 | p99 | errors | of the ceiling | CPU/request: server | PostgreSQL "
        "| Redis | rounds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in (ours, bare, usual):
        of = r.per_second / bare.per_second * 100 if bare.per_second else 0.0
        figures = f"{r.per_second:.0f} | {r.p50_ms:.1f} ms | {r.p99_ms:.1f} ms | {r.errors} | {of:.0f}%"
        figures += f" | {r.server_cpu_ms:.2f} ms | {r.postgres_cpu_ms:.2f} ms | {r.redis_cpu_ms:.2f} ms"
        figures += " | " + ", ".join(f"{rate:.0f}" for rate in r.rates)
        lines.append(f"| {r.name} | {figures} |")
    paired = sorted(o / b for o, b in zip(ours.rates, bare.rates, strict=True) if b)
    lines += [
        "",
        f"forgeflow stores each delivery in PostgreSQL (committed) before its 202; verify-and-publish "
        f"only hands the payload to Redis. Target ≥ 40% of the ceiling and ahead of verify-and-publish: "
        f"{verdict(share >= 0.4 and ours.per_second > usual.per_second)} ({share * 100:.0f}%, "
        f"{ours.per_second / max(usual.per_second, 1e-9):.2f}x verify-and-publish). Round by round "
        f"(each forgeflow round against the ceiling's round after it) forgeflow reached "
        f"{paired[0] * 100:.0f}-{paired[-1] * 100:.0f}% of the ceiling, median "
        f"{paired[len(paired) // 2] * 100:.0f}%.",
        "",
    ]
    return lines


def pipeline_section(result: pipeline.PipelineResult) -> list[str]:
    p99 = percentile(result.first_status, 99)
    lines = [
        "### Time to first status",
        "",
        f"{pipeline.FIRST_STATUS_EVENTS} signed pull_request deliveries at "
        f"{pipeline.FIRST_STATUS_RATE:.0f}/s to `forgeflow web` (gunicorn, 2 workers); `forgeflow worker` "
        "(Celery, threads) on PostgreSQL + Redis reads the job file from a fake GitHub that answers at "
        "once, plans, reports `pending` and submits the Workflow to the Kubernetes API emulator. "
        "Timed from the POST to the first `pending` at the forge. Floor: a bare Celery task on the "
        f"same broker posting one status, {pipeline.FIRST_STATUS_EVENTS} sent at "
        f"{pipeline.FLOOR_RATE:.0f}/s.",
        "",
        "| | p50 | p99 | max | n |",
        "|---|---:|---:|---:|---:|",
        f"| forgeflow {spread(result.first_status)}",
        f"| floor: bare Celery round trip {spread(result.floor)}",
        "",
        f"Target p99 < 250 ms: {verdict(p99 < 0.25)}. CPU per delivery: worker "
        f"{result.worker_cpu_ms:.1f} ms, web {result.web_cpu_ms:.1f} ms.",
        "",
        "### Watch",
        "",
        f"{pipeline.WORKFLOWS} Workflows in the emulator; the benchmark, as Argo's controller, moves each to "
        f"Running and then to Succeeded at {pipeline.TRANSITION_RATE:.0f} transitions/s. `forgeflow watcher` "
        "(its own process: list + watch, database state, statuses through the outbox) reports each to "
        "the fake GitHub. The naive poller GETs every Workflow once a second and only notices "
        "the change (it reports nothing, which flatters it).",
        "",
        "| | lag p50 | lag p99 | lag max | transitions seen | CPU per transition |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    w, p = result.watch_lag, result.poller_lag
    lines.append(
        f"| forgeflow watcher | {ms(percentile(w, 50))} | {ms(percentile(w, 99))} | {ms(max(w or [0]))} | "
        f"{len(w)} of {result.transitions} | {result.watcher_cpu_ms:.2f} ms |"
    )
    lines.append(
        f"| naive poller | {ms(percentile(p, 50))} | {ms(percentile(p, 99))} | {ms(max(p or [0]))} | "
        f"{len(p)} of {len(p) + result.poller_missed} | {result.poller_cpu_ms:.2f} ms |"
    )
    lines += [
        "",
        f"Exactly once: {result.duplicates} repeated and {result.missing} missing reports "
        f"({verdict(result.duplicates == 0 and result.missing == 0)}). The poller made "
        f"{result.poller_gets_per_second:.0f} GETs/s to the API server; the watcher keeps one watch open.",
        "",
    ]
    return lines


def compile_section(results: list[compile_bench.CompileResult]) -> list[str]:
    stages = list(results[0].stages_ms)
    lines = [
        "### Compile",
        "",
        "A pull request's run of `lint`, a 4-wide matrix `tests` (with `needs`, `retries`, `${{ matrix }}` "
        "in image, env and step names) and `report` (`needs`, `if:`), in one process: parse and validate "
        "the job file, match, plan, compile to a Workflow and validate it strictly (hera models + semantic "
        f"checks). The sizes take turns, {compile_bench.ROUNDS} rounds (a smaller size runs several times a "
        "round, about as much work as the largest); each figure is the stage's median over the rounds.",
        "",
        "| job instances | " + " | ".join(stages) + " | total | per instance |",
        "|---:|" + "---:|" * (len(stages) + 2),
    ]
    for r in results:
        cells = " | ".join(f"{r.stages_ms[s]:.1f} ms" for s in stages)
        lines.append(f"| {r.instances} | {cells} | {r.total_ms:.1f} ms | {r.total_ms / r.instances:.2f} ms |")
    by = {r.instances: r for r in results}
    growth = by[1000].total_ms / by[100].total_ms
    lines += [
        "",
        f"Growth from 100 to 1,000 instances: {growth:.1f}x for 10x the work (linear is 10x). "
        f"Target 100 instances under 50 ms: {verdict(by[100].total_ms < 50)}.",
        "",
    ]
    return lines


def memory_section(memory: Memory) -> list[str]:
    at_rest = {name: pss for name, (_, pss) in memory.items() if name.endswith("at rest")}
    worst = max(at_rest.values(), default=0.0)
    lines = [
        "### Memory",
        "",
        "Resident set size (RSS) of each process with its children (web: the gunicorn master and "
        "its 2 workers), and proportional set size (PSS: shared pages divided among the processes "
        "that share them, from /proc/PID/smaps_rollup) of its largest single process, in MiB. "
        "Under load: peaks sampled every 0.2 s under the load named.",
        "",
        "| process | RSS | PSS (largest process) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {rss:.0f} | {pss:.0f} |" for name, (rss, pss) in memory.items()]
    lines += [
        "",
        f"Target each process ≤ {PSS_TARGET_MIB:.0f} MiB PSS at rest: {verdict(worst <= PSS_TARGET_MIB)} "
        f"(largest {worst:.0f} MiB).",
    ]
    return [*lines, ""]


def watch_scale_section(result: watch_scale.ScaleResult) -> list[str]:
    lag = result.lag
    p99 = percentile(lag, 99)
    ws = watch_scale
    lines = [
        "### Watch at scale",
        "",
        f"{ws.WORKFLOWS:,} Workflows in the emulator at once, their runs in PostgreSQL (`queued` already "
        f"reported). The benchmark, as Argo's controller, moves every one to Running and then "
        f"{ws.SUCCEEDED:,} of them to Succeeded, at {ws.RATE:.0f} transitions/s; `forgeflow watcher` "
        "(its own process, argo executor) applies each watch batch in one transaction and posts the "
        "statuses to the fake GitHub. Lag: from the change in the API server to the status at the "
        f"forge. The watcher listed all {ws.WORKFLOWS:,} and opened its watch "
        f"{result.start_seconds:.1f} s after it started. The naive poller's baseline is in Watch above "
        f"(it would need {ws.WORKFLOWS:,} GETs a second here).",
        "",
        "| transitions | lag p50 | lag p99 | lag max | CPU per transition | repeated | missing |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {result.transitions:,} | {ms(percentile(lag, 50))} | {ms(p99)} | {ms(max(lag or [0]))} | "
        f"{result.cpu_ms:.2f} ms | {result.duplicates} | {result.missing} |",
        "",
        "| watcher memory | MiB |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {value:.0f} |" for name, value in result.memory_mib.items()]
    rss = max((v for k, v in result.memory_mib.items() if k.endswith("RSS")), default=0.0)
    lines += [
        "",
        f"Targets: lag p99 < {ws.LAG_TARGET:.0f} s {verdict(p99 < ws.LAG_TARGET)}; CPU per transition "
        f"≤ {ws.CPU_TARGET_MS:.0f} ms {verdict(result.cpu_ms <= ws.CPU_TARGET_MS)}; exactly once "
        f"{verdict(result.duplicates == 0 and result.missing == 0)}; RSS ≤ {ws.RSS_TARGET_MIB:.0f} MiB "
        f"{verdict(rss <= ws.RSS_TARGET_MIB)} (peak {rss:.0f} MiB). All {result.transitions:,} were "
        f"reported {result.seconds:.0f} s after the first change ({result.transitions / ws.RATE:.0f} s "
        f"of changes); meanwhile the watcher used {result.watcher_cpu_share * 100:.0f}% of a core and "
        f"the benchmark's own process (emulator, fake GitHub) {result.harness_cpu_share * 100:.0f}%: "
        "on a loaded machine the lag says more about the CPU left over than about the watcher.",
        "",
    ]
    return lines


def commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    return (result.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty.strip() else "")


def write(section: list[str]) -> None:
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else HEADER
    if MARKER not in text:
        text = HEADER + "\n" + text
    head, rest = text.split(MARKER, 1)
    new = "\n".join(section)
    RESULTS.write_text(f"{head}{MARKER}\n\n{new}\n{rest.lstrip(chr(10))}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--only", default="compile,ingest,pipeline,watch-scale,worker-cost,burst,replicas")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    missing = [name for name, host, port, hint in (POSTGRES, REDIS) if not reachable(host, port)]
    if missing:
        print(f"benchmarks need {', '.join(missing)} on 127.0.0.1 (see README, `make test`)", file=sys.stderr)
        return 2
    if "ingest" in only and not have("wrk"):
        print("the ingest benchmark needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    started = time.monotonic()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body: list[str] = []
    memory: Memory = {}
    if "compile" in only:
        print("compile ...", flush=True)
        body += compile_section(compile_bench.run())
    if "ingest" in only:
        print("ingest ...", flush=True)
        with pipeline.database() as database_url:
            results, web_memory = ingest.run(database_url, BROKER)
        body += ingest_section(results)
        memory |= web_memory
    if "pipeline" in only:
        print("time to first status and watch ...", flush=True)
        result = pipeline.run(BROKER)
        body += pipeline_section(result)
        memory |= result.memory_mib
    if "watch-scale" in only:
        print("watch at scale ...", flush=True)
        body += watch_scale_section(watch_scale.run(BROKER))
    if "worker-cost" in only:
        print("worker cost and forge API budget ...", flush=True)
        body += worker_cost.section(worker_cost.run(BROKER))
    if "burst" in only:
        print("burst ...", flush=True)
        body += burst.burst_section(burst.run_burst())
    if "replicas" in only:
        print("several replicas ...", flush=True)
        body += burst.replicas_section(burst.run_replicas())
    if memory:
        body += memory_section(memory)
    took = time.monotonic() - started
    section = [
        f"## {when} · {commit()}",
        "",
        f"- Machine: {machine()}",
        f"- Command: `make bench` (`python -m benchmarks.run --only {args.only}`), {took:.0f} s in all",
        "",
        *body,
    ]
    print("\n".join(section))
    if not args.no_write:
        write(section)
        print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
