"""Slow and broken clients against the real servers (gunicorn, werkzeug's): none holds a thread.

A client that announces more body than it sends, sends its headers a byte at a time, or
trickles its body, is cut off once its request is late (``request_read_timeout_seconds``, plus
the announced body at ``request_min_bytes_per_second``); meanwhile, and afterwards, other
deliveries are answered. Before issue 18 such clients held a server thread each until they
gave up, so a handful of them stopped the web tier.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from service.cli.processes import WebThread, make_wsgi_app
from service.cli.replay import signed_headers
from service.context import build_context
from service.settings import load_settings
from tests.conftest import WEBHOOK_SECRET
from tests.support import payloads
from tests.support.stack import free_port

PUSH = payloads.push("octo/hello", "https://github.com/octo/hello.git", "a" * 40)
THREADS = 2  # gunicorn's threads: a few more slow clients than this must not stop it
LIMITS = {"request_read_timeout_seconds": "1", "request_min_bytes_per_second": "1024"}


@contextmanager
def dev_server(tmp_path: Path) -> Iterator[int]:
    settings = load_settings(
        environ={},
        overrides={"data_dir": tmp_path / "werkzeug", "github_webhook_secret": WEBHOOK_SECRET, **LIMITS},
    )
    ctx = build_context(settings)
    port = free_port()
    web = WebThread(make_wsgi_app(ctx), "127.0.0.1", port).start()
    try:
        yield port
    finally:
        web.stop()
        ctx.close()


@contextmanager
def gunicorn(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "FORGEFLOW_DATA_DIR": str(tmp_path / "gunicorn"),
            "FORGEFLOW_GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "FORGEFLOW_LOG_LEVEL": "WARNING",
            **{f"FORGEFLOW_{key.upper()}": value for key, value in LIMITS.items()},
        }
    )
    env.pop("FORGEFLOW_CONFIG", None)
    env.pop("FORGEFLOW_DATABASE_URL", None)
    command = [sys.executable, "-m", "service.cli", "web", "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--workers", "1", "--threads", str(THREADS)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=output,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"gunicorn did not start: {log.read_text()}") from None
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(params=["werkzeug", "gunicorn"], scope="module")
def server(request, tmp_path_factory) -> Iterator[int]:
    tmp_path = tmp_path_factory.mktemp("slow-clients")
    with dev_server(tmp_path) if request.param == "werkzeug" else gunicorn(tmp_path) as port:
        yield port


def raw_request(body: bytes, *, length: int | None = None, delivery: str = "slow") -> bytes:
    headers = signed_headers("github", body, WEBHOOK_SECRET, "push", delivery)
    headers["Content-Length"] = str(len(body) if length is None else length)
    head = "POST /api/webhooks/github HTTP/1.1\r\nHost: forgeflow\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return head.encode() + b"\r\n" + body


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    return sock


def answer_of(sock: socket.socket) -> bytes:
    """What the server answered before closing (b"" when it only closed)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and b"Content-Length" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                size = int(head.split(b"Content-Length:")[1].split(b"\r\n")[0])
                if len(rest) >= size:
                    break
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def assert_4xx_or_closed(answer: bytes) -> None:
    """Closed without a word, or a 4xx (werkzeug answers a cut request line HTTP/0.9-style)."""
    if answer:
        found = re.search(rb"(?:^HTTP/1\.[01] |Error code: )(\d{3})", answer)
        assert found is not None and found.group(1)[:1] == b"4", answer[:300]


def deliver(port: int, delivery: str) -> requests.Response:
    delivery = f"{delivery}-{uuid.uuid4()}"
    body = json.dumps(dict(PUSH, after=uuid.uuid4().hex + "0" * 8)).encode()
    headers = signed_headers("github", body, WEBHOOK_SECRET, "push", delivery)
    url = f"http://127.0.0.1:{port}/api/webhooks/github"
    return requests.post(url, data=body, headers=headers, timeout=30)


