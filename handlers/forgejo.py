"""Forgejo and Gitea webhooks: verify the HMAC-SHA256 signature, parse to Events.

Forgejo sends one event name in several headers (``X-Forgejo-Event``, ``X-Gitea-Event``,
``X-Gogs-Event``, ``X-GitHub-Event``) and a finer type in ``X-*-Event-Type``
(``pull_request_sync``, ``pull_request_comment``...); Gitea sends the ``X-Gitea-*`` ones. The
signature is the hex HMAC-SHA256 of the body in ``X-Forgejo-Signature``/``X-Gitea-Signature``
(and, on Forgejo, ``sha256=<hex>`` in ``X-Hub-Signature-256``).

Acted on: ``push`` to a branch or a tag, ``pull_request`` (opened, synchronized, reopened,
closed/merged, label_updated), ``issue_comment`` created on a pull request, ``release``
published. Tags: Gitea/Forgejo send a ``push`` *and* a ``create`` (ref_type tag) for a new tag
(services/repository/push.go notifies PushCommits then CreateRef), so the push is the one acted
on and ``create``/``delete`` are ignored as duplicates. Everything else is ignored with a reason.
"""

from __future__ import annotations

from collections.abc import Callable

from handlers import github
from handlers.base import (
    BadPayload,
    Delivery,
    Ignored,
    Parsed,
    ParseResult,
    Payload,
    WebhookHandler,
    body_digest_id,
    draft_title,
    first_header,
    hmac_sha256_hex,
    is_commit_sha,
    load_json_object,
    ref_kind,
    signature_matches,
    web_root,
)
from service.events import Comment, Event, EventKind, PullRequest, Repository, is_zero_sha

FORGE = "forgejo"
EVENT_HEADERS = ("X-Forgejo-Event", "X-Gitea-Event", "X-Gogs-Event", "X-GitHub-Event")
TYPE_HEADERS = ("X-Forgejo-Event-Type", "X-Gitea-Event-Type")
DELIVERY_HEADERS = ("X-Forgejo-Delivery", "X-Gitea-Delivery", "X-GitHub-Delivery")
SIGNATURE_HEADERS = ("X-Forgejo-Signature", "X-Gitea-Signature")
EVENT_HEADER = EVENT_HEADERS[0]

PULL_REQUEST_ACTIONS = {
    "opened": "opened",
    "reopened": "reopened",
    "synchronized": "synchronize",
    "closed": "closed",
    "label_updated": "labeled",
}

# Fine event types some senders put in the event header itself, by the event they belong to
# (Gitea's HookEventType.Event()).
EVENT_OF_TYPE = {
    "pull_request_assign": "pull_request",
    "pull_request_label": "pull_request",
    "pull_request_milestone": "pull_request",
    "pull_request_sync": "pull_request",
    "pull_request_review_request": "pull_request",
    "issue_assign": "issues",
    "issue_label": "issues",
    "issue_milestone": "issues",
}


def verify(delivery: Delivery, secret: str) -> bool:
    """True when every signature header present is the HMAC-SHA256 of the body (one must be)."""
    if not secret:
        return False
    expected = hmac_sha256_hex(secret, delivery.body)
    received = [delivery.header(name) for name in SIGNATURE_HEADERS if delivery.header(name)]
    hub = delivery.header("X-Hub-Signature-256")
    if hub:
        if not hub.startswith("sha256="):
            return False
        received.append(hub[len("sha256=") :])
    return bool(received) and all(signature_matches(expected, value) for value in received)


def delivery_id(delivery: Delivery) -> str:
    return first_header(delivery, *DELIVERY_HEADERS) or body_digest_id(delivery.body)


def sign(body: bytes, secret: str, event_type: str, delivery: str) -> dict[str, str]:
    """The headers Forgejo sends with ``body`` (Gitea's names too, as Forgejo sends both)."""
    signature = hmac_sha256_hex(secret, body)
    return {
        "X-Forgejo-Event": event_type,
        "X-Gitea-Event": event_type,
        "X-GitHub-Event": event_type,
        "X-Forgejo-Delivery": delivery,
        "X-Gitea-Delivery": delivery,
        "X-Forgejo-Signature": signature,
        "X-Gitea-Signature": signature,
    }


