"""The emulator against the official ``kubernetes`` client, over real HTTP.

Every test talks to the server the way forgeflow will: through ``CustomObjectsApi``,
``CoreV1Api`` and ``kubernetes.watch.Watch``, so a deviation from the real API server's
behaviour shows up as a client-side failure here first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch

from tests.k8s_emulator import WORKFLOWS, K8sEmulator, parse_label_selector
from tests.k8s_emulator.selectors import SelectorError

pytest_plugins = ["tests.k8s_emulator.fixtures"]

GROUP, VERSION, PLURAL, NS = "argoproj.io", "v1alpha1", "workflows", "ci"


def workflow(name: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name} if name else {"generateName": "run-"}
    if labels is not None:
        metadata["labels"] = labels
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": metadata,
        "spec": {"entrypoint": "main", "templates": [{"name": "main"}]},
    }


@pytest.fixture
def api(k8s_emulator: K8sEmulator) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(k8s_emulator.api_client())


@pytest.fixture
def core(k8s_emulator: K8sEmulator) -> client.CoreV1Api:
    return client.CoreV1Api(k8s_emulator.api_client())


def create(api: client.CustomObjectsApi, body: dict[str, Any], namespace: str = NS) -> Any:
    return api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def names(listing: dict[str, Any]) -> list[str]:
    return [item["metadata"]["name"] for item in listing["items"]]


def stream(api: client.CustomObjectsApi, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Watch workflows in NS; the caller must close the generator (use contextlib.closing).

    A client-side read timeout turns a server that never ends or never answers a stream
    into a failure instead of a hang.
    """
    kwargs.setdefault("_request_timeout", 10)
    return watch.Watch().stream(api.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, **kwargs)


def watch_all(api: client.CustomObjectsApi, **kwargs: Any) -> list[tuple[str, str, str]]:
    """(type, name, resourceVersion) of every event until the server ends the stream."""
    kwargs.setdefault("timeout_seconds", 1)
    with contextlib.closing(stream(api, **kwargs)) as events:
        return [
            (
                event["type"],
                event["raw_object"]["metadata"].get("name", ""),
                event["raw_object"]["metadata"]["resourceVersion"],
            )
            for event in events
        ]


class WatchThread(threading.Thread):
    """Consume a watch in the background until ``until(events)`` holds or the stream ends."""

    def __init__(self, api: client.CustomObjectsApi, until: Callable[[list[Any]], bool], **kw: Any):
        super().__init__(daemon=True)
        self.api, self.until, self.kwargs = api, until, kw
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with contextlib.closing(stream(self.api, **self.kwargs)) as events:
                for event in events:
                    self.events.append(event)
                    if self.until(self.events):
                        return
        except BaseException as exc:
            self.error = exc

    def result(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        self.join(timeout)
        assert not self.is_alive(), f"the watch did not finish; got {len(self.events)} events"
        if self.error is not None:
            raise self.error
        return self.events


# -- create, get ---------------------------------------------------------------------------------


def test_create_answers_201_with_the_server_filled_object(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi
) -> None:
    before = int(k8s_emulator.resource_version)
    created = create(api, workflow())

    meta = created["metadata"]
    assert meta["name"].startswith("run-") and len(meta["name"]) == len("run-") + 5
    assert meta["namespace"] == NS
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) == before + 1
    assert k8s_emulator.requests[-1].status == 201
    assert k8s_emulator.get(NS, meta["name"]) == created


def test_every_write_gets_a_new_cluster_wide_resource_version(
    api: client.CustomObjectsApi,
) -> None:
    first = create(api, workflow("a"), namespace="ns1")["metadata"]["resourceVersion"]
    second = create(api, workflow("a"), namespace="ns2")["metadata"]["resourceVersion"]
    assert int(second) == int(first) + 1


def test_repeated_create_is_409_already_exists(api: client.CustomObjectsApi) -> None:
    create(api, workflow("twice"))
    with pytest.raises(client.ApiException) as caught:
        create(api, workflow("twice"))

    assert caught.value.status == 409
    status = json.loads(caught.value.body)
    assert status["kind"] == "Status" and status["reason"] == "AlreadyExists"
    assert status["message"] == 'workflows.argoproj.io "twice" already exists'


def test_get_of_a_missing_object_is_404_not_found(api: client.CustomObjectsApi) -> None:
    with pytest.raises(client.ApiException) as caught:
        api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "nope")
    assert caught.value.status == 404
    assert json.loads(caught.value.body)["reason"] == "NotFound"


