"""Listing and watching local Workflows by label selector, Kubernetes-style.

A watch polls the store's folder every ``poll`` seconds. A file whose mtime/size/inode did not
change is not re-read, so an idle poll costs a ``stat`` per Workflow. Versions written between
two polls are seen as one change (the newest), as a level-triggered watcher expects; events
come in the order they are observed, each object's in resourceVersion order.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from service.executors.base import ExecutorError, Manifest, WatchEvent, WatchType
from service.executors.local.store import (
    LocalStore,
    created_version,
    public,
    resource_version,
)

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_TERM = re.compile(rf"^\s*(?P<neg>!)?\s*(?P<key>{_KEY})\s*(?:(?P<op>==|!=|=)\s*(?P<value>{_VALUE}))?\s*$")


@dataclass(frozen=True)
class Requirement:
    """One selector term: ``key`` exists (``op`` "exists"/"!exists") or equals / differs."""

    key: str
    op: str
    value: str = ""

    def matches(self, labels: dict[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        if self.op == "=":
            return labels.get(self.key) == self.value
        return labels.get(self.key) != self.value


def parse_selector(selector: str) -> tuple[Requirement, ...]:
    """Parse an equality-based label selector (``a=b,c!=d,e,!f``); ExecutorError if not."""
    requirements = []
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        match = _TERM.match(term)
        if not match or (match["neg"] and match["op"]):
            raise ExecutorError(f"unsupported label selector term {term!r}")
        if match["op"]:
            op = "!=" if match["op"] == "!=" else "="
            requirements.append(Requirement(match["key"], op, match["value"] or ""))
        else:
            requirements.append(Requirement(match["key"], "!exists" if match["neg"] else "exists"))
    return tuple(requirements)


def selected(obj: Manifest, requirements: tuple[Requirement, ...]) -> bool:
    """Whether ``obj``'s labels satisfy every requirement."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


def list_workflows(store: LocalStore, selector: str) -> tuple[list[Manifest], str]:
    """Matching Workflows and a resourceVersion to watch from (read before the objects)."""
    requirements = parse_selector(selector)
    version = store.current_version()
    items = [public(raw) for raw in store.all_raw() if selected(raw, requirements)]
    return items, str(version)


def watch_workflows(
    store: LocalStore, selector: str, version: str, timeout: float, poll: float = 0.2
) -> Iterator[WatchEvent]:
    """Changes to matching Workflows after ``version`` ("": from now) for ``timeout`` s."""
    requirements = parse_selector(selector)
    # "" means "from now"; any number (0 included: the version of an empty store) is exact, so
    # a change made between two watches is never lost.
    start = int(version) if str(version).isdigit() else None
    watcher = _Watcher(store, requirements, store.current_version() if start is None else start)
    deadline = time.monotonic() + max(timeout, 0)
    while True:
        yield from watcher.poll()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(poll, remaining))


class _Watcher:
    """What one watch has observed: per object the last resourceVersion and selector match."""

    def __init__(self, store: LocalStore, requirements: tuple[Requirement, ...], since: int):
        self.store = store
        self.requirements = requirements
        self.since = since
        self.seen: dict[tuple[str, str], tuple[int, bool, Manifest]] = {}

    def poll(self) -> Iterator[WatchEvent]:
        present: set[tuple[str, str]] = set()
        changes: list[tuple[int, Manifest, bool]] = []
        for tombstone in (False, True):
            for path in self.store.object_paths(tombstones=tombstone):
                raw = self.store.read(path)
                if raw is None:
                    continue
                if not tombstone:
                    present.add(_key(raw))
                changes.append((resource_version(raw), raw, tombstone))
        for _, raw, tombstone in sorted(changes, key=lambda c: c[0]):
            event = self._observe(raw, tombstone)
            if event is not None:
                yield event
        yield from self._vanished(present)

    def _observe(self, raw: Manifest, tombstone: bool) -> WatchEvent | None:
        key, version = _key(raw), resource_version(raw)
        previous = self.seen.get(key)
        if previous is not None and version <= previous[0]:
            return None
        matched = selected(raw, self.requirements)
        self.seen[key] = (version, matched and not tombstone, raw)
        if version <= self.since:
            return None
        if previous is None:
            known_before = created_version(raw) <= self.since
            was = known_before and (matched or not tombstone)
        else:
            was = previous[1]
        return _event(raw, was, matched and not tombstone)

    def _vanished(self, present: set[tuple[str, str]]) -> Iterator[WatchEvent]:
        """Objects removed without a tombstone (by hand): report their last state."""
        for key, (version, matched, raw) in list(self.seen.items()):
            path = self.store.object_path(*key)
            if key in present or not matched or path.exists():
                continue
            self.seen[key] = (version, False, raw)
            yield WatchEvent("DELETED", public(raw))


def _event(raw: Manifest, was: bool, now: bool) -> WatchEvent | None:
    kind: WatchType
    if was and now:
        kind = "MODIFIED"
    elif now:
        kind = "ADDED"
    elif was:
        kind = "DELETED"
    else:
        return None
    return WatchEvent(kind, public(raw))


def _key(raw: Manifest) -> tuple[str, str]:
    meta = raw.get("metadata") or {}
    return str(meta.get("namespace")), str(meta.get("name"))