def repository(p: Payload) -> Repository:
    """A Repository from a ``repository`` or ``head.repo``/``base.repo`` object."""
    full_name = p.get("full_name").str()
    owner = p.get("owner", "login").str() or p.get("owner", "username").str()
    name = p.get("name").str()
    if "/" in full_name:
        owner, name = full_name.split("/", 1)
    if not owner or not name:
        raise BadPayload(f"payload field '{p.path}.full_name' is missing or empty")
    html_url = p.get("html_url").str()
    clone_url = p.get("clone_url").str() or (html_url + ".git" if html_url else "")
    if not clone_url:
        raise BadPayload(f"payload field '{p.path}.clone_url' is missing or empty")
    return Repository(
        namespace=owner,
        name=name,
        clone_url=clone_url,
        html_url=html_url,
        default_branch=p.get("default_branch").str(),
        private=p.get("private").bool(),
    )


def instance_of(repo: Repository) -> str:
    return web_root(repo.html_url or repo.clone_url, repo.full_name)


def user(p: Payload) -> str:
    return p.get("login").str() or p.get("username").str()


def labels(p: Payload) -> tuple[str, ...]:
    return tuple(name for label in p.list() if (name := label.get("name").str()))


def pull_request(pr: Payload, base_repo: Repository, number: Payload | None = None) -> PullRequest:
    head_repo_p = pr.get("head", "repo")
    head_repo = repository(head_repo_p) if head_repo_p.get("full_name").present else None
    head_id, base_id = pr.get("head", "repo_id").int(-1), pr.get("base", "repo_id").int(-1)
    if head_repo is not None:
        fork = head_repo.full_name.lower() != base_repo.full_name.lower()
    elif head_id >= 0 and base_id >= 0:
        fork = head_id != base_id
    else:
        fork = True  # a deleted fork (or a trimmed payload): never trusted
    title = pr.get("title").str()
    return PullRequest(
        number=(pr.get("number") if number is None else number).require_int(),
        title=title,
        author=user(pr.get("user")),
        source_branch=pr.get("head", "ref").str(),
        target_branch=pr.get("base", "ref").str(),
        source_repo=head_repo if head_repo is not None else (None if fork else base_repo),
        base_sha=pr.get("merge_base").str() or pr.get("base", "sha").str(),
        head_sha=pr.get("head", "sha").str(),
        fork=fork,
        draft=pr.get("draft").bool() or draft_title(title),
        labels=labels(pr.get("labels")),
        url=pr.get("html_url").str(),
    )


def parse_push(p: Payload, event_type: str) -> ParseResult:
    ref = p.get("ref").require_str()
    if is_zero_sha(p.get("after").str()):
        return Ignored(f"{ref} was deleted", event_type)
    kind, name = ref_kind(ref)
    if kind == "other":
        return Ignored(f"push to {ref} is neither a branch nor a tag", event_type)
    repo = repository(p.get("repository"))
    after = p.get("after").require_str()
    # For an annotated tag "after" is the tag object; head_commit is the commit it points at.
    head = p.get("head_commit", "id").str()
    before = p.get("before").str()
    created = is_zero_sha(before)
    commits = p.get("commits").list()
    changed: tuple[str, ...] | None = None
    # The commit list is capped (FeedMaxCommitNum); only total_commits says it is whole.
    whole = p.get("total_commits").int(-1) == len(commits)
    keys = ("added", "removed", "modified")
    if commits and whole and not created and all(c.get(k).present for c in commits for k in keys):
        changed = tuple(sorted({f.str() for c in commits for k in keys for f in c.get(k).list()}))
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.TAG if kind == "tag" else EventKind.PUSH,
            repository=repo,
            sha=head if kind == "tag" and head else after,
            instance=instance_of(repo),
            ref=ref,
            branch=name if kind == "branch" else "",
            tag=name if kind == "tag" else "",
            before="" if created else before,
            sender=user(p.get("sender")) or user(p.get("pusher")),
            created=created,
            changed_files=changed,
        ),
        event_type,
    )


def parse_ref_event(p: Payload, event_type: str) -> ParseResult:
    ref_type = p.get("ref_type").str() or "ref"
    ref = p.get("ref").str()
    return Ignored(f"{event_type} of {ref_type} {ref}: acted on through its push event", event_type)


