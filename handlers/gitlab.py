"""GitLab (gitlab.com and self-managed) webhooks: check ``X-Gitlab-Token``, parse to Events.

Acted on: ``Push Hook`` (a branch), ``Tag Push Hook`` (a tag), ``Merge Request Hook`` (open,
reopen, update with new commits, close, merge, labels added, draft → ready), ``Note Hook`` on
a merge request, ``Release Hook`` create. Deletions and everything else are ignored with a
reason. GitLab does not sign deliveries: the token it sends must equal the configured secret.
A ``System Hook`` delivery is dispatched on its ``object_kind`` like a project hook.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Callable
from typing import Any

from handlers.base import (
    BadPayload,
    Delivery,
    Ignored,
    Parsed,
    ParseResult,
    Payload,
    WebhookHandler,
    body_digest_id,
    first_header,
    load_json_object,
    ref_kind,
    web_root,
)
from service.events import Comment, Event, EventKind, PullRequest, Repository, is_zero_sha

FORGE = "gitlab"
EVENT_HEADER = "X-Gitlab-Event"
DEFAULT_INSTANCE = "https://gitlab.com"

# Hook names by payload ``object_kind``: used for System Hooks and a missing header.
HOOK_BY_KIND = {
    "push": "Push Hook",
    "tag_push": "Tag Push Hook",
    "merge_request": "Merge Request Hook",
    "note": "Note Hook",
    "release": "Release Hook",
}

MERGE_REQUEST_ACTIONS = {
    "open": "opened",
    "reopen": "reopened",
    "close": "closed",
    "merge": "merged",
}


def verify(delivery: Delivery, secret: str) -> bool:
    """True when ``X-Gitlab-Token`` equals ``secret`` (compared in constant time)."""
    received = delivery.header("X-Gitlab-Token")
    if not secret or not received:
        return False
    return hmac.compare_digest(secret.encode(), received.encode())


def delivery_id(delivery: Delivery) -> str:
    """``Idempotency-Key`` (same across retries), else ``X-Gitlab-Event-UUID``, else a hash."""
    given = first_header(delivery, "Idempotency-Key", "X-Gitlab-Event-UUID")
    return given or body_digest_id(delivery.body)


def sign(body: bytes, secret: str, event_type: str, delivery: str) -> dict[str, str]:
    """The headers GitLab sends with ``body`` (its "signature" is the secret token itself)."""
    return {EVENT_HEADER: event_type, "X-Gitlab-Token": secret, "X-Gitlab-Event-UUID": delivery}


HOOK_NAMES = {
    "push": "Push Hook",
    "tag_push": "Tag Push Hook",
    "merge_request": "Merge Request Hook",
    "note": "Note Hook",
    "release": "Release Hook",
    "pipeline": "Pipeline Hook",
}


def guess_event_type(payload: dict[str, Any]) -> str:
    """The ``X-Gitlab-Event`` a recorded payload was most likely sent with."""
    kind = str(payload.get("object_kind") or payload.get("event_name") or "")
    return HOOK_NAMES.get(kind, "Push Hook")


def repository(p: Payload) -> Repository:
    """A Repository from a ``project`` (or ``object_attributes.source``/``target``) object."""
    web_url = p.get("web_url").str() or p.get("homepage").str()
    path = p.get("path_with_namespace").str().strip("/")
    if not path and web_url:
        path = web_url.split("://", 1)[-1].partition("/")[2].strip("/")
    namespace, _, name = path.rpartition("/")
    if not namespace or not name:
        raise BadPayload(f"payload field '{p.path}.path_with_namespace' is missing or has no group")
    clone_url = p.get("git_http_url").str() or p.get("http_url").str()
    if not clone_url and web_url:
        clone_url = web_url + ".git"
    if not clone_url:
        raise BadPayload(f"payload field '{p.path}.git_http_url' is missing or empty")
    visibility = p.get("visibility_level")
    return Repository(
        namespace=namespace,
        name=name,
        clone_url=clone_url,
        html_url=web_url,
        default_branch=p.get("default_branch").str(),
        private=visibility.present and visibility.int(0) < 20,  # 20 = public
    )


def project(p: Payload) -> Repository:
    """The event's project; very old payloads only have the short ``repository`` object."""
    return repository(p.get("project") if p.get("project").present else p.get("repository"))


