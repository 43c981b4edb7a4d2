"""Sort what ogr and the libraries under it raise into retry-worthy and permanent forge errors.

Every forge library fails its own way: PyGithub raises ``GithubException`` (``.status``),
python-gitlab ``GitlabError`` (``.response_code``), pyforgejo ``ApiError`` (``.status_code``) and
``httpx`` transport errors, Pagure's ``requests``-based client ``PagureAPIException``
(``.response_code``), ``GitForgeInternalError`` for any 5xx (with the status only in its message)
and ``OgrNetworkError`` when it cannot connect. ogr often wraps these again, so the whole cause
chain is searched. forgeflow's own GitHub client raises ``GithubHttpError`` (``.status``) and
the built-in ``ConnectionError``/``TimeoutError``.

The libraries' exception classes are looked up in ``sys.modules``, never imported here: an
exception of a library that was never imported cannot be raised, and a process that does not
use ogr (the watcher) should not load it just to sort errors.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from service.forges.base import ForgeError, TransientForgeError
from service.forges.ratelimits import SECONDARY_DEFAULT_WAIT, retry_after

STATUS_ATTRIBUTES = ("status", "response_code", "status_code")
# ogr's GitForgeInternalError: "Pagure API returned 502 status for `...`"
STATUS_IN_MESSAGE = re.compile(r"returned (\d{3}) status")


def _loaded(module: str, *names: str) -> tuple[type[BaseException], ...]:
    """Those of ``module``'s exception classes that exist in this process (none when the
    module was never imported)."""
    loaded: Any = sys.modules.get(module)
    return tuple(getattr(loaded, name) for name in names if hasattr(loaded, name)) if loaded else ()


def _chain(exc: BaseException) -> list[BaseException]:
    seen: set[int] = set()
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _status_attribute(exc: BaseException) -> int | None:
    for attr in STATUS_ATTRIBUTES:
        try:
            value = getattr(exc, attr, None)
        except Exception:  # ogr's abstract APIException.response_code raises NotImplementedError
            value = None
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and 100 <= status < 600:
        return status
    internal = _loaded("ogr.exceptions", "GitForgeInternalError")
    if internal and isinstance(exc, internal) and (match := STATUS_IN_MESSAGE.search(str(exc))):
        return int(match.group(1))
    return None


def http_status_of(exc: BaseException) -> int | None:
    """The HTTP status somewhere in an exception's cause chain, if any."""
    for current in _chain(exc):
        status = _status_attribute(current)
        if status is not None:
            return status
    return None


def network_errors() -> tuple[type[BaseException], ...]:
    """The exception classes that say the forge could not be reached or did not answer."""
    return (
        ConnectionError,  # forgeflow's GitHub client, and the standard library
        TimeoutError,
        *_loaded("requests", "ConnectionError", "Timeout"),
        *_loaded("httpx", "TransportError"),  # pyforgejo: timeouts, refused connections
        *_loaded("ogr.exceptions", "OgrNetworkError"),  # Pagure: cannot connect, and 5xx
    )


def is_network_error(exc: BaseException) -> bool:
    errors = network_errors()
    return any(isinstance(current, errors) for current in _chain(exc))


def headers_of(exc: BaseException) -> dict[str, str] | None:
    """The HTTP response headers somewhere in an exception's cause chain (PyGithub's
    ``GithubException.headers``, pyforgejo's ``ApiError.headers``, a ``requests``/``httpx``
    error's response), if any."""
    for current in _chain(exc):
        for holder in (current, getattr(current, "response", None)):
            try:
                headers = getattr(holder, "headers", None)
            except Exception:
                headers = None
            if headers is not None and hasattr(headers, "items"):
                return {str(k): str(v) for k, v in headers.items()}
    return None


def classify(exc: Exception, what: str) -> ForgeError:
    """Turn a library exception into forgeflow's transient/permanent forge errors; a rate limit's
    ``Retry-After`` (or spent budget's reset) becomes the error's ``retry_after``."""
    status = http_status_of(exc)
    message = f"{what}: {type(exc).__name__}: {exc}"
    if status is not None:
        message = f"{what}: HTTP {status}: {exc}"
    text = str(exc).lower()
    wait = retry_after(headers_of(exc)) if status in (403, 429) else None
    if status is not None and (status >= 500 or status == 429):
        return TransientForgeError(message, retry_after=wait)
    if "rate limit" in text and status in (None, 403):  # GitHub's secondary rate limits
        return TransientForgeError(message, retry_after=wait if wait is not None else SECONDARY_DEFAULT_WAIT)
    if status is None and is_network_error(exc):
        return TransientForgeError(message)
    return ForgeError(message)