# -- list, label selectors -----------------------------------------------------------------------

LABELLED = {
    "web-a": {"app": "web", "tier": "a", "n": "1"},
    "web-b": {"app": "web", "tier": "b", "n": "5"},
    "db-c": {"app": "db", "tier": "c"},
    "bare": {},
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", {"web-a", "web-b"}),
        ("app==db", {"db-c"}),
        ("app!=web", {"db-c", "bare"}),
        ("tier in (a, c)", {"web-a", "db-c"}),
        ("tier notin (a,c)", {"web-b", "bare"}),
        ("app", {"web-a", "web-b", "db-c"}),
        ("!app", {"bare"}),
        ("app=web,tier!=a", {"web-b"}),
        ("app in (web),!n", set()),
        ("n>2", {"web-b"}),
        ("", {"web-a", "web-b", "db-c", "bare"}),
    ],
)
def test_list_filters_by_label_selector(
    api: client.CustomObjectsApi, selector: str, expected: set[str]
) -> None:
    for name, labels in LABELLED.items():
        create(api, workflow(name, labels))
    listing = api.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, label_selector=selector)
    assert set(names(listing)) == expected


def test_list_spans_all_namespaces_with_list_metadata(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi
) -> None:
    create(api, workflow("one"), namespace="ns1")
    create(api, workflow("two", {"app": "web"}), namespace="ns2")

    listing = api.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    assert listing["apiVersion"] == f"{GROUP}/{VERSION}" and listing["kind"] == "WorkflowList"
    assert listing["metadata"]["resourceVersion"] == k8s_emulator.resource_version
    assert names(listing) == ["one", "two"]
    selected = api.list_cluster_custom_object(GROUP, VERSION, PLURAL, label_selector="app=web")
    assert names(selected) == ["two"]
    assert names(api.list_namespaced_custom_object(GROUP, VERSION, "ns1", PLURAL)) == ["one"]


def test_list_pages_with_limit_and_continue(api: client.CustomObjectsApi) -> None:
    for name in ["a", "b", "c"]:
        create(api, workflow(name))
    page = api.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, limit=2)
    assert names(page) == ["a", "b"] and page["metadata"]["remainingItemCount"] == 1
    rest = api.list_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, limit=2, _continue=page["metadata"]["continue"]
    )
    assert names(rest) == ["c"] and "continue" not in rest["metadata"]


@pytest.mark.parametrize("selector", ["a=b,", "a in ()", "a in (b", "=b", "a=b c"])
def test_malformed_label_selector_is_400(api: client.CustomObjectsApi, selector: str) -> None:
    with pytest.raises(client.ApiException) as caught:
        api.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, label_selector=selector)
    assert caught.value.status == 400
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_field_selector_on_name(api: client.CustomObjectsApi) -> None:
    create(api, workflow("a"))
    create(api, workflow("b"))
    listing = api.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, field_selector="metadata.name!=a")
    assert names(listing) == ["b"]


# -- patch, replace, delete ----------------------------------------------------------------------


def test_merge_patch_sets_spec_shutdown(k8s_emulator: K8sEmulator, api: client.CustomObjectsApi) -> None:
    created = create(api, workflow("wf"))
    patched = api.patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "wf", {"spec": {"shutdown": "Stop"}}
    )

    assert patched["spec"]["shutdown"] == "Stop"
    assert patched["spec"]["entrypoint"] == "main"  # merged, not replaced
    assert int(patched["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert patched["metadata"]["generation"] == 2
    assert patched["metadata"]["uid"] == created["metadata"]["uid"]
    assert k8s_emulator.requests[-1].method == "PATCH"
    assert watch_all(api, resource_version=created["metadata"]["resourceVersion"]) == [
        ("MODIFIED", "wf", patched["metadata"]["resourceVersion"])
    ]


def test_merge_patch_null_deletes_a_key(api: client.CustomObjectsApi) -> None:
    create(api, workflow("wf", {"keep": "1", "drop": "1"}))
    patched = api.patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "wf", {"metadata": {"labels": {"drop": None}}}
    )
    assert patched["metadata"]["labels"] == {"keep": "1"}


def test_json_patch(api: client.CustomObjectsApi) -> None:
    create(api, workflow("wf"))
    operations = [
        {"op": "add", "path": "/spec/shutdown", "value": "Terminate"},
        {"op": "remove", "path": "/spec/templates/0"},
    ]
    json_patch = "application/json-patch+json"  # the client defaults to a merge patch
    patched = api.patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "wf", operations, _content_type=json_patch
    )
    assert patched["spec"] == {"entrypoint": "main", "templates": [], "shutdown": "Terminate"}

    failing = [{"op": "test", "path": "/spec/entrypoint", "value": "other"}]
    with pytest.raises(client.ApiException) as caught:
        api.patch_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, "wf", failing, _content_type=json_patch
        )
    assert caught.value.status == 422
    with pytest.raises(client.ApiException) as caught:  # a list sent as a merge patch
        api.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "wf", operations)
    assert caught.value.status == 400


