"""Which configured forge instance a delivery belongs to, and which API reports for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.base import Delivery
from handlers.gitlab import HANDLER
from service.cli.replay import signed_headers
from service.forges.forgejo import ForgejoForge
from service.forges.github import GithubForge
from service.forges.gitlab import GitlabForge
from service.forges.pagure import PagureForge
from service.forges.registry import ForgeRegistry
from service.settings import load_settings
from service.store.db import Database


def registry(tmp_path: Path, db: Database, corp_secret: str) -> ForgeRegistry:
    settings = load_settings(
        environ={},
        overrides={
            "data_dir": tmp_path / "data",
            "forges": [
                {"kind": "gitlab", "api_url": "https://gitlab.com", "token": "a", "webhook_secret": "shared"},
                {
                    "kind": "gitlab",
                    "api_url": "http://10.0.0.7:8080",  # the API as forgeflow reaches it
                    "url": "https://gitlab.corp.example",  # the web root its payloads name
                    "token": "b",
                    "webhook_secret": corp_secret,
                },
            ],
            "forgejo_token": "c",
            "pagure_webhook_secret": "d",
            "github_token": "e",
        },
    )
    return ForgeRegistry(settings, db)


def verified(forges: ForgeRegistry, secret: str) -> list[str]:
    """The instances whose secret verifies a GitLab delivery sent with ``secret``."""
    delivery = Delivery(b"{}", signed_headers("gitlab", b"{}", secret, "Push Hook"))
    return [name for name, s in forges.webhook_secrets("gitlab") if HANDLER.verify(delivery, s)]


def test_a_shared_secret_is_told_apart_by_the_host_the_payload_names(tmp_path: Path, db: Database):
    forges = registry(tmp_path, db, corp_secret="shared")
    both = verified(forges, "shared")
    assert both == ["gitlab.com", "gitlab.corp.example"]
    assert forges.choose_instance("gitlab", both, "https://gitlab.corp.example") == "gitlab.corp.example"
    assert forges.choose_instance("gitlab", both, "https://GITLAB.com") == "gitlab.com"


def test_a_secret_of_its_own_decides_whatever_the_payload_says(tmp_path: Path, db: Database):
    forges = registry(tmp_path, db, corp_secret="corp only")
    assert verified(forges, "corp only") == ["gitlab.corp.example"]
    assert verified(forges, "shared") == ["gitlab.com"]
    assert verified(forges, "neither") == []
    chosen = forges.choose_instance("gitlab", ["gitlab.corp.example"], "https://gitlab.com")
    assert chosen == "gitlab.corp.example"


def test_the_chosen_instance_is_the_api_that_reports(tmp_path: Path, db: Database):
    forges = registry(tmp_path, db, corp_secret="shared")
    corp = forges.get("gitlab", "gitlab.corp.example")
    assert isinstance(corp, GitlabForge) and corp.instance.api_url == "http://10.0.0.7:8080"
    assert forges.get("gitlab", "gitlab.corp.example") is corp  # one client per instance
    assert forges.get("gitlab", "gitlab.com").instance.api_url == "https://gitlab.com"
    with pytest.raises(Exception, match="no gitlab instance"):
        forges.get("gitlab", "gitlab.other.example")


def test_each_kind_has_its_class(tmp_path: Path, db: Database):
    forges = registry(tmp_path, db, corp_secret="shared")
    assert isinstance(forges.get("forgejo"), ForgejoForge)
    assert isinstance(forges.get("pagure"), PagureForge)
    assert isinstance(forges.get("github"), GithubForge)
    assert forges.get("forgejo").instance.api_url == "https://codeberg.org"


def test_warm_up_builds_every_configured_forge_client_without_calling_it(tmp_path: Path, db: Database):
    forges = registry(tmp_path, db, corp_secret="corp")
    forges.warm_up()  # no network: the API roots above are unreachable or fake
    assert sorted(forges._forges) == [
        "forgejo:codeberg.org",
        "github:github.com",
        "gitlab:gitlab.com",
        "gitlab:gitlab.corp.example",
        "pagure:src.fedoraproject.org",
    ]