def instance_of(repo: Repository) -> str:
    return web_root(repo.html_url or repo.clone_url, repo.full_name) or DEFAULT_INSTANCE


def labels(p: Payload) -> tuple[str, ...]:
    return tuple(n for label in p.list() if (n := label.get("title").str() or label.get("name").str()))


def merge_request(mr: Payload, repo: Repository, label_list: Payload, author: str) -> PullRequest:
    """A PullRequest from ``object_attributes`` (MR hook) or ``merge_request`` (note hook)."""
    source_p, target_p = mr.get("source"), mr.get("target")
    source = repository(source_p) if source_p.get("path_with_namespace").present else None
    target = repository(target_p) if target_p.get("path_with_namespace").present else repo
    source_id, target_id = mr.get("source_project_id").int(), mr.get("target_project_id").int()
    fork = (source_id != target_id) or (source is not None and source.full_name != target.full_name)
    return PullRequest(
        number=mr.get("iid").require_int(),
        title=mr.get("title").str(),
        author=author,
        source_branch=mr.get("source_branch").str(),
        target_branch=mr.get("target_branch").str(),
        source_repo=source if source is not None else (None if fork else repo),
        base_sha=mr.get("diff_refs", "base_sha").str(),
        head_sha=mr.get("last_commit", "id").str(),
        fork=fork,
        draft=mr.get("draft").bool() or mr.get("work_in_progress").bool(),
        labels=labels(label_list),
        url=mr.get("url").str(),
    )


def parse_push(p: Payload, event_type: str) -> ParseResult:
    ref = p.get("ref").require_str()
    if is_zero_sha(p.get("after").str()):
        return Ignored(f"{ref} was deleted", event_type)
    kind, name = ref_kind(ref)
    if kind == "other":
        return Ignored(f"push to {ref} is neither a branch nor a tag", event_type)
    repo = project(p)
    after = p.get("after").require_str()
    # For an annotated tag "after" is the tag object; checkout_sha is the commit it points at.
    sha = p.get("checkout_sha").str() or after
    before = p.get("before").str()
    created = is_zero_sha(before)
    commits = p.get("commits").list()
    changed: tuple[str, ...] | None = None
    # GitLab lists at most 20 commits; total_commits_count says whether the list is whole.
    if commits and not created and p.get("total_commits_count").int(-1) == len(commits):
        files: set[str] = set()
        for commit in commits:
            for key in ("added", "modified", "removed"):
                files.update(f.str() for f in commit.get(key).list() if f.str())
        changed = tuple(sorted(files))
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.TAG if kind == "tag" else EventKind.PUSH,
            repository=repo,
            sha=sha,
            instance=instance_of(repo),
            ref=ref,
            branch=name if kind == "branch" else "",
            tag=name if kind == "tag" else "",
            before="" if created else before,
            sender=p.get("user_username").str(),
            created=created,
            changed_files=changed,
        ),
        event_type,
    )


def update_action(p: Payload, oa: Payload) -> str | None:
    """What an ``update`` means: new commits, labels added, draft → ready; None for the rest."""
    if oa.get("oldrev").str():
        return "synchronize"
    changes = p.get("changes")
    if changes.get("labels").present:
        before = set(labels(changes.get("labels", "previous")))
        if set(labels(changes.get("labels", "current"))) - before:
            return "labeled"
    for key in ("draft", "work_in_progress"):
        change = changes.get(key)
        if change.get("previous").bool() and change.get("current").data is False:
            return "ready_for_review"
    return None


