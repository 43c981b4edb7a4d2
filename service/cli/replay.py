"""Deliver a recorded or stored webhook again, signed the way its forge signs it.

Used by ``forgeflow replay``, the demo and the tests: a delivery made here is verified by
forgeflow exactly like one from the forge. Each forge's headers and signature come from its
handler (``handlers/<forge>.py``: ``sign``), the same module that verifies them.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import requests

from handlers import HANDLERS


def signed_headers(
    forge: str, body: bytes, secret: str, event: str, delivery: str | None = None
) -> dict[str, str]:
    """The headers ``forge`` sends with ``body``, signed by its own handler."""
    headers = HANDLERS[forge].sign(body, secret, event, delivery or str(uuid.uuid4()))
    headers["Content-Type"] = "application/json"
    return headers


def guess_event_type(forge: str, payload: dict[str, Any]) -> str:
    """The event header value a payload was most likely sent with."""
    return HANDLERS[forge].guess_event_type(payload)


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
