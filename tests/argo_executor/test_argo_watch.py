"""Listing and watching across namespaces: one cursor, resumable, 410 and faults surfaced."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from service.executors.argo.executor import ArgoExecutor
from service.executors.argo.watch import decode_cursor, encode_cursor
from service.executors.base import ResourceVersionExpired, TransientExecutorError, WatchEvent
from tests.argo_executor.conftest import workflow
from tests.k8s_emulator import K8sEmulator

SELECTOR = "app.kubernetes.io/managed-by=forgeflow"

pytest_plugins = ["tests.k8s_emulator.fixtures"]


def names(events: list[WatchEvent]) -> list[tuple[str, str, str]]:
    return [
        (e.type, e.object["metadata"].get("namespace", ""), e.object["metadata"].get("name", ""))
        for e in events
        if e.type != "BOOKMARK"
    ]


def test_the_cursor_round_trips_and_rejects_other_namespaces():
    cursor = encode_cursor({"b": "7", "a": "12"})
    assert cursor == "a=12,b=7"
    assert decode_cursor(cursor, ["b", "a"]) == {"a": "12", "b": "7"}
    assert decode_cursor("", ["a", "b"]) == {"a": "", "b": ""}
    assert decode_cursor("1234", ["a"]) == {"a": "1234"}  # a plain resourceVersion
    with pytest.raises(ResourceVersionExpired):
        decode_cursor(cursor, ["a", "b", "c"])  # a namespace was added to the service config
    with pytest.raises(ResourceVersionExpired):
        decode_cursor("1234", ["a", "b"])


def test_list_spans_namespaces_by_selector_page_by_page(
    k8s_emulator: K8sEmulator, make_executor: Callable[..., ArgoExecutor]
):
    executor = make_executor(page_size=2)
    for index in range(5):
        k8s_emulator.create(workflow(f"wf-{index}"))
    k8s_emulator.create(workflow("octo", namespace="ci-octo"))
    k8s_emulator.create(workflow("elsewhere", namespace="other"))
    foreign = workflow("foreign")
    foreign["metadata"]["labels"] = {"app": "not-forgeflow"}
    k8s_emulator.create(foreign)

    items, cursor = executor.list(SELECTOR)

    assert sorted(i["metadata"]["name"] for i in items) == ["octo", *(f"wf-{i}" for i in range(5))]
    rv = k8s_emulator.resource_version
    assert cursor == f"ci={rv},ci-octo={rv}"
    lists = [r for r in k8s_emulator.requests if r.method == "GET"]
    assert {r.path.split("/")[5] for r in lists} == {"ci", "ci-octo"}  # never cluster-wide
    assert sum("continue" in r.query for r in lists) == 2  # 5 items in pages of 2


def test_watch_merges_namespaces_and_resumes_from_the_last_events_cursor(
    k8s_emulator: K8sEmulator, executor: ArgoExecutor
):
    _, cursor = executor.list(SELECTOR)
    k8s_emulator.create(workflow("a"))
    k8s_emulator.create(workflow("b", namespace="ci-octo"))
    k8s_emulator.patch_status("ci", "a", {"phase": "Running"})
    k8s_emulator.patch_status("ci-octo", "b", {"phase": "Succeeded"})
    everything = [
        ("ADDED", "ci", "a"),
        ("ADDED", "ci-octo", "b"),
        ("MODIFIED", "ci", "a"),
        ("MODIFIED", "ci-octo", "b"),
    ]

    seen: list[WatchEvent] = []
    for event in executor.watch(SELECTOR, cursor, timeout_seconds=5):
        seen.append(event)
        if {("ADDED", "ci", "a"), ("ADDED", "ci-octo", "b")} <= set(names(seen)):
            break  # mid-stream: what the other thread already read is not lost
    resumed = list(executor.watch(SELECTOR, seen[-1].resource_version, timeout_seconds=1))

    assert sorted(names(seen) + names(resumed)) == sorted(everything)  # each change exactly once
    for namespace, name in (("ci", "a"), ("ci-octo", "b")):  # in order within a namespace
        mine = [kind for kind, ns, n in names(seen) + names(resumed) if (ns, n) == (namespace, name)]
        assert mine == ["ADDED", "MODIFIED"]
    rv = int(k8s_emulator.resource_version)
    assert decode_cursor(resumed[-1].resource_version, ["ci", "ci-octo"]) == {
        "ci": str(rv - 1),
        "ci-octo": str(rv),
    }


def test_a_single_namespace_watch_sees_deletes_and_bookmarks(
    make_k8s_emulator: Callable[..., K8sEmulator], make_executor: Callable[..., ArgoExecutor]
):
    k8s = make_k8s_emulator(bookmark_interval=0.1)
    executor = ArgoExecutor(k8s.api_client(), ["ci"])
    k8s.create(workflow("a"))
    _, cursor = executor.list(SELECTOR)
    k8s.delete("ci", "a")

    events = list(executor.watch(SELECTOR, cursor, timeout_seconds=1))

    assert names(events) == [("DELETED", "ci", "a")]
    bookmarks = [e for e in events if e.type == "BOOKMARK"]
    assert bookmarks and bookmarks[-1].resource_version == f"ci={k8s.resource_version}"
    assert any(r.query.get("allowWatchBookmarks") == "true" for r in k8s.requests)


def test_an_expired_cursor_is_resource_version_expired(k8s_emulator: K8sEmulator, executor: ArgoExecutor):
    _, cursor = executor.list(SELECTOR)
    k8s_emulator.create(workflow("a"))
    k8s_emulator.create(workflow("b", namespace="ci-octo"))
    k8s_emulator.compact()
    with pytest.raises(ResourceVersionExpired, match="410"):
        list(executor.watch(SELECTOR, cursor, timeout_seconds=5))


def test_a_5xx_or_a_broken_stream_is_transient(k8s_emulator: K8sEmulator, executor: ArgoExecutor):
    _, cursor = executor.list(SELECTOR)
    fault = k8s_emulator.fail_next(503, watch=True)
    with pytest.raises(TransientExecutorError, match="503"):
        list(executor.watch(SELECTOR, cursor, timeout_seconds=1))
    assert fault.hits == 1

    k8s_emulator.create(workflow("a"))
    k8s_emulator.create(workflow("b"))
    drop = k8s_emulator.drop_next_watch(after_events=1, path="/namespaces/ci/")
    seen: list[WatchEvent] = []
    with pytest.raises(TransientExecutorError):
        for event in executor.watch(SELECTOR, cursor, timeout_seconds=5):
            seen.append(event)
    assert drop.hits == 1
    assert names(seen) == [("ADDED", "ci", "a")]
    resumed = list(executor.watch(SELECTOR, seen[-1].resource_version, timeout_seconds=1))
    assert names(resumed) == [("ADDED", "ci", "b")]  # nothing lost, nothing repeated


def test_closing_a_watch_early_ends_its_streams(k8s_emulator: K8sEmulator, executor: ArgoExecutor):
    _, cursor = executor.list(SELECTOR)
    stream = executor.watch(SELECTOR, cursor, timeout_seconds=30)
    got: list[WatchEvent] = []
    reader = threading.Thread(target=lambda: got.append(next(iter(stream))), daemon=True)
    reader.start()
    k8s_emulator.wait_for_watches(2)
    k8s_emulator.create(workflow("a"))
    reader.join(timeout=10)
    assert names(got) == [("ADDED", "ci", "a")]
    stream.close()  # type: ignore[attr-defined]
    assert _wait(lambda: k8s_emulator.active_watches == 0), f"{k8s_emulator.active_watches} still open"


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
