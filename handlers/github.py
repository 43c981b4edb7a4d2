"""GitHub (and GitHub Enterprise) webhooks: verify ``X-Hub-Signature-256``, parse to Events.

Acted on: ``push`` to a branch or tag, ``pull_request`` (opened, synchronize, reopened,
closed, labeled, ready_for_review), ``issue_comment`` on a pull request, ``release``
published, ``check_run``/``check_suite`` rerequested and ``check_run`` requested_action (the
"Re-run" buttons), ``merge_group`` checks_requested and destroyed (the merge queue), and a
GitHub App's ``installation``/``installation_repositories`` (kept in the database). ``ping`` is
answered. Everything else is ignored with a reason. A delivery to a GitHub App names its
installation: the event keeps its id (``extra["installation"]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from handlers.base import (
    Delivery,
    Ignored,
    Parsed,
    ParseResult,
    Payload,
    Ping,
    WebhookHandler,
    body_digest_id,
    hmac_sha256_hex,
    load_json_object,
    ref_kind,
    signature_matches,
)
from service.events import Comment, Event, EventKind, PullRequest, Repository, is_zero_sha

FORGE = "github"
EVENT_HEADER = "X-GitHub-Event"

PULL_REQUEST_ACTIONS = {
    "opened": "opened",
    "synchronize": "synchronize",
    "reopened": "reopened",
    "closed": "closed",
    "labeled": "labeled",
    "ready_for_review": "ready_for_review",
}

# GitHub caps the commits listed in a push payload at 20; with more, the file list is partial.
PUSH_COMMITS_CAP = 20


def verify(delivery: Delivery, secret: str) -> bool:
    """True when ``X-Hub-Signature-256`` is the HMAC-SHA256 of the body under ``secret``."""
    received = delivery.header("X-Hub-Signature-256")
    if not secret or not received.startswith("sha256="):
        return False
    return signature_matches(hmac_sha256_hex(secret, delivery.body), received[len("sha256=") :])


def delivery_id(delivery: Delivery) -> str:
    given = delivery.header("X-GitHub-Delivery").strip()
    return given or body_digest_id(delivery.body)


def sign(body: bytes, secret: str, event_type: str, delivery: str) -> dict[str, str]:
    """The headers GitHub sends with ``body``."""
    return {
        EVENT_HEADER: event_type,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": "sha256=" + hmac_sha256_hex(secret, body),
        "User-Agent": "GitHub-Hookshot/forgeflow",
    }


def guess_event_type(payload: dict[str, Any]) -> str:
    """The ``X-GitHub-Event`` a recorded payload was most likely sent with (Forgejo and Gitea
    name their events the same way)."""
    if "zen" in payload and "hook_id" in payload:
        return "ping"
    if "pull_request" in payload and "number" in payload:
        return "pull_request"
    if "comment" in payload and "issue" in payload:
        return "issue_comment"
    for kind in ("check_run", "check_suite", "release", "merge_group"):
        if kind in payload:
            return kind
    if "repositories_added" in payload or "repositories_removed" in payload:
        return "installation_repositories"
    if "installation" in payload and "repository" not in payload:
        return "installation"
    if "ref_type" in payload:
        return "create"
    return "push"


def instance_of(html_url: str) -> str:
    parts = urlsplit(html_url)
    if parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return "https://github.com"


def web_url_from_api(url: str, full_name: str) -> str:
    """A repository's web URL when a trimmed payload has only its API ``url``."""
    parts = urlsplit(url)
    if parts.scheme and parts.path.startswith("/api/v3/repos/"):  # GitHub Enterprise Server
        return f"{parts.scheme}://{parts.netloc}/{full_name}"
    if parts.netloc and parts.netloc != "api.github.com" and not parts.path.startswith("/api/"):
        return url  # old push payloads: "url" is the web URL
    return f"https://github.com/{full_name}"


