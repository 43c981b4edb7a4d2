"""The GitLab handler on small hand-written deliveries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from handlers import gitlab
from handlers.base import BadPayload, Delivery, Ignored, Parsed, hmac_sha256_hex
from service.events import Event, EventKind

SECRET = "s3cret-token"
SHA_A, SHA_B, SHA_C = "a" * 40, "b" * 40, "c" * 40
ZERO = "0" * 40


def project(path: str = "group/sub/app", root: str = "https://gitlab.example.com") -> dict[str, Any]:
    return {
        "id": 7,
        "name": path.rsplit("/", 1)[-1].title(),
        "web_url": f"{root}/{path}",
        "git_http_url": f"{root}/{path}.git",
        "path_with_namespace": path,
        "default_branch": "main",
        "visibility_level": 0,
    }


def push(**changes: Any) -> dict[str, Any]:
    body = {
        "object_kind": "push",
        "before": SHA_A,
        "after": SHA_B,
        "ref": "refs/heads/main",
        "checkout_sha": SHA_B,
        "user_username": "alice",
        "project": project(),
        "commits": [
            {"id": SHA_B, "added": ["new.txt"], "modified": ["README.md"], "removed": []},
        ],
        "total_commits_count": 1,
    }
    return body | changes


def merge_request(action: str | None = "open", **attrs: Any) -> dict[str, Any]:
    source = project("alice/app") if attrs.pop("fork", False) else project()
    oa = {
        "iid": 12,
        "title": "Add a feature",
        "action": action,
        "source_branch": "feature",
        "target_branch": "main",
        "source_project_id": 8 if source["path_with_namespace"] == "alice/app" else 7,
        "target_project_id": 7,
        "source": source,
        "target": project(),
        "last_commit": {"id": SHA_C},
        "url": "https://gitlab.example.com/group/sub/app/-/merge_requests/12",
        "draft": False,
    } | attrs
    return {
        "object_kind": "merge_request",
        "user": {"username": "bob"},
        "project": project(),
        "object_attributes": oa,
        "labels": [{"title": "ci"}],
        "changes": {},
    }


def note(noteable: str = "MergeRequest", **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object_kind": "note",
        "user": {"username": "carol"},
        "project": project(),
        "object_attributes": {
            "id": 99,
            "note": "/forgeflow test",
            "noteable_type": noteable,
            "url": "https://gitlab.example.com/group/sub/app/-/merge_requests/12#note_99",
        }
        | attrs,
    }
    if noteable == "MergeRequest":
        body["merge_request"] = merge_request()["object_attributes"]
    return body


def deliver(body: Any, event: str, **headers: str) -> Delivery:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Delivery(raw, {"X-Gitlab-Event": event, **headers})


def parsed(body: Any, event: str, **headers: str) -> Event:
    result = gitlab.parse(deliver(body, event, **headers))
    assert isinstance(result, Parsed), result
    return result.event


def ignored(body: Any, event: str) -> str:
    result = gitlab.parse(deliver(body, event))
    assert isinstance(result, Ignored), result
    assert result.reason
    return result.reason


# -- verify and delivery ids ------------------------------------------------------------------


def test_verify_accepts_the_configured_token() -> None:
    assert gitlab.verify(deliver(push(), "Push Hook", **{"X-Gitlab-Token": SECRET}), SECRET)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Gitlab-Token": "wrong"},
        {"X-Gitlab-Token": SECRET.upper()},
        {"X-Gitlab-Token": SECRET + " "},
        {},
        # A token is not a signature: an HMAC of the body is not accepted in its place.
        {"X-Gitlab-Token": hmac_sha256_hex(SECRET, json.dumps(push()).encode())},
    ],
)
def test_verify_refuses_anything_else(headers: dict[str, str]) -> None:
    assert not gitlab.verify(deliver(push(), "Push Hook", **headers), SECRET)


def test_verify_refuses_everything_without_a_secret() -> None:
    assert not gitlab.verify(deliver(push(), "Push Hook", **{"X-Gitlab-Token": ""}), "")


def test_delivery_id_prefers_the_idempotency_key() -> None:
    headers = {"Idempotency-Key": "idem-1", "X-Gitlab-Event-UUID": "uuid-1"}
    assert gitlab.delivery_id(deliver(push(), "Push Hook", **headers)) == "idem-1"
    uuid_only = deliver(push(), "Push Hook", **{"X-Gitlab-Event-UUID": "uuid-1"})
    assert gitlab.delivery_id(uuid_only) == "uuid-1"


def test_delivery_id_falls_back_to_a_body_hash() -> None:
    first = gitlab.delivery_id(deliver(push(), "Push Hook"))
    assert first.startswith("sha256-") and first == gitlab.delivery_id(deliver(push(), "Push Hook"))
    assert first != gitlab.delivery_id(deliver(push(after=SHA_C), "Push Hook"))


# -- pushes and tags --------------------------------------------------------------------------


def test_push_to_a_branch_in_nested_groups() -> None:
    event = parsed(push(), "Push Hook")
    assert event.kind is EventKind.PUSH
    assert (event.repository.namespace, event.repository.name) == ("group/sub", "app")
    assert event.repository.full_name == "group/sub/app"
    assert event.repository.clone_url == "https://gitlab.example.com/group/sub/app.git"
    assert event.repository.private and event.repository.default_branch == "main"
    assert event.instance == "https://gitlab.example.com"
    assert (event.sha, event.before, event.branch, event.ref) == (
        SHA_B,
        SHA_A,
        "main",
        "refs/heads/main",
    )
    assert event.sender == "alice"
    assert event.changed_files == ("README.md", "new.txt")
    assert Event.from_json(event.to_json()) == event


def test_self_managed_instance_under_a_path_prefix() -> None:
    body = push(project=project("team/app", root="https://example.org/gitlab"))
    assert parsed(body, "Push Hook").instance == "https://example.org/gitlab"


def test_the_instance_header_wins_when_present() -> None:
    event = parsed(push(), "Push Hook", **{"X-Gitlab-Instance": "https://gitlab.internal/"})
    assert event.instance == "https://gitlab.internal"


def test_truncated_commit_lists_give_no_changed_files() -> None:
    assert parsed(push(total_commits_count=25), "Push Hook").changed_files is None


def test_new_branch() -> None:
    event = parsed(push(before=ZERO), "Push Hook")
    assert event.created and event.before == "" and event.changed_files is None


@pytest.mark.parametrize(("event", "ref"), [("Push Hook", "refs/heads/x"), ("Tag Push Hook", "refs/tags/v1")])
def test_deletions_are_ignored(event: str, ref: str) -> None:
    body = push(ref=ref, after=ZERO, checkout_sha=None, commits=[], total_commits_count=0)
    assert "deleted" in ignored(body, event)


def test_annotated_tag_runs_on_the_commit_not_the_tag_object() -> None:
    body = push(object_kind="tag_push", ref="refs/tags/v1.0", before=ZERO, after=SHA_A)
    event = parsed(body, "Tag Push Hook")
    assert event.kind is EventKind.TAG
    assert (event.tag, event.ref, event.sha, event.branch) == ("v1.0", "refs/tags/v1.0", SHA_B, "")


def test_system_hook_dispatches_on_object_kind() -> None:
    assert parsed(push(), "System Hook").kind is EventKind.PUSH
    assert "starts nothing" in ignored({"object_kind": "project_create"}, "System Hook")


# -- merge requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "expected"),
    [("open", "opened"), ("reopen", "reopened"), ("close", "closed"), ("merge", "merged")],
)
def test_merge_request_actions(action: str, expected: str) -> None:
    event = parsed(merge_request(action), "Merge Request Hook")
    assert event.kind is EventKind.PULL_REQUEST and event.action == expected
    pr = event.pull_request
    assert pr is not None
    assert (pr.number, pr.source_branch, pr.target_branch) == (12, "feature", "main")
    assert (pr.head_sha, event.sha, pr.labels, pr.fork) == (SHA_C, SHA_C, ("ci",), False)
    assert event.ref == "refs/merge-requests/12/head" and event.branch == "feature"
    assert pr.url.endswith("/merge_requests/12") and event.sender == "bob"


def test_fork_merge_request() -> None:
    pr = parsed(merge_request(fork=True), "Merge Request Hook").pull_request
    assert pr is not None and pr.fork
    assert pr.source_repo is not None and pr.source_repo.full_name == "alice/app"


def test_draft_merge_request() -> None:
    pr = parsed(merge_request(draft=True), "Merge Request Hook").pull_request
    assert pr is not None and pr.draft


def test_update_with_oldrev_is_new_commits() -> None:
    event = parsed(merge_request("update", oldrev=SHA_A), "Merge Request Hook")
    assert (event.action, event.before, event.sha) == ("synchronize", SHA_A, SHA_C)


def test_update_without_oldrev_is_ignored() -> None:
    body = merge_request("update")
    body["changes"] = {"title": {"previous": "a", "current": "b"}, "updated_at": {}}
    assert "without new commits (title)" in ignored(body, "Merge Request Hook")


def test_labels_added_is_labeled_but_labels_removed_is_ignored() -> None:
    body = merge_request("update")
    body["changes"] = {"labels": {"previous": [], "current": [{"title": "ci"}]}}
    assert parsed(body, "Merge Request Hook").action == "labeled"
    body["changes"] = {"labels": {"previous": [{"title": "ci"}], "current": []}}
    assert "labels" in ignored(body, "Merge Request Hook")


def test_draft_to_ready_is_ready_for_review() -> None:
    body = merge_request("update")
    body["changes"] = {"draft": {"previous": True, "current": False}}
    assert parsed(body, "Merge Request Hook").action == "ready_for_review"


@pytest.mark.parametrize("action", ["approved", "unapproved", None])
def test_other_merge_request_actions_are_ignored(action: str | None) -> None:
    assert ignored(merge_request(action), "Merge Request Hook")


# -- notes, releases, the rest ----------------------------------------------------------------


def test_note_on_a_merge_request_is_a_comment() -> None:
    event = parsed(note(), "Note Hook")
    assert event.kind is EventKind.COMMENT
    assert event.sha == SHA_C and event.sender == "carol"
    assert event.pull_request is not None and event.pull_request.number == 12
    assert event.comment is not None
    assert (event.comment.id, event.comment.body, event.comment.author) == (
        "99",
        "/forgeflow test",
        "carol",
    )


@pytest.mark.parametrize("noteable", ["Issue", "Commit", "Snippet"])
def test_notes_elsewhere_are_ignored(noteable: str) -> None:
    assert noteable in ignored(note(noteable), "Note Hook")


def test_system_and_edited_notes_are_ignored() -> None:
    assert "system" in ignored(note(system=True), "Note Hook")
    assert "update" in ignored(note(action="update"), "Note Hook")


def test_release_create() -> None:
    body = {
        "object_kind": "release",
        "action": "create",
        "tag": "v2.0",
        "project": project(),
        "commit": {"id": SHA_A},
        "url": "https://gitlab.example.com/group/sub/app/-/releases/v2.0",
    }
    event = parsed(body, "Release Hook")
    assert (event.kind, event.tag, event.ref, event.sha) == (
        EventKind.RELEASE,
        "v2.0",
        "refs/tags/v2.0",
        SHA_A,
    )
    assert "update" in ignored(body | {"action": "update"}, "Release Hook")


@pytest.mark.parametrize("event", ["Pipeline Hook", "Job Hook", "Issue Hook", "Wiki Page Hook"])
def test_unsupported_hooks_are_ignored(event: str) -> None:
    assert event in ignored({"object_kind": "whatever"}, event)


# -- bad payloads -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"\xff\xfe{}", b"", b"   ", b"{nope"])
def test_bodies_that_are_not_json_objects(body: bytes) -> None:
    with pytest.raises(BadPayload):
        gitlab.parse(deliver(body, "Push Hook"))


def test_merge_request_without_its_number() -> None:
    body = merge_request()
    del body["object_attributes"]["iid"]
    with pytest.raises(BadPayload, match="iid"):
        gitlab.parse(deliver(body, "Merge Request Hook"))


def test_push_without_a_project_path() -> None:
    with pytest.raises(BadPayload, match="path_with_namespace"):
        gitlab.parse(deliver(push(project={"name": "app"}), "Push Hook"))
