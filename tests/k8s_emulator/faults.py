"""Fault injection: make the next N matching requests fail, or cut watch streams short.

Rules are consumed in the order they were added; each rule counts its own hits so a test can
assert that the client really ran into it (``assert fault.hits == 1``).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Literal, TypeVar

from tests.k8s_emulator.resources import ApiError

DropMode = Literal["abort", "end"]

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass
class Fault:
    """Fail the next ``count`` requests matching method, path regex and watch-ness."""

    status: int
    count: int
    method: str | None = None
    path: re.Pattern[str] | None = None
    watch: bool | None = None
    retry_after: int | None = None
    message: str | None = None
    hits: int = 0

    def matches(self, method: str, path: str, is_watch: bool) -> bool:
        return (
            (self.method is None or self.method == method)
            and (self.path is None or self.path.search(path) is not None)
            and (self.watch is None or self.watch == is_watch)
        )

    def error(self) -> ApiError:
        reason = REASONS.get(self.status, "InternalError")
        message = self.message or f"injected fault: {self.status} {reason}"
        details: dict[str, int] = {}
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
            headers["Retry-After"] = str(self.retry_after)
        return ApiError(self.status, reason, message, details, headers)


@dataclass
class WatchDrop:
    """Cut the next ``count`` matching watch streams after ``after_events`` events.

    ``mode="abort"`` closes the TCP connection mid-stream (the client sees a broken chunked
    response); ``mode="end"`` ends the stream cleanly, as a server-side timeout does.
    """

    count: int
    after_events: int = 0
    path: re.Pattern[str] | None = None
    mode: DropMode = "abort"
    hits: int = 0


_Rule = TypeVar("_Rule", Fault, WatchDrop)


class FaultPlan:
    """The pending fault rules; safe to edit from the test thread while the server runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._drops: list[WatchDrop] = []

    def add_fault(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def add_drop(self, drop: WatchDrop) -> WatchDrop:
        with self._lock:
            self._drops.append(drop)
        return drop

    def take_fault(self, method: str, path: str, is_watch: bool) -> Fault | None:
        if not self._faults:  # the common case, without taking the lock
            return None
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, is_watch):
                    return self._consume(self._faults, fault)
        return None

    def take_drop(self, path: str) -> WatchDrop | None:
        if not self._drops:
            return None
        with self._lock:
            for drop in self._drops:
                if drop.path is None or drop.path.search(path) is not None:
                    return self._consume(self._drops, drop)
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._drops.clear()

    @staticmethod
    def _consume(rules: list[_Rule], rule: _Rule) -> _Rule:
        rule.hits += 1
        rule.count -= 1
        if rule.count <= 0:
            rules.remove(rule)
        return rule
