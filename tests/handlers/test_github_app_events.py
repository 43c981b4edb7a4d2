"""The GitHub handler on what a GitHub App receives: the merge queue, the Re-run buttons and the
installation events, as GitHub sends them (GitHub's own examples from ../shared/fixtures, and
small hand-written ones in the shape of GitHub's documentation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handlers import github
from handlers.base import Delivery, Ignored, Parsed
from service.events import Event, EventKind
from tests.support.shared import shared_fixtures

FIXTURES = shared_fixtures() / "webhooks" / "github"
SHA = "a" * 40


def parse(event_type: str, body: dict[str, Any]) -> Parsed | Ignored:
    result = github.parse(Delivery(json.dumps(body).encode(), {"X-GitHub-Event": event_type}))
    assert isinstance(result, Parsed | Ignored)
    return result


def fixture(name: str) -> dict[str, Any]:
    path = Path(FIXTURES / name)
    if not path.is_file():
        pytest.skip(f"{path} is not here (../shared/fixtures)")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def repository() -> dict[str, Any]:
    return {
        "name": "hello",
        "full_name": "octo/hello",
        "owner": {"login": "octo"},
        "html_url": "https://github.com/octo/hello",
        "clone_url": "https://github.com/octo/hello.git",
    }


def test_merge_group_checks_requested_runs_on_the_group_head() -> None:
    parsed = parse("merge_group", fixture("merge_group.checks_requested.3.json"))
    assert isinstance(parsed, Parsed)
    event = parsed.event
    assert event.kind is EventKind.MERGE_GROUP and event.action == "checks_requested"
    assert event.sha == "aeafa0e2e4ec6909ad75cb8fad57c0b1eb5986e6"
    assert event.ref.startswith("refs/heads/gh-readonly-queue/master/")
    assert event.target_branch == "master" and event.before == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
    assert "merge group into master" in event.describe()
    assert Event.from_json(event.to_json()) == event


def test_merge_group_destroyed_says_why() -> None:
    parsed = parse("merge_group", fixture("merge_group.destroyed.1.json"))
    assert isinstance(parsed, Parsed) and parsed.event.action == "destroyed"


def test_a_check_runs_button_names_its_action_and_check() -> None:
    body = {
        "action": "requested_action",
        "check_run": {
            "id": 4000000001,
            "name": "forgeflow/lint",
            "external_id": "12/lint",
            "head_sha": SHA,
            "check_suite": {"head_sha": SHA, "head_branch": "feature", "pull_requests": []},
        },
        "requested_action": {"identifier": "rerun-failed"},
        "repository": repository(),
        "sender": {"login": "maria"},
        "installation": {"id": 77, "node_id": "x"},
    }
    parsed = parse("check_run", body)
    assert isinstance(parsed, Parsed)
    event = parsed.event
    assert event.kind is EventKind.RERUN and event.action == "requested_action"
    assert event.extra == {
        "check_name": "forgeflow/lint",
        "check_run_id": "4000000001",
        "external_id": "12/lint",
        "requested_action": "rerun-failed",
        "installation": "77",
    }
    assert isinstance(
        parse("check_suite", {**body, "check_suite": body["check_run"]["check_suite"]}), Ignored
    )


def test_a_check_run_rerequest_keeps_its_external_id() -> None:
    parsed = parse("check_run", fixture("check_run.rerequested.4.json"))
    assert isinstance(parsed, Parsed)
    assert parsed.event.extra["external_id"] == "123456" and parsed.event.extra["installation"]


def test_installation_created_lists_its_repositories() -> None:
    parsed = parse("installation", fixture("installation.created.3.json"))
    assert isinstance(parsed, Parsed)
    event = parsed.event
    assert event.kind is EventKind.INSTALLATION and event.action == "created"
    assert event.extra["installation"] == "1708454" and event.extra["account"] == "packit-service"
    assert event.extra["added"] == "jpopelka/brewutils" and event.extra["selection"] == "all"


def test_installation_repositories_removed() -> None:
    parsed = parse("installation_repositories", fixture("installation_repositories.removed.2.json"))
    assert isinstance(parsed, Parsed)
    assert parsed.event.extra["removed"] == "octocat/Hello-World" and "added" not in parsed.event.extra


def test_an_enterprise_installation_without_an_account_login() -> None:
    body = {
        "action": "suspend",
        "installation": {
            "id": 9,
            "account": {"slug": "big-corp", "html_url": "https://ghe.example.com/enterprises/big-corp"},
            "suspended_at": "2026-01-01T00:00:00Z",
        },
        "sender": {"login": "admin"},
    }
    parsed = parse("installation", body)
    assert isinstance(parsed, Parsed)
    assert parsed.event.instance == "https://ghe.example.com" and parsed.event.extra["suspended"] == "true"
    assert github.guess_event_type(body) == "installation"


def test_app_deliveries_keep_the_installation_id() -> None:
    body = fixture("pull_request.opened.5.json")
    parsed = parse("pull_request", {**body, "installation": {"id": 31}})
    assert isinstance(parsed, Parsed) and parsed.event.extra == {"installation": "31"}
