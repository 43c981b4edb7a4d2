"""Kubernetes API failures, sorted into the executor seam's three kinds of error.

- 410 Gone → :class:`ResourceVersionExpired` (the watcher lists again);
- 429, 5xx, connection failures and timeouts → :class:`TransientExecutorError` (retried with
  backoff; a 429's ``Retry-After`` is kept as ``retry_after`` for the Celery task's countdown);
- any other 4xx (403 Forbidden, 422 Invalid, ...) → :class:`ExecutorError` with the API's own
  message, which says what is wrong (a missing RBAC verb, an invalid field).

409 Conflict is not an error for ``submit`` (the Workflow exists: already submitted); callers
check for it before translating.
"""

from __future__ import annotations

import json
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from service.executors.base import ExecutorError, ResourceVersionExpired, TransientExecutorError


def api_message(exc: ApiException) -> str:
    """The message of the API's ``Status`` body, else the HTTP reason."""
    body: Any = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body.strip().startswith("{"):
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if message:
            return str(message)
    return str(exc.reason or "").strip() or "no message"


def status_error(status: int, message: str, what: str, retry_after: str | None = None) -> ExecutorError:
    """The executor error for an HTTP status (or a watch stream's ERROR event ``code``)."""
    text = f"{what}: {status} {message}" if status else f"{what}: {message}"
    if status == 410:
        return ResourceVersionExpired(text)
    if status in (0, 429) or status >= 500:
        error = TransientExecutorError(text)
        if retry_after and retry_after.strip().isdigit():
            error.retry_after = int(retry_after)  # type: ignore[attr-defined]
        return error
    return ExecutorError(text)


def translate(exc: BaseException, what: str) -> ExecutorError:
    """The executor error for ``exc``, raised while doing ``what`` (e.g. "create ci/wf-1")."""
    if isinstance(exc, ExecutorError):
        return exc
    if isinstance(exc, ApiException):
        headers = exc.headers or {}
        return status_error(int(exc.status or 0), api_message(exc), what, headers.get("Retry-After"))
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError | OSError):
        return TransientExecutorError(f"{what}: Kubernetes API unreachable: {exc}")
    return ExecutorError(f"{what}: {type(exc).__name__}: {exc}")


def is_status(exc: BaseException, *statuses: int) -> bool:
    return isinstance(exc, ApiException) and exc.status in statuses