def repository(p: Payload) -> Repository:
    """A Repository from a ``repository`` (or ``head.repo``) object, old or new shape."""
    full_name = p.get("full_name").str()
    owner = p.get("owner", "login").str() or p.get("owner", "name").str()
    name = p.get("name").str()
    if full_name and "/" in full_name:
        owner, name = full_name.split("/", 1)
    if not owner or not name:
        p.get("full_name").require_str()
    html_url = p.get("html_url").str() or web_url_from_api(p.get("url").str(), f"{owner}/{name}")
    return Repository(
        namespace=owner,
        name=name,
        clone_url=p.get("clone_url").str() or html_url + ".git",
        html_url=html_url,
        default_branch=p.get("default_branch").str() or p.get("master_branch").str(),
        private=p.get("private").bool(),
    )


def labels(p: Payload) -> tuple[str, ...]:
    return tuple(name for label in p.list() if (name := label.get("name").str()))


def parse_push(p: Payload, event_type: str) -> ParseResult:
    ref = p.get("ref").require_str()
    if p.get("deleted").bool() or is_zero_sha(p.get("after").str()):
        return Ignored(f"{ref} was deleted", event_type)
    kind, name = ref_kind(ref)
    if kind == "other":
        return Ignored(f"push to {ref} is neither a branch nor a tag", event_type)
    repo = repository(p.get("repository"))
    after = p.get("after").require_str()
    # For an annotated tag "after" is the tag object; head_commit is the commit it points at.
    head = p.get("head_commit", "id").str()
    sha = head if kind == "tag" and head else after
    changed: tuple[str, ...] | None = None
    commits = p.get("commits").list()
    created = p.get("created").bool()
    if commits and not created and len(commits) < PUSH_COMMITS_CAP:
        files: set[str] = set()
        for commit in commits:
            for key in ("added", "removed", "modified"):
                files.update(f.str() for f in commit.get(key).list() if f.str())
        changed = tuple(sorted(files))
    sender = p.get("sender", "login").str() or p.get("pusher", "name").str()
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.TAG if kind == "tag" else EventKind.PUSH,
            repository=repo,
            sha=sha,
            instance=instance_of(repo.html_url),
            ref=ref,
            branch=name if kind == "branch" else "",
            tag=name if kind == "tag" else "",
            before="" if is_zero_sha(p.get("before").str()) else p.get("before").str(),
            sender=sender,
            created=created,
            changed_files=changed,
            extra=with_installation(p, {}),
        ),
        event_type,
    )


def pull_request(pr: Payload, base_repo: Repository) -> PullRequest:
    head_repo_p = pr.get("head", "repo")
    head_repo = repository(head_repo_p) if head_repo_p.present else None
    # A deleted fork leaves head.repo null: still a fork, never trusted.
    fork = head_repo is None or head_repo.full_name.lower() != base_repo.full_name.lower()
    return PullRequest(
        number=pr.get("number").require_int(),
        title=pr.get("title").str(),
        author=pr.get("user", "login").str(),
        source_branch=pr.get("head", "ref").str(),
        target_branch=pr.get("base", "ref").str(),
        source_repo=head_repo,
        base_sha=pr.get("base", "sha").str(),
        head_sha=pr.get("head", "sha").str(),
        fork=fork,
        draft=pr.get("draft").bool(),
        labels=labels(pr.get("labels")),
        url=pr.get("html_url").str(),
    )


def parse_pull_request(p: Payload, event_type: str) -> ParseResult:
    action = p.get("action").str()
    if action not in PULL_REQUEST_ACTIONS:
        return Ignored(f"pull_request action '{action}' starts nothing", event_type)
    pr_p = p.get("pull_request")
    repo = repository(p.get("repository"))
    pr = pull_request(pr_p, repo)
    head_sha = pr_p.get("head", "sha").require_str()
    if action == "closed" and pr_p.get("merged").bool():
        action = "merged"
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.PULL_REQUEST,
            repository=repo,
            sha=head_sha,
            instance=instance_of(repo.html_url),
            action=PULL_REQUEST_ACTIONS.get(action, action),
            ref=f"refs/pull/{pr.number}/head",
            branch=pr.source_branch,
            before=p.get("before").str(),
            sender=p.get("sender", "login").str(),
            pull_request=pr,
            extra=with_installation(p, {}),
        ),
        event_type,
    )


