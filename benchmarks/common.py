"""Shared pieces of the benchmarks: machine facts, processes, percentiles, memory readings."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

# process → (RSS of it and its children, the largest single process's PSS), in MiB
Memory = dict[str, tuple[float, float]]
PSS_TARGET_MIB = 100.0  # each process at rest (issue 19)

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work"
PYTHON = sys.executable


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({cpu}){memory}, {system}, Python {platform.python_version()}"


def stack_env(
    data_dir: Path,
    database_url: str,
    broker_url: str,
    port: int,
    github_api_url: str,
    kubeconfig: Path,
    namespace: str,
    webhook_secret: str,
) -> dict[str, str]:
    """The environment of a benchmark's forgeflow processes: this one's, without any FORGEFLOW_*
    setting, plus a web on ``port``, the fake GitHub and the argo executor on the emulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEFLOW_")}
    env.update(
        FORGEFLOW_DATA_DIR=str(data_dir),
        FORGEFLOW_DATABASE_URL=database_url,
        FORGEFLOW_BROKER_URL=broker_url,
        FORGEFLOW_PUBLIC_URL=f"http://127.0.0.1:{port}",
        FORGEFLOW_HOST="127.0.0.1",
        FORGEFLOW_PORT=str(port),
        FORGEFLOW_GITHUB_WEBHOOK_SECRET=webhook_secret,
        FORGEFLOW_GITHUB_TOKEN="bench-token",  # noqa: S106 - the fake forge takes any
        FORGEFLOW_GITHUB_API_URL=github_api_url,
        FORGEFLOW_EXECUTOR="argo",
        FORGEFLOW_KUBECONFIG=str(kubeconfig),
        FORGEFLOW_NAMESPACE=namespace,
        FORGEFLOW_LOG_LEVEL="WARNING",
    )
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: Sequence[float]) -> str:
    """p50 / p99 / max of durations in seconds, as milliseconds."""
    return (
        f"p50 {percentile(values, 50) * 1000:.1f} ms, p99 {percentile(values, 99) * 1000:.1f} ms, "
        f"max {max(values) * 1000:.1f} ms (n={len(values)})"
    )


@dataclass
class Proc:
    """A server process the benchmark started; stopped (and its children) on close."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    peak_rss_kib: dict[str, int] = field(default_factory=dict)

    def rss_kib(self) -> int:
        """Resident memory of the process and its children (gunicorn workers), in KiB."""
        return sum(_rss(pid) for pid in [self.process.pid, *_children(self.process.pid)])

    def pss_kib(self) -> int:
        """Proportional set size of the process and its children, in KiB: each shared page
        counted once over all that share it (what a node pays for them)."""
        return sum(pss_kib(pid) for pid in [self.process.pid, *_children(self.process.pid)])

    def memory_mib(self) -> tuple[float, float]:
        """(RSS of the process and its children, the largest one's PSS), in MiB."""
        return self.rss_kib() / 1024, max(self.pss_each_kib().values(), default=0) / 1024

    def pss_each_kib(self) -> dict[int, int]:
        """Each process's (and child's) proportional set size, in KiB, by pid."""
        return {pid: pss_kib(pid) for pid in [self.process.pid, *_children(self.process.pid)]}

    def cpu_seconds(self) -> float:
        """CPU time used by the process and its children (gunicorn workers) so far."""
        return sum(cpu_seconds(pid) for pid in [self.process.pid, *_children(self.process.pid)])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def pss_kib(pid: int) -> int:
    """A process's proportional set size (``Pss`` of ``/proc/PID/smaps_rollup``: what psutil's
    ``memory_full_info().pss`` reads), in KiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            for child in map(int, text):
                found += [child, *_children(child)]
    except (OSError, ValueError):
        pass
    return found


def start(name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
    WORK.mkdir(parents=True, exist_ok=True)
    log = WORK / f"{name}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    return Proc(name, process, log)


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def have(program: str) -> bool:
    return shutil.which(program) is not None


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL server process on this machine (0 when it runs elsewhere)."""
    return programs_cpu_seconds("postgres")


def redis_cpu_seconds() -> float:
    return programs_cpu_seconds("redis-server")


def programs_cpu_seconds(name: str) -> float:
    """CPU time of every process whose command name starts with ``name``."""
    total = 0.0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().startswith(name):
                total += cpu_seconds(int(comm.parent.name))
        except (OSError, ValueError):
            continue
    return total
