"""Forge API budgets: what each token or GitHub App installation has left, and when to wait.

Forges say how much of a rate limit is left on every answer (GitHub ``X-RateLimit-Remaining``
/ ``X-RateLimit-Reset``, GitLab ``RateLimit-Remaining``/``RateLimit-Reset``) and how long to keep
away after refusing (``Retry-After`` with a 429 or a 403 "secondary rate limit"). Every forge
call path records that here (:meth:`RateLimits.observe`) and asks before calling
(:meth:`RateLimits.before_call`): with the budget spent it waits a little (at most
:data:`MAX_INLINE_WAIT` seconds) or raises a :class:`TransientForgeError` whose ``retry_after``
re-queues the work (the reporter keeps the job's lease that long, tasks retry after it), so no
state is lost and the forge is not hammered. What was seen is kept in the database now and then
(``forge_budgets``), for ``forgeflow status``.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from service.clock import now
from service.forges.base import TransientForgeError
from service.metrics import FORGE_RATE_LIMIT_REMAINING
from service.store.db import Database
from service.store.models import ForgeBudget

log = logging.getLogger(__name__)

MAX_INLINE_WAIT = 10.0  # seconds a caller may be held before the work is re-queued instead
SECONDARY_DEFAULT_WAIT = 60.0  # GitHub: "wait at least one minute" when it gives no Retry-After
FLUSH_SECONDS = 10.0  # a budget is written to the database at most this often (unless low)
REMAINING = ("x-ratelimit-remaining", "ratelimit-remaining")
LIMIT = ("x-ratelimit-limit", "ratelimit-limit")
RESET = ("x-ratelimit-reset", "ratelimit-reset")


def _header(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in names:
        if name in lowered:
            return str(lowered[name]).strip()
    return ""


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def retry_after(headers: Mapping[str, str] | None, at: float | None = None) -> float | None:
    """Seconds to keep away, from ``Retry-After`` (seconds or an HTTP date) or, with nothing
    left of the budget, from the reset time. None when the headers ask for no wait."""
    if not headers:
        return None
    at = time.time() if at is None else at
    given = _header(headers, ("retry-after",))
    if given:
        seconds = _number(given)
        if seconds is None:
            try:
                seconds = email.utils.parsedate_to_datetime(given).timestamp() - at
            except (TypeError, ValueError):
                seconds = None
        if seconds is not None:
            return max(seconds, 0.0)
    if _number(_header(headers, REMAINING)) == 0:
        reset = _number(_header(headers, RESET))
        if reset is not None:
            # GitHub sends an epoch time, GitLab too; a small number is "seconds from now"
            return max(reset - at if reset > 1e9 else reset, 0.0)
    return None


@dataclass
class Budget:
    remaining: int = -1
    limit: int = -1
    reset_at: float = 0.0  # epoch seconds
    blocked_until: float = 0.0  # epoch seconds: a Retry-After, or a spent budget's reset
    flushed_at: float = 0.0  # monotonic


class RateLimits:
    """The budgets of one process, by (forge, instance, key); ``db`` keeps a copy for operators."""

    def __init__(
        self,
        db: Database | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_inline_wait: float = MAX_INLINE_WAIT,
    ) -> None:
        self.db = db
        self.sleep = sleep
        self.max_inline_wait = max_inline_wait
        self._budgets: dict[tuple[str, str, str], Budget] = {}
        self._lock = threading.Lock()

    def observe(
        self, forge: str, instance: str, key: str, headers: Mapping[str, str] | None, status: int = 200
    ) -> None:
        """Note what an answer's headers say about the budget of ``key``."""
        if not headers:
            return
        at = time.time()
        remaining = _number(_header(headers, REMAINING))
        limit = _number(_header(headers, LIMIT))
        reset = _number(_header(headers, RESET))
        wait = retry_after(headers, at) if status in (403, 429) or remaining == 0 else None
        if remaining is None and wait is None:
            return
        if remaining is not None:
            FORGE_RATE_LIMIT_REMAINING.labels(instance).set(remaining)
        with self._lock:
            budget = self._budgets.setdefault((forge, instance, key), Budget())
            if remaining is not None:
                budget.remaining = int(remaining)
                budget.limit = int(limit) if limit is not None else budget.limit
                budget.reset_at = (reset if reset and reset > 1e9 else at + (reset or 0)) if reset else 0.0
            if wait is not None:
                budget.blocked_until = max(budget.blocked_until, at + wait)
            due = time.monotonic() - budget.flushed_at > FLUSH_SECONDS or budget.remaining in (0, 1)
            if due:
                budget.flushed_at = time.monotonic()
            snapshot = Budget(**vars(budget))
        if due or wait is not None:
            self._store(forge, instance, key, snapshot)

    def wait_hint(self, forge: str, instance: str, key: str) -> float | None:
        """Seconds until ``key`` may be used again, or None when it may now."""
        with self._lock:
            budget = self._budgets.get((forge, instance, key))
            left = (budget.blocked_until - time.time()) if budget else 0.0
        return left if left > 0 else None

    def before_call(self, forge: str, instance: str, key: str, what: str) -> None:
        """Wait out a short block of ``key``; raise a retry-after error for a long one."""
        wait = self.wait_hint(forge, instance, key)
        if wait is None:
            return
        if wait <= self.max_inline_wait:
            log.info("%s: waiting %.1fs for the %s rate limit (%s)", what, wait, forge, key)
            self.sleep(wait)
            return
        raise TransientForgeError(f"{what}: the {forge} API budget of {key} is spent for {wait:.0f}s", wait)

    def snapshot(self) -> dict[tuple[str, str, str], Budget]:
        with self._lock:
            return {k: Budget(**vars(v)) for k, v in self._budgets.items()}

    def _store(self, forge: str, instance: str, key: str, budget: Budget) -> None:
        if self.db is None:
            return
        reset_at = (
            datetime.fromtimestamp(budget.reset_at, UTC).replace(tzinfo=None) if budget.reset_at else None
        )
        try:
            with self.db.session() as session:
                row = session.scalars(
                    select(ForgeBudget).where(
                        ForgeBudget.forge == forge, ForgeBudget.instance == instance, ForgeBudget.key == key
                    )
                ).first()
                if row is None:
                    row = ForgeBudget(forge=forge, instance=instance, key=key)
                    session.add(row)
                row.remaining, row.limit, row.reset_at = budget.remaining, budget.limit, reset_at
                row.updated_at = now()
        except Exception as exc:  # bookkeeping for operators: never fail a forge call over it
            log.info("could not store the %s budget of %s: %s", forge, key, exc)


def stored_budgets(db: Database) -> list[ForgeBudget]:
    """Every budget last stored, oldest forge first (for ``forgeflow status``)."""
    with db.session() as session:
        rows = list(session.scalars(select(ForgeBudget).order_by(ForgeBudget.forge, ForgeBudget.key)))
        session.expunge_all()
    return rows


def describe_budget(row: ForgeBudget, at: datetime | None = None) -> str:
    at = at or now()
    left = f"{row.remaining}/{row.limit}" if row.limit >= 0 else str(row.remaining)
    resets = ""
    if row.reset_at is not None and row.reset_at > at:
        resets = f", resets in {int((row.reset_at - at) / timedelta(seconds=1))}s"
    return f"{row.forge} {row.instance} {row.key}: {left} requests left{resets}"