def parse_issue_comment(p: Payload, event_type: str) -> ParseResult:
    action = p.get("action").str()
    if action != "created":
        return Ignored(f"issue_comment action '{action}' starts nothing", event_type)
    issue = p.get("issue")
    if not issue.get("pull_request").present:
        return Ignored("comment is on an issue, not a pull request", event_type)
    repo = repository(p.get("repository"))
    number = issue.get("number").require_int()
    comment = p.get("comment")
    author = comment.get("user", "login").str() or p.get("sender", "login").str()
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.COMMENT,
            repository=repo,
            sha="",  # the pull request's head: asked from the forge when the comment is acted on
            instance=instance_of(repo.html_url),
            action="created",
            ref=f"refs/pull/{number}/head",
            sender=p.get("sender", "login").str() or author,
            pull_request=PullRequest(
                number=number,
                title=issue.get("title").str(),
                author=issue.get("user", "login").str(),
                labels=labels(issue.get("labels")),
                url=issue.get("html_url").str(),
            ),
            comment=Comment(
                id=comment.get("id").str(),
                body=comment.get("body").str(),
                author=author,
                url=comment.get("html_url").str(),
            ),
            extra=with_installation(p, {}),
        ),
        event_type,
    )


def parse_release(p: Payload, event_type: str) -> ParseResult:
    action = p.get("action").str()
    if action != "published":
        return Ignored(f"release action '{action}' starts nothing", event_type)
    repo = repository(p.get("repository"))
    tag = p.get("release", "tag_name").require_str()
    target = p.get("release", "target_commitish").str()
    sha = target if len(target) == 40 and all(c in "0123456789abcdef" for c in target) else ""
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.RELEASE,
            repository=repo,
            sha=sha,  # empty: the tag is resolved through the forge
            instance=instance_of(repo.html_url),
            action=action,
            ref=f"refs/tags/{tag}",
            tag=tag,
            sender=p.get("sender", "login").str(),
            extra=with_installation(p, {}),
        ),
        event_type,
    )


RERUN_ACTIONS = ("rerequested", "requested_action")


def parse_rerun(p: Payload, event_type: str) -> ParseResult:
    """ "Re-run" on a check run or suite, or a check run's button ("Re-run failed jobs")."""
    action = p.get("action").str()
    if action not in RERUN_ACTIONS or (action == "requested_action" and event_type != "check_run"):
        return Ignored(f"{event_type} action '{action}' starts nothing", event_type)
    check = p.get("check_run")
    suite = p.get("check_suite") if event_type == "check_suite" else check.get("check_suite")
    sha = (check.get("head_sha").str() if event_type == "check_run" else "") or suite.get(
        "head_sha"
    ).require_str()
    repo = repository(p.get("repository"))
    prs = suite.get("pull_requests").list() or check.get("pull_requests").list()
    pr = None
    if prs:
        first = prs[0]
        pr = PullRequest(
            number=first.get("number").require_int(),
            source_branch=first.get("head", "ref").str(),
            target_branch=first.get("base", "ref").str(),
            head_sha=first.get("head", "sha").str(),
            base_sha=first.get("base", "sha").str(),
        )
    branch = suite.get("head_branch").str()
    extra = {}
    if event_type == "check_run":
        extra = {
            "check_name": check.get("name").str(),
            "check_run_id": check.get("id").str(),
            "external_id": check.get("external_id").str(),
        }
        if action == "requested_action":
            extra["requested_action"] = p.get("requested_action", "identifier").str()
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.RERUN,
            repository=repo,
            sha=sha,
            instance=instance_of(repo.html_url),
            action=action,
            ref=f"refs/pull/{pr.number}/head" if pr else (f"refs/heads/{branch}" if branch else ""),
            branch=branch,
            sender=p.get("sender", "login").str(),
            pull_request=pr,
            extra=with_installation(p, {k: v for k, v in extra.items() if v}),
        ),
        event_type,
    )


