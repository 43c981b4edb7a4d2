"""Every real payload of ../shared/fixtures/webhooks goes through its forge's handler.

Each file becomes a delivery with the event header its ``index.json`` names (plus the real
headers ``manifest.json`` kept, where it kept them). ``parse`` must answer Parsed (a valid,
JSON-round-tripping Event), Ignored (with a reason) or Ping, never raise; and what it answers
must match what the file is (``EVENT.LABEL.N.json`` and the manifest's facts about it).
The corpus lives beside the project; without it these tests skip, except under ``CI=true``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import handlers
from handlers.base import Delivery, Ignored, Parsed, Ping, WebhookError, hmac_sha256_hex
from service.events import Event, EventKind
from service.jobs.triggers import PULL_REQUEST_TYPES
from tests.support.shared import shared_fixtures

FIXTURES = shared_fixtures() / "webhooks"
FORGES = ("github", "gitlab", "forgejo", "pagure")
SECRET = "conformance-secret"

IGNORED = ("ignored", "")
PING = ("ping", "")
PR = EventKind.PULL_REQUEST.value


def load_cases() -> list[Any]:
    cases = []
    for forge in FORGES:
        folder = FIXTURES / forge
        if not (folder / "index.json").is_file():
            continue
        index = json.loads((folder / "index.json").read_text())
        manifest = json.loads((folder / "manifest.json").read_text())
        meta = {entry["file"]: entry for entry in manifest["files"]}
        for name in sorted(index):
            case = (forge, name, manifest["header"], index[name], meta.get(name, {}))
            cases.append(pytest.param(*case, id=f"{forge}/{name}"))
    return cases


def or_skip(cases: list[Any]) -> list[Any]:
    """The cases, or one skipped case naming the missing corpus (CI fails on it elsewhere)."""
    if cases:
        return cases
    reason = f"webhook fixture corpus not found at {FIXTURES} (see ../shared/fixtures)"
    return [pytest.param(None, None, None, None, None, marks=pytest.mark.skip(reason), id="none")]


CASES = load_cases()


def test_corpus_is_present() -> None:
    missing = [f for f in FORGES if not (FIXTURES / f / "index.json").is_file()]
    if not missing:
        return
    message = f"webhook fixtures missing for {', '.join(missing)} under {FIXTURES}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def test_the_table_dispatches_every_forge() -> None:
    for forge in FORGES:
        handler = handlers.handler_for(forge)
        assert handler is not None and handler.name == forge
    assert handlers.handler_for("sourcehut") is None


def delivery_for(path: Path, header: str, event: str, meta: dict[str, Any]) -> Delivery:
    headers = dict(meta.get("captured_request_headers") or {})
    headers = {k: v for k, v in headers.items() if k.lower() != header.lower()}
    headers[header] = event
    return Delivery(path.read_bytes(), headers)


def sign(forge: str, delivery: Delivery, secret: str) -> Delivery:
    """The delivery as its forge would send it signed with ``secret``."""
    digest = hmac_sha256_hex(secret, delivery.body)
    extra = {
        "github": {"X-Hub-Signature-256": "sha256=" + digest},
        "gitlab": {"X-Gitlab-Token": secret},
        "forgejo": {
            "X-Forgejo-Signature": digest,
            "X-Gitea-Signature": digest,
            "X-Hub-Signature-256": "sha256=" + digest,
        },
        "pagure": {"X-Pagure-Signature-256": digest},
    }[forge]
    kept = {k: v for k, v in delivery.headers.items() if "signature" not in k}
    return Delivery(delivery.body, {**kept, **extra})


def expected(forge: str, name: str, topic: str, meta: dict[str, Any]) -> set[tuple[str, str]]:
    """The outcomes allowed for a file: ("ignored", ""), ("ping", "") or (kind, action)."""
    if forge == "pagure":
        return pagure_expected(topic)
    event, label = name.rsplit(".", 2)[0].split(".", 1)
    action = meta.get("action") or label
    if event in ("push", "tag_push"):
        if label.endswith("deleted"):
            return {IGNORED}
        return {("tag" if "tag" in label else "push", "")}
    if event in ("pull_request", "merge_request"):
        return pull_request_expected(forge, action, meta)
    if event in ("issue_comment", "note"):
        on_pr = meta.get("comment_on_pull_request") or meta.get("noteable_type") == "MergeRequest"
        if on_pr and (event == "note" or action == "created"):
            return {("comment", "created")}
        return {IGNORED}
    if event == "release":
        return {("release", "published")} if action in ("published", "create") else {IGNORED}
    if event == "ping":
        return {PING}
    if event in ("check_run", "check_suite") and action == "rerequested":
        return {("rerun", "rerequested")}
    if event == "check_run" and action == "requested_action":
        return {("rerun", "requested_action")}
    if event == "merge_group" and action in ("checks_requested", "destroyed"):
        return {("merge_group", action)}
    if event in ("installation", "installation_repositories"):
        return {("installation", action)}
    return {IGNORED}


def pull_request_expected(forge: str, action: str, meta: dict[str, Any]) -> set[tuple[str, str]]:
    gitlab = {"open": "opened", "reopen": "reopened", "close": "closed", "merge": "merged"}
    if forge == "gitlab":
        if action == "update":
            if meta.get("has_oldrev"):
                return {(PR, "synchronize")}
            # No new commits: ignored, unless labels were added or a draft became ready.
            return {IGNORED, (PR, "labeled"), (PR, "ready_for_review")}
        return {(PR, gitlab[action])} if action in gitlab else {IGNORED}
    if action == "closed":
        return {(PR, "merged" if meta.get("merged") else "closed")}
    names = {"synchronized": "synchronize", "label_updated": "labeled"}
    action = names.get(action, action) if forge == "forgejo" else action
    acted = {"opened", "synchronize", "reopened", "labeled"}
    if forge == "github":
        acted.add("ready_for_review")
    return {(PR, action)} if action in acted else {IGNORED}


def pagure_expected(topic: str) -> set[tuple[str, str]]:
    return {
        "git.receive": {("push", "")},
        "pull-request.new": {(PR, "opened")},
        "pull-request.updated": {(PR, "synchronize")},
        "pull-request.rebased": {(PR, "synchronize")},
        "pull-request.comment.added": {("comment", "created")},
    }.get(topic, {IGNORED})


def check_event(event: Event, forge: str) -> None:
    assert event.forge == forge
    assert Event.from_json(event.to_json()) == event
    if event.kind is EventKind.INSTALLATION:  # an App's installation: an account, no repository
        assert event.extra["installation"].isdigit() and event.repository.name
        return
    repo = event.repository
    assert repo.name and repo.clone_url
    assert repo.namespace or forge == "pagure"  # a top-level Pagure project has none
    assert event.instance.startswith(("https://", "http://"))
    if event.kind not in (EventKind.COMMENT, EventKind.RELEASE):
        assert event.sha
    if event.kind in (EventKind.PULL_REQUEST, EventKind.COMMENT):
        assert event.pull_request is not None and event.pull_request.number > 0
    if event.kind is EventKind.PULL_REQUEST:
        assert event.action in {*PULL_REQUEST_TYPES, "merged"}  # what `types:` can name
        assert event.pull_request is not None and event.sha == event.pull_request.head_sha
    if event.kind is EventKind.COMMENT:
        assert event.comment is not None
    if event.kind is EventKind.PUSH:
        assert event.branch and event.ref == f"refs/heads/{event.branch}" and not event.tag
    if event.kind is EventKind.TAG:
        assert event.tag and event.ref == f"refs/tags/{event.tag}" and not event.branch
    assert Event.from_json(event.to_json()) == event
    assert json.loads(event.to_json()) == event.to_dict()


def check_facts(event: Event, forge: str, meta: dict[str, Any]) -> None:
    """What the manifest recorded about the file agrees with the Event."""
    full_name = "/".join(p for p in (event.repository.namespace, event.repository.name) if p)
    project = meta.get("repository") or meta.get("project")
    if project:
        assert full_name.lower() == project.lower()
    if meta.get("ref") and event.kind in (EventKind.PUSH, EventKind.TAG):
        assert event.ref == meta["ref"]
    if meta.get("after") and event.kind is EventKind.PUSH:
        assert event.sha == meta["after"]
    if forge == "gitlab" and meta.get("last_commit") and event.kind is EventKind.PULL_REQUEST:
        assert event.sha == meta["last_commit"]
    pr = event.pull_request
    if meta.get("pr_id") is not None and pr is not None:
        assert pr.number == meta["pr_id"]
        assert pr.target_branch == meta["branch"] and pr.source_branch == meta["branch_from"]
        assert event.sha == meta["commit_stop"]
    if meta.get("last_comment") and event.comment is not None:
        assert event.comment.body == meta["last_comment"]
    if meta.get("end_commit"):
        assert event.sha == meta["end_commit"]


@pytest.mark.parametrize(("forge", "name", "header", "event_header", "meta"), or_skip(CASES))
def test_payload(forge: str, name: str, header: str, event_header: str, meta: dict[str, Any]) -> None:
    handler = handlers.HANDLERS[forge]
    delivery = delivery_for(FIXTURES / forge / name, header, event_header, meta)

    result = handler.parse(delivery)

    if isinstance(result, Parsed):
        check_event(result.event, forge)
        check_facts(result.event, forge, meta)
        outcome = (result.event.kind.value, result.event.action)
    elif isinstance(result, Ignored):
        assert result.reason.strip()
        outcome = IGNORED
    else:
        assert isinstance(result, Ping)
        outcome = PING
    assert outcome in expected(forge, name, event_header, meta), getattr(result, "reason", "")


@pytest.mark.parametrize(("forge", "name", "header", "event_header", "meta"), or_skip(CASES))
def test_signed_delivery(forge: str, name: str, header: str, event_header: str, meta: dict[str, Any]) -> None:
    handler = handlers.HANDLERS[forge]
    delivery = delivery_for(FIXTURES / forge / name, header, event_header, meta)

    assert handler.verify(sign(forge, delivery, SECRET), SECRET)
    assert not handler.verify(sign(forge, delivery, "another-secret"), SECRET)
    assert not handler.verify(Delivery(delivery.body, {header: event_header}), SECRET)
    ident = handler.delivery_id(delivery)
    assert ident and ident == handler.delivery_id(delivery)
    if meta.get("captured_request_headers"):
        captured = {k.lower(): v for k, v in meta["captured_request_headers"].items()}
        assert ident in captured.values()


FORGEJO_COMMENTS = or_skip([c for c in CASES if str(c.id).startswith("forgejo/issue_comment")])


@pytest.mark.parametrize(("forge", "name", "header", "event_header", "meta"), FORGEJO_COMMENTS)
def test_forgejo_comment_is_never_a_push(
    forge: str, name: str, header: str, event_header: str, meta: dict[str, Any]
) -> None:
    # Forgejo repeats the event name in X-GitHub-Event too: send it as a real Forgejo would.
    delivery = delivery_for(FIXTURES / forge / name, header, event_header, meta)
    same = {"X-Forgejo-Event": "issue_comment", "X-GitHub-Event": "issue_comment"}
    headers = {**delivery.headers, **same}
    result = handlers.HANDLERS[forge].parse(Delivery(delivery.body, headers))
    if isinstance(result, Parsed):
        assert result.event.kind is EventKind.COMMENT and result.event.comment is not None
    else:
        assert isinstance(result, Ignored)


# Objects whose fields the handlers read; damaging repository/sender objects adds time, not cover.
PRIMARY = {
    "pull_request",
    "object_attributes",
    "merge_request",
    "msg",
    "body",
    "pullrequest",
    "issue",
    "comment",
    "release",
    "head_commit",
    "check_run",
    "check_suite",
    "repo",
}


def one_per_category(cases: list[Any]) -> list[Any]:
    seen: set[str] = set()
    picked = []
    for case in cases:
        category = str(case.id).rsplit(".", 2)[0]
        if category not in seen:
            seen.add(category)
            picked.append(case)
    return picked


@pytest.mark.parametrize(
    ("forge", "name", "header", "event_header", "meta"), or_skip(one_per_category(CASES))
)
def test_damaged_payloads_fail_cleanly(
    forge: str, name: str, header: str, event_header: str, meta: dict[str, Any]
) -> None:
    """A field missing or of the wrong type gives a result or a WebhookError, never a crash."""
    handler = handlers.HANDLERS[forge]
    data = json.loads((FIXTURES / forge / name).read_text())
    objects = [data] + [v for k, v in data.items() if k in PRIMARY and isinstance(v, dict)]
    for obj in objects:
        for key in list(obj):
            original = obj[key]
            for damaged in (None, 7):
                obj[key] = damaged
                delivery = Delivery(json.dumps(data).encode(), {header: event_header})
                try:
                    handler.parse(delivery)
                except WebhookError:
                    continue
                except Exception as exc:
                    pytest.fail(f"{key}={damaged!r} made parse crash: {exc!r}")
            obj[key] = original
