"""Job logs on Argo: Argo's pod names, the ``main`` container's log, retries, the archive."""

from __future__ import annotations

from typing import Any

from service.argo.names import fnv32a, node_id
from service.executors.argo.executor import ArgoExecutor
from service.executors.argo.logs import MAX_ARCHIVED_CHARS, clip, pod_name
from service.executors.base import WorkflowRef
from tests.argo_executor.conftest import workflow
from tests.k8s_emulator import K8sEmulator

WF = "forgeflow-7-abc1234"
REF = WorkflowRef("ci", WF)

pytest_plugins = ["tests.k8s_emulator.fixtures"]


def pod_node(task: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    node_name = name or f"{WF}.{task}"
    return {
        "id": node_id(WF, node_name),
        "name": node_name,
        "displayName": node_name[len(WF) + 1 :],
        "type": "Pod",
        "templateName": task,
        "phase": "Succeeded",
        "startedAt": "2026-01-01T00:00:00Z",
        **extra,
    }


def submit_with_nodes(k8s: K8sEmulator, executor: ArgoExecutor, *nodes: dict, annotations=None) -> None:
    manifest = workflow(WF, run="7")
    if annotations:
        manifest["metadata"]["annotations"] = annotations
    executor.submit(manifest)
    k8s.patch_status("ci", WF, {"phase": "Running", "nodes": {n["id"]: n for n in nodes}})


def test_pod_names_follow_argo():
    assert fnv32a("a") == 0xE40C292C  # the published FNV-1a 32-bit test vector
    node = pod_node("build")
    assert pod_name(WF, node, "v2") == f"{WF}-build-{fnv32a(WF + '.build')}"
    assert pod_name(WF, node, "v1") == node["id"] == f"{WF}-{fnv32a(WF + '.build')}"
    assert pod_name(WF, {**node, "name": WF}, "v2") == WF  # a single-pod workflow
    ref_node = {**node, "templateName": "", "templateRef": {"name": "lib", "template": "release"}}
    assert pod_name(WF, ref_node, "v2") == f"{WF}-release-{fnv32a(WF + '.build')}"
    long = pod_name("w" * 200, {**node, "templateName": "t" * 100}, "v2")
    assert long.startswith("w" * 200 + "-" + "t" * 41 + "-") and len(long) == 242 + 1 + 10


def test_logs_read_the_main_container_of_the_tasks_pod(k8s_emulator: K8sEmulator, executor: ArgoExecutor):
    build, lint = pod_node("build"), pod_node("lint")
    submit_with_nodes(k8s_emulator, executor, build, lint)
    k8s_emulator.set_pod_log("ci", pod_name(WF, build, "v2"), "==> make\nok\n")
    k8s_emulator.set_pod_log("ci", pod_name(WF, build, "v2"), "waiting...\n", container="wait")

    assert executor.logs(REF, "build") == "==> make\nok\n"
    assert executor.logs(REF, "lint") is None  # its pod is gone (or never was)
    assert executor.logs(REF, "nope") is None
    assert executor.logs(WorkflowRef("ci", "missing"), "build") is None
    reads = [r for r in k8s_emulator.requests if r.path.endswith("/log")]
    assert {r.query.get("container") for r in reads} == {"main"}


def test_v1_pod_names_are_found_by_annotation_or_fallback(k8s_emulator: K8sEmulator, executor: ArgoExecutor):
    build = pod_node("build")
    submit_with_nodes(
        k8s_emulator, executor, build, annotations={"workflows.argoproj.io/pod-name-format": "v1"}
    )
    k8s_emulator.set_pod_log("ci", build["id"], "v1 named\n")
    assert executor.logs(REF, "build") == "v1 named\n"
    k8s_emulator.clear_requests()
    k8s_emulator.patch(
        "ci", WF, {"metadata": {"annotations": {"workflows.argoproj.io/pod-name-format": None}}}
    )
    assert executor.logs(REF, "build") == "v1 named\n"  # v2 first (404), then v1
    assert [r.status for r in k8s_emulator.requests if r.path.endswith("/log")] == [404, 200]


def test_a_retried_task_joins_its_attempts_logs(k8s_emulator: K8sEmulator, executor: ArgoExecutor):
    retry = {**pod_node("test"), "type": "Retry", "phase": "Failed"}
    first = pod_node("test", f"{WF}.test(0)", phase="Failed", startedAt="2026-01-01T00:00:01Z")
    second = pod_node("test", f"{WF}.test(1)", phase="Failed", startedAt="2026-01-01T00:00:09Z")
    submit_with_nodes(k8s_emulator, executor, retry, second, first)
    k8s_emulator.set_pod_log("ci", pod_name(WF, first, "v2"), "attempt one\n")
    k8s_emulator.set_pod_log("ci", pod_name(WF, second, "v2"), "attempt two")

    assert executor.logs(REF, "test") == (
        "attempt one\n----- forgeflow: retry 1 (test(1)) -----\nattempt two\n"
    )


def test_an_archived_log_outlives_the_pod(k8s_emulator: K8sEmulator, executor: ArgoExecutor):
    build = pod_node("build")
    submit_with_nodes(k8s_emulator, executor, build)
    pod = pod_name(WF, build, "v2")
    k8s_emulator.set_pod_log("ci", pod, "the whole story\n")

    assert executor.archive_log(REF, "build") is True
    assert executor.archive_log(REF, "lint") is False  # no pod: nothing to keep
    k8s_emulator.delete("ci", pod, "pods")  # podGC OnWorkflowCompletion
    k8s_emulator.delete("ci", WF)  # ttlStrategy

    assert executor.logs(REF, "build") == "the whole story\n"
    assert executor.logs(REF, "lint") is None


def test_a_huge_log_keeps_its_end():
    text = "x" * MAX_ARCHIVED_CHARS + "the failure\n"
    kept = clip(text)
    assert kept.endswith("the failure\n") and len(kept) < MAX_ARCHIVED_CHARS + 200
    assert kept.startswith("(forgeflow kept the last")
    assert clip("short\n") == "short\n"
