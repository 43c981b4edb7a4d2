"""The argo executor against the Kubernetes API emulator, through the official client over HTTP:
submit, get, stop, annotate, error mapping and configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from service.executors.argo.executor import ArgoExecutor, load_configuration, watched_namespaces
from service.executors.base import (
    ExecutorError,
    ResourceVersionExpired,
    TransientExecutorError,
    WorkflowRef,
)
from service.settings import load_settings
from tests.argo_executor.conftest import workflow
from tests.k8s_emulator import K8sEmulator

REF = WorkflowRef("ci", "wf-1")

pytest_plugins = ["tests.k8s_emulator.fixtures"]


def calls(k8s: K8sEmulator) -> list[tuple[str, int]]:
    return [(r.method, r.status) for r in k8s.requests]


# -- submit ----------------------------------------------------------------------------------------


def test_a_repeated_submit_is_409_and_leaves_one_workflow(k8s_emulator: K8sEmulator, executor: ArgoExecutor):
    first = executor.submit(workflow("wf-1"))
    again = executor.submit(workflow("wf-1"))

    assert first == again == REF
    assert [o["metadata"]["name"] for o in k8s_emulator.objects()] == ["wf-1"]
    assert calls(k8s_emulator)[:2] == [("POST", 201), ("POST", 409)]


def test_409_from_another_run_is_an_error(k8s_emulator: K8sEmulator, executor: ArgoExecutor):
    k8s_emulator.create(workflow("wf-1", run="99"))
    with pytest.raises(ExecutorError, match="belongs to another run") as caught:
        executor.submit(workflow("wf-1", run="1"))
    assert not isinstance(caught.value, TransientExecutorError)


def test_submit_goes_to_the_manifests_namespace_or_the_default(
    k8s_emulator: K8sEmulator, executor: ArgoExecutor
):
    executor.submit(workflow("in-octo", namespace="ci-octo"))
    unnamed = workflow("no-namespace")
    del unnamed["metadata"]["namespace"]
    assert executor.submit(unnamed) == WorkflowRef("ci", "no-namespace")
    assert k8s_emulator.get("ci-octo", "in-octo") is not None
    assert executor.get(WorkflowRef("ci-octo", "in-octo"))["spec"]["entrypoint"] == "main"
    assert executor.get(WorkflowRef("ci", "missing")) is None


@pytest.mark.parametrize("manifest", [{"kind": "Pod"}, {**workflow("x"), "apiVersion": "v1"}])
def test_what_is_not_a_workflow_is_refused_before_any_request(
    k8s_emulator: K8sEmulator, executor: ArgoExecutor, manifest: dict
):
    with pytest.raises(ExecutorError):
        executor.submit(manifest)
    assert k8s_emulator.requests == []


# -- error mapping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (403, ExecutorError),
        (422, ExecutorError),
        (400, ExecutorError),
        (429, TransientExecutorError),
        (500, TransientExecutorError),
        (503, TransientExecutorError),
        (504, TransientExecutorError),
        (410, ResourceVersionExpired),
    ],
)
def test_api_errors_are_sorted_by_status(
    k8s_emulator: K8sEmulator, executor: ArgoExecutor, status: int, kind: type
):
    message = f'workflows.argoproj.io is forbidden: User "x" cannot create ({status})'
    k8s_emulator.fail_next(status, method="POST", message=message)
    with pytest.raises(ExecutorError) as caught:
        executor.submit(workflow("wf-1"))
    assert type(caught.value) is kind
    assert message in str(caught.value)  # the API's own words reach the operator
    assert k8s_emulator.objects() == []


def test_a_429_keeps_its_retry_after_for_the_task_backoff(k8s_emulator: K8sEmulator, executor: ArgoExecutor):
    k8s_emulator.fail_next(429, method="POST", retry_after=7)
    with pytest.raises(TransientExecutorError) as caught:
        executor.submit(workflow("wf-1"))
    assert caught.value.retry_after == 7  # type: ignore[attr-defined]


def test_an_unreachable_api_is_transient(make_k8s_emulator):
    k8s = make_k8s_emulator()
    executor = ArgoExecutor(k8s.api_client(), ["ci"], request_timeout=5)
    k8s.stop()
    with pytest.raises(TransientExecutorError, match="unreachable"):
        executor.submit(workflow("wf-1"))
    with pytest.raises(TransientExecutorError):
        executor.list("a=b")


def test_get_and_list_map_errors_too(k8s_emulator: K8sEmulator, executor: ArgoExecutor):
    k8s_emulator.fail_next(403, method="GET")
    with pytest.raises(ExecutorError, match="403") as caught:
        executor.get(REF)
    assert not isinstance(caught.value, TransientExecutorError)
    k8s_emulator.fail_next(500, method="GET")
    with pytest.raises(TransientExecutorError):
        executor.list("app.kubernetes.io/managed-by=forgeflow")


# -- stop, annotate ------------------------------------------------------------------------------


def test_stop_sets_spec_shutdown_with_a_merge_patch(k8s_emulator: K8sEmulator, executor: ArgoExecutor):
    executor.submit(workflow("wf-1"))
    k8s_emulator.patch_status("ci", "wf-1", {"phase": "Running"})
    k8s_emulator.clear_requests()

    executor.stop(REF, "superseded by abc1234")

    obj = k8s_emulator.get("ci", "wf-1")
    assert obj["spec"]["shutdown"] == "Terminate"
    assert obj["spec"]["entrypoint"] == "main"  # merged, not replaced
    assert obj["metadata"]["annotations"]["forgeflow.dev/stop-message"] == "superseded by abc1234"
    patch = [r for r in k8s_emulator.requests if r.method == "PATCH"]
    assert len(patch) == 1
    assert patch[0].body == {
        "metadata": {"annotations": {"forgeflow.dev/stop-message": "superseded by abc1234"}},
        "spec": {"shutdown": "Terminate"},
    }


def test_stop_of_a_finished_or_missing_workflow_changes_nothing(
    k8s_emulator: K8sEmulator, executor: ArgoExecutor
):
    executor.submit(workflow("wf-1"))
    k8s_emulator.patch_status("ci", "wf-1", {"phase": "Succeeded"})
    k8s_emulator.clear_requests()

    executor.stop(REF, "too late")
    executor.stop(WorkflowRef("ci", "gone"), "never existed")

    assert "shutdown" not in k8s_emulator.get("ci", "wf-1")["spec"]
    assert all(r.method == "GET" for r in k8s_emulator.requests)


def test_annotate_merges_annotations(k8s_emulator: K8sEmulator, executor: ArgoExecutor):
    manifest = workflow("wf-1")
    manifest["metadata"]["annotations"] = {"keep": "me"}
    executor.submit(manifest)
    executor.annotate(REF, {"forgeflow.dev/reported": json.dumps({"build": "success"})})

    annotations = k8s_emulator.get("ci", "wf-1")["metadata"]["annotations"]
    assert annotations == {"keep": "me", "forgeflow.dev/reported": '{"build": "success"}'}
    with pytest.raises(ExecutorError, match="404"):
        executor.annotate(WorkflowRef("ci", "gone"), {"a": "b"})


# -- configuration ---------------------------------------------------------------------------------


def kubeconfig(path: Path, server: str, namespace: str = "ci") -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulator", "cluster": {"server": server}}],
                "users": [{"name": "forgeflow", "user": {"token": "not-checked"}}],
                "contexts": [
                    {
                        "name": "emulator",
                        "context": {"cluster": "emulator", "user": "forgeflow", "namespace": namespace},
                    }
                ],
                "current-context": "emulator",
            }
        )
    )
    return path


def test_from_settings_reads_the_kubeconfig_and_watches_every_namespace(
    k8s_emulator: K8sEmulator, tmp_path: Path
):
    settings = load_settings(
        environ={
            "FORGEFLOW_KUBECONFIG": str(kubeconfig(tmp_path / "kubeconfig", k8s_emulator.url)),
            "FORGEFLOW_EXECUTOR": "argo",
            "FORGEFLOW_NAMESPACE": "ci",
            "FORGEFLOW_DATA_DIR": str(tmp_path / "data"),
            "FORGEFLOW_REPOSITORIES": '[{match: "octo/*", namespace: ci-octo}, {match: "x/*"}]',
        }
    )
    assert watched_namespaces(settings) == ("ci", "ci-octo")
    executor = ArgoExecutor.from_settings(settings)
    try:
        executor.submit(workflow("wf-1", namespace="ci-octo"))
        items, cursor = executor.list("forgeflow.dev/run=1")
    finally:
        executor.close()
    assert [i["metadata"]["name"] for i in items] == ["wf-1"]
    assert cursor == f"ci={k8s_emulator.resource_version},ci-octo={k8s_emulator.resource_version}"


def test_a_missing_configuration_says_where_it_looked(tmp_path: Path):
    with pytest.raises(ExecutorError, match="no usable Kubernetes configuration"):
        load_configuration(str(tmp_path / "nonexistent"))
