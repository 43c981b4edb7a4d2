"""``make profile``: where the time goes on the hot paths, with pyinstrument, in one process.

- ingest: the web app (Flask test client, no HTTP server) storing signed 25 KiB pull_request
  deliveries in PostgreSQL;
- worker: the task that turns a stored delivery of a 5-job pull request into statuses and a
  submitted Workflow;
- compile: a 1,000-instance run from job file to validated Workflow.

Writes ``benchmarks/.work/profile-<name>.txt`` and prints the top of each; ``python -m
benchmarks.profile worker`` profiles only the named ones.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack

from pyinstrument import Profiler
from sqlalchemy import select

from benchmarks import compile as compile_bench
from benchmarks.common import WORK
from benchmarks.ingest import SECRET, body_25k
from benchmarks.pipeline import database
from service.cli.replay import signed_headers


def profile(name: str, setup: Callable[[], Callable[[], object]], repeat: int) -> str:
    action = setup()
    action()  # warm-up
    profiler = Profiler(interval=0.0002)
    wall, cpu = time.perf_counter(), time.process_time()
    profiler.start()
    for _ in range(repeat):
        action()
    profiler.stop()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    each = f"{wall / repeat * 1000:.2f} ms wall and {cpu / repeat * 1000:.2f} ms CPU each"
    text = f"{name}: {repeat} calls, {each}"
    text += " (profiled: slower than without)\n" + profiler.output_text(
        unicode=True, color=False, show_all=False
    )
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / f"profile-{name}.txt").write_text(text, encoding="utf-8")
    return text


def ingest_action(database_url: str) -> Callable[[], Callable[[], object]]:
    def setup() -> Callable[[], object]:
        from service.context import build_context
        from service.settings import Settings
        from service.web.app import create_app

        settings = Settings(
            data_dir=WORK / "profile-data",
            database_url=database_url,
            github_webhook_secret=SECRET,
            log_level="WARNING",
        )
        client = create_app(build_context(settings)).test_client()
        body = body_25k()
        counter = iter(range(10**9))

        def post() -> object:
            headers = signed_headers("github", body, SECRET, "pull_request", f"profile-{next(counter)}")
            response = client.post("/api/webhooks/github", data=body, headers=headers)
            assert response.status_code == 202, response.text
            return response

        return post

    return setup


def worker_action(database_url: str, exits: ExitStack) -> Callable[[], Callable[[], object]]:
    """The worker's task on stored pull_request deliveries: the job file from a fake GitHub,
    plan, compile, statuses, submission to the Kubernetes API emulator (all in this process)."""

    def setup() -> Callable[[], object]:
        from pytest_httpserver import HTTPServer

        from benchmarks.pipeline import NAMESPACE, REPO, sha_of
        from benchmarks.worker_cost import TARGET_SIZE, SizedRepo
        from service.context import build_context
        from service.settings import Settings
        from service.store.models import Delivery
        from service.web.app import create_app
        from service.worker import process_delivery
        from tests.argo_executor.world import write_kubeconfig
        from tests.k8s_emulator import K8sEmulator
        from tests.support import payloads
        from tests.support.fake_github import FakeGitHub

        k8s = exits.enter_context(K8sEmulator(record_requests=False))
        server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        server.start()
        exits.callback(server.stop)
        github = FakeGitHub(server)
        count = 600
        shas = [sha_of(i, "profile") for i in range(count)]
        repo = SizedRepo()
        repo.jobs = dict.fromkeys(shas, TARGET_SIZE)
        github.add_repo(REPO, repo)  # type: ignore[arg-type]
        WORK.mkdir(parents=True, exist_ok=True)
        settings = Settings(
            data_dir=WORK / "profile-worker",
            database_url=database_url,
            github_webhook_secret=SECRET,
            github_token="profile-token",  # noqa: S106 - the fake forge takes any
            github_api_url=github.api_url,
            executor="argo",
            kubeconfig=str(write_kubeconfig(WORK / "profile-kubeconfig", k8s.url)),
            namespace=NAMESPACE,
            log_level="WARNING",
        )
        from service.executors.factory import build_executor

        ctx = build_context(settings, executor_factory=build_executor)
        from service.argo.models import argo_models

        ctx.warm_up(argo_models)
        client = create_app(ctx).test_client()
        for i, sha in enumerate(shas):
            body = json.dumps(payloads.pull_request(REPO, "https://github.com/octo/hello.git", sha, i + 1))
            headers = signed_headers("github", body.encode(), SECRET, "pull_request", f"worker-{i}")
            assert client.post("/api/webhooks/github", data=body, headers=headers).status_code == 202
        with ctx.db.session() as session:
            query = select(Delivery.id).where(Delivery.delivery_id.like("worker-%")).order_by(Delivery.id)
            pks = iter(session.scalars(query).all())

        def process() -> object:
            return process_delivery(ctx, next(pks))

        return process

    return setup


def main(argv: list[str] | None = None) -> int:
    names = set((sys.argv[1:] if argv is None else argv) or ("ingest", "worker", "compile"))
    texts: dict[str, str] = {}
    with ExitStack() as exits:
        database_url = exits.enter_context(database())
        if "ingest" in names:
            texts["ingest"] = profile("ingest", ingest_action(database_url), 500)
        if "worker" in names:
            texts["worker"] = profile("worker", worker_action(database_url, exits), 500)
    if "compile" in names:
        texts["compile"] = profile("compile", lambda: lambda: compile_bench.measure_once(1000), 5)
    for name, text in texts.items():
        print(f"===== {name} (full: benchmarks/.work/profile-{name}.txt)")
        print("\n".join(text.splitlines()[:60]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
