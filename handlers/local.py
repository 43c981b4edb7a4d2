"""The embedded ``local`` forge: bare repositories on this machine whose hook posts here.

Its ``post-receive`` hook sends one JSON object per updated ref, signed like GitHub's:
``X-Forgeflow-Signature-256: sha256=<hmac>``, ``X-Forgeflow-Event: push`` and a
``X-Forgeflow-Delivery`` id. The body::

    {"repository": {"namespace": "demo", "name": "hello", "clone_url": "/path/to/hello.git"},
     "ref": "refs/heads/main", "before": "<sha>", "after": "<sha>", "pusher": "alice"}
"""

from __future__ import annotations

from typing import Any

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
from service.events import Event, EventKind, Repository, is_zero_sha

FORGE = "local"
SIGNATURE_HEADER = "X-Forgeflow-Signature-256"
EVENT_HEADER = "X-Forgeflow-Event"
DELIVERY_HEADER = "X-Forgeflow-Delivery"


def verify(delivery: Delivery, secret: str) -> bool:
    received = delivery.header(SIGNATURE_HEADER)
    if not secret or not received.startswith("sha256="):
        return False
    return signature_matches(hmac_sha256_hex(secret, delivery.body), received[len("sha256=") :])


def delivery_id(delivery: Delivery) -> str:
    given = delivery.header(DELIVERY_HEADER).strip()
    return given or body_digest_id(delivery.body)


def sign(body: bytes, secret: str, event_type: str, delivery: str) -> dict[str, str]:
    """The headers the local forge's hook sends with ``body``."""
    return {
        EVENT_HEADER: event_type,
        DELIVERY_HEADER: delivery,
        SIGNATURE_HEADER: "sha256=" + hmac_sha256_hex(secret, body),
    }


def guess_event_type(payload: dict[str, Any]) -> str:
    return "push"  # the local forge sends nothing else


def parse(delivery: Delivery) -> ParseResult:
    event_type = delivery.header(EVENT_HEADER).strip() or "push"
    data = load_json_object(delivery)
    if event_type == "ping":
        return Ping()
    if event_type != "push":
        return Ignored(f"local event '{event_type}' starts nothing", event_type)
    p = Payload(data)
    ref = p.get("ref").require_str()
    after = p.get("after").require_str()
    if is_zero_sha(after):
        return Ignored(f"{ref} was deleted", event_type)
    kind, name = ref_kind(ref)
    if kind == "other":
        return Ignored(f"push to {ref} is neither a branch nor a tag", event_type)
    repo_p = p.get("repository")
    repo = Repository(
        namespace=repo_p.get("namespace").require_str(),
        name=repo_p.get("name").require_str(),
        clone_url=repo_p.get("clone_url").require_str(),
        html_url=repo_p.get("html_url").str(),
        default_branch=repo_p.get("default_branch").str() or "main",
    )
    before = p.get("before").str()
    return Parsed(
        Event(
            forge=FORGE,
            kind=EventKind.TAG if kind == "tag" else EventKind.PUSH,
            repository=repo,
            sha=after,
            instance="local",
            ref=ref,
            branch=name if kind == "branch" else "",
            tag=name if kind == "tag" else "",
            before="" if is_zero_sha(before) else before,
            created=is_zero_sha(before),
            sender=p.get("pusher").str(),
        ),
        event_type,
    )


HANDLER = WebhookHandler(
    name=FORGE,
    verify=verify,
    delivery_id=delivery_id,
    parse=parse,
    sign=sign,
    event_header=EVENT_HEADER,
    guess_event_type=guess_event_type,
)
