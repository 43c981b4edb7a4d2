"""``make chaos``, part one: hostile requests against ``forgeflow web`` (gunicorn) as deployed.

Over 10,000 requests: real payloads of every forge mutated structure-aware and signed (so they
reach the parser and the database), bodies that are not UTF-8 JSON, and raw requests with broken
HTTP framing, while a few slow clients hold connections open. Every answer must be below 500
(a connection the server closes without answering counts apart, for framing attacks), and the
web process's memory must be back within 10% of where it was after a warm-up (600 valid and
1,000 hostile deliveries, so that first-use allocations are not taken for growth).
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import requests

from benchmarks.common import PYTHON, WORK, Proc, free_port, start, wait_http
from tests.support.hostile import (
    FORGES,
    Mutator,
    Sample,
    corpus,
    encoding_attacks,
    framing_attacks,
    headers_for,
)
from tests.support.services import postgres_database

SECRET = "chaos-secret"  # noqa: S105 - the run's own webhook secret
SEED = 18
MUTATED, ENCODING_ROUNDS, FRAMING_ROUNDS, SLOW_CLIENTS = 9000, 10, 12, 12
WARM_UP_HOSTILE = 1000  # hostile requests (not counted) before the memory is read
CLIENTS = 8


@dataclass
class FuzzResult:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    closed_without_answer: int = 0
    server_errors: list[str] = field(default_factory=list)  # what got a 5xx, to replay
    rss_warm_kib: int = 0
    rss_after_kib: int = 0
    rss_peak_kib: int = 0
    seconds: float = 0.0
    slow_clients_cut: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    @property
    def fivexx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def answer_status(sock: socket.socket) -> int | None:
    """The status code of the server's answer, or None when it closed without one."""
    data = b""
    try:
        while len(data) < 65536:
            if b"\r\n" in data and not data.startswith(b"HTTP/1.1 1"):
                break
            if data.startswith(b"HTTP/1.1 1") and b"\r\n\r\n" in data:  # 100 Continue: the answer follows
                data = data.split(b"\r\n\r\n", 1)[1]
                continue
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    parts = data.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1][:3].isdigit():
        return int(parts[1][:3])
    if b"Error code: " in data:  # an HTTP/0.9-style error page
        return int(data.split(b"Error code: ")[1][:3])
    return None


class Fuzzer:
    def __init__(self, url: str, host: str, port: int, samples: list[Sample]) -> None:
        self.url, self.host, self.port = url, host, port
        self.samples = samples
        self.result = FuzzResult()
        self.lock = threading.Lock()
        self.local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        session: requests.Session = self.local.session
        return session

    def record(self, kind: str, status: int | None, what: str) -> None:
        with self.lock:
            self.result.requests += 1
            self.result.kinds[kind] += 1
            if status is None:
                self.result.closed_without_answer += 1
                return
            self.result.statuses[status] += 1
            if status >= 500 and len(self.result.server_errors) < 50:
                self.result.server_errors.append(f"{status} {kind}: {what}")

    def post(self, kind: str, forge: str, body: bytes, event: str, what: str, content_type: str = "") -> None:
        headers = headers_for(forge, body, event, SECRET)
        if content_type:
            headers["Content-Type"] = content_type
        try:
            response = self.session().post(
                f"{self.url}/api/webhooks/{forge}", data=body, headers=headers, timeout=30
            )
            status: int | None = response.status_code
        except requests.RequestException:
            self.local.session = requests.Session()
            status = None
        self.record(kind, status, what)

    def mutated(self, i: int) -> None:
        rng = random.Random(SEED * 1_000_003 + i)
        sample = rng.choice(self.samples)
        body = Mutator(SEED * 7_919 + i).body(sample.payload)
        self.post(
            "structure-aware", sample.forge, body, sample.event, f"seed {i}, {sample.forge}/{sample.name}"
        )

    def encoded(self, round_: int) -> None:
        rng = random.Random(round_)
        for forge in FORGES:
            sample = rng.choice([s for s in self.samples if s.forge == forge])
            for what, body, content_type in encoding_attacks(rng, sample):
                self.post(
                    "encoding", forge, body, sample.event, f"{forge}/{sample.name}: {what}", content_type
                )

    def framed(self, round_: int) -> None:
        rng = random.Random(round_)
        for forge in FORGES:
            sample = rng.choice([s for s in self.samples if s.forge == forge])
            for what, raw in framing_attacks(forge, SECRET, sample):
                status = None
                try:
                    with socket.create_connection((self.host, self.port), timeout=30) as sock:
                        sock.sendall(raw)
                        sock.shutdown(socket.SHUT_WR)  # a client that sent what it had
                        status = answer_status(sock)
                except OSError:
                    pass
                self.record("framing", status, f"{forge}: {what}")

    def slow_client(self, stop: threading.Event) -> None:
        """Announces a body it never finishes, again and again: must be cut off, not served."""
        while not stop.is_set():
            try:
                with socket.create_connection((self.host, self.port), timeout=60) as sock:
                    sock.sendall(
                        b"POST /api/webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"
                    )
                    if answer_status(sock) in (408, None):
                        with self.lock:
                            self.result.slow_clients_cut += 1
            except OSError:
                stop.wait(0.5)


