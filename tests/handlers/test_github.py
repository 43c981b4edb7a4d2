"""The GitHub handler on small hand-written deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from handlers import github
from handlers.base import BadPayload, Delivery, Ignored, Parsed, Ping, hmac_sha256_hex
from service.events import Event, EventKind

SECRET = "github-secret"
SHA_A, SHA_B, SHA_C = "a" * 40, "b" * 40, "c" * 40
ZERO = "0" * 40


def repo(full_name: str = "octo/app") -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "name": name,
        "full_name": full_name,
        "owner": {"login": owner},
        "private": False,
        "html_url": f"https://github.com/{full_name}",
        "clone_url": f"https://github.com/{full_name}.git",
        "default_branch": "main",
    }


def push(**changes: Any) -> dict[str, Any]:
    commit = {"id": SHA_B, "added": ["new.py"], "removed": [], "modified": ["README.md"]}
    body = {
        "ref": "refs/heads/main",
        "before": SHA_A,
        "after": SHA_B,
        "created": False,
        "deleted": False,
        "commits": [commit],
        "head_commit": commit,
        "repository": repo(),
        "pusher": {"name": "alice"},
        "sender": {"login": "alice"},
    }
    return body | changes


def pull(action: str = "opened", head_repo: Any = "octo/app", **pr: Any) -> dict[str, Any]:
    return {
        "action": action,
        "number": 9,
        "pull_request": {
            "number": 9,
            "title": "Speed up",
            "user": {"login": "bob"},
            "head": {"ref": "feature", "sha": SHA_C, "repo": repo(head_repo) if head_repo else None},
            "base": {"ref": "main", "sha": SHA_A, "repo": repo()},
            "draft": False,
            "merged": False,
            "labels": [{"name": "perf"}],
            "html_url": "https://github.com/octo/app/pull/9",
        }
        | pr,
        "repository": repo(),
        "sender": {"login": "bob"},
    }


def deliver(body: Any, event: str, **headers: str) -> Delivery:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Delivery(raw, {"X-GitHub-Event": event, **headers})


def parsed(body: Any, event: str, **headers: str) -> Event:
    result = github.parse(deliver(body, event, **headers))
    assert isinstance(result, Parsed), result
    return result.event


def ignored(body: Any, event: str) -> str:
    result = github.parse(deliver(body, event))
    assert isinstance(result, Ignored), result
    assert result.reason
    return result.reason


# -- verify and delivery ids ------------------------------------------------------------------

BODY = json.dumps(push()).encode()
GOOD = hmac_sha256_hex(SECRET, BODY)


def test_verify_accepts_a_good_signature() -> None:
    assert github.verify(Delivery(BODY, {"X-Hub-Signature-256": "sha256=" + GOOD}), SECRET)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": GOOD},  # no algorithm prefix
        {"X-Hub-Signature-256": "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()},
        {"X-Hub-Signature": "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()},
    ],
)
def test_verify_refuses_a_bad_or_missing_signature(headers: dict[str, str]) -> None:
    assert not github.verify(Delivery(BODY, headers), SECRET)


def test_verify_refuses_a_signature_of_another_body() -> None:
    assert not github.verify(Delivery(BODY + b" ", {"X-Hub-Signature-256": "sha256=" + GOOD}), SECRET)


def test_verify_refuses_everything_without_a_secret() -> None:
    signed = {"X-Hub-Signature-256": "sha256=" + hmac_sha256_hex("", BODY)}
    assert not github.verify(Delivery(BODY, signed), "")


def test_delivery_ids() -> None:
    assert github.delivery_id(Delivery(BODY, {"X-GitHub-Delivery": "72d3162e"})) == "72d3162e"
    assert github.delivery_id(Delivery(BODY)).startswith("sha256-")


# -- bodies -----------------------------------------------------------------------------------


def test_form_encoded_payload_is_accepted() -> None:
    form = urlencode({"payload": json.dumps(push())}).encode()
    content_type = {"Content-Type": "application/x-www-form-urlencoded"}
    assert parsed(form, "push", **content_type) == parsed(push(), "push")


@pytest.mark.parametrize("form", [b"other=1", b"%zz=1&&"])
def test_form_without_a_payload_field(form: bytes) -> None:
    with pytest.raises(BadPayload):
        github.parse(deliver(form, "push", **{"Content-Type": "application/x-www-form-urlencoded"}))


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"\xff\xfe{}", b"", b"{nope"])
def test_bodies_that_are_not_json_objects(body: bytes) -> None:
    with pytest.raises(BadPayload):
        github.parse(deliver(body, "push"))


def test_ping() -> None:
    result = github.parse(deliver({"zen": "Keep it simple.", "hook_id": 1}, "ping"))
    assert isinstance(result, Ping) and result.message == "Keep it simple."


# -- pushes -----------------------------------------------------------------------------------


def test_push_to_a_branch() -> None:
    event = parsed(push(), "push")
    assert event.kind is EventKind.PUSH and event.forge == "github"
    assert event.repository.full_name == "octo/app" and event.instance == "https://github.com"
    assert (event.sha, event.before, event.branch, event.ref) == (SHA_B, SHA_A, "main", "refs/heads/main")
    assert event.sender == "alice" and event.changed_files == ("README.md", "new.py")
    assert Event.from_json(event.to_json()) == event


def test_new_branch_has_no_changed_files() -> None:
    event = parsed(push(created=True, before=ZERO), "push")
    assert event.created and event.before == "" and event.changed_files is None


def test_annotated_tag_runs_on_the_tagged_commit() -> None:
    body = push(ref="refs/tags/v1", after=SHA_A, before=ZERO, created=True, commits=[])
    event = parsed(body, "push")
    assert (event.kind, event.tag, event.sha, event.branch) == (EventKind.TAG, "v1", SHA_B, "")


@pytest.mark.parametrize("ref", ["refs/heads/old", "refs/tags/v0"])
def test_deletion_pushes_are_ignored(ref: str) -> None:
    assert "deleted" in ignored(push(ref=ref, after=ZERO, deleted=True, head_commit=None), "push")


def test_enterprise_instance() -> None:
    body = push(repository=repo() | {"html_url": "https://ghe.example.com/octo/app"})
    assert parsed(body, "push").instance == "https://ghe.example.com"


def test_trimmed_repository_gets_its_urls_from_the_api_url() -> None:
    trimmed = {"name": "app", "full_name": "octo/app", "url": "https://api.github.com/repos/octo/app"}
    event = parsed(pull() | {"repository": trimmed}, "pull_request")
    assert event.repository.clone_url == "https://github.com/octo/app.git"
    ghe = trimmed | {"url": "https://ghe.example.com/api/v3/repos/octo/app"}
    event = parsed(pull() | {"repository": ghe}, "pull_request")
    assert event.repository.clone_url == "https://ghe.example.com/octo/app.git"
    assert event.instance == "https://ghe.example.com"


# -- pull requests, comments, releases, reruns ------------------------------------------------


@pytest.mark.parametrize(
    "action", ["opened", "synchronize", "reopened", "closed", "labeled", "ready_for_review"]
)
def test_pull_request_actions(action: str) -> None:
    event = parsed(pull(action), "pull_request")
    assert event.kind is EventKind.PULL_REQUEST and event.action == action
    pr = event.pull_request
    assert pr is not None and not pr.fork
    assert (pr.number, pr.author, pr.source_branch, pr.target_branch) == (9, "bob", "feature", "main")
    assert (pr.base_sha, pr.head_sha, event.sha, pr.labels) == (SHA_A, SHA_C, SHA_C, ("perf",))
    assert event.ref == "refs/pull/9/head"


def test_merged_pull_request() -> None:
    assert parsed(pull("closed", merged=True), "pull_request").action == "merged"


def test_fork_pull_request() -> None:
    pr = parsed(pull(head_repo="alice/app"), "pull_request").pull_request
    assert pr is not None and pr.fork
    assert pr.source_repo is not None and pr.source_repo.full_name == "alice/app"


def test_deleted_fork_is_still_a_fork() -> None:
    pr = parsed(pull(head_repo=None), "pull_request").pull_request
    assert pr is not None and pr.fork and pr.source_repo is None


@pytest.mark.parametrize("action", ["edited", "assigned", "unlabeled", "converted_to_draft"])
def test_other_pull_request_actions_are_ignored(action: str) -> None:
    assert action in ignored(pull(action), "pull_request")


def test_pull_request_without_its_number() -> None:
    body = pull()
    del body["pull_request"]["number"]
    with pytest.raises(BadPayload, match="number"):
        github.parse(deliver(body, "pull_request"))


def comment(on_pr: bool = True, action: str = "created") -> dict[str, Any]:
    issue: dict[str, Any] = {"number": 9, "title": "Speed up", "user": {"login": "bob"}, "labels": []}
    if on_pr:
        issue["pull_request"] = {"url": "https://api.github.com/repos/octo/app/pulls/9"}
    return {
        "action": action,
        "issue": issue,
        "comment": {"id": 5, "body": "/forgeflow test", "user": {"login": "carol"}},
        "repository": repo(),
        "sender": {"login": "carol"},
    }


def test_comment_on_a_pull_request() -> None:
    event = parsed(comment(), "issue_comment")
    assert event.kind is EventKind.COMMENT and event.sha == ""
    assert event.pull_request is not None and event.pull_request.number == 9
    assert event.comment is not None and (event.comment.id, event.comment.author) == ("5", "carol")


def test_comments_on_issues_and_edits_are_ignored() -> None:
    assert "issue" in ignored(comment(on_pr=False), "issue_comment")
    assert "edited" in ignored(comment(action="edited"), "issue_comment")


def test_release_published() -> None:
    body = {
        "action": "published",
        "release": {"tag_name": "v1", "target_commitish": "main"},
        "repository": repo(),
        "sender": {"login": "alice"},
    }
    event = parsed(body, "release")
    assert (event.kind, event.tag, event.sha) == (EventKind.RELEASE, "v1", "")
    assert "created" in ignored(body | {"action": "created"}, "release")


def test_check_run_rerequested() -> None:
    body = {
        "action": "rerequested",
        "check_run": {"name": "forgeflow/lint", "head_sha": SHA_B, "check_suite": {"head_branch": "main"}},
        "repository": repo(),
        "sender": {"login": "alice"},
    }
    event = parsed(body, "check_run")
    assert (event.kind, event.sha, event.branch) == (EventKind.RERUN, SHA_B, "main")
    assert event.extra == {"check_name": "forgeflow/lint"}


def test_unknown_events_and_a_missing_header_are_ignored() -> None:
    assert "starts nothing" in ignored({"zen": "x"}, "star")
    result = github.parse(Delivery(BODY))
    assert isinstance(result, Ignored) and "X-GitHub-Event" in result.reason
