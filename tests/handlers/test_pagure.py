"""The Pagure handler on small hand-written deliveries, in all three envelopes."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from handlers import pagure
from handlers.base import BadPayload, Delivery, Ignored, Parsed, hmac_sha256_hex
from service.events import Event, EventKind

SECRET = "pagure-hook-key"
SHA_A, SHA_B = "a" * 40, "b" * 40
DISTGIT = "https://src.fedoraproject.org"


def project(fullname: str = "rpms/python-foo", root: str = DISTGIT) -> dict[str, Any]:
    namespace, _, name = fullname.rpartition("/")
    url_path = fullname.replace("forks/", "fork/", 1)
    return {
        "fullname": fullname,
        "name": name,
        "namespace": namespace.split("/")[-1] or None,
        "url_path": url_path,
        "full_url": f"{root}/{url_path}",
        "parent": None,
    }


def pull(fork: bool = True, status: str = "Open", **pr: Any) -> dict[str, Any]:
    return {
        "id": 42,
        "title": "Update to 1.2",
        "user": {"name": "alice"},
        "branch": "rawhide",
        "branch_from": "update-1.2",
        "commit_start": SHA_A,
        "commit_stop": SHA_B,
        "status": status,
        "tags": ["ci"],
        "full_url": f"{DISTGIT}/rpms/python-foo/pull-request/42",
        "project": project(),
        "repo_from": project("forks/alice/rpms/python-foo") if fork else project(),
        "remote_git": None,
        "comments": [],
    } | pr


def pr_message(**pr: Any) -> dict[str, Any]:
    return {"agent": "alice", "pullrequest": pull(**pr)}


def receive(**changes: Any) -> dict[str, Any]:
    return {
        "agent": "bob",
        "branch": "rawhide",
        "start_commit": SHA_A,
        "end_commit": SHA_B,
        "old_commit": SHA_A,
        "total_commits": 1,
        "forced": False,
        "repo": project(),
    } | changes


def webhook(topic: str, msg: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    """What a Pagure project web-hook POSTs (pagure/lib/tasks_services.py)."""
    msg = msg | {"pagure_instance": DISTGIT, "project_fullname": "rpms/python-foo"}
    return {"topic": topic, "msg": msg, "timestamp": 1, "msg_id": "2024-abcd", "i": 1} | envelope


def bus_message(topic: str, msg: dict[str, Any]) -> dict[str, Any]:
    """A full fedora-messaging message, as packit-service-fedmsg stores it."""
    full = f"org.fedoraproject.prod.pagure.{topic}"
    return {"topic": full, "body": msg, "headers": {"sent-at": "x"}, "id": "uuid-1", "queue": None}


def flattened(topic: str, msg: dict[str, Any]) -> dict[str, Any]:
    """A message body with its topic merged in."""
    return msg | {"topic": f"org.fedoraproject.prod.pagure.{topic}"}


def deliver(body: Any, topic: str = "", **headers: str) -> Delivery:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Delivery(raw, {"X-Pagure-Topic": topic, **headers} if topic else headers)


def parsed(body: Any, topic: str = "", **headers: str) -> Event:
    result = pagure.parse(deliver(body, topic, **headers))
    assert isinstance(result, Parsed), result
    return result.event


def ignored(body: Any, topic: str = "") -> str:
    result = pagure.parse(deliver(body, topic))
    assert isinstance(result, Ignored), result
    assert result.reason
    return result.reason


# -- verify and delivery ids ------------------------------------------------------------------

BODY = json.dumps(webhook("git.receive", receive()), sort_keys=True).encode()
SHA256 = hmac_sha256_hex(SECRET, BODY)
SHA1 = hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()


def test_verify_accepts_the_sha256_signature() -> None:
    assert pagure.verify(Delivery(BODY, {"X-Pagure-Signature-256": SHA256}), SECRET)
    both = {"X-Pagure-Signature-256": SHA256, "X-Pagure-Signature": SHA1}
    assert pagure.verify(Delivery(BODY, both), SECRET)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Pagure-Signature": SHA1},  # legacy SHA-1 alone: refused
        {"X-Pagure-Signature-256": SHA1},  # wrong algorithm
        {"X-Pagure-Signature-256": "0" * 64},
        {"X-Pagure-Signature-256": "sha256=" + SHA256},  # Pagure sends bare hex
    ],
)
def test_verify_refuses_anything_else(headers: dict[str, str]) -> None:
    assert not pagure.verify(Delivery(BODY, headers), SECRET)


def test_verify_refuses_everything_without_a_secret() -> None:
    signed = {"X-Pagure-Signature-256": hmac_sha256_hex("", BODY)}
    assert not pagure.verify(Delivery(BODY, signed), "")


def test_delivery_id_is_the_message_id() -> None:
    assert pagure.delivery_id(deliver(webhook("git.receive", receive()))) == "2024-abcd"
    assert pagure.delivery_id(deliver(bus_message("git.receive", receive()))) == "uuid-1"


@pytest.mark.parametrize("body", [flattened("git.receive", receive()), b"not json", b"\xff", b"[]"])
def test_delivery_id_falls_back_to_a_body_hash(body: Any) -> None:
    assert pagure.delivery_id(deliver(body)).startswith("sha256-")


# -- envelopes, topics, instances -------------------------------------------------------------


@pytest.mark.parametrize("wrap", [webhook, bus_message, flattened])
def test_every_envelope_gives_the_same_push(wrap: Any) -> None:
    event = parsed(wrap("git.receive", receive()))
    assert event.kind is EventKind.PUSH and event.forge == "pagure"
    assert (event.repository.namespace, event.repository.name) == ("rpms", "python-foo")
    assert event.repository.clone_url == f"{DISTGIT}/rpms/python-foo.git"
    assert event.repository.html_url == f"{DISTGIT}/rpms/python-foo"
    assert (event.sha, event.before, event.branch, event.ref) == (
        SHA_B,
        SHA_A,
        "rawhide",
        "refs/heads/rawhide",
    )
    assert event.instance == DISTGIT and event.sender == "bob"
    assert Event.from_json(event.to_json()) == event


def test_the_signed_body_topic_wins_over_the_header() -> None:
    body = webhook("git.receive", receive())
    assert parsed(body, "pull-request.new").kind is EventKind.PUSH


def test_the_header_names_the_topic_when_the_body_does_not() -> None:
    assert parsed(receive(), "git.receive").kind is EventKind.PUSH
    assert "topic" in ignored(receive())


def test_instance_from_the_web_hook() -> None:
    msg = receive(repo=project(root="https://pagure.io"))
    body = webhook("git.receive", msg) | {"msg": msg | {"pagure_instance": "https://pagure.io"}}
    assert parsed(body).instance == "https://pagure.io"
    assert parsed(receive(), "git.receive", **{"X-Pagure": "https://pagure.example"}).instance == (
        "https://pagure.example"
    )


def test_instance_from_urls_then_from_the_bus() -> None:
    assert parsed(flattened("git.receive", receive(repo=project(root="https://pagure.io")))).instance == (
        "https://pagure.io"
    )
    bare = {"fullname": "rpms/buildah", "name": "buildah"}
    assert parsed(flattened("git.receive", receive(repo=bare))).instance == DISTGIT
    io_topic = receive(repo=bare) | {"topic": "io.pagure.prod.pagure.git.receive"}
    assert parsed(io_topic).instance == "https://pagure.io"


def test_top_level_project_has_no_namespace() -> None:
    repo = parsed(flattened("git.receive", receive(repo=project("pagure")))).repository
    assert (repo.namespace, repo.name, repo.clone_url) == ("", "pagure", f"{DISTGIT}/pagure.git")


# -- git --------------------------------------------------------------------------------------


def test_push_to_a_fork() -> None:
    repo = parsed(flattened("git.receive", receive(repo=project("forks/alice/rpms/python-foo")))).repository
    assert (repo.namespace, repo.name) == ("forks/alice/rpms", "python-foo")
    assert repo.clone_url == f"{DISTGIT}/forks/alice/rpms/python-foo.git"
    assert repo.html_url == f"{DISTGIT}/fork/alice/rpms/python-foo"


def test_moved_tag_arrives_as_a_full_ref() -> None:
    event = parsed(flattened("git.receive", receive(branch="refs/tags/v1")))
    assert (event.kind, event.tag, event.ref, event.branch) == (
        EventKind.TAG,
        "v1",
        "refs/tags/v1",
        "",
    )


def test_new_branch() -> None:
    event = parsed(flattened("git.receive", receive(old_commit="^" + "0" * 40)))
    assert event.created and event.before == ""


def test_tag_creation() -> None:
    msg = {"agent": "bob", "repo": project(), "tag": "v1.2", "rev": SHA_A, "authors": []}
    event = parsed(flattened("git.tag.creation", msg))
    assert (event.kind, event.tag, event.sha, event.ref) == (
        EventKind.TAG,
        "v1.2",
        SHA_A,
        "refs/tags/v1.2",
    )


@pytest.mark.parametrize("topic", ["git.branch.creation", "git.branch.deletion", "git.tag.deletion"])
def test_ref_messages_acted_on_elsewhere_or_not_at_all(topic: str) -> None:
    assert ignored(flattened(topic, {"repo": project(), "branch": "x", "rev": SHA_A}))


# -- pull requests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "action"),
    [
        ("pull-request.new", "opened"),
        ("pull-request.updated", "synchronize"),
        ("pull-request.rebased", "synchronize"),
        ("pull-request.reopened", "reopened"),
        ("pull-request.closed", "closed"),
    ],
)
def test_pull_request_topics(topic: str, action: str) -> None:
    event = parsed(flattened(topic, pr_message(status="Closed")))
    assert event.kind is EventKind.PULL_REQUEST and event.action == action
    pr = event.pull_request
    assert pr is not None
    assert (pr.number, pr.title, pr.author, pr.labels) == (42, "Update to 1.2", "alice", ("ci",))
    assert (pr.source_branch, pr.target_branch, pr.head_sha, event.sha) == (
        "update-1.2",
        "rawhide",
        SHA_B,
        SHA_B,
    )
    assert event.repository.full_name == "rpms/python-foo" and event.ref == "refs/pull/42/head"
    assert pr.url == f"{DISTGIT}/rpms/python-foo/pull-request/42"


def test_fork_and_same_project_pull_requests() -> None:
    pr = parsed(flattened("pull-request.new", pr_message())).pull_request
    assert pr is not None and pr.fork
    assert pr.source_repo is not None
    assert pr.source_repo.clone_url == f"{DISTGIT}/forks/alice/rpms/python-foo.git"
    same = parsed(flattened("pull-request.new", pr_message(fork=False))).pull_request
    assert same is not None and not same.fork


def test_remote_pull_request_is_a_fork() -> None:
    msg = pr_message(repo_from=None, remote_git="https://github.com/alice/python-foo.git")
    pr = parsed(flattened("pull-request.new", msg)).pull_request
    assert pr is not None and pr.fork
    assert pr.source_repo is not None and pr.source_repo.clone_url.startswith("https://github.com/")


def test_merged_pull_request() -> None:
    event = parsed(flattened("pull-request.closed", pr_message(status="Merged")))
    assert event.action == "merged"
    merged_flag = pr_message() | {"merged": True}
    assert parsed(flattened("pull-request.closed", merged_flag)).action == "merged"


def test_tag_added_is_labeled() -> None:
    msg = {"agent": "alice", "pull_request": pull(), "tags": ["ci"]}
    assert parsed(flattened("pull-request.tag.added", msg)).action == "labeled"


def test_comment_is_the_last_one() -> None:
    comments = [
        {"id": 1, "comment": "first", "user": {"name": "bob"}, "notification": False},
        {"id": 2, "comment": "/forgeflow test", "user": {"name": "carol"}, "notification": False},
    ]
    event = parsed(webhook("pull-request.comment.added", pr_message(comments=comments)))
    assert event.kind is EventKind.COMMENT and event.sha == SHA_B
    assert event.comment is not None
    assert (event.comment.id, event.comment.body, event.comment.author) == (
        "2",
        "/forgeflow test",
        "carol",
    )
    assert event.comment.url.endswith("/pull-request/42#comment-2")


def test_pagure_notification_comments_are_ignored() -> None:
    comments = [{"id": 3, "comment": "**1 new commit added**", "user": {"name": "x"}, "notification": True}]
    msg = pr_message(comments=comments)
    assert "notification" in ignored(webhook("pull-request.comment.added", msg))


def test_other_topics_are_ignored() -> None:
    assert "starts nothing" in ignored(flattened("pull-request.flag.updated", pr_message()))


# -- bad payloads -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"\xff\xfe{}", b"", b"{nope"])
def test_bodies_that_are_not_json_objects(body: bytes) -> None:
    with pytest.raises(BadPayload):
        pagure.parse(deliver(body, "git.receive"))


def test_pull_request_without_its_number() -> None:
    msg = pr_message()
    del msg["pullrequest"]["id"]
    with pytest.raises(BadPayload, match="id"):
        pagure.parse(deliver(flattened("pull-request.new", msg)))


def test_pull_request_message_without_a_pull_request() -> None:
    with pytest.raises(BadPayload, match="pullrequest"):
        pagure.parse(deliver(flattened("pull-request.new", {"agent": "x"})))


def test_comment_message_without_comments() -> None:
    with pytest.raises(BadPayload, match="comments"):
        pagure.parse(deliver(flattened("pull-request.comment.added", pr_message())))


def test_fork_named_only_by_its_parts() -> None:
    parts = {"name": "python-foo", "namespace": "rpms", "user": {"name": "alice"}, "parent": project()}
    repo = parsed(flattened("git.receive", receive(repo=parts))).repository
    assert repo.full_name == "forks/alice/rpms/python-foo"
    assert repo.html_url == f"{DISTGIT}/fork/alice/rpms/python-foo"
