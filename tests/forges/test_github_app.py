"""GitHub App authentication against the fake GitHub over real HTTP: the App's JWT, the
installation of each repository (from GitHub once, or from the installation webhooks kept in the
database), installation tokens refreshed before they expire or when refused, single-repository
checkout tokens, rate limits per installation, and the App-mode settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import requests

from handlers.base import Delivery, Parsed
from handlers.github import HANDLER
from service.events import Repository
from service.forges.github import GithubForge
from service.forges.github_app import GithubApp
from service.forges.installations import InstallationStore
from service.forges.ratelimits import RateLimits
from service.settings import ForgeInstance, SettingsError, load_settings
from service.store.db import Database
from tests.support.fake_github import FakeGitHub
from tests.support.fake_github_app import make_app_key
from tests.support.gitrepo import GitRepo

REPO = Repository("octo", "hello", "")
OTHER = Repository("octo", "other", "")


@pytest.fixture
def key() -> tuple[str, str]:
    return make_app_key()


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'ff.sqlite'}")
    database.migrate()
    return database


@pytest.fixture
def forge(fake_github: FakeGitHub, git_repo: GitRepo, key: tuple[str, str], db: Database) -> GithubForge:
    git_repo.commit({".forgeflow.yaml": "version: 1\n"}, "first")
    fake_github.add_repo("octo/hello", git_repo)
    fake_github.add_repo("octo/other", git_repo)
    fake_github.enable_app(11, key[1], {5: ["octo/hello", "octo/other"]})
    instance = ForgeInstance(kind="github", api_url=fake_github.api_url, app_id="11", app_private_key=key[0])
    return GithubForge(instance, db=db, limits=RateLimits(db))


def test_app_calls_carry_an_installation_token_minted_once(
    forge: GithubForge, fake_github: FakeGitHub
) -> None:
    for _ in range(3):
        assert forge.read_file(REPO, ".forgeflow.yaml", "main") == "version: 1\n"
    assert forge.read_file(OTHER, ".forgeflow.yaml", "main") == "version: 1\n"
    assert len(fake_github.tokens_minted) == 1, "one installation, one token"
    assert len(fake_github.asked("GET", "/installation")) == 2, (
        "each repository's installation looked up once"
    )
    assert fake_github.jwts_seen and all(c["iss"] == "11" for c in fake_github.jwts_seen)
    assert fake_github.auth_refusals == []


def test_a_token_near_its_expiry_is_replaced_before_use(forge: GithubForge, fake_github: FakeGitHub) -> None:
    fake_github.token_lifetime = 5 * 60  # inside the ten minutes before expiry: never used again
    forge.read_file(REPO, ".forgeflow.yaml", "main")
    forge.read_file(REPO, ".forgeflow.yaml", "main")
    calls = len(fake_github.asked("GET", "/repos/octo/hello")) - 1  # all but the installation's
    assert len(fake_github.tokens_minted) == calls == 2, "a fresh token for every call (two reads)"
    assert fake_github.auth_refusals == []


def test_a_refused_token_is_replaced_and_the_call_made_again(
    forge: GithubForge, fake_github: FakeGitHub
) -> None:
    forge.read_file(REPO, ".forgeflow.yaml", "main")
    fake_github.expire_tokens()
    assert forge.read_file(REPO, ".forgeflow.yaml", "main") == "version: 1\n"
    assert len(fake_github.tokens_minted) == 2 and len(fake_github.auth_refusals) == 1


def test_without_the_app_installed_the_error_says_so(forge: GithubForge, fake_github: FakeGitHub) -> None:
    fake_github.installations = {}
    with pytest.raises(Exception, match="not installed on octo/hello"):
        forge.read_file(REPO, ".forgeflow.yaml", "main")


def test_a_checkout_token_reads_one_repository_only(forge: GithubForge, fake_github: FakeGitHub) -> None:
    token = forge.checkout_token(REPO)
    assert token is not None and token.installation_id == 5
    issued = fake_github.tokens[token.token]
    assert issued.repositories == ("hello",) and issued.permissions == {"contents": "read"}
    assert token.fresh(timedelta(minutes=50))
    headers = {"Authorization": f"token {token.token}"}
    assert (
        requests.get(f"{fake_github.api_url}/repos/octo/hello", headers=headers, timeout=10).status_code
        == 200
    )
    assert (
        requests.get(f"{fake_github.api_url}/repos/octo/other", headers=headers, timeout=10).status_code
        == 401
    )


def test_a_personal_token_has_no_checkout_token(fake_github: FakeGitHub) -> None:
    forge = GithubForge(ForgeInstance(kind="github", api_url=fake_github.api_url, token="t0ken"))
    assert forge.checkout_token(REPO) is None and not forge.reports_check_runs


def test_installation_webhooks_are_kept_and_spare_the_lookup(
    fake_github: FakeGitHub, key: tuple[str, str], db: Database
) -> None:
    body = (
        b'{"action": "created", "installation": {"id": 5, "account": {"login": "octo"}, "app_id": 11,'
        b' "repository_selection": "selected"}, "repositories": [{"full_name": "octo/hello"}],'
        b' "sender": {"login": "octo"}}'
    )
    parsed = HANDLER.parse(Delivery(body, {"X-GitHub-Event": "installation"}))
    assert isinstance(parsed, Parsed)
    store = InstallationStore(db)
    assert "installation 5 (octo) created" in store.record(parsed.event, "github.com")
    assert store.find("github.com", "Octo/Hello") == 5 and store.find("github.com", "octo/other") is None

    fake_github.enable_app(11, key[1], {5: ["octo/hello"]})
    app = GithubApp("11", key[0], fake_github.api_url, instance="github.com", installations=store)
    assert app.installation_id("octo/hello") == 5
    assert fake_github.asked("GET", "/installation") == []

    removed = (
        b'{"action": "removed", "installation": {"id": 5, "account": {"login": "octo"}},'
        b' "repository_selection": "selected", "repositories_added": [],'
        b' "repositories_removed": [{"full_name": "octo/hello"}], "sender": {"login": "octo"}}'
    )
    parsed = HANDLER.parse(Delivery(removed, {"X-GitHub-Event": "installation_repositories"}))
    assert isinstance(parsed, Parsed)
    store.record(parsed.event, "github.com")
    assert store.find("github.com", "octo/hello") is None


def test_rate_limits_are_kept_per_installation(
    forge: GithubForge, fake_github: FakeGitHub, db: Database
) -> None:
    forge.read_file(REPO, ".forgeflow.yaml", "main")
    budgets = forge.limits.snapshot()
    key = ("github", forge.name, "installation 5")
    assert key in budgets and 0 < budgets[key].remaining < 5000


def test_app_settings_are_checked(tmp_path: Path, key: tuple[str, str]) -> None:
    with pytest.raises(SettingsError, match="private key"):
        load_settings(environ={"FORGEFLOW_GITHUB_APP_ID": "12"})
    with pytest.raises(SettingsError, match="is a number"):
        load_settings(
            environ={"FORGEFLOW_GITHUB_APP_ID": "my-app", "FORGEFLOW_GITHUB_APP_PRIVATE_KEY": key[0]}
        )
    with pytest.raises(SettingsError, match="not a readable file"):
        load_settings(
            environ={"FORGEFLOW_GITHUB_APP_ID": "12", "FORGEFLOW_GITHUB_APP_PRIVATE_KEY_FILE": "/nope.pem"}
        )
    pem = tmp_path / "app.pem"
    pem.write_text(key[0])
    settings = load_settings(
        environ={
            "FORGEFLOW_GITHUB_APP_ID": "12",
            "FORGEFLOW_GITHUB_APP_PRIVATE_KEY_FILE": str(pem),
            "FORGEFLOW_GITHUB_API_URL": "https://ghe.example.com/api/v3",
        }
    )
    (instance,) = settings.forge_instances()
    assert instance.app_mode and instance.app_key() == key[0] and instance.name == "ghe.example.com"
    assert "PRIVATE" not in repr(settings)


def test_a_private_checkout_gets_the_installation_token_on_the_forges_host_only(
    forge: GithubForge, fake_github: FakeGitHub
) -> None:
    credential = forge.checkout_credential(REPO, f"{fake_github.url}/octo/hello.git")
    assert credential is not None and credential.username == "x-access-token"
    issued = fake_github.tokens[credential.password]  # an installation token, not a personal one
    assert issued.repositories == ("hello",) and issued.permissions == {"contents": "read"}
    assert credential.expires_at is not None and credential.source == "GitHub App installation token"
    assert "x-access-token" in repr(credential) and credential.password not in repr(credential)
    assert forge.checkout_credential(REPO, "https://evil.example/octo/hello.git") is None
    personal = GithubForge(ForgeInstance(kind="github", api_url=fake_github.api_url, token="t0ken"))
    configured = personal.checkout_credential(REPO, f"{fake_github.url}/octo/hello.git")
    assert configured is not None and (configured.username, configured.password) == (
        "x-access-token",
        "t0ken",
    )
