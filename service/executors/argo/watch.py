"""Listing and watching Workflows across forgeflow's namespaces, one request per namespace.

forgeflow's account gets a namespaced Role in each namespace it uses (``FORGEFLOW_NAMESPACE``
and every ``repositories[].namespace``), never a ClusterRole, so every list and watch names
one namespace. The watcher still sees one stream:

- :func:`list_all` lists each namespace (paged) and returns the items of all of them with one
  **cursor**: ``"<namespace>=<resourceVersion>,..."``, sorted by namespace. A cursor is opaque
  to the watcher; it only hands it back to :func:`watch_all`.
- :func:`watch_all` opens one watch per namespace, each resuming from its own resourceVersion
  (one thread per namespace when there are several) and merges their events as they come.
  Every event it yields is a :class:`CursorEvent` whose ``resource_version`` is the cursor
  *after* that event (the other namespaces' positions included), so resuming from the last
  event's ``resource_version`` loses nothing in any namespace. Bookmarks move a namespace's
  position without an object change.
- A 410 Gone in any namespace raises :class:`ResourceVersionExpired` (the watcher relists all
  namespaces: simple, and rare); a cursor that names other namespaces than the executor
  watches (the service config changed) is treated the same way.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes.watch import watch as _watch

from service.executors.argo.errors import status_error, translate
from service.executors.base import ExecutorError, Manifest, ResourceVersionExpired, WatchEvent, WatchType

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "workflows"
PAGE_SIZE = 500
CONNECT_TIMEOUT = 10.0
READ_SLACK = 30.0  # a watch that says nothing this long past its timeoutSeconds is dead
iter_resp_lines: Any = _watch.iter_resp_lines  # untyped
WATCH_TYPES: frozenset[str] = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})


@dataclass(frozen=True)
class CursorEvent(WatchEvent):
    """A watch event whose ``resource_version`` is the multi-namespace cursor after it."""

    cursor: str = ""

    @property
    def resource_version(self) -> str:
        return self.cursor


def encode_cursor(versions: dict[str, str]) -> str:
    return ",".join(f"{namespace}={version}" for namespace, version in sorted(versions.items()))


def decode_cursor(cursor: str, namespaces: Sequence[str]) -> dict[str, str]:
    """Each namespace's resourceVersion ("" for all when the cursor is empty: watch from now,
    starting with the objects that exist, as Kubernetes does)."""
    if not cursor:
        return dict.fromkeys(namespaces, "")
    versions: dict[str, str] = {}
    for part in cursor.split(","):
        namespace, sep, version = part.partition("=")
        if not sep:
            if len(namespaces) == 1 and "," not in cursor:
                return {namespaces[0]: cursor}  # a plain resourceVersion
            raise ResourceVersionExpired(f"not a forgeflow watch cursor: {cursor!r}; list again")
        versions[namespace] = version
    if set(versions) != set(namespaces):
        raise ResourceVersionExpired("the watched namespaces changed; list again")
    return versions


def list_all(
    api: Any, namespaces: Sequence[str], selector: str, request_timeout: float, page_size: int = PAGE_SIZE
) -> tuple[list[Manifest], str]:
    """Every matching Workflow in the namespaces (``page_size`` per request), and the cursor
    to watch from."""
    items: list[Manifest] = []
    versions: dict[str, str] = {}
    for namespace in namespaces:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"label_selector": selector, "limit": page_size}
            if token:
                kwargs["_continue"] = token
            try:
                page = api.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, _request_timeout=request_timeout, **kwargs
                )
            except Exception as exc:
                raise translate(exc, f"list workflows in {namespace}") from exc
            meta = page.get("metadata") or {}
            items.extend(page.get("items") or [])
            token = meta.get("continue") or None
            if not token:
                versions[namespace] = str(meta.get("resourceVersion") or "")
                break
    return items, encode_cursor(versions)


class NamespaceWatch:
    """One watch request in one namespace; :meth:`close` ends it from another thread."""

    def __init__(self, api: Any, namespace: str, selector: str, version: str, timeout: int):
        self.api: Any = api
        self.namespace, self.selector = namespace, selector
        self.version, self.timeout = version, timeout
        self.closed = threading.Event()
        self._response: Any = None

    def events(self) -> Iterator[tuple[str, Manifest]]:
        what = f"watch workflows in {self.namespace}"
        try:
            response: Any = self.api.list_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                label_selector=self.selector,
                resource_version=self.version or None,
                timeout_seconds=self.timeout,
                allow_watch_bookmarks=True,
                watch=True,
                _preload_content=False,
                _request_timeout=(CONNECT_TIMEOUT, self.timeout + READ_SLACK),
            )
        except Exception as exc:
            raise translate(exc, what) from exc
        self._response = response
        try:
            for line in iter_resp_lines(response):
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = str(event.get("type") or ""), event.get("object") or {}
                if kind == "ERROR":
                    code = int(obj.get("code") or 0)
                    raise status_error(code, str(obj.get("message") or obj.get("reason") or ""), what)
                if kind in WATCH_TYPES:
                    yield kind, obj
        except ExecutorError:
            raise
        except Exception as exc:
            if not self.closed.is_set():
                raise translate(exc, what) from exc
        finally:
            response.close()
            response.release_conn()

    def close(self) -> None:
        """Unblock a reader stuck in ``recv``: shut the socket down (closing it would not)."""
        self.closed.set()
        sock = getattr(getattr(self._response, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def watch_all(
    api: Any, namespaces: Sequence[str], selector: str, cursor: str, timeout: int
) -> Iterator[WatchEvent]:
    """Changes in every namespace after ``cursor``, until ``timeout`` seconds pass."""
    versions = decode_cursor(cursor, namespaces)
    watches = [NamespaceWatch(api, ns, selector, versions[ns], timeout) for ns in namespaces]
    if len(watches) == 1:
        only = watches[0]
        for kind, obj in only.events():
            yield _advance(versions, only.namespace, kind, obj)
        return
    merged: queue.Queue[tuple[str, Any, Any]] = queue.Queue()

    def pump(watch: NamespaceWatch) -> None:
        try:
            for kind, obj in watch.events():
                if watch.closed.is_set():
                    return
                merged.put((watch.namespace, kind, obj))
        except BaseException as exc:
            merged.put((watch.namespace, "", exc))
        finally:
            merged.put((watch.namespace, "", None))

    threads = [
        threading.Thread(target=pump, args=(w,), name=f"watch-{w.namespace}", daemon=True) for w in watches
    ]
    for thread in threads:
        thread.start()
    open_streams = len(watches)
    try:
        while open_streams:
            namespace, kind, obj = merged.get()
            if kind:
                yield _advance(versions, namespace, kind, obj)
            elif obj is None:
                open_streams -= 1
            else:
                raise obj
    finally:
        for watch in watches:
            watch.close()


def _advance(versions: dict[str, str], namespace: str, kind: str, obj: Manifest) -> CursorEvent:
    version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    if version:
        versions[namespace] = version
    event_type: WatchType = kind  # type: ignore[assignment]
    return CursorEvent(event_type, obj, cursor=encode_cursor(versions))
