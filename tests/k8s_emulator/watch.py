"""Watch streams: newline-delimited JSON events, resumable from any retained resourceVersion.

A stream replays the history after the client's resourceVersion, then sleeps until the store
reports a write; it ends at ``timeoutSeconds``, when a fault cuts it, or when the server stops.
A resourceVersion older than the retained history gets the API server's answer: HTTP 200 and
one ``ERROR`` event carrying a 410 Expired ``Status``.

Writes may come from any thread (the Python-side API runs in the test's thread), so the store
calls :meth:`WatchHub.notify`, which wakes the streams on the server's loop, coalescing bursts
of cross-thread writes into one wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from dataclasses import dataclass

import aiohttp.web

from tests.k8s_emulator.faults import DropMode, WatchDrop
from tests.k8s_emulator.resources import ApiError, Resource
from tests.k8s_emulator.selectors import FieldMatcher, LabelMatcher
from tests.k8s_emulator.store import Event, ObjectStore, dumps, encode_event, labels_of


@dataclass(frozen=True)
class WatchQuery:
    """What one watch asks for."""

    resource: Resource
    namespace: str | None  # None: all namespaces
    labels: LabelMatcher
    fields: FieldMatcher
    since: int  # 0: begin with synthetic ADDED events for the objects that exist now
    timeout: float  # seconds; math.inf for none
    bookmarks: bool


@dataclass(eq=False)
class _Cut:
    """A mutable flag per open stream, set to make it end at its next wake-up."""

    mode: DropMode | None = None


class WatchHub:
    """All open watch streams of one server, and the wake-up signal they share."""

    def __init__(self, store: ObjectStore, bookmark_interval: float) -> None:
        self.store = store
        self.bookmark_interval = bookmark_interval
        self._open: set[_Cut] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._changed: asyncio.Event | None = None
        self._wake_pending = False
        self._closing = False
        store.subscribe(self.notify)

    @property
    def active(self) -> int:
        return len(self._open)

    # -- called on the server's event loop -----------------------------------------------------

    def attach(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._changed = asyncio.Event()
        self._closing = False

    def detach(self) -> None:
        self._loop = self._loop_thread = None

    def close_all(self) -> None:
        """End every open stream cleanly (before the server shuts down)."""
        self._closing = True
        self._wake()

    def cut_all(self, mode: DropMode) -> None:
        for cut in self._open:
            cut.mode = mode
        self._wake()

    # -- called from any thread ----------------------------------------------------------------

    def notify(self) -> None:
        """The store's listener: a write happened."""
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._wake()
        elif not self._wake_pending:
            self._wake_pending = True
            with contextlib.suppress(RuntimeError):  # the loop has just closed
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._wake_pending = False
        if self._changed is not None:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    # -- one stream ----------------------------------------------------------------------------

    async def serve(
        self, raw: aiohttp.web.BaseRequest, query: WatchQuery, drop: WatchDrop | None
    ) -> aiohttp.web.StreamResponse:
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(raw)
        cut = _Cut()
        self._open.add(cut)
        try:
            await _Stream(self, raw, response, cut, drop).run(query)
        except ConnectionError:  # the client went away while we were writing
            pass
        finally:
            self._open.discard(cut)
        return response


class _Stream:
    """One watch response being written: the replay, the filter, bookmarks and cuts."""

    def __init__(
        self,
        hub: WatchHub,
        raw: aiohttp.web.BaseRequest,
        response: aiohttp.web.StreamResponse,
        cut: _Cut,
        drop: WatchDrop | None,
    ) -> None:
        self.hub = hub
        self.raw = raw
        self.response = response
        self.cut = cut
        self.drop = drop
        self.sent = 0

    async def run(self, query: WatchQuery) -> None:
        hub, store = self.hub, self.hub.store
        loop = asyncio.get_running_loop()
        if not await self._send([]):  # a drop with after_events=0 cuts before anything
            return
        deadline = loop.time() + query.timeout
        interval = hub.bookmark_interval if query.bookmarks else math.inf
        next_bookmark = loop.time() + interval

        if query.since == 0:
            cursor, items = store.select(query.resource, query.namespace, query.labels, query.fields)
            if not await self._send([encode_event("ADDED", obj) for obj in items]):
                return
        else:
            cursor = query.since
        while True:
            changed = hub._changed  # taken before reading, so no write can slip in unnoticed
            events = store.events_since(cursor)
            if events is None:
                await self._expired(cursor)
                return
            if events:
                lines = [line for event in events if (line := _line(event, query))]
                cursor = events[-1].resource_version
                if not await self._send(lines):
                    return
            if self.cut.mode is not None:
                self._close(self.cut.mode)
                return
            now = loop.time()
            if hub._closing or changed is None or now >= deadline:
                return
            if now >= next_bookmark:
                await self.response.write(_bookmark(query.resource, cursor))
                next_bookmark = now + interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(min(deadline, next_bookmark, now + 3600)):
                    await changed.wait()

    async def _send(self, lines: list[bytes]) -> bool:
        """Write the lines, or as many as a pending drop allows and then cut; False if cut."""
        drop = self.drop
        if drop is not None and self.sent + len(lines) >= drop.after_events:
            lines = lines[: max(drop.after_events - self.sent, 0)]
            if lines:
                await self.response.write(b"".join(lines))
            self._close(drop.mode)
            return False
        if lines:
            await self.response.write(b"".join(lines))
            self.sent += len(lines)
        return True

    def _close(self, mode: DropMode) -> None:
        """``abort``: drop the connection (after flushing); ``end``: the stream just ends."""
        if mode == "abort" and self.raw.transport is not None:
            self.raw.transport.close()

    async def _expired(self, cursor: int) -> None:
        oldest = self.hub.store.oldest_resource_version
        status = ApiError(410, "Expired", f"too old resource version: {cursor} ({oldest})")
        await self.response.write(b'{"type":"ERROR","object":%s}\n' % dumps(status.status()))


def _line(event: Event, query: WatchQuery) -> bytes | None:
    """The event as this watch sees it, like the API server's watch cache.

    With a selector, an object that starts matching arrives as ADDED and one that stops
    matching as DELETED, so a label-filtered watcher learns that it has gone.
    """
    if event.resource is not query.resource:
        return None
    if query.namespace and event.namespace != query.namespace:
        return None
    labels, fields = query.labels, query.fields
    matches_now = labels(labels_of(event.obj)) and fields(event.obj)
    if event.type != "MODIFIED" or event.prev is None:
        return event.line() if matches_now else None
    matched_before = labels(labels_of(event.prev)) and fields(event.prev)
    if matches_now:
        return event.line() if matched_before else event.line("ADDED")
    return event.line("DELETED") if matched_before else None


def _bookmark(res: Resource, resource_version: int) -> bytes:
    obj = {
        "kind": res.kind,
        "apiVersion": res.api_version,
        "metadata": {"resourceVersion": str(resource_version)},
    }
    return encode_event("BOOKMARK", obj)