def parse_pull_request(p: Payload, event_type: str) -> ParseResult:
    action = p.get("action").str()
    if action not in PULL_REQUEST_ACTIONS:
        return Ignored(f"pull_request action '{action}' starts nothing", event_type)
    pr_p = p.get("pull_request")
    repo = repository(p.get("repository"))
    number = pr_p.get("number") if pr_p.get("number").present else p.get("number")
    pr = pull_request(pr_p, repo, number)
    sha = pr_p.get("head", "sha").require_str()
    if action == "closed" and pr_p.get("merged").bool():
        action = "merged"
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.PULL_REQUEST,
            repository=repo,
            sha=sha,
            instance=instance_of(repo),
            action=PULL_REQUEST_ACTIONS.get(action, action),
            ref=f"refs/pull/{pr.number}/head",
            branch=pr.source_branch,
            before=p.get("before").str(),
            sender=user(p.get("sender")),
            pull_request=pr,
        ),
        event_type,
    )


def parse_issue_comment(p: Payload, event_type: str) -> ParseResult:
    action = p.get("action").str()
    if action != "created":
        return Ignored(f"issue_comment action '{action}' starts nothing", event_type)
    issue = p.get("issue")
    # is_pull is recent; older Gitea marks a pull request by a non-null issue.pull_request.
    if not (p.get("is_pull").bool() or issue.get("pull_request").present):
        return Ignored("comment is on an issue, not a pull request", event_type)
    repo = repository(p.get("repository"))
    pr_p = p.get("pull_request")
    if pr_p.get("number").present:
        pr = pull_request(pr_p, repo)
    else:
        title = issue.get("title").str()
        pr = PullRequest(
            number=issue.get("number").require_int(),
            title=title,
            author=user(issue.get("user")),
            draft=issue.get("pull_request", "draft").bool() or draft_title(title),
            labels=labels(issue.get("labels")),
            url=issue.get("html_url").str() or issue.get("pull_request", "html_url").str(),
        )
    comment = p.get("comment")
    author = user(comment.get("user")) or user(p.get("sender"))
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.COMMENT,
            repository=repo,
            sha=pr.head_sha,  # recent Forgejo sends the pull request; else resolved later
            instance=instance_of(repo),
            action="created",
            ref=f"refs/pull/{pr.number}/head",
            branch=pr.source_branch,
            sender=user(p.get("sender")) or author,
            pull_request=pr,
            comment=Comment(
                id=comment.get("id").str(),
                body=comment.get("body").str(),
                author=author,
                url=comment.get("html_url").str(),
            ),
        ),
        event_type,
    )


def parse_review_comment(p: Payload, event_type: str) -> ParseResult:
    # "pull_request_comment" is a review comment, but some senders use it for a PR comment.
    if p.get("comment").present and p.get("issue").present:
        return parse_issue_comment(p, event_type)
    return Ignored("pull request review comments start nothing", event_type)


def parse_release(p: Payload, event_type: str) -> ParseResult:
    action = p.get("action").str()
    if action != "published":
        return Ignored(f"release action '{action}' starts nothing", event_type)
    release = p.get("release")
    if release.get("draft").bool():
        return Ignored("draft releases start nothing", event_type)
    repo = repository(p.get("repository"))
    tag = release.get("tag_name").require_str()
    target = release.get("target_commitish").str()
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.RELEASE,
            repository=repo,
            sha=target if is_commit_sha(target) else "",  # else the tag is resolved later
            instance=instance_of(repo),
            action=action,
            ref=f"refs/tags/{tag}",
            tag=tag,
            sender=user(p.get("sender")),
            extra={"release_url": url} if (url := release.get("html_url").str()) else {},
        ),
        event_type,
    )


PARSERS: dict[str, Callable[[Payload, str], ParseResult]] = {
    "push": parse_push,
    "create": parse_ref_event,
    "delete": parse_ref_event,
    "pull_request": parse_pull_request,
    "issue_comment": parse_issue_comment,
    "pull_request_comment": parse_review_comment,
    "release": parse_release,
}


def parse(delivery: Delivery) -> ParseResult:
    event_type = first_header(delivery, *EVENT_HEADERS)
    data = load_json_object(delivery)
    if not event_type:
        return Ignored("no X-Forgejo-Event / X-Gitea-Event header")
    event_type = EVENT_OF_TYPE.get(event_type, event_type)
    parser = PARSERS.get(event_type)
    if parser is None:
        fine = first_header(delivery, *TYPE_HEADERS)
        named = f"{event_type} ({fine})" if fine and fine != event_type else event_type
        return Ignored(f"Forgejo/Gitea event '{named}' starts nothing", event_type)
    return parser(Payload(data), event_type)


HANDLER = WebhookHandler(
    name=FORGE,
    verify=verify,
    delivery_id=delivery_id,
    parse=parse,
    sign=sign,
    event_header=EVENT_HEADER,
    guess_event_type=github.guess_event_type,
)