def parse_merge_request(p: Payload, event_type: str) -> ParseResult:
    oa = p.get("object_attributes")
    raw = oa.get("action").str()
    action = update_action(p, oa) if raw == "update" else MERGE_REQUEST_ACTIONS.get(raw)
    if action is None:
        if raw == "update":
            changes = p.get("changes").data if isinstance(p.get("changes").data, dict) else {}
            what = ", ".join(sorted(k for k in changes if k != "updated_at")) or "metadata"
            return Ignored(f"merge request update without new commits ({what})", event_type)
        return Ignored(f"merge request action '{raw or 'none'}' starts nothing", event_type)
    repo = project(p)
    actor = p.get("user", "username").str()
    label_list = p.get("labels") if p.get("labels").present else oa.get("labels")
    pr = merge_request(oa, repo, label_list, actor if raw == "open" else "")
    sha = oa.get("last_commit", "id").require_str()
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.PULL_REQUEST,
            repository=repo,
            sha=sha,
            instance=instance_of(repo),
            action=action,
            ref=f"refs/merge-requests/{pr.number}/head",
            branch=pr.source_branch,
            before=oa.get("oldrev").str(),
            sender=actor,
            pull_request=pr,
            extra={"merge_commit_sha": m} if (m := oa.get("merge_commit_sha").str()) else {},
        ),
        event_type,
    )


def parse_note(p: Payload, event_type: str) -> ParseResult:
    oa = p.get("object_attributes")
    noteable = oa.get("noteable_type").str()
    if noteable != "MergeRequest":
        return Ignored(f"comment on {noteable or 'an unknown object'}, not on a merge request", event_type)
    if oa.get("system").bool():
        return Ignored("system note written by GitLab itself", event_type)
    action = oa.get("action").str()  # newer GitLab: create | update
    if action and action != "create":
        return Ignored(f"note action '{action}' starts nothing", event_type)
    repo = project(p)
    mr = p.get("merge_request")
    pr = merge_request(mr, repo, mr.get("labels"), "")
    author = p.get("user", "username").str()
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.COMMENT,
            repository=repo,
            sha=mr.get("last_commit", "id").str(),
            instance=instance_of(repo),
            action="created",
            ref=f"refs/merge-requests/{pr.number}/head",
            branch=pr.source_branch,
            sender=author,
            pull_request=pr,
            comment=Comment(
                id=oa.get("id").str(),
                body=oa.get("note").str(),
                author=author,
                url=oa.get("url").str(),
            ),
        ),
        event_type,
    )


def parse_release(p: Payload, event_type: str) -> ParseResult:
    action = p.get("action").str()
    if action != "create":
        return Ignored(f"release action '{action}' starts nothing", event_type)
    repo = project(p)
    tag = p.get("tag").require_str()
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.RELEASE,
            repository=repo,
            sha=p.get("commit", "id").str(),
            instance=instance_of(repo),
            action="published",
            ref=f"refs/tags/{tag}",
            tag=tag,
            extra={"release_url": url} if (url := p.get("url").str()) else {},
        ),
        event_type,
    )


def parse_confidential(p: Payload, event_type: str) -> ParseResult:
    return Ignored("internal (confidential) notes are not acted on", event_type)


PARSERS: dict[str, Callable[[Payload, str], ParseResult]] = {
    "Push Hook": parse_push,
    "Tag Push Hook": parse_push,
    "Merge Request Hook": parse_merge_request,
    "Note Hook": parse_note,
    "Confidential Note Hook": parse_confidential,
    "Release Hook": parse_release,
}


def parse(delivery: Delivery) -> ParseResult:
    event_type = delivery.header("X-Gitlab-Event").strip()
    data = load_json_object(delivery)
    p = Payload(data)
    hook = event_type
    if not event_type or event_type == "System Hook":
        kind = p.get("object_kind").str() or p.get("event_name").str()
        hook = HOOK_BY_KIND.get(kind, "")
        if not hook:
            return Ignored(f"GitLab {event_type or 'delivery'} of kind '{kind}' starts nothing")
    parser = PARSERS.get(hook)
    if parser is None:
        return Ignored(f"GitLab event '{event_type}' starts nothing", event_type)
    result = parser(p, event_type or hook)
    instance = delivery.header("X-Gitlab-Instance").strip().rstrip("/")
    if isinstance(result, Parsed) and instance.startswith(("https://", "http://")):
        result = Parsed(dataclasses.replace(result.event, instance=instance), result.event_type)
    return result


HANDLER = WebhookHandler(
    name=FORGE,
    verify=verify,
    delivery_id=delivery_id,
    parse=parse,
    sign=sign,
    event_header=EVENT_HEADER,
    guess_event_type=guess_event_type,
)