def test_a_patch_that_changes_nothing_keeps_the_resource_version(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi
) -> None:
    created = create(api, workflow("wf"))
    again = api.patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "wf", {"spec": {"entrypoint": "main"}}
    )
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert k8s_emulator.resource_version == created["metadata"]["resourceVersion"]


def test_replace_with_a_stale_resource_version_is_409_conflict(
    api: client.CustomObjectsApi,
) -> None:
    stale = create(api, workflow("wf"))
    api.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "wf", {"spec": {"x": 1}})

    stale["spec"]["shutdown"] = "Stop"
    with pytest.raises(client.ApiException) as caught:
        api.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "wf", stale)
    assert caught.value.status == 409
    assert json.loads(caught.value.body)["reason"] == "Conflict"

    fresh = api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "wf")
    fresh["spec"]["shutdown"] = "Stop"
    replaced = api.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "wf", fresh)
    assert replaced["spec"]["shutdown"] == "Stop" and "x" in replaced["spec"]


def test_a_merge_patch_carrying_a_stale_resource_version_is_409(
    api: client.CustomObjectsApi,
) -> None:
    created = create(api, workflow("wf"))
    api.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "wf", {"spec": {"x": 1}})
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}}
    with pytest.raises(client.ApiException) as caught:
        api.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "wf", stale)
    assert caught.value.status == 409


def test_delete_answers_200_and_emits_deleted(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi
) -> None:
    created = create(api, workflow("wf"))
    deleted = api.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "wf")

    assert deleted["metadata"]["name"] == "wf"
    assert k8s_emulator.requests[-1].status == 200
    assert k8s_emulator.get(NS, "wf") is None
    assert watch_all(api, resource_version=created["metadata"]["resourceVersion"]) == [
        ("DELETED", "wf", k8s_emulator.resource_version)
    ]
    with pytest.raises(client.ApiException) as caught:
        api.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "wf")
    assert caught.value.status == 404


def test_status_subresource_follows_each_resources_definition(
    make_k8s_emulator: Callable[..., K8sEmulator],
) -> None:
    # Argo's CRD has no status subresource: /status is 404 and status goes through the object.
    k8s = make_k8s_emulator()
    api = client.CustomObjectsApi(k8s.api_client())
    create(api, workflow("wf"))
    with pytest.raises(client.ApiException) as caught:
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, NS, PLURAL, "wf", {"status": {"phase": "Running"}}
        )
    assert caught.value.status == 404
    patched = api.patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "wf", {"status": {"phase": "Running"}}
    )
    assert patched["status"] == {"phase": "Running"}

    # With a status subresource, /status writes only status and the object ignores status.
    with_status = dataclasses.replace(WORKFLOWS, status_subresource=True)
    k8s = make_k8s_emulator(resources=[with_status])
    api = client.CustomObjectsApi(k8s.api_client())
    create(api, workflow("wf"))
    patched = api.patch_namespaced_custom_object_status(
        GROUP, VERSION, NS, PLURAL, "wf", {"status": {"phase": "Running"}, "spec": {"x": 1}}
    )
    assert patched["status"] == {"phase": "Running"} and "x" not in patched["spec"]
    ignored = api.patch_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, "wf", {"status": {"phase": "Failed"}, "spec": {"x": 1}}
    )
    assert ignored["status"] == {"phase": "Running"} and ignored["spec"]["x"] == 1