MERGE_GROUP_ACTIONS = ("checks_requested", "destroyed")


def parse_merge_group(p: Payload, event_type: str) -> ParseResult:
    """A merge queue's group: run the ``merge_group`` jobs on its head commit (checks_requested),
    or stop them when the group is gone (destroyed: merged, invalidated or dequeued)."""
    action = p.get("action").str()
    if action not in MERGE_GROUP_ACTIONS:
        return Ignored(f"merge_group action '{action}' starts nothing", event_type)
    group = p.get("merge_group")
    sha = group.get("head_sha").require_str()
    head_ref = group.get("head_ref").str()
    _, base = ref_kind(group.get("base_ref").str())
    _, head_branch = ref_kind(head_ref)
    repo = repository(p.get("repository"))
    extra = {"base_branch": base, "base_sha": group.get("base_sha").str()}
    if action == "destroyed":
        extra["reason"] = p.get("reason").str()
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.MERGE_GROUP,
            repository=repo,
            sha=sha,
            instance=instance_of(repo.html_url),
            action=action,
            ref=head_ref,
            branch=head_branch,
            before=group.get("base_sha").str(),
            sender=p.get("sender", "login").str(),
            extra=with_installation(p, {k: v for k, v in extra.items() if v}),
        ),
        event_type,
    )


def _names(repositories: Payload) -> str:
    return ",".join(sorted({n for r in repositories.list() if (n := r.get("full_name").str())}))


def parse_installation(p: Payload, event_type: str) -> ParseResult:
    """A GitHub App installed, changed or removed (``installation``), or repositories added to
    or removed from an installation (``installation_repositories``): kept in the database."""
    installation = p.get("installation")
    installation_id = installation.get("id").require_int()
    account = installation.get("account", "login").str() or p.get("sender", "login").str()
    action = p.get("action").str()
    extra = {
        "installation": str(installation_id),
        "account": account,
        "app_id": installation.get("app_id").str(),
        "selection": installation.get("repository_selection").str() or p.get("repository_selection").str(),
        "suspended": "true" if installation.get("suspended_at").str() else "",
    }
    if event_type == "installation":
        extra["added"] = _names(p.get("repositories"))
    else:
        extra["added"] = _names(p.get("repositories_added"))
        extra["removed"] = _names(p.get("repositories_removed"))
    host = instance_of(installation.get("account", "html_url").str() or installation.get("html_url").str())
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.INSTALLATION,
            repository=Repository(namespace="", name=account, clone_url=""),
            sha="",
            instance=host,
            action=action,
            sender=p.get("sender", "login").str(),
            extra={k: v for k, v in extra.items() if v},
        ),
        event_type,
    )


def with_installation(p: Payload, extra: dict[str, str]) -> dict[str, str]:
    """``extra`` plus the id of the GitHub App installation the delivery was sent for."""
    installation = p.get("installation", "id").int()
    return {**extra, "installation": str(installation)} if installation else extra


PARSERS: dict[str, Callable[[Payload, str], ParseResult]] = {
    "push": parse_push,
    "pull_request": parse_pull_request,
    "issue_comment": parse_issue_comment,
    "release": parse_release,
    "check_run": parse_rerun,
    "check_suite": parse_rerun,
    "merge_group": parse_merge_group,
    "installation": parse_installation,
    "installation_repositories": parse_installation,
}


def parse(delivery: Delivery) -> ParseResult:
    event_type = delivery.header("X-GitHub-Event").strip()
    data = load_json_object(delivery)
    if event_type == "ping":
        return Ping(str(data.get("zen") or "pong"))
    if not event_type:
        return Ignored("no X-GitHub-Event header")
    parser = PARSERS.get(event_type)
    if parser is None:
        return Ignored(f"GitHub event '{event_type}' starts nothing", event_type)
    return parser(Payload(data), event_type)


HANDLER = WebhookHandler(
    name=FORGE,
    verify=verify,
    delivery_id=delivery_id,
    parse=parse,
    sign=sign,
    event_header=EVENT_HEADER,
    guess_event_type=guess_event_type,
)
