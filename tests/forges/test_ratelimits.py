"""Rate limits: what the forges' headers say, waiting a short block out, re-queueing a long one,
and the budgets ``forgeflow status`` shows."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import pytest

from service.cli.main import main
from service.forges.base import TransientForgeError
from service.forges.ratelimits import RateLimits, retry_after
from service.reporting.queries import api_budgets
from service.store.db import Database


def test_retry_after_in_every_form() -> None:
    assert retry_after({"Retry-After": "7"}) == 7
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (retry_after({"retry-after": date}) or 0) <= 31
    reset = str(int(time.time()) + 120)
    assert 115 <= (retry_after({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}) or 0) <= 121
    assert retry_after({"RateLimit-Remaining": "0", "RateLimit-Reset": "5"}) == 5  # GitLab: seconds
    assert retry_after({"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": reset}) is None
    assert retry_after({}) is None


def test_a_short_block_is_waited_out_and_a_long_one_re_queued() -> None:
    slept: list[float] = []
    limits = RateLimits(sleep=slept.append)
    limits.observe("github", "github.com", "installation 5", {"Retry-After": "3"}, 403)
    limits.before_call("github", "github.com", "installation 5", "posting")
    assert len(slept) == 1 and 2 <= slept[0] <= 3
    limits.before_call("github", "github.com", "installation 6", "another installation is not held")
    assert len(slept) == 1
    limits.observe("github", "github.com", "token", {"Retry-After": "600"}, 429)
    with pytest.raises(TransientForgeError) as raised:
        limits.before_call("github", "github.com", "token", "posting")
    assert raised.value.retry_after is not None and raised.value.retry_after > 500


def test_a_spent_budget_holds_calls_until_its_reset() -> None:
    limits = RateLimits(sleep=lambda s: None, max_inline_wait=1)
    reset = str(int(time.time()) + 300)
    limits.observe(
        "gitlab",
        "gitlab.com",
        "token",
        {"RateLimit-Remaining": "0", "RateLimit-Limit": "600", "RateLimit-Reset": reset},
    )
    assert (limits.wait_hint("gitlab", "gitlab.com", "token") or 0) > 200


def test_forgeflow_status_shows_the_budgets(tmp_path: Path, capsys, monkeypatch) -> None:
    db = Database(f"sqlite:///{tmp_path / 'forgeflow.sqlite'}")
    db.migrate()
    limits = RateLimits(db)
    reset = str(int(time.time()) + 1800)
    limits.observe(
        "github",
        "github.com",
        "installation 77",
        {"X-RateLimit-Remaining": "4321", "X-RateLimit-Limit": "5000", "X-RateLimit-Reset": reset},
    )
    (budget,) = api_budgets(db)
    assert (budget["key"], budget["remaining"], budget["limit"]) == ("installation 77", 4321, 5000)
    monkeypatch.setenv("FORGEFLOW_DATA_DIR", str(tmp_path))
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "github github.com installation 77: 4321/5000 requests left, resets in" in out


def test_the_remaining_budget_is_a_metric_for_every_forge() -> None:
    from prometheus_client import REGISTRY

    metric = "forgeflow_forge_rate_limit_remaining"
    limits = RateLimits(sleep=lambda s: None)
    gitlab = {"RateLimit-Remaining": "1234", "RateLimit-Limit": "2000"}
    limits.observe("gitlab", "gitlab.example", "token", gitlab)
    assert REGISTRY.get_sample_value(metric, {"forge": "gitlab.example"}) == 1234
    limits.observe("github", "github.example", "installation 5", {"X-RateLimit-Remaining": "17"})
    assert REGISTRY.get_sample_value(metric, {"forge": "github.example"}) == 17
