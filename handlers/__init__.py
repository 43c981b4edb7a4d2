"""Webhook handlers, one module per forge, and the table that maps a forge name to its handler.

Handlers are pure: they verify a delivery and parse it into a forge-neutral
:class:`service.events.Event`; they never touch the network, the database or the queue.
"""

from __future__ import annotations

from handlers import forgejo, github, gitlab, local, pagure
from handlers.base import WebhookHandler

HANDLERS: dict[str, WebhookHandler] = {
    github.FORGE: github.HANDLER,
    local.FORGE: local.HANDLER,
    gitlab.FORGE: gitlab.HANDLER,
    forgejo.FORGE: forgejo.HANDLER,  # Gitea too: same headers, same payloads
    pagure.FORGE: pagure.HANDLER,
}


def handler_for(forge: str) -> WebhookHandler | None:
    return HANDLERS.get(forge)
