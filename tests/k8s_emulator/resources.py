"""The resources the emulator serves, and the API's ``Status`` errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resource:
    """A namespaced resource the emulator serves (``group`` is ``""`` for the core API)."""

    group: str
    version: str
    plural: str
    kind: str
    status_subresource: bool = False
    log_subresource: bool = False
    field_selectors: frozenset[str] = frozenset({"metadata.name", "metadata.namespace"})
    unconditional_update: bool = False  # PUT without metadata.resourceVersion (core types)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``workflows.argoproj.io`` or ``pods``, as the API server names it in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key(self) -> str:
        return f"{self.group}/{self.version}/{self.plural}" if self.group else f"v1/{self.plural}"


# Argo's CRDs declare `subresources: {}`: there is no workflows/status endpoint on a real cluster
# and the controller writes status through the main resource. Use dataclasses.replace() to vary.
WORKFLOWS = Resource("argoproj.io", "v1alpha1", "workflows", "Workflow")
WORKFLOW_TEMPLATES = Resource("argoproj.io", "v1alpha1", "workflowtemplates", "WorkflowTemplate")
PODS = Resource(
    "",
    "v1",
    "pods",
    "Pod",
    status_subresource=True,
    log_subresource=True,
    field_selectors=frozenset(
        {"metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy"}
        | {"spec.schedulerName", "spec.serviceAccountName", "status.phase", "status.podIP"}
    ),
    unconditional_update=True,
)
SECRETS = Resource("", "v1", "secrets", "Secret", unconditional_update=True)
DEFAULT_RESOURCES = (WORKFLOWS, WORKFLOW_TEMPLATES, PODS, SECRETS)


class ApiError(Exception):
    """An API failure answered with a ``Status`` body, e.g. 404 NotFound or 409 Conflict."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = dict(details or {})
        self.headers = dict(headers or {})

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body

    @classmethod
    def not_found(cls, res: Resource, name: str) -> ApiError:
        details = {"name": name, "group": res.group, "kind": res.plural}
        return cls(404, "NotFound", f'{res.qualified} "{name}" not found', details)

    @classmethod
    def already_exists(cls, res: Resource, name: str) -> ApiError:
        details = {"name": name, "group": res.group, "kind": res.plural}
        return cls(409, "AlreadyExists", f'{res.qualified} "{name}" already exists', details)

    @classmethod
    def conflict(cls, res: Resource, name: str, why: str) -> ApiError:
        details = {"name": name, "group": res.group, "kind": res.plural}
        message = f'Operation cannot be fulfilled on {res.qualified} "{name}": {why}'
        return cls(409, "Conflict", message, details)

    @classmethod
    def invalid(cls, res: Resource, name: str, why: str) -> ApiError:
        details = {"name": name, "group": res.group, "kind": res.kind}
        return cls(422, "Invalid", f'{res.kind} "{name}" is invalid: {why}', details)

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "BadRequest", message)
