"""Each forge's handler signs deliveries the way it verifies them (replay, the demo and the
tests send what the forge would), and a wrong secret or a changed body never verifies."""

from __future__ import annotations

import json

import pytest

from handlers import HANDLERS
from handlers.base import Delivery

BODY = json.dumps({"msg_id": "m-1", "ref": "refs/heads/main", "topic": "git.receive"}).encode()


@pytest.mark.parametrize("forge", sorted(HANDLERS))
def test_a_signed_delivery_verifies_and_carries_its_event_type(forge: str):
    handler = HANDLERS[forge]
    headers = handler.sign(BODY, "s3cret", "push", "d-1")
    assert handler.verify(Delivery(BODY, headers), "s3cret")
    assert not handler.verify(Delivery(BODY, headers), "other")
    assert not handler.verify(Delivery(BODY + b" ", headers), "s3cret") or forge == "gitlab"
    assert Delivery(BODY, headers).header(handler.event_header) == "push"
    expected = "m-1" if forge == "pagure" else "d-1"  # Pagure identifies a message by its msg_id
    assert handler.delivery_id(Delivery(BODY, headers)) == expected


def test_gitlab_tokens_are_the_secret_itself():
    headers = HANDLERS["gitlab"].sign(BODY, "s3cret", "Push Hook", "d-1")
    assert headers["X-Gitlab-Token"] == "s3cret"  # GitLab sends no signature, only the token
