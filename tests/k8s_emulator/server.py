"""The HTTP side: a kmock handler that serves the object store like a Kubernetes API server.

kmock provides the base: request parsing into group/version/plural/namespace/name/subresource,
the request log, API discovery (``/api``, ``/apis``, ``/apis/argoproj.io/v1alpha1``, ``/version``)
and its DSL for ad-hoc reactions (``emulator.kmock['get /version'] << {...}``). kmock matches
every request against every reaction by re-scanning all earlier requests, which costs
O(requests so far) per request, so resource requests take a direct route into the store unless
a test has added reactions of its own.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import attrs
import kmock
from typing_extensions import override

from tests.k8s_emulator.faults import FaultPlan
from tests.k8s_emulator.resources import ApiError, Resource
from tests.k8s_emulator.selectors import (
    FieldMatcher,
    LabelMatcher,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from tests.k8s_emulator.store import ObjectStore, PatchType, WriteScope, dumps
from tests.k8s_emulator.watch import WatchHub, WatchQuery

_TRUE = frozenset({"true", "True", "1"})
_PATCH_TYPES: dict[str, PatchType] = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "merge",  # no patchStrategy metadata: as merge
    "application/json-patch+json": "json",
}


@dataclass
class RecordedRequest:
    """What the client sent (and the status it got, once answered)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any = None
    status: int | None = None

    @property
    def watch(self) -> bool:
        return self.query.get("watch") in _TRUE


class _Emulate(Exception):
    """Raised by the lowest-priority kmock reaction: no test reaction took the request."""


def _is_resource_request(request: kmock.Request) -> bool:
    return request.resource is not None and request.resource.plural is not None


def _json(status: int, body: Any) -> aiohttp.web.Response:
    return aiohttp.web.Response(status=status, body=dumps(body), content_type="application/json")


def _error(exc: ApiError) -> aiohttp.web.Response:
    response = _json(exc.code, exc.status())
    response.headers.update(exc.headers)
    return response


def _not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def _method_not_allowed(method: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"the server does not allow this method: {method}")


