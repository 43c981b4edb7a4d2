"""Pagure webhooks (pagure.io, src.fedoraproject.org): verify, unwrap, parse to Events.

A Pagure project web-hook POSTs ``{"topic", "msg", "msg_id", "timestamp", "i"}`` with
``X-Pagure-Topic``, ``X-Pagure`` (the instance URL) and two signatures of the body:
``X-Pagure-Signature`` (HMAC-SHA1) and ``X-Pagure-Signature-256`` (HMAC-SHA256). Only the
SHA-256 one is accepted: SHA-1 alone is refused, it is the weaker hash and every Pagure that
sends it also sends the SHA-256 one. The same messages travel on fedora-messaging; relays
forward them either as the full message (``{"topic", "body", "headers", "id"}``) or as the body
with ``topic`` merged in, and both shapes are accepted too. ``X-Pagure-Topic`` is not signed
(Pagure's docs say so): the topic in the body wins, the header is the fallback.

Acted on: ``git.receive`` (a push to a branch), ``git.tag.creation``, ``pull-request.new``,
``.updated``/``.rebased`` (new commits), ``.reopened``, ``.closed`` (merged or not),
``.tag.added`` (labels), ``.comment.added`` (a person's comment; Pagure's own notification
comments are ignored). The instance is ``msg.pagure_instance`` / ``X-Pagure`` / the project's
``full_url``; a bare bus message without any of them is taken to come from the bus's own forge:
``io.pagure.*`` topics from pagure.io, others from src.fedoraproject.org (DEFAULT_INSTANCE).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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
    hmac_sha256_hex,
    load_json_object,
    parse_json_object,
    signature_matches,
    web_root,
)
from service.events import Comment, Event, EventKind, PullRequest, Repository, is_zero_sha

FORGE = "pagure"
EVENT_HEADER = "X-Pagure-Topic"
DEFAULT_INSTANCE = "https://src.fedoraproject.org"
PAGURE_IO = "https://pagure.io"

PULL_REQUEST_ACTIONS = {
    "pull-request.new": "opened",
    "pull-request.updated": "synchronize",
    "pull-request.rebased": "synchronize",
    "pull-request.reopened": "reopened",
    "pull-request.closed": "closed",
    "pull-request.tag.added": "labeled",
}


@dataclass(frozen=True)
class Message:
    """One Pagure message, whatever envelope it came in."""

    topic: str  # Pagure's own topic: "pull-request.new", "git.receive"...
    msg: Payload
    instance: str


def verify(delivery: Delivery, secret: str) -> bool:
    """True when ``X-Pagure-Signature-256`` is the HMAC-SHA256 of the body under ``secret``."""
    received = delivery.header("X-Pagure-Signature-256")
    if not secret or not received:
        return False
    return signature_matches(hmac_sha256_hex(secret, delivery.body), received)


def delivery_id(delivery: Delivery) -> str:
    """The message id (``msg_id`` of a web-hook, ``id`` of a bus message), else a hash."""
    try:
        data: dict[str, object] | None = parse_json_object(delivery.body)
    except BadPayload:
        data = None
    if data is not None:
        for key in ("msg_id", "id"):
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return body_digest_id(delivery.body)


def sign(body: bytes, secret: str, event_type: str, delivery: str) -> dict[str, str]:
    """The headers Pagure sends with ``body`` (the delivery id is the payload's ``msg_id``)."""
    return {
        EVENT_HEADER: event_type,
        "X-Pagure": "forgeflow",
        "X-Pagure-Signature-256": hmac_sha256_hex(secret, body),
    }


def guess_event_type(payload: dict[str, Any]) -> str:
    """The ``X-Pagure-Topic`` of a recorded payload: its own ``topic``."""
    return str(payload.get("topic") or "git.receive")


def short_topic(topic: str) -> str:
    """``org.fedoraproject.prod.pagure.git.receive`` → ``git.receive``."""
    topic = topic.strip()
    if ".pagure." in topic:
        return topic.rsplit(".pagure.", 1)[1]
    return topic.removeprefix("pagure.")


def unwrap(data: dict[str, object], delivery: Delivery) -> Message:
    envelope = Payload(data)
    full_topic = envelope.get("topic").str()
    if isinstance(data.get("msg"), dict):  # a Pagure web-hook
        msg = envelope.get("msg")
    elif isinstance(data.get("body"), dict) and "headers" in data:  # a fedora-messaging message
        msg = envelope.get("body")
    else:  # a message body with "topic" merged in
        msg = envelope
    topic = short_topic(full_topic) or short_topic(delivery.header("X-Pagure-Topic"))
    instance = msg.get("pagure_instance").str() or delivery.header("X-Pagure").strip()
    if not instance:
        instance = PAGURE_IO if full_topic.startswith("io.pagure.") else DEFAULT_INSTANCE
        for url, path in project_urls(msg):
            if root := web_root(url, path):
                instance = root
                break
    return Message(topic=topic, msg=msg, instance=instance.rstrip("/"))


def project_urls(msg: Payload) -> list[tuple[str, str]]:
    """(full_url, url_path) of the projects a message names, to tell the instance by."""
    found = []
    for obj in (
        msg.get("pullrequest", "project"),
        msg.get("pull_request", "project"),
        msg.get("repo"),
    ):
        url = obj.get("full_url").str()
        if url:
            found.append((url, obj.get("url_path").str() or obj.get("fullname").str()))
    return found


def repository(p: Payload, instance: str) -> Repository:
    """A Repository from a Pagure project object: ``fullname`` is ``[forks/<user>/][ns/]name``."""
    fullname = p.get("fullname").str() if isinstance(p.data, dict) else p.str()
    if not fullname:
        name, namespace = p.get("name").str(), p.get("namespace").str()
        fullname = f"{namespace}/{name}" if namespace and name else name
        owner = p.get("user", "name").str()
        if fullname and owner and p.get("parent").present:
            fullname = f"forks/{owner}/{fullname}"
    if not fullname:
        raise BadPayload(f"payload field '{p.path}.fullname' is missing or empty")
    namespace, _, name = fullname.rpartition("/")
    web_path = "fork/" + fullname.removeprefix("forks/") if fullname.startswith("forks/") else fullname
    url_path = p.get("url_path").str() or web_path
    return Repository(
        namespace=namespace,  # "" for a top-level project like pagure.io/pagure
        name=name,
        clone_url=f"{instance}/{fullname}.git",
        html_url=p.get("full_url").str() or f"{instance}/{url_path}",
        private=p.get("private").bool(),
    )


def remote_repository(url: str) -> Repository:
    """The source of a remote pull request: a git URL outside this Pagure."""
    path = urlsplit(url).path.strip("/").removesuffix(".git")
    namespace, _, name = path.rpartition("/")
    return Repository(namespace=namespace, name=name or url, clone_url=url, html_url=url)


def pull_request(pr: Payload, instance: str) -> tuple[PullRequest, Repository]:
    """The pull request and its target project."""
    target = repository(pr.get("project"), instance)
    source_p = pr.get("repo_from")
    remote = pr.get("remote_git").str()
    source: Repository | None = None
    if source_p.present:
        source = repository(source_p, instance)
    elif remote:
        source = remote_repository(remote)
    number = pr.get("id").require_int()
    title = pr.get("title").str()
    return PullRequest(
        number=number,
        title=title,
        author=pr.get("user", "name").str(),
        source_branch=pr.get("branch_from").str(),
        target_branch=pr.get("branch").str(),
        source_repo=source,
        head_sha=pr.get("commit_stop").str(),  # Pagure names no base commit
        fork=source is None or source.full_name != target.full_name,
        draft=draft_title(title),
        labels=tuple(t.str() for t in pr.get("tags").list() if t.str()),
        url=pr.get("full_url").str() or f"{target.html_url}/pull-request/{number}",
    ), target


def pull_request_object(m: Message) -> Payload:
    """``msg.pullrequest`` (``msg.pull_request`` in tag messages); BadPayload when absent."""
    pr = m.msg.get("pullrequest")
    if not pr.present:
        pr = m.msg.get("pull_request")
    if not isinstance(pr.data, dict):
        raise BadPayload(f"payload field '{m.msg.get('pullrequest').path}' is missing")
    return pr


def parse_pull_request(m: Message) -> ParseResult:
    pr_p = pull_request_object(m)
    pr, target = pull_request(pr_p, m.instance)
    action = PULL_REQUEST_ACTIONS[m.topic]
    merged = m.msg.get("merged").bool() or pr_p.get("status").str().lower() == "merged"
    if action == "closed" and merged:
        action = "merged"
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.PULL_REQUEST,
            repository=target,
            sha=pr_p.get("commit_stop").require_str(),
            instance=m.instance,
            action=action,
            ref=f"refs/pull/{pr.number}/head",
            branch=pr.source_branch,
            sender=m.msg.get("agent").str(),
            pull_request=pr,
        ),
        m.topic,
    )


