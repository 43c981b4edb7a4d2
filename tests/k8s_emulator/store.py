"""The emulator's state: objects by resource and namespace, resourceVersions, the event history.

Everything here is synchronous and guarded by one ``threading.Lock``, so the HTTP side (on the
emulator's event loop) and the Python side (test threads, an emulated controller) can both call
it. Stored objects are never mutated in place: every write builds a new dict (sharing untouched
sub-trees), so events and list snapshots can hold references instead of deep copies.

Every write bumps one cluster-wide resourceVersion by exactly one and records exactly one event,
so the event for resourceVersion ``n`` sits at a fixed offset in the history; a watch resumes
from any retained resourceVersion in O(1). The history keeps the last ``history_size`` events;
a watch from an older resourceVersion gets 410 Expired, as from a compacted etcd.
"""

from __future__ import annotations

import base64
import datetime
import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import jsonpatch
import jsonpointer

from tests.k8s_emulator.resources import ApiError, Resource
from tests.k8s_emulator.selectors import FieldMatcher, LabelMatcher

# Which parts of an object a write may change: the main resource, its /status subresource, or
# everything (the Python-side API, which plays the controller).
WriteScope = Literal["main", "status", "all"]
PatchType = Literal["merge", "json"]

_T = TypeVar("_T")
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # what the API server uses for generateName
_IMMUTABLE_META = ("name", "namespace", "uid", "creationTimestamp", "generation")


@dataclass(eq=False)
class Event:
    """One write: the object after it and (for MODIFIED) before it. Immutable once recorded."""

    resource_version: int
    type: Literal["ADDED", "MODIFIED", "DELETED"]
    resource: Resource
    namespace: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None
    _line: bytes | None = field(default=None, repr=False)

    def line(self, event_type: str | None = None) -> bytes:
        """The watch-stream line ``{"type": …, "object": …}\\n``, encoded once and cached."""
        if event_type is not None and event_type != self.type:
            return encode_event(event_type, self.obj)
        if self._line is None:
            self._line = encode_event(self.type, self.obj)
        return self._line


