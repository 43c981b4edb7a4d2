"""The production processes apart: ``forgeflow web`` (gunicorn), ``forgeflow worker`` and
``forgeflow watcher`` as separate OS processes sharing PostgreSQL and Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from service.cli.replay import signed_headers
from tests.conftest import WEBHOOK_SECRET
from tests.support import payloads
from tests.support.fake_github import FakeGitHub
from tests.support.gitrepo import GitRepo
from tests.support.services import postgres_database, redis_broker
from tests.support.stack import free_port

pytestmark = pytest.mark.slow

JOB_FILE = 'version: 1\njobs:\n  unit:\n    steps: [\'test "$(git rev-parse HEAD)" = "$FORGEFLOW_SHA"\']\n'


class Processes(str):
    """The web's URL, with the worker's and the watcher's health ports."""

    health: dict[str, int]


@pytest.fixture
def processes(tmp_path: Path, fake_github: FakeGitHub) -> Iterator[Processes]:
    with postgres_database() as database:
        port = free_port()
        health = {"worker": free_port(), "watcher": free_port()}
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEFLOW_")}
        env.update(
            FORGEFLOW_DATA_DIR=str(tmp_path / "data"),
            FORGEFLOW_DATABASE_URL=database,
            FORGEFLOW_BROKER_URL=redis_broker(),
            FORGEFLOW_PUBLIC_URL=f"http://127.0.0.1:{port}",
            FORGEFLOW_PORT=str(port),
            FORGEFLOW_GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET,
            FORGEFLOW_GITHUB_TOKEN="t0ken",
            FORGEFLOW_GITHUB_API_URL=fake_github.api_url,
            FORGEFLOW_WATCH_TIMEOUT_SECONDS="2",
            FORGEFLOW_LOG_LEVEL="WARNING",
        )
        subprocess.run([sys.executable, "-m", "service.cli", "migrate"], env=env, check=True, timeout=60)
        logs = [(tmp_path / f"{name}.log").open("w") for name in ("web", "worker", "watcher")]
        started = [
            subprocess.Popen(
                [sys.executable, "-m", "service.cli", *cmd],
                env={**env, "FORGEFLOW_HEALTH_PORT": str(health.get(cmd[0], 0))},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            for cmd, log in zip((["web", "--workers", "2"], ["worker"], ["watcher"]), logs, strict=True)
        ]
        try:
            url = Processes(f"http://127.0.0.1:{port}")
            url.health = health
            _wait_healthy(url)
            yield url
        finally:
            for process in started:
                process.terminate()
            for process in started:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for log in logs:
                log.close()


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise AssertionError("forgeflow web did not come up")


def _accepted(url: str) -> float:
    """forgeflow_deliveries_total for accepted GitHub pull requests, as /metrics says."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    wanted = 'forgeflow_deliveries_total{event="pull_request",forge="github",outcome="accepted"}'
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(wanted))


def test_separate_processes_run_a_pull_request(
    processes: Processes, fake_github: FakeGitHub, git_repo: GitRepo
):
    before = _accepted(processes)
    sha = git_repo.commit({".forgeflow.yaml": JOB_FILE})
    fake_github.add_repo("octo/hello", git_repo)
    body = json.dumps(payloads.pull_request("octo/hello", git_repo.url, sha)).encode()
    response = requests.post(
        f"{processes}/api/webhooks/github",
        data=body,
        headers=signed_headers("github", body, WEBHOOK_SECRET, "pull_request", "proc-1"),
        timeout=10,
    )
    assert response.status_code == 202, response.text
    assert fake_github.wait_final(["forgeflow/unit"], timeout=90) == {"forgeflow/unit": "success"}
    assert fake_github.statuses_for("forgeflow/unit")[0] == "pending"
    # gunicorn's two workers count in shared files: every scrape sees the delivery, whichever
    # worker took it and whichever answers
    assert [_accepted(processes) for _ in range(4)] == [before + 1] * 4
    assert requests.get(f"{processes}/livez", timeout=10).json()["ok"]
    for component, port in processes.health.items():
        live = requests.get(f"http://127.0.0.1:{port}/livez", timeout=10)
        assert live.status_code == 200 and live.json()["checks"] == {component: "ok"}
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert f'forgeflow_heartbeat_timestamp_seconds{{component="{component}"}}' in metrics
    watcher_metrics = requests.get(f"http://127.0.0.1:{processes.health['watcher']}/metrics", timeout=10).text
    assert 'forgeflow_runs{phase="succeeded"} 1.0' in watcher_metrics
    assert "forgeflow_watcher_resyncs_total" in watcher_metrics