def test_pod_status_subresource(k8s_emulator: K8sEmulator, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod(NS, {"metadata": {"name": "p"}, "spec": {"containers": []}})
    pod = core.patch_namespaced_pod_status("p", NS, {"status": {"phase": "Succeeded"}})
    assert pod.status.phase == "Succeeded"
    assert k8s_emulator.get(NS, "p", "pods")["status"] == {"phase": "Succeeded"}


# -- watch ---------------------------------------------------------------------------------------


def test_watch_resumes_after_the_given_resource_version(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi
) -> None:
    first = create(api, workflow("first"))
    rv = first["metadata"]["resourceVersion"]
    k8s_emulator.patch_status(NS, "first", {"phase": "Running"})
    create(api, workflow("second"))
    create(api, workflow("elsewhere"), namespace="other")

    events = watch_all(api, resource_version=rv)
    assert [(kind, name) for kind, name, _ in events] == [
        ("MODIFIED", "first"),
        ("ADDED", "second"),
    ]
    assert [int(v) for _, _, v in events] == sorted(int(v) for _, _, v in events)
    assert all(int(v) > int(rv) for _, _, v in events)


def test_watch_without_resource_version_starts_with_the_current_objects(
    api: client.CustomObjectsApi,
) -> None:
    create(api, workflow("a"))
    create(api, workflow("b"))
    assert [(kind, name) for kind, name, _ in watch_all(api)] == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_sees_controller_changes_live(k8s_emulator: K8sEmulator, api: client.CustomObjectsApi) -> None:
    rv = create(api, workflow("wf"))["metadata"]["resourceVersion"]
    watcher = WatchThread(api, lambda events: len(events) == 2, resource_version=rv)
    watcher.start()
    k8s_emulator.wait_for_watches(1)
    k8s_emulator.patch_status(NS, "wf", {"phase": "Running"})
    k8s_emulator.patch_status(NS, "wf", {"phase": "Succeeded"})

    phases = [event["raw_object"]["status"]["phase"] for event in watcher.result()]
    assert phases == ["Running", "Succeeded"]


def test_watch_honours_timeout_seconds(api: client.CustomObjectsApi) -> None:
    started = time.monotonic()
    watcher = WatchThread(api, lambda _: False, resource_version="1000", timeout_seconds=1)
    watcher.start()
    assert watcher.result(timeout=3) == []  # the server ended the stream by itself
    assert 0.9 <= time.monotonic() - started < 3


def test_watch_filters_by_label_selector_including_transitions(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi
) -> None:
    rv = create(api, workflow("other", {"app": "db"}))["metadata"]["resourceVersion"]
    create(api, workflow("mine", {"app": "web"}))
    k8s_emulator.patch(NS, "other", {"metadata": {"labels": {"app": "web"}}})  # starts matching
    k8s_emulator.patch(NS, "mine", {"metadata": {"labels": {"app": "db"}}})  # stops matching

    events = watch_all(api, resource_version=rv, label_selector="app=web")
    assert [(kind, name) for kind, name, _ in events] == [
        ("ADDED", "mine"),
        ("ADDED", "other"),
        ("DELETED", "mine"),
    ]


def test_bookmarks_arrive_only_when_allowed(
    make_k8s_emulator: Callable[..., K8sEmulator],
) -> None:
    k8s = make_k8s_emulator(bookmark_interval=0.2)
    api = client.CustomObjectsApi(k8s.api_client())
    create(api, workflow("wf"))

    events = watch_all(api, resource_version="1000", allow_watch_bookmarks=True)
    bookmarks = [rv for kind, _, rv in events if kind == "BOOKMARK"]
    assert len(bookmarks) >= 2
    assert bookmarks[-1] == k8s.resource_version
    assert all(kind != "BOOKMARK" for kind, _, _ in watch_all(api, resource_version="1000"))


def test_an_expired_resource_version_is_a_410_error_event(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi
) -> None:
    old = create(api, workflow("a"))["metadata"]["resourceVersion"]
    create(api, workflow("b"))
    k8s_emulator.compact()

    response = api.list_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        PLURAL,
        watch=True,
        resource_version=old,
        _preload_content=False,
        _request_timeout=10,
    )
    try:
        assert response.status == 200
        lines = response.read().decode().splitlines()
    finally:
        response.release_conn()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "ERROR"
    assert event["object"]["kind"] == "Status"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")


def test_watch_stream_raises_api_exception_410_on_expiry(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi
) -> None:
    old = create(api, workflow("a"))["metadata"]["resourceVersion"]
    create(api, workflow("b"))
    k8s_emulator.compact()

    with pytest.raises(client.ApiException) as caught:
        watch_all(api, resource_version=old)
    assert caught.value.status == 410

    # Without timeout_seconds, Watch retries once from the same resourceVersion, then raises.
    k8s_emulator.clear_requests()
    with (
        pytest.raises(client.ApiException) as caught,
        contextlib.closing(stream(api, resource_version=old)) as events,
    ):
        list(events)
    assert caught.value.status == 410
    assert [r.query["resourceVersion"] for r in k8s_emulator.requests] == [old, old]


