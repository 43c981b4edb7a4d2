"""forgeflow with ``executor=argo`` against an emulated cluster, for end-to-end tests.

``make_world()`` starts the Kubernetes API emulator, the emulated Argo controller
(:mod:`tests.argo_executor.controller`), and forgeflow's web + worker (``tests.support.stack``)
configured through a kubeconfig file that points at the emulator, with a fake GitHub. Watchers
are started separately (:class:`WatcherRunner`), so tests can stop, restart or double them.
The fixture lives in :mod:`tests.argo_executor.fixtures`: ``pytest_plugins =
["tests.k8s_emulator.fixtures", "tests.argo_executor.fixtures"]``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import requests
import yaml

from service.context import Context, build_context
from service.executors.factory import build_executor
from service.settings import Settings
from service.store.models import Run
from service.watcher import Watcher
from tests.argo_executor.controller import EmulatedController
from tests.conftest import WEBHOOK_SECRET
from tests.k8s_emulator import K8sEmulator
from tests.support import payloads
from tests.support.fake_github import FakeGitHub
from tests.support.gitrepo import GitRepo
from tests.support.stack import Stack

REPO = "octo/hello"
NAMESPACE, REPO_NAMESPACE, REPO_ACCOUNT = "ci", "ci-octo", "octo-runner"
CONTEXTS = ["forgeflow/passes", "forgeflow/fails", "forgeflow/after-passes"]
# `passes` waits for the test to open its commit's gate: a run stays "in the middle" on demand.
JOB_FILE = """\
version: 1
defaults: {timeout: 2m}
jobs:
  passes:
    on: [pull_request, push]
    env: {GATES: "%(gates)s"}
    steps:
      - name: wait for the test
        run: for i in $(seq 2400); do [ -e "$GATES/$FORGEFLOW_SHA" ] && exit 0; sleep 0.05; done; exit 9
      - name: the source is the event's commit
        run: test "$(git rev-parse HEAD)" = "$FORGEFLOW_SHA" && echo "checked out $FORGEFLOW_SHA"
  fails:
    on: [pull_request]
    steps:
      - {name: ok, run: "true"}
      - {name: broken, run: "exit 3"}
  after-passes:
    on: [pull_request]
    needs: [passes]
    steps: [{run: "echo after"}]
"""


def write_kubeconfig(path: Path, server: str) -> Path:
    cluster = {"name": "emulator", "cluster": {"server": server}}
    context = {"name": "emulator", "context": {"cluster": "emulator", "user": "forgeflow"}}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "forgeflow", "user": {"token": "emulated"}}],
        "contexts": [context],
        "current-context": "emulator",
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class WatcherRunner:
    """One watcher replica: its own context (database engine, API client) and thread."""

    def __init__(self, settings: Settings, *, watch_timeout: int = 1, max_backoff: float = 0.5) -> None:
        self.ctx: Context = build_context(settings, migrate=False, executor_factory=build_executor)
        self.watcher = Watcher(self.ctx, watch_timeout=watch_timeout, max_backoff=max_backoff)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.watcher.run, args=(self.stopping,), daemon=True)

    def start(self) -> WatcherRunner:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=self.watcher.watch_timeout + 30)
        assert not self.thread.is_alive(), "the watcher did not stop"
        self.ctx.close()


class World:
    """One emulated cluster with forgeflow's web and worker in front; watchers on demand."""

    def __init__(
        self,
        k8s: K8sEmulator,
        stack: Stack,
        controller: EmulatedController,
        github: FakeGitHub,
        repo: GitRepo,
        gates: Path,
        exits: ExitStack,
    ) -> None:
        self.k8s, self.stack, self.controller = k8s, stack, controller
        self.github, self.repo, self.gates, self.exits = github, repo, gates, exits
        self.watchers: list[WatcherRunner] = []
        exits.callback(self.stop_watchers)

    def watcher(self, **options: Any) -> WatcherRunner:
        runner = WatcherRunner(self.stack.settings, **options).start()
        self.watchers.append(runner)
        return runner

    def stop_watchers(self) -> None:
        running = [w for w in self.watchers if not w.stopping.is_set()]
        for runner in running:
            runner.stopping.set()  # all at once: each ends its current watch (≤ 1 s)
        for runner in running:
            runner.stop()

    def commit(self, version: str, branch: str = "feature") -> str:
        files = {".forgeflow.yaml": JOB_FILE % {"gates": self.gates}, "VERSION": version}
        return self.repo.commit(files, f"version {version}", branch=branch)

    def open_gate(self, sha: str) -> None:
        (self.gates / sha).touch()

    def pull_request(self, sha: str, action: str = "opened", number: int = 7) -> requests.Response:
        payload = payloads.pull_request(REPO, self.repo.url, sha, number=number, action=action)
        response = self.stack.post("github", payload, "pull_request", secret=WEBHOOK_SECRET)
        assert response.status_code == 202, response.text
        return response

    def run_id(self, sha: str, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.stack.ctx.db.session() as session:
                found = session.query(Run.id).filter(Run.sha == sha).order_by(Run.id).first()
            if found:
                return int(found[0])
            time.sleep(0.05)
        raise AssertionError(f"no run for {sha[:7]} in {timeout}s")

    def posts(self, sha: str | None = None) -> Counter[tuple[str, str, str]]:
        with self.github.lock:
            return Counter(
                (s.context, s.state, s.description)
                for s in self.github.statuses
                if sha is None or s.sha == sha
            )

    def states(self, sha: str, context: str) -> list[str]:
        with self.github.lock:
            return [s.state for s in self.github.statuses if s.sha == sha and s.context == context]

    def wait_posted(self, sha: str, context: str, state: str, description: str = "", timeout: float = 60):
        def seen() -> bool:
            return any(
                s.sha == sha and s.context == context and s.state == state and description in s.description
                for s in self.github.statuses
            )

        assert self.github.wait_for(seen, timeout), f"no {context} {state} {description!r}: {self.posts()}"

    def wait_final(self, sha: str, contexts: list[str], timeout: float = 60) -> dict[str, tuple[str, str]]:
        final = {"success", "failure", "error"}

        def latest() -> dict[str, tuple[str, str]]:
            return {s.context: (s.state, s.description) for s in self.github.statuses if s.sha == sha}

        def done() -> bool:
            return all(latest().get(c, ("", ""))[0] in final for c in contexts)

        assert self.github.wait_for(done, timeout), f"not final in {timeout}s: {self.posts(sha)}"
        with self.github.lock:
            return latest()

    def wait_workflow_phase(self, namespace: str, name: str, phases: set[str], timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            obj = self.k8s.get(namespace, name)
            if obj and (obj.get("status") or {}).get("phase") in phases:
                return obj
            time.sleep(0.05)
        raise AssertionError(f"workflow {namespace}/{name} not in {phases}: {self.k8s.get(namespace, name)}")

    def assert_each_posted_once(self) -> None:
        with self.github.lock:
            posted = Counter((s.sha[:7], s.context, s.state, s.description) for s in self.github.statuses)
        repeated = {key: n for key, n in posted.items() if n > 1}
        assert not repeated, f"posted more than once: {repeated}"
