"""The web app over a real database, with forges answered by real HTTP fakes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from service.context import Context, build_context
from service.web.app import create_app
from tests.support.fake_github import FakeGitHub

API_TOKEN = "the-service-api-token"


class Web:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.app = create_app(ctx)
        self.client = self.app.test_client()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def web(make_settings) -> Iterator[Web]:
    """forgeflow open to everyone on this machine (no sign-in configured: make run)."""
    ctx = build_context(make_settings(api_token=API_TOKEN))
    try:
        yield Web(ctx)
    finally:
        ctx.close()


@pytest.fixture
def signed_web(make_settings, fake_github: FakeGitHub) -> Iterator[Web]:
    """forgeflow with sign-in through a (fake) GitHub: visibility comes from the forge."""
    settings = make_settings(
        api_token=API_TOKEN,
        github_token="t0ken",
        github_api_url=fake_github.api_url,
        github_webhook_secret="s",
        github_oauth_client_id="client-1",
        github_oauth_client_secret="client-secret",
        access_cache_seconds=0,
    )
    ctx = build_context(settings)
    try:
        yield Web(ctx)
    finally:
        ctx.close()


def instance_name(web: Web) -> str:
    return web.ctx.settings.forge_instances()[0].name


def sign_in(web: Web, fake_github: FakeGitHub, user: str) -> None:
    """The OAuth web flow against the fake GitHub, as a browser would follow it."""
    import requests

    fake_github.oauth_user = user
    name = instance_name(web)
    start = web.client.get(f"/login/{name}?next=/runs")
    assert start.status_code == 302, start.data
    consent = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    back = consent.headers["Location"]
    path = back.split("://", 1)[1].split("/", 1)[1]
    done = web.client.get("/" + path)
    assert done.status_code == 303, done.data
