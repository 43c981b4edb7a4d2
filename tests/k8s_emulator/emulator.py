"""A Kubernetes API emulator for synchronous tests: a real HTTP server in a background thread.

Usage::

    with K8sEmulator() as k8s:
        api = kubernetes.client.CustomObjectsApi(k8s.api_client())
        created = api.create_namespaced_custom_object(
            "argoproj.io", "v1alpha1", "ci", "workflows", {"metadata": {"generateName": "run-"}}
        )
        k8s.patch_status("ci", created["metadata"]["name"], {"phase": "Running"})  # as Argo would
        k8s.fail_next(503, method="POST")  # the next create fails with 503 ServiceUnavailable
        assert [(r.method, r.status) for r in k8s.requests] == [("POST", 201)]

The server runs on 127.0.0.1 on a free port with its own event loop. The Python-side methods
(``objects``, ``get``, ``create``, ``patch``, ``patch_status``, ``update``, ``delete``) act as the
cluster's controllers would: they bypass HTTP, faults and request records, but bump the
resourceVersion and emit watch events exactly like requests do. Objects handed out are copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self

import aiohttp.web
import kmock
import kubernetes.client

from tests.k8s_emulator.faults import DropMode, Fault, FaultPlan, WatchDrop
from tests.k8s_emulator.resources import DEFAULT_RESOURCES, ApiError, Resource
from tests.k8s_emulator.selectors import parse_label_selector
from tests.k8s_emulator.server import EmulatorHandler, RecordedRequest
from tests.k8s_emulator.store import ObjectStore, PatchType, clone
from tests.k8s_emulator.watch import WatchHub

ResourceRef = str | Resource


class K8sEmulator:
    """A stateful Kubernetes API server for workflows, workflow templates and pods (by default).

    :param resources: what to serve; see :mod:`tests.k8s_emulator.resources` for the defaults.
    :param history_size: how many events a watch can resume across (older: 410 Expired).
    :param bookmark_interval: seconds between BOOKMARK events for ``allowWatchBookmarks``.
    :param watch_timeout: server-side cap on watches that send no ``timeoutSeconds``.
    :param record_requests: keep the request log (``requests``); turn off for long benchmarks.
    """

    def __init__(
        self,
        *,
        resources: Iterable[Resource] = DEFAULT_RESOURCES,
        history_size: int = 10_000,
        bookmark_interval: float = 1.0,
        watch_timeout: float | None = None,
        record_requests: bool = True,
    ) -> None:
        self.store = ObjectStore(resources, history_size)
        self.faults = FaultPlan()
        self.watches = WatchHub(self.store, bookmark_interval)
        self.handler = EmulatorHandler(
            store=self.store,
            faults=self.faults,
            watches=self.watches,
            watch_timeout=watch_timeout,
            record_requests=record_requests,
        )
        self._clients: list[kubernetes.client.ApiClient] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._url: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="k8s-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("the emulator did not start within 30 seconds")
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError("the emulator failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        """Close the API clients handed out, end open watches, stop the server and its loop."""
        for client in self._clients:
            client.close()
        self._clients.clear()
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already gone
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=30)
        if thread.is_alive():
            raise RuntimeError("the emulator did not stop within 30 seconds")
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc is None:
            self.check()

    def check(self) -> None:
        """Fail if the server itself crashed on a request (a bug here, not in the client)."""
        if self.handler.internal_errors:
            errors = self.handler.internal_errors
            raise AssertionError(f"the emulator failed on {len(errors)} request(s): {errors!r}")

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start() or check(): nobody else would see it
            if self._ready.is_set():
                self.handler.internal_errors.append(exc)
            else:
                self._startup_error = exc
                self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with self.handler:  # kmock: collects request errors instead of raising them
            self.watches.attach()
            server = aiohttp.web.Server(self.handler, handler_cancellation=True, access_log=None)
            runner = aiohttp.web.ServerRunner(server, shutdown_timeout=5.0)
            await runner.setup()
            try:
                site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                host, port = runner.addresses[0][:2]
                self._url = f"http://{host}:{port}"
                self._ready.set()
                await self._stopping.wait()
            finally:
                self.watches.close_all()
                await runner.cleanup()
                self.watches.detach()
                self._loop = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the emulator has not been started")
        return self._url

    @property
    def kmock(self) -> kmock.KubernetesScaffold:
        """kmock's DSL for one-off reactions, e.g. ``k8s.kmock['get /version'] << {...}``.

        Reactions take priority over the emulation. Add them before the requests (the DSL is
        not thread-safe), and mind that kmock matches in O(requests so far) per request.
        """
        return self.handler

    def configuration(self) -> kubernetes.client.Configuration:
        return kubernetes.client.Configuration(host=self.url)

    def api_client(self) -> kubernetes.client.ApiClient:
        """A client for this server (plain HTTP, no auth), closed when the emulator stops."""
        client = kubernetes.client.ApiClient(self.configuration())
        self._clients.append(client)
        return client

    # -- objects, as a controller sees them ----------------------------------------------------

    def objects(
        self,
        namespace: str | None = None,
        resource: ResourceRef = "workflows",
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """Copies of the objects, sorted by (namespace, name); all namespaces when None."""
        res = self.store.resource(resource)
        _, items = self.store.select(res, namespace, parse_label_selector(label_selector), lambda _: True)
        return clone(items)

    def get(self, namespace: str, name: str, resource: ResourceRef = "workflows") -> dict[str, Any] | None:
        """A copy of the object, or None if there is none."""
        try:
            return clone(self.store.get(self.store.resource(resource), namespace, name))
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def create(
        self,
        body: dict[str, Any],
        namespace: str | None = None,
        resource: ResourceRef = "workflows",
    ) -> dict[str, Any]:
        """Create as a POST would (``generateName`` works); ``namespace`` defaults to the body's."""
        res = self.store.resource(resource)
        namespace = namespace or body.get("metadata", {}).get("namespace") or "default"
        return clone(self.store.create(res, namespace, clone(body)))

    def patch(
        self,
        namespace: str,
        name: str,
        patch: dict[str, Any] | list[dict[str, Any]],
        resource: ResourceRef = "workflows",
    ) -> dict[str, Any]:
        """A merge patch (or a JSON patch when given a list), status included."""
        res = self.store.resource(resource)
        patch_type: PatchType = "json" if isinstance(patch, list) else "merge"
        return clone(self.store.patch(res, namespace, name, patch_type, clone(patch), "all"))

    def patch_status(
        self,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource: ResourceRef = "workflows",
    ) -> dict[str, Any]:
        """Merge ``status`` into the object's status (None values delete keys), emit MODIFIED."""
        return self.patch(namespace, name, {"status": status}, resource)

    def update(
        self,
        namespace: str,
        name: str,
        fn: Callable[[dict[str, Any]], Any],
        resource: ResourceRef = "workflows",
    ) -> dict[str, Any]:
        """Let ``fn`` edit a copy of the object in place (its result is ignored), then store it.

        For what a merge patch cannot express, e.g. removing one item from a list.
        """
        return clone(self.store.update(self.store.resource(resource), namespace, name, fn))

    def delete(self, namespace: str, name: str, resource: ResourceRef = "workflows") -> dict[str, Any]:
        return clone(self.store.delete(self.store.resource(resource), namespace, name, None))

    def set_pod_log(self, namespace: str, name: str, text: str, container: str | None = None) -> None:
        """Set what ``pods/{name}/log`` returns; creates a bare Pod if there is none yet."""
        pods = self.store.resource("pods")
        if self.get(namespace, name, pods) is None:
            self.store.create(pods, namespace, {"metadata": {"name": name}})
        self.store.set_log(namespace, name, container, text)

    @property
    def resource_version(self) -> str:
        """The latest resourceVersion (of the last write to any object)."""
        return str(self.store.resource_version)

    @property
    def history_size(self) -> int:
        return self.store.history_size

    @history_size.setter
    def history_size(self, size: int) -> None:
        self.store.history_size = size
        self.store.compact(keep=size)

    def compact(self, keep: int = 0) -> None:
        """Forget the event history but the last ``keep`` events, like an etcd compaction."""
        self.store.compact(keep)

    # -- faults --------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        count: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        watch: bool | None = None,
        retry_after: int | None = None,
        message: str | None = None,
    ) -> Fault:
        """Answer the next ``count`` matching requests with ``status`` and a Status body.

        ``path`` is a regular expression searched in the URL path; ``watch`` restricts to (or
        excludes) watch requests; ``retry_after`` adds a Retry-After header (e.g. with 429).
        """
        fault = Fault(
            status=status,
            count=count,
            method=method.upper() if method else None,
            path=re.compile(path) if path else None,
            watch=watch,
            retry_after=retry_after,
            message=message,
        )
        return self.faults.add_fault(fault)

    def drop_next_watch(
        self,
        count: int = 1,
        *,
        after_events: int = 0,
        path: str | None = None,
        mode: DropMode = "abort",
    ) -> WatchDrop:
        """Cut the next ``count`` watch streams after ``after_events`` events.

        ``mode="abort"`` closes the connection mid-stream; ``"end"`` ends the stream cleanly.
        """
        drop = WatchDrop(count, after_events, re.compile(path) if path else None, mode)
        return self.faults.add_drop(drop)

    def drop_watches(self, mode: DropMode = "abort") -> None:
        """Cut every watch stream that is open right now."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self.watches.cut_all, mode)

    def clear_faults(self) -> None:
        self.faults.clear()

    # -- what the client did -------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (faulted ones too), oldest first."""
        return list(self.handler.records)

    def clear_requests(self) -> None:
        """Forget the requests so far (kmock's own log too, which its DSL views read)."""
        self.handler.records.clear()
        self.handler._requests.clear()

    @property
    def active_watches(self) -> int:
        return self.watches.active

    def wait_for_watches(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until at least ``count`` watch streams are open."""
        deadline = time.monotonic() + timeout
        while self.watches.active < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.watches.active} watches open, not {count}")
            time.sleep(0.005)