def warm_up(url: str, samples: list[Sample], count: int = 600) -> None:
    """Valid deliveries first: the server's memory is read once it has served real work."""
    session = requests.Session()
    for i in range(count):
        sample = samples[i % len(samples)]
        body = json.dumps(dict(sample.payload, warm_up=i)).encode()
        headers = headers_for(sample.forge, body, sample.event, SECRET)
        session.post(f"{url}/api/webhooks/{sample.forge}", data=body, headers=headers, timeout=30)


def run() -> FuzzResult:
    samples = corpus()
    if not samples:
        raise RuntimeError("the fuzz needs ../shared/fixtures")
    with ExitStack() as exits:
        database_url = exits.enter_context(postgres_database())
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEFLOW_")}
        env.update(
            FORGEFLOW_DATA_DIR=str(WORK / "fuzz-data"),
            FORGEFLOW_DATABASE_URL=database_url,
            FORGEFLOW_HOST="127.0.0.1",
            FORGEFLOW_PORT=str(port),
            FORGEFLOW_LOG_LEVEL="WARNING",
            **{f"FORGEFLOW_{forge.upper()}_WEBHOOK_SECRET": SECRET for forge in FORGES},
        )
        web: Proc = start("chaos-fuzz-web", [PYTHON, "-m", "service.cli", "web"], env)
        exits.callback(web.stop)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz")
        warm_up(url, samples)
        warm = Fuzzer(url, "127.0.0.1", port, samples)  # every code path once: first-use memory
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(warm.mutated, range(MUTATED, MUTATED + WARM_UP_HOSTILE)))
        fuzzer = Fuzzer(url, "127.0.0.1", port, samples)
        time.sleep(5)
        fuzzer.result.rss_warm_kib = web.rss_kib()
        stop_slow = threading.Event()
        slow = [
            threading.Thread(target=fuzzer.slow_client, args=(stop_slow,), daemon=True)
            for _ in range(SLOW_CLIENTS)
        ]
        peak = [0]

        def sample_rss() -> None:
            while not stop_slow.is_set():
                peak[0] = max(peak[0], web.rss_kib())
                stop_slow.wait(0.5)

        sampler = threading.Thread(target=sample_rss, daemon=True)
        started = time.monotonic()
        for thread in [*slow, sampler]:
            thread.start()
        with ThreadPoolExecutor(CLIENTS) as pool:
            jobs = [pool.submit(fuzzer.mutated, i) for i in range(MUTATED)]
            jobs += [pool.submit(fuzzer.encoded, r) for r in range(ENCODING_ROUNDS)]
            jobs += [pool.submit(fuzzer.framed, r) for r in range(FRAMING_ROUNDS)]
            for job in jobs:
                job.result()
        stop_slow.set()
        for thread in slow:
            thread.join(timeout=60)
        fuzzer.result.seconds = time.monotonic() - started
        fuzzer.result.rss_peak_kib = peak[0]
        time.sleep(5)  # let the server settle
        fuzzer.result.rss_after_kib = web.rss_kib()
        errors = Path(WORK / "chaos-fuzz-5xx.txt")
        errors.write_text("\n".join(fuzzer.result.server_errors) + "\n")
        return fuzzer.result
