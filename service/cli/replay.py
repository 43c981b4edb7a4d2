"""Deliver a recorded or stored webhook again, signed the way its forge signs it.

Used by ``forgeflow replay``, the demo and the tests: a delivery made here is verified by
forgeflow exactly like one from the forge.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from handlers.base import hmac_sha256_hex

EVENT_HEADERS = {
    "github": "X-GitHub-Event",
    "gitlab": "X-Gitlab-Event",
    "forgejo": "X-Forgejo-Event",
    "pagure": "X-Pagure-Topic",
    "local": "X-Forgeflow-Event",
}


def _github(body: bytes, secret: str, event: str, delivery: str) -> dict[str, str]:
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": "sha256=" + hmac_sha256_hex(secret, body),
        "User-Agent": "GitHub-Hookshot/forgeflow-replay",
    }


def _gitlab(body: bytes, secret: str, event: str, delivery: str) -> dict[str, str]:
    return {"X-Gitlab-Event": event, "X-Gitlab-Token": secret, "X-Gitlab-Event-UUID": delivery}


def _forgejo(body: bytes, secret: str, event: str, delivery: str) -> dict[str, str]:
    signature = hmac_sha256_hex(secret, body)
    return {
        "X-Forgejo-Event": event,
        "X-Gitea-Event": event,
        "X-GitHub-Event": event,
        "X-Forgejo-Delivery": delivery,
        "X-Gitea-Delivery": delivery,
        "X-Forgejo-Signature": signature,
        "X-Gitea-Signature": signature,
    }


def _pagure(body: bytes, secret: str, event: str, delivery: str) -> dict[str, str]:
    return {
        "X-Pagure-Topic": event,
        "X-Pagure": "forgeflow-replay",
        "X-Pagure-Signature-256": hmac_sha256_hex(secret, body),
    }


def _local(body: bytes, secret: str, event: str, delivery: str) -> dict[str, str]:
    return {
        "X-Forgeflow-Event": event,
        "X-Forgeflow-Delivery": delivery,
        "X-Forgeflow-Signature-256": "sha256=" + hmac_sha256_hex(secret, body),
    }


SIGNERS: dict[str, Callable[[bytes, str, str, str], dict[str, str]]] = {
    "github": _github,
    "gitlab": _gitlab,
    "forgejo": _forgejo,
    "pagure": _pagure,
    "local": _local,
}


def signed_headers(
    forge: str, body: bytes, secret: str, event: str, delivery: str | None = None
) -> dict[str, str]:
    headers = SIGNERS[forge](body, secret, event, delivery or str(uuid.uuid4()))
    headers["Content-Type"] = "application/json"
    return headers


def guess_event_type(forge: str, payload: dict[str, Any]) -> str:
    """The event header value a payload was most likely sent with."""
    if forge == "gitlab":
        kind = str(payload.get("object_kind") or payload.get("event_name") or "")
        return {
            "push": "Push Hook",
            "tag_push": "Tag Push Hook",
            "merge_request": "Merge Request Hook",
            "note": "Note Hook",
            "release": "Release Hook",
            "pipeline": "Pipeline Hook",
        }.get(kind, "Push Hook")
    if forge == "pagure":
        return str(payload.get("topic") or "git.receive")
    if "zen" in payload and "hook_id" in payload:
        return "ping"
    if "pull_request" in payload and "number" in payload:
        return "pull_request"
    if "comment" in payload and "issue" in payload:
        return "issue_comment"
    if "check_run" in payload:
        return "check_run"
    if "check_suite" in payload:
        return "check_suite"
    if "release" in payload:
        return "release"
    if "ref_type" in payload:
        return "create"
    return "push"


def load_payload(path: Path) -> tuple[bytes, dict[str, Any]]:
    body = path.read_bytes()
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a webhook payload is a JSON object")
    return body, data


def deliver(
    url: str,
    forge: str,
    body: bytes,
    secret: str,
    event: str,
    delivery: str | None = None,
    timeout: float = 15,
) -> requests.Response:
    return requests.post(
        url,
        data=body,
        headers=signed_headers(forge, body, secret, event, delivery),
        timeout=timeout,
    )