def test_the_history_window_is_configurable(
    make_k8s_emulator: Callable[..., K8sEmulator],
) -> None:
    k8s = make_k8s_emulator(history_size=2)
    api = client.CustomObjectsApi(k8s.api_client())
    rvs = [create(api, workflow(name))["metadata"]["resourceVersion"] for name in "abcd"]

    assert [name for _, name, _ in watch_all(api, resource_version=rvs[1])] == ["c", "d"]
    with pytest.raises(client.ApiException) as caught:
        watch_all(api, resource_version=rvs[0])
    assert caught.value.status == 410


# -- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_injected_errors_surface_as_api_exceptions(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi, status: int
) -> None:
    fault = k8s_emulator.fail_next(status, method="POST", path="/workflows$")
    with pytest.raises(client.ApiException) as caught:
        create(api, workflow("wf"))
    assert caught.value.status == status
    assert k8s_emulator.get(NS, "wf") is None

    create(api, workflow("wf"))  # only the next one failed
    assert fault.hits == 1
    assert [r.status for r in k8s_emulator.requests] == [status, 201]


def test_injected_429_carries_retry_after(k8s_emulator: K8sEmulator, api: client.CustomObjectsApi) -> None:
    k8s_emulator.fail_next(429, method="POST", retry_after=3)
    with pytest.raises(client.ApiException) as caught:
        create(api, workflow("wf"))
    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "3"
    assert json.loads(caught.value.body)["details"] == {"retryAfterSeconds": 3}


def test_the_client_itself_retries_gets_answered_with_retry_after(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi
) -> None:
    # urllib3's default Retry honours Retry-After on 429/503 for idempotent methods.
    fault = k8s_emulator.fail_next(429, count=2, method="GET", retry_after=0)
    assert api.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"] == []
    assert fault.hits == 2
    assert [r.status for r in k8s_emulator.requests] == [429, 429, 200]


def test_a_dropped_watch_breaks_the_connection_mid_stream(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi
) -> None:
    create(api, workflow("a"))
    create(api, workflow("b"))
    drop = k8s_emulator.drop_next_watch(after_events=1)

    received: list[str] = []
    with (
        pytest.raises(urllib3.exceptions.ProtocolError),
        contextlib.closing(stream(api, timeout_seconds=5)) as events,
    ):
        received.extend(event["raw_object"]["metadata"]["name"] for event in events)
    assert received == ["a"]
    assert drop.hits == 1
    assert [name for _, name, _ in watch_all(api)] == ["a", "b"]  # the next watch is whole


def test_a_watcher_that_hangs_up_is_cleaned_up(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi
) -> None:
    for name in "abc":
        create(api, workflow(name))
    response = api.list_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, watch=True, _preload_content=False
    )
    assert json.loads(response.readline())["type"] == "ADDED"
    response.close()
    deadline = time.monotonic() + 5
    while k8s_emulator.active_watches and time.monotonic() < deadline:
        k8s_emulator.patch_status(NS, "a", {"tick": time.monotonic()})
        time.sleep(0.01)
    assert k8s_emulator.active_watches == 0  # and the fixture checks for server-side errors


def test_watch_1_is_a_watch_too(k8s_emulator: K8sEmulator) -> None:
    k8s_emulator.create(workflow("a"), namespace=NS)
    url = f"{k8s_emulator.url}/apis/{GROUP}/{VERSION}/namespaces/{NS}/{PLURAL}"
    with urllib3.PoolManager() as http:
        response = http.request("GET", url, fields={"watch": "1", "timeoutSeconds": "1"})
    lines = response.data.decode().splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["ADDED"]
    assert k8s_emulator.requests[-1].watch


def test_drop_watches_ends_open_streams(k8s_emulator: K8sEmulator, api: client.CustomObjectsApi) -> None:
    watcher = WatchThread(api, lambda _: False, resource_version="1000", timeout_seconds=30)
    watcher.start()
    k8s_emulator.wait_for_watches(1)
    k8s_emulator.drop_watches(mode="end")
    assert watcher.result(timeout=5) == []


# -- pods ----------------------------------------------------------------------------------------


