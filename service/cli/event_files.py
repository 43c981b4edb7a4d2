"""Events from recorded webhook payload files (``forgeflow render``/``exec``/``replay``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from handlers import handler_for
from handlers.base import Delivery, Ignored, Parsed, Ping
from service.cli.replay import guess_event_type, load_payload
from service.events import Event


class EventFileError(Exception):
    pass


def guess_forge(payload: dict[str, Any]) -> str:
    if "object_kind" in payload or "event_name" in payload:
        return "gitlab"
    if "topic" in payload and "msg" in payload:
        return "pagure"
    repo = payload.get("repository")
    if isinstance(repo, dict) and "namespace" in repo and isinstance(payload.get("pusher"), str):
        return "local"
    owner = repo.get("owner") if isinstance(repo, dict) else None
    if isinstance(owner, dict) and "username" in owner and "node_id" not in owner:
        return "forgejo"
    return "github"


def event_from_file(path: Path, forge: str | None = None, event_type: str | None = None) -> tuple[Event, str]:
    """The Event in a payload file, and the forge it was read as. Raises EventFileError."""
    try:
        body, data = load_payload(path)
    except (OSError, ValueError) as exc:
        raise EventFileError(f"{path}: {exc}") from exc
    forge = forge or guess_forge(data)
    handler = handler_for(forge)
    if handler is None:
        raise EventFileError(f"unknown forge {forge!r}")
    event_type = event_type or guess_event_type(forge, data)
    result = handler.parse(
        Delivery(body, {handler.event_header: event_type, "Content-Type": "application/json"})
    )
    if isinstance(result, Ignored):
        raise EventFileError(f"{path}: {forge} {event_type!r} starts nothing: {result.reason}")
    if isinstance(result, Ping):
        raise EventFileError(f"{path}: a ping starts nothing")
    assert isinstance(result, Parsed)
    return result.event, forge