def encode_event(event_type: str, obj: Mapping[str, Any]) -> bytes:
    return b'{"type":"%s","object":%s}\n' % (event_type.encode(), dumps(obj))


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def clone(value: _T) -> _T:
    """A deep copy for values crossing the Python-side API (also proves they are JSON)."""
    copy: _T = json.loads(json.dumps(value))
    return copy


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def _string_data(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    """A Secret's ``stringData`` merged into ``data`` (base64), as the API server stores it."""
    if res.kind != "Secret" or not obj.get("stringData"):
        return obj
    data = dict(obj.get("data") or {})
    for key, value in obj["stringData"].items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    return {**{k: v for k, v in obj.items() if k != "stringData"}, "data": data}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; returns a new value and shares the untouched sub-trees."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ObjectStore:
    """Objects indexed by resource → namespace → name, plus the event history."""

    def __init__(self, resources: Iterable[Resource], history_size: int) -> None:
        self._lock = threading.Lock()
        self._resources = {(r.group, r.version, r.plural): r for r in resources}
        self._objects: dict[Resource, dict[str, dict[str, dict[str, Any]]]] = {
            r: {} for r in self._resources.values()
        }
        self._logs: dict[tuple[str, str, str | None], str] = {}
        self._rv = 1000  # realistic-looking, and never the special "0"
        self._events: list[Event] = []
        self._oldest = self._rv + 1  # resourceVersion of _events[0] (or of the next write)
        self._listeners: list[Callable[[], None]] = []
        self.history_size = history_size

    # -- lookups -------------------------------------------------------------------------------

    @property
    def resources(self) -> list[Resource]:
        return list(self._resources.values())

    def find(self, group: str, version: str, plural: str) -> Resource | None:
        return self._resources.get((group, version, plural))

    def resource(self, name: str | Resource) -> Resource:
        """Resolve ``"workflows"``, ``"argoproj.io/v1alpha1/workflows"`` or a Resource."""
        if isinstance(name, Resource) and name in self._objects:
            return name
        matches = [r for r in self._resources.values() if name in (r.plural, r.key)]
        if len(matches) != 1:
            raise KeyError(f"unknown or ambiguous resource {name!r}")
        return matches[0]

    @property
    def resource_version(self) -> int:
        return self._rv

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (under the lock, so keep it tiny) after every write."""
        self._listeners.append(listener)

    # -- reads ---------------------------------------------------------------------------------

    def get(self, res: Resource, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            return self._get(res, namespace, name)

    def _get(self, res: Resource, namespace: str, name: str) -> dict[str, Any]:
        obj = self._objects[res].get(namespace, {}).get(name)
        if obj is None:
            raise ApiError.not_found(res, name)
        return obj

    def select(
        self,
        res: Resource,
        namespace: str | None,
        labels: LabelMatcher,
        fields: FieldMatcher,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Matching objects sorted by (namespace, name), and the resourceVersion of the list."""
        with self._lock:
            by_namespace = self._objects[res]
            buckets = [by_namespace.get(namespace, {})] if namespace else by_namespace.values()
            items = [
                obj for bucket in buckets for obj in bucket.values() if labels(labels_of(obj)) and fields(obj)
            ]
            rv = self._rv
        items.sort(key=lambda obj: (obj["metadata"]["namespace"], obj["metadata"]["name"]))
        return rv, items

    def events_since(self, resource_version: int) -> list[Event] | None:
        """Events after ``resource_version``; None if some of them were compacted away."""
        with self._lock:
            if resource_version >= self._rv:
                return []
            if resource_version < self._oldest - 1:
                return None
            return self._events[resource_version - self._oldest + 1 :]

    @property
    def oldest_resource_version(self) -> int:
        """The oldest resourceVersion a watch can still resume from."""
        return self._oldest - 1

    # -- writes --------------------------------------------------------------------------------

    def create(self, res: Resource, namespace: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError.bad_request("the body of the request must be a JSON object")
        meta = dict(body.get("metadata") or {})
        if meta.get("namespace") not in (None, "", namespace):
            raise ApiError.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        self._check_type(res, body, meta.get("name", ""))
        if meta.get("resourceVersion"):
            raise ApiError(500, "InternalError", "resourceVersion should not be set on objects to be created")
        with self._lock:
            bucket = self._objects[res].setdefault(namespace, {})
            name = meta.get("name") or ""
            if not name:
                prefix = meta.get("generateName") or ""
                if not prefix:
                    why = "metadata.name: Required value: name or generateName is required"
                    raise ApiError.invalid(res, "", why)
                name = prefix[:58] + "".join(random.choices(_NAME_CHARS, k=5))
                if name in bucket:  # what the real server answers for an unlucky suffix
                    raise ApiError.already_exists(res, name)
            if len(name) > 253 or not _NAME.fullmatch(name):
                why = f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 subdomain'
                raise ApiError.invalid(res, name, why)
            if name in bucket:
                raise ApiError.already_exists(res, name)
            meta.update(
                name=name,
                namespace=namespace,
                uid=str(uuid.uuid4()),
                creationTimestamp=_now(),
                generation=1,
            )
            obj = {**body, "apiVersion": res.api_version, "kind": res.kind, "metadata": meta}
            if res.status_subresource:
                obj.pop("status", None)
            return self._commit(res, namespace, name, _string_data(res, obj), None)

    def replace(
        self, res: Resource, namespace: str, name: str, body: Any, scope: WriteScope = "main"
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError.bad_request("the body of the request must be a JSON object")
        body_meta = body.get("metadata") or {}
        if body_meta.get("name") not in (None, name):
            raise ApiError.bad_request("the name of the object does not match the name on the URL")
        if body_meta.get("namespace") not in (None, "", namespace):
            raise ApiError.bad_request("the namespace of the object does not match the URL")
        self._check_type(res, body, name)
        with self._lock:
            old = self._get(res, namespace, name)
            if not body_meta.get("resourceVersion") and not res.unconditional_update:
                why = "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
                raise ApiError.invalid(res, name, why)
            return self._update(res, old, body, scope)

    def patch(
        self,
        res: Resource,
        namespace: str,
        name: str,
        patch_type: PatchType,
        patch: Any,
        scope: WriteScope = "main",
    ) -> dict[str, Any]:
        with self._lock:
            old = self._get(res, namespace, name)
            if patch_type == "json":
                if not isinstance(patch, list):
                    raise ApiError.bad_request("a JSON patch must be a list of operations")
                try:
                    candidate = jsonpatch.apply_patch(old, patch)
                except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
                    raise ApiError.invalid(res, name, f"the JSON patch failed: {exc}") from exc
            else:
                if not isinstance(patch, dict):
                    raise ApiError.bad_request("a merge patch must be a JSON object")
                candidate = merge_patch(old, patch)
            return self._update(res, old, candidate, scope)

    def update(
        self, res: Resource, namespace: str, name: str, fn: Callable[[dict[str, Any]], Any]
    ) -> dict[str, Any]:
        """Let ``fn`` edit a private copy of the object in place, then store that copy."""
        with self._lock:
            old = self._get(res, namespace, name)
            candidate = clone(old)
            fn(candidate)
            return self._update(res, old, clone(candidate), "all")

    def delete(
        self, res: Resource, namespace: str, name: str, preconditions: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        with self._lock:
            old = self._get(res, namespace, name)
            meta = old["metadata"]
            for key in ("uid", "resourceVersion"):
                wanted = (preconditions or {}).get(key)
                if wanted is not None and wanted != meta.get(key):
                    why = f"Precondition failed: {key} in precondition: {wanted}, {key} in object meta: "
                    why += str(meta.get(key))
                    raise ApiError.conflict(res, name, why)
            deleted = self._commit(res, namespace, name, old, old, deleted=True)
            self._collect_garbage(namespace, str(meta.get("uid") or ""))
            return deleted

    def _collect_garbage(self, namespace: str, owner_uid: str) -> None:
        """Kubernetes' garbage collector (background propagation): objects in the namespace
        whose ``ownerReferences`` name the deleted owner go too, and theirs after them."""
        if not owner_uid:
            return
        for res, by_namespace in self._objects.items():
            for name, obj in list(by_namespace.get(namespace, {}).items()):
                owners = obj["metadata"].get("ownerReferences") or []
                if any(ref.get("uid") == owner_uid for ref in owners):
                    self._commit(res, namespace, name, obj, obj, deleted=True)
                    self._collect_garbage(namespace, str(obj["metadata"].get("uid") or ""))

    def compact(self, keep: int = 0) -> None:
        """Forget all but the last ``keep`` events (older watches then get 410 Expired)."""
        with self._lock:
            self._trim(keep)

    # -- pod logs ------------------------------------------------------------------------------

    def set_log(self, namespace: str, pod: str, container: str | None, text: str) -> None:
        with self._lock:
            self._logs[namespace, pod, container] = text

    def get_log(self, res: Resource, namespace: str, pod: str, container: str | None) -> str:
        """The text set for this container, else for the whole pod; the pod must exist."""
        with self._lock:
            self._get(res, namespace, pod)
            text = self._logs.get((namespace, pod, container))
            if text is None and container is not None:
                text = self._logs.get((namespace, pod, None))
            return text or ""

    # -- internals (called with the lock held) -------------------------------------------------

    def _check_type(self, res: Resource, body: Mapping[str, Any], name: str) -> None:
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version not in (None, res.api_version) or kind not in (None, res.kind):
            why = f"expected {res.api_version}, Kind={res.kind}, got {api_version}, Kind={kind}"
            raise ApiError.bad_request(f"{res.qualified} {name!r}: {why}")

    def _update(
        self, res: Resource, old: dict[str, Any], candidate: Any, scope: WriteScope
    ) -> dict[str, Any]:
        meta_old = old["metadata"]
        name, namespace = meta_old["name"], meta_old["namespace"]
        if not isinstance(candidate, dict):
            raise ApiError.invalid(res, name, "the result is not a JSON object")
        wanted_rv = (candidate.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != meta_old["resourceVersion"]:
            why = "the object has been modified; please apply your changes to the latest version"
            why += " and try again"
            raise ApiError.conflict(res, name, why)

        if scope == "status":
            new = {key: value for key, value in old.items() if key != "status"}
            if "status" in candidate:
                new["status"] = candidate["status"]
        else:
            new = dict(candidate)
            if scope == "main" and res.status_subresource:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = old["status"]
            meta = dict(candidate.get("metadata") or {})
            for key in _IMMUTABLE_META:
                if key in meta_old:
                    meta[key] = meta_old[key]
            meta["resourceVersion"] = meta_old["resourceVersion"]
            new["metadata"] = meta
        new["apiVersion"], new["kind"] = res.api_version, res.kind

        new = _string_data(res, new)
        if new == old:  # a no-op write changes nothing, not even the resourceVersion
            return old
        skip = {"metadata", "status"} if res.status_subresource else {"metadata"}
        if any(old.get(key) != new.get(key) for key in (old.keys() | new.keys()) - skip):
            new["metadata"] = {**new["metadata"], "generation": meta_old.get("generation", 1) + 1}
        return self._commit(res, namespace, name, new, old)

    def _commit(
        self,
        res: Resource,
        namespace: str,
        name: str,
        obj: dict[str, Any],
        prev: dict[str, Any] | None,
        *,
        deleted: bool = False,
    ) -> dict[str, Any]:
        self._rv += 1
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self._rv)}}
        bucket = self._objects[res].setdefault(namespace, {})
        if deleted:
            del bucket[name]
            event_type: Literal["ADDED", "MODIFIED", "DELETED"] = "DELETED"
        else:
            bucket[name] = obj
            event_type = "ADDED" if prev is None else "MODIFIED"
        self._events.append(Event(self._rv, event_type, res, namespace, obj, prev))
        self._trim(self.history_size)
        for listener in self._listeners:
            listener()
        return obj

    def _trim(self, keep: int) -> None:
        excess = len(self._events) - max(keep, 0)
        if excess > 0:
            del self._events[:excess]
            self._oldest += excess