def parse_comment(m: Message) -> ParseResult:
    pr_p = pull_request_object(m)
    comments = pr_p.get("comments").list()
    if not comments:
        raise BadPayload(f"payload field '{pr_p.path}.comments' is missing or empty")
    last = comments[-1]  # the comment that was just added
    if last.get("notification").bool():
        return Ignored("notification comment written by Pagure itself", m.topic)
    pr, target = pull_request(pr_p, m.instance)
    author = last.get("user", "name").str()
    comment_id = last.get("id").str()
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.COMMENT,
            repository=target,
            sha=pr.head_sha,
            instance=m.instance,
            action="created",
            ref=f"refs/pull/{pr.number}/head",
            branch=pr.source_branch,
            sender=m.msg.get("agent").str() or author,
            pull_request=pr,
            comment=Comment(
                id=comment_id,
                body=last.get("comment").str(),
                author=author,
                url=f"{pr.url}#comment-{comment_id}" if comment_id else pr.url,
            ),
        ),
        m.topic,
    )


def project_of(m: Message) -> Repository:
    """The project a git message is about: ``repo`` (an object, or a fullname string)."""
    repo = m.msg.get("repo")
    if not repo.present:
        repo = m.msg.get("project_fullname")
    return repository(repo, m.instance)


def parse_git_receive(m: Message) -> ParseResult:
    branch = m.msg.get("branch").require_str()
    # Pagure strips refs/heads/ only; a moved tag keeps its full ref.
    if branch.startswith("refs/") and not branch.startswith(("refs/heads/", "refs/tags/")):
        return Ignored(f"push to {branch} is neither a branch nor a tag", m.topic)
    is_tag = branch.startswith("refs/tags/")
    name = branch.removeprefix("refs/heads/").removeprefix("refs/tags/")
    repo = project_of(m)
    old = m.msg.get("old_commit").str().lstrip("^")
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.TAG if is_tag else EventKind.PUSH,
            repository=repo,
            sha=m.msg.get("end_commit").require_str(),
            instance=m.instance,
            ref=f"refs/tags/{name}" if is_tag else f"refs/heads/{name}",
            branch="" if is_tag else name,
            tag=name if is_tag else "",
            before="" if is_zero_sha(old) else old,
            sender=m.msg.get("agent").str(),
            created=is_zero_sha(old),
            extra={"forced": "true"} if m.msg.get("forced").bool() else {},
        ),
        m.topic,
    )


