"""Checkout credentials: what a run's git checkout of a private repository authenticates with.

One narrow interface, :class:`CheckoutCredentials`, which every forge implements: given the
repository and the URL the run clones, a short-lived, read-only credential for that one
repository when the forge can make one, else the configured token, or None (a public
repository needs none; a URL on another host never gets one). The worker puts it in a Secret
only that run uses (see ``service.executors.base.RunSecret``); it is never in a manifest, a log,
a run page or a status.

- GitHub: :meth:`GithubForge.app_checkout_credential` is where the GitHub App's installation
  token goes (limited to the repository, ``contents: read``); until the App is configured, the
  configured token.
- GitLab: the configured ``checkout_token`` of the instance (a project or group deploy token
  with ``read_repository``, and its ``checkout_username``), else the API token.
- Forgejo/Gitea, Pagure: the configured ``checkout_token``, else the API token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from service.events import Repository
from service.settings import ForgeInstance

# The user name each forge expects next to a token over HTTPS (the token is the password).
DEFAULT_USERNAMES = {
    "github": "x-access-token",
    "gitlab": "oauth2",
    "forgejo": "oauth2",
    "pagure": "forgeflow",
}


@dataclass(frozen=True)
class CheckoutCredential:
    """A username and password (a token) for ``git fetch`` over HTTPS."""

    username: str
    password: str = field(repr=False)
    expires_at: datetime | None = None
    source: str = ""  # what made it, for logs: "configured token", "GitHub App installation"

    def as_secret_data(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


class CheckoutCredentials(Protocol):
    def checkout_credential(self, repo: Repository, clone_url: str) -> CheckoutCredential | None:
        """A credential to fetch ``repo`` from ``clone_url``, or None (none configured, or
        ``clone_url`` is not on this forge)."""
        ...


def same_forge(instance: ForgeInstance, clone_url: str) -> bool:
    """Whether ``clone_url`` is on the forge instance (same scheme and host): a token is never
    sent anywhere else, whatever a payload says."""
    want, got = urlsplit(instance.url), urlsplit(clone_url)
    return bool(got.hostname) and (got.scheme, got.netloc.lower()) == (want.scheme, want.netloc.lower())


def configured_credential(instance: ForgeInstance, clone_url: str) -> CheckoutCredential | None:
    """The instance's ``checkout_token`` (else its API token), for URLs on that instance."""
    token = instance.checkout_token or instance.token
    if not token or not same_forge(instance, clone_url):
        return None
    username = instance.checkout_username or DEFAULT_USERNAMES.get(instance.kind, "forgeflow")
    return CheckoutCredential(username, token, source="configured token")