def test_pod_log_returns_the_text_set_by_the_test(k8s_emulator: K8sEmulator, core: client.CoreV1Api) -> None:
    k8s_emulator.set_pod_log(NS, "run-1-main", "line 1\nline 2\n")
    k8s_emulator.set_pod_log(NS, "run-1-main", "waiting\n", container="init")

    assert core.read_namespaced_pod_log("run-1-main", NS) == "line 1\nline 2\n"
    assert core.read_namespaced_pod_log("run-1-main", NS, container="main") == "line 1\nline 2\n"
    assert core.read_namespaced_pod_log("run-1-main", NS, container="init") == "waiting\n"
    assert core.read_namespaced_pod_log("run-1-main", NS, tail_lines=1) == "line 2\n"
    assert k8s_emulator.requests[1].query == {"container": "main"}
    with pytest.raises(client.ApiException) as caught:
        core.read_namespaced_pod_log("no-such-pod", NS)
    assert caught.value.status == 404


# -- the Python side and the plumbing ------------------------------------------------------------


def test_python_side_api_reads_and_writes_like_a_controller(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi
) -> None:
    k8s_emulator.create(workflow("b"), namespace=NS)
    k8s_emulator.create(workflow("a"), namespace=NS)
    k8s_emulator.create(workflow("z"), namespace="other")

    assert [o["metadata"]["name"] for o in k8s_emulator.objects(NS)] == ["a", "b"]
    assert len(k8s_emulator.objects()) == 3
    before = k8s_emulator.resource_version
    after = k8s_emulator.patch_status(NS, "a", {"phase": "Running", "nodes": {"n1": {}}})
    assert int(after["metadata"]["resourceVersion"]) == int(before) + 1
    k8s_emulator.update(NS, "a", lambda obj: obj["status"]["nodes"].clear())
    assert k8s_emulator.get(NS, "a")["status"] == {"phase": "Running", "nodes": {}}
    assert api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "a")["status"]["phase"] == ("Running")
    assert k8s_emulator.requests[-1].path.endswith("/namespaces/ci/workflows/a")
    assert k8s_emulator.get(NS, "missing") is None


def test_kmock_reactions_take_priority_over_the_emulation(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi
) -> None:
    k8s_emulator.kmock["get", "/apis/argoproj.io/v1alpha1/namespaces/ci/workflows/magic"] << {
        "metadata": {"name": "magic", "from": "kmock"}
    }
    got = api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "magic")
    assert got["metadata"]["from"] == "kmock"
    create(api, workflow("real"))  # everything else is still emulated
    assert api.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "real")["spec"]


def test_discovery_lists_the_served_resources(k8s_emulator: K8sEmulator) -> None:
    api_client = k8s_emulator.api_client()
    assert client.CoreV1Api(api_client).get_api_resources().group_version == "v1"
    groups = client.ApisApi(api_client).get_api_versions().groups
    assert [group.name for group in groups] == [GROUP]


def test_stopping_ends_open_watches_cleanly(
    make_k8s_emulator: Callable[..., K8sEmulator],
) -> None:
    k8s = make_k8s_emulator()
    api = client.CustomObjectsApi(client.ApiClient(k8s.configuration()))
    watcher = WatchThread(api, lambda _: False, resource_version="1000", timeout_seconds=60)
    watcher.start()
    k8s.wait_for_watches(1)
    started = time.monotonic()
    k8s.stop()
    assert watcher.result(timeout=5) == []
    assert time.monotonic() - started < 5
    api.api_client.close()


def test_a_thousand_workflows_changing_phase_stream_in_order(
    k8s_emulator: K8sEmulator, api: client.CustomObjectsApi
) -> None:
    count, phases = 1000, ["Pending", "Running", "Succeeded"]
    rv = k8s_emulator.resource_version
    for index in range(count):
        k8s_emulator.create(workflow(f"wf-{index}", {"forgeflow/run": "yes"}), namespace=NS)
    expected = count * (1 + len(phases))
    watcher = WatchThread(
        api,
        lambda events: len(events) == expected,
        resource_version=rv,
        label_selector="forgeflow/run=yes",
    )
    watcher.start()
    for phase in phases:
        for index in range(count):
            k8s_emulator.patch_status(NS, f"wf-{index}", {"phase": phase})

    events = watcher.result(timeout=60)
    versions = [int(event["raw_object"]["metadata"]["resourceVersion"]) for event in events]
    assert versions == list(range(int(rv) + 1, int(rv) + expected + 1))
    assert events[-1]["raw_object"]["status"]["phase"] == "Succeeded"
