"""The local store: objects, resourceVersions, label selectors and watches (no runners)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.executors.base import ExecutorError, WorkflowRef
from service.executors.local.executor import LocalExecutor, LocalExecutorConfig
from service.executors.local.store import LocalStore


def workflow(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "forgeflow", **labels}},
        "spec": {"entrypoint": "main", "templates": []},
    }


@pytest.fixture
def executor(tmp_path: Path) -> LocalExecutor:
    return LocalExecutor(LocalExecutorConfig(data_dir=tmp_path / "data"))


def rv(obj: dict[str, Any] | None) -> int:
    assert obj is not None
    return int(obj["metadata"]["resourceVersion"])


def test_create_stores_argo_metadata_and_pending(executor: LocalExecutor) -> None:
    ref, created = executor.create(workflow("ff-1-a"))
    assert created and ref == WorkflowRef("forgeflow", "ff-1-a")
    obj = executor.get(ref)
    assert obj is not None
    meta = obj["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["resourceVersion"] == "1"
    assert obj["status"] == {"phase": "Pending"}
    assert "localStore" not in obj  # private bookkeeping stays in the file
    on_disk = json.loads(executor.store.object_path("forgeflow", "ff-1-a").read_text())
    assert on_disk["metadata"]["uid"] == meta["uid"]


def test_create_twice_returns_the_stored_object(executor: LocalExecutor) -> None:
    ref, _ = executor.create(workflow("ff-1-a"))
    uid = executor.get(ref)["metadata"]["uid"]  # type: ignore[index]
    again, created = executor.create(workflow("ff-1-a"))
    assert again == ref and not created
    assert executor.get(ref)["metadata"]["uid"] == uid  # type: ignore[index]


def test_resource_versions_increase_across_objects(executor: LocalExecutor) -> None:
    a, _ = executor.create(workflow("a"))
    b, _ = executor.create(workflow("b"))
    executor.annotate(a, {"forgeflow.dev/reported": "x"})
    assert rv(executor.get(b)) == 2 and rv(executor.get(a)) == 3
    obj = executor.get(a)
    assert obj is not None and obj["metadata"]["annotations"] == {"forgeflow.dev/reported": "x"}
    executor.annotate(a, {"other": "y"})
    obj = executor.get(a)
    assert obj is not None and obj["metadata"]["annotations"] == {"forgeflow.dev/reported": "x", "other": "y"}


def test_annotating_a_missing_workflow_is_an_error(executor: LocalExecutor) -> None:
    with pytest.raises(ExecutorError):
        executor.annotate(WorkflowRef("forgeflow", "nope"), {"a": "b"})


def test_names_must_be_kubernetes_names(executor: LocalExecutor) -> None:
    with pytest.raises(ExecutorError):
        executor.create(workflow("../escape"))
    with pytest.raises(ExecutorError):
        executor.create({"kind": "Pod"})


def test_generate_name(executor: LocalExecutor) -> None:
    manifest = workflow("x")
    manifest["metadata"] = {"generateName": "ff-"}
    ref, _ = executor.create(manifest)
    assert ref.name.startswith("ff-") and len(ref.name) == 8


def test_list_by_label_selector(executor: LocalExecutor) -> None:
    executor.create(workflow("r1", **{"forgeflow.dev/run": "1"}))
    executor.create(workflow("r2", **{"forgeflow.dev/run": "2", "forgeflow.dev/repo": "o-r"}))
    executor.create(workflow("other", **{"app.kubernetes.io/managed-by": "someone"}))

    def names(selector: str) -> list[str]:
        items, version = executor.list(selector)
        assert version == "3"
        return [i["metadata"]["name"] for i in items]

    assert names("forgeflow.dev/run=1") == ["r1"]
    assert names("app.kubernetes.io/managed-by=forgeflow") == ["r1", "r2"]
    assert names("app.kubernetes.io/managed-by=forgeflow,forgeflow.dev/run!=1") == ["r2"]
    assert names("forgeflow.dev/repo") == ["r2"]
    assert names("!forgeflow.dev/repo,forgeflow.dev/run") == ["r1"]
    assert names("") == ["other", "r1", "r2"]


def test_watch_reports_changes_after_a_version(executor: LocalExecutor) -> None:
    old, _ = executor.create(workflow("old", app="x"))
    executor.annotate(old, {"a": "1"})
    _, version = executor.list("app=x")
    new, _ = executor.create(workflow("new", app="x"))
    executor.annotate(old, {"a": "2"})
    executor.create(workflow("unrelated", app="y"))
    events = list(executor.watch("app=x", version, 0))
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [("ADDED", "new"), ("MODIFIED", "old")]
    assert all(int(e.resource_version) > int(version) for e in events)
    assert new.name == "new"


def test_watch_from_now_reports_nothing_old(executor: LocalExecutor) -> None:
    executor.create(workflow("a"))
    assert list(executor.watch("", "", 0)) == []


def test_watch_from_an_empty_lists_version_misses_nothing(executor: LocalExecutor) -> None:
    _, version = executor.list("")
    assert version == "0"
    executor.create(workflow("a"))  # between the list and the watch
    assert [e.type for e in executor.watch("", version, 0)] == ["ADDED"]


def test_watch_reports_deletions_and_label_changes(executor: LocalExecutor) -> None:
    a, _ = executor.create(workflow("a", phase="running"))
    b, _ = executor.create(workflow("b", phase="running"))
    _, version = executor.list("phase=running")
    assert executor.delete(a)
    assert executor.get(a) is None and not executor.store.workflow_dir("forgeflow", "a").exists()

    def relabel(raw: dict[str, Any]) -> None:
        raw["metadata"]["labels"]["phase"] = "done"

    executor.store.update("forgeflow", "b", relabel)
    events = list(executor.watch("phase=running", version, 0))
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [("DELETED", "a"), ("DELETED", "b")]
    assert not executor.delete(a)
    assert b.name == "b"


def test_recreating_after_delete_is_added_again(executor: LocalExecutor) -> None:
    a, _ = executor.create(workflow("a"))
    _, version = executor.list("")
    executor.delete(a)
    executor.create(workflow("a"))
    events = list(executor.watch("", version, 0))
    assert [e.type for e in events] == ["DELETED", "ADDED"]


def test_store_update_can_skip_writing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.create(workflow("a") | {"metadata": {"name": "a", "namespace": "ns"}})
    before = store.current_version()
    assert store.update("ns", "a", lambda raw: False) is not None
    assert store.current_version() == before
    assert store.update("ns", "missing", lambda raw: None) is None