@attrs.define(kw_only=True)
class EmulatorHandler(kmock.KubernetesScaffold):
    """Route resource requests into the store; leave the rest to kmock's scaffold and DSL."""

    store: ObjectStore
    faults: FaultPlan
    watches: WatchHub
    watch_timeout: float | None = None  # server-side cap when the client sends no timeoutSeconds
    record_requests: bool = True  # False: keep no request logs at all (long benchmarks)
    records: list[RecordedRequest] = attrs.field(factory=list)
    internal_errors: list[BaseException] = attrs.field(factory=list)
    _builtin_reactions: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for res in self.store.resources:
            self.resources[res.key] = kmock.ResourceInfo(
                kind=res.kind,
                singular=res.kind.lower(),
                namespaced=True,
                verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
                subresources={"status"} if res.status_subresource else set(),
            )
            if res.log_subresource:
                self.resources[res.key].subresources.add("log")
        self.fallback << _Emulate  # below kmock's discovery, above its catch-all 404
        self._builtin_reactions = len(self._payloads)

    # -- dispatch ------------------------------------------------------------------------------

    @override
    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        raw = request._raw_request
        assert raw is not None
        record = RecordedRequest(raw.method, raw.path, dict(request.params), request.data)
        if self.record_requests:
            self.records.append(record)
        elif len(self._payloads) == self._builtin_reactions:  # kmock's own log (~8 KB each)
            self._requests.clear()
        try:
            response = await self._respond(request, raw, record)
        except kmock.KubernetesError as exc:  # e.g. kmock's 404 for paths nobody serves
            record.status = exc.status
            raise
        except Exception:
            record.status = 500
            raise
        record.status = response.status
        return response

    async def _respond(
        self, request: kmock.Request, raw: aiohttp.web.BaseRequest, record: RecordedRequest
    ) -> aiohttp.web.StreamResponse:
        fault = self.faults.take_fault(raw.method, raw.path, record.watch)
        if fault is not None:
            return _error(fault.error())
        if len(self._payloads) > self._builtin_reactions:  # the test added kmock reactions
            try:
                return await super()._handle(request)
            except _Emulate:  # none of them took it
                pass
        try:
            if _is_resource_request(request):
                return await self._emulate(request, raw, record)
            return await self._discover(request, raw)
        except SelectorError as exc:
            return _error(ApiError.bad_request(str(exc)))
        except ApiError as exc:
            return _error(exc)

    async def _discover(
        self, request: kmock.Request, raw: aiohttp.web.BaseRequest
    ) -> aiohttp.web.StreamResponse:
        """API discovery through kmock's scaffold (also for "/api/v1/" with the slash)."""
        parts = raw.path.strip("/").split("/")
        serve = None
        if raw.method == "GET":
            match parts:
                case [""]:
                    serve = self._serve_root
                case ["version"]:
                    serve = self._serve_server_version
                case ["api"]:
                    serve = self._serve_api
                case ["apis"]:
                    serve = self._serve_apis
                case ["apis", _]:
                    serve = self._serve_group
                case ["api", _] | ["apis", _, _]:
                    serve = self._serve_version
        if serve is None:
            raise _not_found()
        try:
            payload = await serve(request)
        except kmock.KubernetesError as exc:
            raise _not_found() from exc
        if isinstance(payload, dict) and str(payload.get("groupVersion")).startswith("/"):
            payload["groupVersion"] = payload["groupVersion"][1:]  # kmock says "/v1" for core
        return _json(200, payload)

    @override
    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        """kmock's errors as the API server words them; anything else is our own bug."""
        if isinstance(exc, kmock.KubernetesError):  # e.g. the fallback for unknown URLs
            reason = "NotFound" if exc.status == 404 else exc.reason or "InternalError"
            return _error(ApiError(exc.status, reason, exc.message or reason))
        self.internal_errors.append(exc)
        return await super()._render_error(exc)

    @override
    async def _stream_error(self, exc: Exception, raw_response: aiohttp.web.StreamResponse) -> None:
        self.internal_errors.append(exc)
        await super()._stream_error(exc, raw_response)

    async def _emulate(
        self, request: kmock.Request, raw: aiohttp.web.BaseRequest, record: RecordedRequest
    ) -> aiohttp.web.StreamResponse:
        ref = request.resource
        assert ref is not None and isinstance(ref.plural, str)
        res = self.store.find(str(ref.group), str(ref.version), ref.plural)
        if res is None or (request.namespace is None and raw.method != "GET"):
            raise _not_found()
        ns, name, sub, method = request.namespace, request.name, request.subresource, raw.method
        query = request.params

        if name is None:  # the collection: list, watch, create
            if method == "GET":
                labels = parse_label_selector(query.get("labelSelector"))
                fields = parse_field_selector(query.get("fieldSelector"), res.field_selectors)
                if record.watch:
                    return await self._watch(raw, record, res, ns, labels, fields)
                return self._list(res, ns, labels, fields, query)
            if method == "POST":
                assert ns is not None
                return _json(201, self.store.create(res, ns, self._body(request)))
            raise _method_not_allowed(method)

        if ns is None:
            raise _not_found()
        if sub is None or (sub == "status" and res.status_subresource):
            scope: WriteScope = "status" if sub else "main"
            if method == "GET" and record.watch:
                fields = parse_field_selector(f"metadata.name={name}", res.field_selectors)
                return await self._watch(raw, record, res, ns, lambda _: True, fields)
            if method == "GET":
                return _json(200, self.store.get(res, ns, name))
            if method == "PUT":
                return _json(200, self.store.replace(res, ns, name, self._body(request), scope))
            if method == "PATCH":
                patch_type = _PATCH_TYPES.get(raw.content_type)
                if patch_type is None:
                    why = f"the body of the request was in an unknown format: {raw.content_type}"
                    raise ApiError(415, "UnsupportedMediaType", why)
                patch = self._body(request)
                return _json(200, self.store.patch(res, ns, name, patch_type, patch, scope))
            if method == "DELETE" and sub is None:
                options = self._body(request) or {}
                preconditions = options.get("preconditions") if isinstance(options, dict) else None
                return _json(200, self.store.delete(res, ns, name, preconditions))
            raise _method_not_allowed(method)
        if sub == "log" and res.log_subresource and method == "GET":
            return self._log(res, ns, name, query)
        raise _not_found()

    @staticmethod
    def _body(request: kmock.Request) -> Any:
        if not request.body:
            return None
        try:
            return json.loads(request.body)
        except ValueError as exc:
            raise ApiError.bad_request(f"the request body is not valid JSON: {exc}") from exc

    # -- reads ---------------------------------------------------------------------------------

    def _list(
        self,
        res: Resource,
        namespace: str | None,
        labels: LabelMatcher,
        fields: FieldMatcher,
        query: Mapping[str, str],
    ) -> aiohttp.web.Response:
        """A list, paginated with ``limit``/``continue`` over (namespace, name) order."""
        rv, items = self.store.select(res, namespace, labels, fields)
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if token := query.get("continue"):
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(token)))
            except ValueError as exc:
                raise ApiError.bad_request(f"invalid continue token: {exc}") from exc
            items = [i for i in items if (i["metadata"]["namespace"], i["metadata"]["name"]) > after]
        limit = int(query.get("limit") or 0)
        if 0 < limit < len(items):
            last = items[limit - 1]["metadata"]
            key = json.dumps([last["namespace"], last["name"]]).encode()
            meta["continue"] = base64.urlsafe_b64encode(key).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        body = {"apiVersion": res.api_version, "kind": f"{res.kind}List", "metadata": meta}
        return _json(200, {**body, "items": items})

    def _log(
        self, res: Resource, namespace: str, name: str, query: Mapping[str, str]
    ) -> aiohttp.web.Response:
        text = self.store.get_log(res, namespace, name, query.get("container"))
        if tail := query.get("tailLines"):
            text = "".join(text.splitlines(keepends=True)[-int(tail) :]) if int(tail) else ""
        if limit := query.get("limitBytes"):
            text = text.encode()[: int(limit)].decode(errors="ignore")
        return aiohttp.web.Response(text=text, content_type="text/plain")

    # -- watch ---------------------------------------------------------------------------------

    async def _watch(
        self,
        raw: aiohttp.web.BaseRequest,
        record: RecordedRequest,
        res: Resource,
        namespace: str | None,
        labels: LabelMatcher,
        fields: FieldMatcher,
    ) -> aiohttp.web.StreamResponse:
        params = raw.query
        try:
            since = int(params.get("resourceVersion") or "0")
            timeout = float(params.get("timeoutSeconds") or self.watch_timeout or math.inf)
        except ValueError as exc:
            raise ApiError.bad_request(f"invalid watch parameter: {exc}") from exc
        bookmarks = params.get("allowWatchBookmarks") in _TRUE
        query = WatchQuery(res, namespace, labels, fields, since, timeout, bookmarks)
        record.status = 200
        return await self.watches.serve(raw, query, self.faults.take_drop(raw.path))
