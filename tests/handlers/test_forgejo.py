"""The Forgejo/Gitea handler on small hand-written deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from handlers import forgejo
from handlers.base import BadPayload, Delivery, Ignored, Parsed, hmac_sha256_hex
from service.events import Event, EventKind

SECRET = "forgejo-secret"
SHA_A, SHA_B, SHA_C = "a" * 40, "b" * 40, "c" * 40
ZERO = "0" * 40
ROOT = "https://forge.example.org"


def repo(full_name: str = "infra/app", repo_id: int = 1) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": repo_id,
        "owner": {"login": owner, "username": owner},
        "name": name,
        "full_name": full_name,
        "private": False,
        "html_url": f"{ROOT}/{full_name}",
        "clone_url": f"{ROOT}/{full_name}.git",
        "default_branch": "main",
    }


def push(**changes: Any) -> dict[str, Any]:
    commit = {"id": SHA_B, "added": ["a.py"], "removed": [], "modified": ["b.py"]}
    body = {
        "ref": "refs/heads/main",
        "before": SHA_A,
        "after": SHA_B,
        "commits": [commit],
        "total_commits": 1,
        "head_commit": commit,
        "repository": repo(),
        "pusher": {"login": "alice"},
        "sender": {"login": "alice"},
    }
    return body | changes


def pull(action: str = "opened", head_repo: Any = "infra/app", **pr: Any) -> dict[str, Any]:
    head: dict[str, Any] = {"ref": "feature", "sha": SHA_C}
    if head_repo is not None:
        head |= {"repo": repo(head_repo, 1 if head_repo == "infra/app" else 2)}
        head["repo_id"] = head["repo"]["id"]
    return {
        "action": action,
        "number": 5,
        "pull_request": {
            "number": 5,
            "title": "Make it faster",
            "user": {"login": "bob"},
            "head": head,
            "base": {"ref": "main", "sha": SHA_A, "repo_id": 1, "repo": repo()},
            "merged": False,
            "draft": False,
            "labels": [{"name": "perf"}],
            "html_url": f"{ROOT}/infra/app/pulls/5",
        }
        | pr,
        "repository": repo(),
        "sender": {"login": "bob"},
    }


def comment(is_pull: bool | None = True, action: str = "created", with_pr: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action": action,
        "issue": {
            "number": 5,
            "title": "Make it faster",
            "user": {"login": "bob"},
            "labels": [],
            "html_url": f"{ROOT}/infra/app/pulls/5",
            "pull_request": {"merged": False} if is_pull is not False else None,
        },
        "comment": {"id": 77, "body": "/forgeflow test", "user": {"login": "carol"}},
        "repository": repo(),
        "sender": {"login": "carol"},
    }
    if is_pull is not None:
        body["is_pull"] = is_pull
    if is_pull and with_pr:
        body["pull_request"] = pull()["pull_request"]
    return body


def deliver(body: Any, event: str, **headers: str) -> Delivery:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Delivery(raw, {"X-Forgejo-Event": event, "X-Gitea-Event": event, **headers})


def parsed(body: Any, event: str, **headers: str) -> Event:
    result = forgejo.parse(deliver(body, event, **headers))
    assert isinstance(result, Parsed), result
    return result.event


def ignored(body: Any, event: str) -> str:
    result = forgejo.parse(deliver(body, event))
    assert isinstance(result, Ignored), result
    assert result.reason
    return result.reason


# -- verify and delivery ids ------------------------------------------------------------------

BODY = json.dumps(push()).encode()
GOOD = hmac_sha256_hex(SECRET, BODY)
SHA1 = hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forgejo-Signature": GOOD},
        {"X-Gitea-Signature": GOOD.upper()},
        {"X-Hub-Signature-256": "sha256=" + GOOD},
        {
            "X-Forgejo-Signature": GOOD,
            "X-Gitea-Signature": GOOD,
            "X-Hub-Signature-256": "sha256=" + GOOD,
        },
    ],
)
def test_verify_accepts_a_good_signature(headers: dict[str, str]) -> None:
    assert forgejo.verify(Delivery(BODY, headers), SECRET)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Forgejo-Signature": "0" * 64},
        {"X-Gitea-Signature": SHA1},  # wrong algorithm
        {"X-Hub-Signature-256": "sha1=" + SHA1},  # wrong algorithm
        {"X-Hub-Signature-256": GOOD},  # no "sha256=" prefix
        {"X-Hub-Signature": "sha1=" + SHA1},  # SHA-1 alone is not enough
        {"X-Forgejo-Signature": GOOD, "X-Gitea-Signature": "0" * 64},  # one of them is wrong
    ],
)
def test_verify_refuses_a_bad_or_missing_signature(headers: dict[str, str]) -> None:
    assert not forgejo.verify(Delivery(BODY, headers), SECRET)


def test_verify_refuses_everything_without_a_secret() -> None:
    assert not forgejo.verify(Delivery(BODY, {"X-Forgejo-Signature": hmac_sha256_hex("", BODY)}), "")


@pytest.mark.parametrize("header", ["X-Forgejo-Delivery", "X-Gitea-Delivery", "X-GitHub-Delivery"])
def test_delivery_id_headers(header: str) -> None:
    assert forgejo.delivery_id(Delivery(BODY, {header: "d-1"})) == "d-1"


def test_delivery_id_falls_back_to_a_body_hash() -> None:
    assert forgejo.delivery_id(Delivery(BODY)).startswith("sha256-")


def test_event_name_from_any_of_the_headers() -> None:
    assert isinstance(forgejo.parse(Delivery(BODY, {"X-GitHub-Event": "push"})), Parsed)
    result = forgejo.parse(Delivery(BODY))
    assert isinstance(result, Ignored) and "no X-Forgejo-Event" in result.reason


# -- pushes and tags --------------------------------------------------------------------------


def test_push_to_a_branch() -> None:
    event = parsed(push(), "push")
    assert event.kind is EventKind.PUSH and event.forge == "forgejo"
    assert event.repository.full_name == "infra/app" and event.instance == ROOT
    assert (event.sha, event.before, event.branch) == (SHA_B, SHA_A, "main")
    assert event.sender == "alice" and event.changed_files == ("a.py", "b.py")
    assert Event.from_json(event.to_json()) == event


def test_changed_files_need_the_total_commit_count() -> None:
    assert parsed(push(total_commits=None), "push").changed_files is None
    assert parsed(push(total_commits=9), "push").changed_files is None


def test_tag_push_is_a_tag_on_the_tagged_commit() -> None:
    body = push(ref="refs/tags/v1", before=ZERO, after=SHA_A, commits=[], total_commits=0)
    event = parsed(body, "push")
    assert event.kind is EventKind.TAG and event.tag == "v1" and event.sha == SHA_B
    assert event.created


@pytest.mark.parametrize("ref", ["refs/heads/old", "refs/tags/v0"])
def test_deletion_pushes_are_ignored(ref: str) -> None:
    assert "deleted" in ignored(push(ref=ref, after=ZERO, head_commit=None), "push")


@pytest.mark.parametrize("event", ["create", "delete"])
def test_create_and_delete_are_duplicates_of_the_push(event: str) -> None:
    body = {"ref": "v1", "ref_type": "tag", "sha": SHA_A, "repository": repo()}
    assert "push" in ignored(body, event)


# -- pull requests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("opened", "opened"),
        ("reopened", "reopened"),
        ("synchronized", "synchronize"),
        ("closed", "closed"),
        ("label_updated", "labeled"),
    ],
)
def test_pull_request_actions(action: str, expected: str) -> None:
    event = parsed(pull(action), "pull_request")
    assert event.kind is EventKind.PULL_REQUEST and event.action == expected
    pr = event.pull_request
    assert pr is not None and not pr.fork
    assert (pr.number, pr.title, pr.author) == (5, "Make it faster", "bob")
    assert (pr.source_branch, pr.target_branch, pr.base_sha, pr.head_sha) == (
        "feature",
        "main",
        SHA_A,
        SHA_C,
    )
    assert pr.labels == ("perf",) and pr.url.endswith("/pulls/5") and event.sha == SHA_C
    assert event.ref == "refs/pull/5/head"


def test_merged_pull_request() -> None:
    assert parsed(pull("closed", merged=True), "pull_request").action == "merged"


def test_fork_pull_request() -> None:
    pr = parsed(pull(head_repo="alice/app"), "pull_request").pull_request
    assert pr is not None and pr.fork
    assert pr.source_repo is not None and pr.source_repo.full_name == "alice/app"


def test_deleted_fork_is_still_a_fork() -> None:
    pr = parsed(pull(head_repo=None), "pull_request").pull_request
    assert pr is not None and pr.fork and pr.source_repo is None


def test_work_in_progress_title_is_a_draft() -> None:
    pr = parsed(pull(title="WIP: not yet"), "pull_request").pull_request
    assert pr is not None and pr.draft


@pytest.mark.parametrize("action", ["edited", "assigned", "label_cleared", "milestoned"])
def test_other_pull_request_actions_are_ignored(action: str) -> None:
    assert action in ignored(pull(action), "pull_request")


def test_fine_event_type_in_the_event_header() -> None:
    assert parsed(pull("synchronized"), "pull_request_sync").action == "synchronize"


# -- comments, releases -----------------------------------------------------------------------


def test_comment_on_a_pull_request() -> None:
    headers = {"X-Forgejo-Event-Type": "pull_request_comment", "X-GitHub-Event": "issue_comment"}
    event = parsed(comment(), "issue_comment", **headers)
    assert event.kind is EventKind.COMMENT and event.kind is not EventKind.PUSH
    assert event.sha == SHA_C  # recent Forgejo sends the pull request along
    assert event.pull_request is not None and event.pull_request.number == 5
    assert event.comment is not None and event.comment.body == "/forgeflow test"
    assert event.comment.author == "carol" and event.sender == "carol"


def test_old_gitea_comment_without_is_pull() -> None:
    event = parsed(comment(is_pull=None), "issue_comment")
    assert event.kind is EventKind.COMMENT and event.sha == ""


def test_comment_without_the_pull_request_object_resolves_sha_later() -> None:
    assert parsed(comment(with_pr=False), "issue_comment").sha == ""


def test_comments_on_issues_and_edits_are_ignored() -> None:
    assert "issue" in ignored(comment(is_pull=False), "issue_comment")
    assert "edited" in ignored(comment(action="edited"), "issue_comment")


def test_release_published() -> None:
    body = {
        "action": "published",
        "release": {"tag_name": "v1.2", "target_commitish": "main", "draft": False},
        "repository": repo(),
        "sender": {"login": "alice"},
    }
    event = parsed(body, "release")
    assert (event.kind, event.tag, event.ref, event.sha) == (
        EventKind.RELEASE,
        "v1.2",
        "refs/tags/v1.2",
        "",
    )
    body["release"]["target_commitish"] = SHA_A
    assert parsed(body, "release").sha == SHA_A
    assert "updated" in ignored(body | {"action": "updated"}, "release")


# -- bad payloads -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"\xff\xfe{}", b"", b"{nope"])
def test_bodies_that_are_not_json_objects(body: bytes) -> None:
    with pytest.raises(BadPayload):
        forgejo.parse(deliver(body, "push"))


def test_pull_request_without_its_number() -> None:
    body = pull()
    del body["number"], body["pull_request"]["number"]
    with pytest.raises(BadPayload, match="number"):
        forgejo.parse(deliver(body, "pull_request"))


def test_push_without_a_repository() -> None:
    body = push()
    del body["repository"]
    with pytest.raises(BadPayload, match="repository"):
        forgejo.parse(deliver(body, "push"))