def parse_tag_creation(m: Message) -> ParseResult:
    tag = m.msg.get("tag").require_str().removeprefix("refs/tags/")
    repo = project_of(m)
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.TAG,
            repository=repo,
            sha=m.msg.get("rev").require_str(),
            instance=m.instance,
            ref=f"refs/tags/{tag}",
            tag=tag,
            sender=m.msg.get("agent").str(),
            created=True,
        ),
        m.topic,
    )


PARSERS: dict[str, Callable[[Message], ParseResult]] = {
    "git.receive": parse_git_receive,
    "git.tag.creation": parse_tag_creation,
    "pull-request.comment.added": parse_comment,
    **{topic: parse_pull_request for topic in PULL_REQUEST_ACTIONS},
}

IGNORED_TOPICS = {
    "git.branch.creation": "a new branch is acted on through its git.receive message",
    "git.branch.deletion": "branch deleted",
    "git.tag.deletion": "tag deleted",
}


def parse(delivery: Delivery) -> ParseResult:
    message = unwrap(load_json_object(delivery), delivery)
    if not message.topic:
        return Ignored("no topic in the body nor an X-Pagure-Topic header")
    if message.topic in IGNORED_TOPICS:
        return Ignored(IGNORED_TOPICS[message.topic], message.topic)
    parser = PARSERS.get(message.topic)
    if parser is None:
        return Ignored(f"Pagure topic '{message.topic}' starts nothing", message.topic)
    return parser(message)


HANDLER = WebhookHandler(
    name=FORGE,
    verify=verify,
    delivery_id=delivery_id,
    parse=parse,
    sign=sign,
    event_header=EVENT_HEADER,
    guess_event_type=guess_event_type,
)
