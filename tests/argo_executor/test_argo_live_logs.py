"""Running jobs' logs on Argo reach the run pages: the watcher copies them into the database
(the web tier holds no Kubernetes token), a late copy never shortens a finished job's log."""

from __future__ import annotations

from service.context import Context
from service.executors.argo.executor import ArgoExecutor
from service.executors.argo.logs import DatabaseLogArchive, pod_name
from service.forges.registry import ForgeRegistry
from service.store.db import Database
from service.watcher import Watcher
from service.web.app import create_app
from tests.argo_executor.test_argo_logs import REF, WF, pod_node, submit_with_nodes
from tests.k8s_emulator import K8sEmulator
from tests.support.runs import add_run

pytest_plugins = ["tests.k8s_emulator.fixtures"]


def test_the_watcher_copies_running_logs_and_the_page_reads_them(
    k8s_emulator: K8sEmulator, executor: ArgoExecutor, database: Database, make_settings
):
    settings = make_settings(executor="argo", database_url=database.url)
    ctx = Context(settings, database, ForgeRegistry(settings, database), executor_factory=lambda _: executor)
    running = (("build", "build", "running"),)
    run_id = add_run(ctx, workflow=WF, namespace="ci", executor="argo", phase="running", jobs=running)
    build = pod_node("build", phase="Running")
    submit_with_nodes(k8s_emulator, executor, build)
    pod = pod_name(WF, build, "v2")
    archive = DatabaseLogArchive(database)
    watcher = Watcher(ctx, report_threads=0)

    k8s_emulator.set_pod_log("ci", pod, "==> make\nline 1\n")
    assert watcher.copy_running_logs() == 1
    assert archive.get("ci", WF, "build") == "==> make\nline 1\n"
    k8s_emulator.set_pod_log("ci", pod, "==> make\nline 1\nline 2\n")
    watcher.copy_running_logs()
    page = create_app(ctx).test_client().get(f"/api/runs/{run_id}/jobs/build/log")
    assert page.status_code == 200 and page.json["text"] == "==> make\nline 1\nline 2\n"

    k8s_emulator.set_pod_log("ci", pod, "==> make\nline 1\nline 2\ndone\n")
    assert executor.archive_log(REF, "build")  # the job ended: its whole log
    k8s_emulator.set_pod_log("ci", pod, "==> make\n")  # a copy that started before, late
    assert executor.archive_log(REF, "build", grow_only=True)
    assert archive.get("ci", WF, "build") == "==> make\nline 1\nline 2\ndone\n"
