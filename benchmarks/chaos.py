"""``make chaos``: forgeflow under hostile input and faults, on demand, with its results written
to ``benchmarks/CHAOS.md`` (newest run first) with the machine and the command.

- ``fuzz``: over 10,000 hostile requests against ``forgeflow web`` (:mod:`benchmarks.fuzz`):
  0 answers of 5xx, memory back within 10% after;
- ``broker``, ``backends``, ``silent``, ``worker``, ``watcher``: deliveries through the whole
  pipeline while a part fails (:mod:`benchmarks.faults`): 0 lost, 0 duplicate runs, 0 duplicate
  transitions, recovery < 60 s.

Bounded: every wait has a deadline; about 7 minutes on 2 shared cores. Needs PostgreSQL on
127.0.0.1 (each scenario makes its own database; the server itself is never touched),
``redis-server`` on the PATH (each scenario starts its own) and ``../shared/fixtures``.
``python -m benchmarks.chaos fuzz worker`` runs some; ``--no-write`` prints only.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime

from benchmarks import faults, fuzz
from benchmarks.common import ROOT, have, machine
from tests.support.services import POSTGRES, reachable

RESULTS = ROOT / "benchmarks" / "CHAOS.md"
MARKER = "<!-- runs: newest first; make chaos inserts here -->"
HEADER = f"""# Chaos results

`make chaos` (about 7 minutes on 2 cores) runs forgeflow against hostile requests and failing
parts and inserts a new section below; earlier runs are kept. How it works: `benchmarks/chaos.py`,
`benchmarks/fuzz.py`, `benchmarks/faults.py`. The quick fault suite runs in `make test`.

{MARKER}
"""


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def fuzz_section(result: fuzz.FuzzResult) -> list[str]:
    growth = result.rss_after_kib / result.rss_warm_kib - 1 if result.rss_warm_kib else 0.0
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(result.statuses.items()))
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(result.kinds.items()))
    lines = [
        "### Hostile requests (`forgeflow web`, gunicorn 2 x 16, PostgreSQL)",
        "",
        f"{result.requests} requests in {result.seconds:.0f} s ({kinds}), {fuzz.SLOW_CLIENTS} slow clients "
        f"announcing bodies they never sent meanwhile (cut off {result.slow_clients_cut} times).",
        "",
        f"- answers: {statuses}; closed without an answer: {result.closed_without_answer} (framing attacks)",
        f"- 5xx: {result.fivexx} (target 0): {verdict(result.fivexx == 0)}",
        f"- web RSS: {result.rss_warm_kib / 1024:.0f} MiB after the warm-up, "
        f"peak {result.rss_peak_kib / 1024:.0f} MiB, {result.rss_after_kib / 1024:.0f} MiB after "
        f"({growth * 100:+.1f}%; target within 10%): {verdict(growth <= 0.10)}",
    ]
    if result.server_errors:
        lines += ["", "First 5xx (to replay):", "", *[f"- `{e}`" for e in result.server_errors[:10]]]
    return lines


def faults_section(results: list[faults.FaultResult]) -> list[str]:
    lines = [
        "### Faults (web, worker, watcher as processes; PostgreSQL, own Redis, argo executor, emulator)",
        "",
        "| scenario | fault | sent | accepted | processed | lost | duplicate runs | duplicate transitions "
        "| recovery | all done | slowest answer | answers |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        answers = ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(r.answers.items()))
        lines.append(
            f"| {r.name} | {r.fault} | {r.sent} | {r.accepted} | {r.processed} | {r.lost} "
            f"| {r.duplicate_runs} | {r.duplicate_transitions} | {r.recovery_seconds:.1f} s "
            f"| {r.drained_seconds:.1f} s | {r.slowest_answer:.1f} s | {answers} |"
        )
    ok = all(
        r.lost == 0 and r.duplicate_runs == 0 and r.duplicate_transitions == 0 and r.recovery_seconds < 60
        for r in results
    )
    lines += [
        "",
        f"Targets 0 lost, 0 duplicate runs, 0 duplicate transitions, recovery < 60 s: {verdict(ok)}. "
        "Recovery is from the end of the fault (restart, restore) until every delivery it stranded moved "
        "again (done, taken by a worker, or sent to the broker anew); all done is until the last final "
        "status, backlog included. A sender delivers again after a 5xx or a broken connection, as forges do.",
    ]
    for r in results:
        lines += [f"- {r.name}: {note}" for note in r.notes]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "scenarios", nargs="*", help=f"fuzz and/or {', '.join(faults.SCENARIOS)} (default: all)"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if not reachable(POSTGRES[1], POSTGRES[2]) or not have("redis-server"):
        print("make chaos needs PostgreSQL on 127.0.0.1:5432 and redis-server on the PATH", file=sys.stderr)
        return 2
    wanted = args.scenarios or ["fuzz", *faults.SCENARIOS]
    started = time.monotonic()
    sections: list[str] = []
    if "fuzz" in wanted:
        print("fuzz ...", flush=True)
        sections += [*fuzz_section(fuzz.run()), ""]
    results = []
    for name in (n for n in wanted if n in faults.SCENARIOS):
        print(f"{name} ...", flush=True)
        results.append(faults.SCENARIOS[name]())
    if results:
        sections += faults_section(results)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    command = "make chaos" if not args.scenarios else f"python -m benchmarks.chaos {' '.join(args.scenarios)}"
    head = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit.stdout.strip()}",
        "",
        f"`{command}` on {machine()}; {time.monotonic() - started:.0f} s.",
        "",
    ]
    text = "\n".join(head + sections) + "\n"
    print(text)
    if not args.no_write:
        old = RESULTS.read_text() if RESULTS.exists() else HEADER
        if MARKER not in old:
            old = HEADER + old
        RESULTS.write_text(old.replace(MARKER, f"{MARKER}\n\n{text}", 1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
