"""The OpenAPI 3.1 document of the JSON API, built from the pydantic models that validate it.

:data:`ENDPOINTS` is the one list of what the API offers: each entry names its query model,
body model and answers, and the routes (:mod:`service.web.api`, :mod:`service.web.manual`)
validate with those very models. Served at ``/api/openapi.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter

from service.web.api_models import (
    MAX_ID,
    ActionAccepted,
    ActionRequest,
    ErrorOut,
    HealthOut,
    LogChunk,
    LogQuery,
    MeOut,
    RunOut,
    RunPage,
    RunsQuery,
    StatusOut,
)
from service.web.manual_models import ManualRunAccepted, ManualRunRequest

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    answers: dict[int, Any]  # status -> model, list[model], or None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    auth: bool = False  # needs a bearer token
    tag: str = "runs"


RUN_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
TASK = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$"}
COMMON_ERRORS = {400: ErrorOut, 401: ErrorOut, 503: ErrorOut}

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("get", "/api/runs", "Runs, newest first, filtered and paged", {200: RunPage}, query=RunsQuery),
    Endpoint(
        "post",
        "/api/runs",
        "Start a manual run of a repository's `on: manual` jobs",
        {202: ManualRunAccepted, 403: ErrorOut, 422: ErrorOut},
        body=ManualRunRequest,
        auth=True,
    ),
    Endpoint(
        "get",
        "/api/runs/{run_id}",
        "One run with its jobs",
        {200: RunOut, 403: ErrorOut, 404: ErrorOut},
        path_params={"run_id": RUN_ID},
    ),
    Endpoint(
        "get",
        "/api/runs/{run_id}/jobs/{task}/log",
        "A job's log from an offset on (poll with next_offset while the job runs)",
        {200: LogChunk, 403: ErrorOut, 404: ErrorOut},
        query=LogQuery,
        path_params={"run_id": RUN_ID, "task": TASK},
    ),
    Endpoint(
        "post",
        "/api/runs/{run_id}/actions",
        "Re-run a run (all or the failed jobs), cancel it, or approve a waiting fork run",
        {202: ActionAccepted, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
        body=ActionRequest,
        path_params={"run_id": RUN_ID},
        auth=True,
    ),
    Endpoint(
        "get",
        "/api/statuses/{repo}/{sha}",
        "The statuses forgeflow reported for a commit (repo is namespace/name)",
        {200: list[StatusOut]},
        path_params={
            "repo": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"},
            "sha": {"type": "string", "pattern": "^[0-9a-f]{4,64}$"},
        },
    ),
    Endpoint("get", "/api/me", "Who the API takes the caller for", {200: MeOut}, tag="account"),
    Endpoint("get", "/livez", "The process answers (no dependency is asked)", {200: HealthOut}, tag="health"),
    Endpoint(
        "get", "/readyz", "The database and the broker answer", {200: HealthOut, 503: HealthOut}, tag="health"
    ),
)


class _Schemas:
    """Component schemas collected from the models, referenced by name."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, annotation: Any, mode: str) -> dict[str, Any]:
        schema: dict[str, Any] = TypeAdapter(annotation).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        for name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(name, definition)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            self.components.setdefault(annotation.__name__, schema)
            return {"$ref": REF.format(model=annotation.__name__)}
        return schema


def document(public_url: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "operationId": operation_id(endpoint),
            "tags": [endpoint.tag],
            "parameters": _parameters(endpoint, schemas),
            "responses": {},
        }
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schemas.of(endpoint.body, "validation")}},
            }
        if endpoint.auth:
            operation["security"] = [{"bearer": []}]
        answers = {**COMMON_ERRORS, **endpoint.answers}
        for status, model in sorted(answers.items()):
            response: dict[str, Any] = {"description": _reason(status)}
            if model is not None:
                response["content"] = {"application/json": {"schema": schemas.of(model, "serialization")}}
            operation["responses"][str(status)] = response
        paths.setdefault(endpoint.path, {})[endpoint.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "forgeflow",
            "version": "1",
            "description": "Runs of Git forge events on Argo Workflows: read them, start them, act on them. "
            "Authorization: a personal token (made on /account) or the service's api_token, as "
            "`Authorization: Bearer <token>`; runs of public repositories can be read without one.",
        },
        "servers": [{"url": public_url or "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def operation_id(endpoint: Endpoint) -> str:
    """``get_api_runs_run_id``: the method and the path, as a name."""
    path = endpoint.path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
    return f"{endpoint.method}_{path}"


def _parameters(endpoint: Endpoint, schemas: _Schemas) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in endpoint.path_params.items()
    ]
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema(ref_template=REF)
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            description = prop.pop("description", "")
            prop.pop("title", None)
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if description:
                param["description"] = description
            params.append(param)
    return params


def _reason(status: int) -> str:
    from http import HTTPStatus

    return HTTPStatus(status).phrase