def test_clients_announcing_more_body_than_they_send_hold_no_thread(server):
    port = server
    body = json.dumps(PUSH).encode()
    slow = []
    for i in range(THREADS + 2):
        sock = connect(port)
        sock.sendall(raw_request(body, length=len(body) + 100, delivery=f"slow-{i}"))
        slow.append(sock)
    response = deliver(port, "prompt-1")  # answered although every thread had a slow client
    assert response.status_code == 202, response.text
    for sock in slow:
        answer = answer_of(sock)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
        sock.close()
    assert deliver(port, "prompt-2").status_code == 202


def test_headers_sent_a_byte_at_a_time_are_cut_off(server):
    port = server
    request = raw_request(json.dumps(PUSH).encode())
    sock = connect(port)
    sent = 0
    started = time.monotonic()
    try:
        while sent < len(request) and time.monotonic() - started < 25:
            sock.sendall(request[sent : sent + 1])
            sent += 1
            time.sleep(0.05)
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = answer_of(sock)
    sock.close()
    assert sent < len(request), "the server waited for the whole trickle"
    assert_4xx_or_closed(answer)
    assert deliver(port, "after-trickle").status_code == 202


def test_a_body_trickled_slower_than_the_minimum_rate_is_408(server):
    port = server
    body = json.dumps(dict(PUSH, padding="x" * 500)).encode()
    request = raw_request(body)
    head, _, rest = request.partition(b"\r\n\r\n")
    sock = connect(port)
    sock.sendall(head + b"\r\n\r\n")
    sent = 0
    started = time.monotonic()
    try:
        while sent < len(rest) and time.monotonic() - started < 25:
            sock.sendall(rest[sent : sent + 10])
            sent += 10
            time.sleep(0.1)  # 100 bytes a second: the minimum is 1024
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = answer_of(sock)
    sock.close()
    assert sent < len(rest)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",  # not a chunk size
        b"5\r\nabc",  # the connection ends inside a chunk (the client half-closes)
        b"3\r\nabcdef\r\n0\r\n\r\n",  # longer than its size
        b"-3\r\nabc\r\n0\r\n\r\n",
        b"ffffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    ],
)
def test_a_broken_chunked_body_is_4xx(server, chunks):
    port = server
    headers = signed_headers("github", b"{}", WEBHOOK_SECRET, "push", "chunky")
    head = "POST /api/webhooks/github HTTP/1.1\r\nHost: forgeflow\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    sock = connect(port)
    sock.sendall(head.encode() + b"\r\n" + chunks)
    sock.shutdown(socket.SHUT_WR)
    answer = answer_of(sock)
    sock.close()
    assert_4xx_or_closed(answer)
    assert deliver(port, "after-chunks").status_code == 202


def test_a_post_without_length_is_411(server):
    port = server
    headers = signed_headers("github", b"{}", WEBHOOK_SECRET, "push", "nolength")
    head = "POST /api/webhooks/github HTTP/1.1\r\nHost: forgeflow\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    sock = connect(port)
    sock.sendall(head.encode() + b"\r\n")
    answer = answer_of(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 411"), answer[:300]


@pytest.mark.parametrize("coding", ["bogus", "gzip, chunked", "chunked, identity"])
def test_a_transfer_coding_the_server_does_not_know_is_4xx(server, coding):
    """gunicorn answers 501 for these (RFC 9112 allows it); forgeflow never answers 5xx to input."""
    port = server
    headers = signed_headers("github", b"{}", WEBHOOK_SECRET, "push", "coding")
    head = f"POST /api/webhooks/github HTTP/1.1\r\nHost: forgeflow\r\nTransfer-Encoding: {coding}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    sock = connect(port)
    sock.sendall(head.encode() + b"\r\n0\r\n\r\n")
    sock.shutdown(socket.SHUT_WR)
    answer = answer_of(sock)
    sock.close()
    assert_4xx_or_closed(answer)
