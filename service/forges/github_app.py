"""GitHub App authentication: the App's JWT, each repository's installation, installation tokens.

A GitHub App signs a short JWT (RS256, PyJWT) with its private key to speak as the App, looks up
the installation that covers a repository (``GET /repos/{owner}/{repo}/installation``; or the
``installation`` webhooks kept in the database, :mod:`service.forges.installations`), and
exchanges the JWT for an installation token (``POST /app/installations/{id}/access_tokens``)
that expires within the hour. Installations and tokens are cached and a token is replaced
:data:`REFRESH_MARGIN` before it expires (or at once when GitHub answers 401 to it), so every
call carries a valid token. Works against any API root (GitHub Enterprise Server:
``https://ghe.example.com/api/v3``).

:meth:`GithubApp.checkout_token` gives the short-lived, read-only, single-repository credential a
private checkout needs: an installation token limited to that one repository and
``contents: read``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import jwt
import requests

from service.forges.base import ForgeError, TransientForgeError
from service.forges.installations import InstallationStore
from service.forges.ratelimits import SECONDARY_DEFAULT_WAIT, RateLimits, retry_after

log = logging.getLogger(__name__)

JWT_LIFETIME = timedelta(minutes=9)  # GitHub accepts at most 10 minutes
JWT_BACKDATE = timedelta(seconds=60)  # clock drift between us and GitHub
REFRESH_MARGIN = timedelta(minutes=10)  # replace a token this long before it expires
INSTALLATION_CACHE_SECONDS = 3600.0
CHECKOUT_PERMISSIONS = {"contents": "read"}


@dataclass(frozen=True)
class InstallationToken:
    """An installation token and when it expires (UTC)."""

    token: str
    expires_at: datetime
    installation_id: int

    def fresh(self, margin: timedelta, at: datetime | None = None) -> bool:
        return (at or datetime.now(UTC)) + margin < self.expires_at


def _expiry(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except (AttributeError, ValueError):
        return datetime.now(UTC) + timedelta(minutes=50)  # GitHub's tokens live an hour


class GithubApp:
    """One GitHub App on one GitHub (or Enterprise) instance."""

    def __init__(
        self,
        app_id: str,
        private_key: str,
        api_url: str,
        *,
        instance: str = "",
        installations: InstallationStore | None = None,
        limits: RateLimits | None = None,
        timeout: float = 15.0,
        refresh_margin: timedelta = REFRESH_MARGIN,
    ) -> None:
        self.app_id = str(app_id)
        self.private_key = private_key
        self.api_url = api_url.rstrip("/")
        self.instance = instance
        self.installations = installations
        self.limits = limits
        self.timeout = timeout
        self.refresh_margin = refresh_margin
        self.http = requests.Session()
        self._repos: dict[str, tuple[float, int]] = {}  # repo (lower) -> (monotonic, installation)
        self._tokens: dict[int, InstallationToken] = {}
        self._lock = threading.Lock()
        self._minting: dict[int, threading.Lock] = {}

    # -- speaking as the App ---------------------------------------------------------------

    def app_jwt(self) -> str:
        """A JWT that authenticates as the App for the next few minutes."""
        moment = datetime.now(UTC)
        claims = {"iat": moment - JWT_BACKDATE, "exp": moment + JWT_LIFETIME, "iss": self.app_id}
        try:
            return jwt.encode(claims, self.private_key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ForgeError(f"the GitHub App's private key cannot sign: {exc}") from exc

    def _request(self, method: str, path: str, what: str, body: Mapping[str, Any] | None = None) -> Any:
        key = "app"
        if self.limits is not None:
            self.limits.before_call("github", self.instance, key, what)
        headers = {
            "Authorization": f"Bearer {self.app_jwt()}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        try:
            response = self.http.request(
                method, self.api_url + path, json=body, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise TransientForgeError(f"{what}: {type(exc).__name__}: {exc}") from exc
        if self.limits is not None:
            self.limits.observe("github", self.instance, key, response.headers, response.status_code)
        if response.status_code < 300:
            return response.json()
        message = f"{what}: HTTP {response.status_code}: {response.text[:300]}"
        limited = response.status_code == 429 or (
            response.status_code == 403 and "rate limit" in response.text.lower()
        )
        if response.status_code >= 500 or limited:
            wait = retry_after(response.headers) or (SECONDARY_DEFAULT_WAIT if limited else None)
            raise TransientForgeError(message, wait)
        raise ForgeError(message)

    # -- installations and their tokens --------------------------------------------------------

    def remember(self, full_name: str, installation_id: int) -> None:
        """A delivery named the installation of ``full_name``: no need to ask for it."""
        with self._lock:
            self._repos[full_name.lower()] = (time.monotonic(), installation_id)

    def installation_id(self, full_name: str) -> int:
        """The installation of the App that covers ``full_name`` (cached, then the database's
        ``installation`` webhooks, then GitHub)."""
        name = full_name.lower()
        with self._lock:
            cached = self._repos.get(name)
        if cached is not None and time.monotonic() - cached[0] < INSTALLATION_CACHE_SECONDS:
            return cached[1]
        found = self.installations.find(self.instance, name) if self.installations else None
        if found is None:
            owner, _, repo = full_name.partition("/")
            path = f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}/installation"
            try:
                found = int(
                    self._request("GET", path, f"finding the GitHub App's installation on {full_name}")["id"]
                )
            except ForgeError as exc:
                if isinstance(exc, TransientForgeError):
                    raise
                raise ForgeError(f"the GitHub App is not installed on {full_name}: {exc}") from exc
            if self.installations is not None:
                self.installations.remember(self.instance, name, found)
        self.remember(name, found)
        return found

    def _mint(self, installation_id: int, body: Mapping[str, Any] | None, what: str) -> InstallationToken:
        answer = self._request("POST", f"/app/installations/{installation_id}/access_tokens", what, body)
        return InstallationToken(
            str(answer["token"]), _expiry(str(answer.get("expires_at") or "")), installation_id
        )

    def installation_token(self, installation_id: int) -> InstallationToken:
        """The installation's token, minted again when it is within the refresh margin of expiring."""
        with self._lock:
            token = self._tokens.get(installation_id)
            minting = self._minting.setdefault(installation_id, threading.Lock())
        if token is not None and token.fresh(self.refresh_margin):
            return token
        with minting:  # one request per installation, however many threads need a token
            with self._lock:
                token = self._tokens.get(installation_id)
            if token is not None and token.fresh(self.refresh_margin):
                return token
            token = self._mint(installation_id, None, f"getting a token for installation {installation_id}")
            with self._lock:
                self._tokens[installation_id] = token
            log.info(
                "new token for GitHub App installation %s, expires %s", installation_id, token.expires_at
            )
            return token

    def token(self, full_name: str) -> str:
        """A valid installation token for calls about ``full_name``."""
        return self.installation_token(self.installation_id(full_name)).token

    def invalidate(self, full_name: str) -> None:
        """GitHub refused the token used for ``full_name`` (401): mint a new one next time, and
        find the installation again (it may have been removed and installed anew)."""
        name = full_name.lower()
        with self._lock:
            cached = self._repos.pop(name, None)
            if cached is not None:
                self._tokens.pop(cached[1], None)

    def budget_key(self, full_name: str) -> str:
        """Rate limits are per installation: the key its budget is kept under."""
        with self._lock:
            cached = self._repos.get(full_name.lower())
        return f"installation {cached[1]}" if cached else "app"

    def checkout_token(self, full_name: str) -> InstallationToken:
        """A short-lived, read-only token for cloning ``full_name`` only: an installation token
        limited to that one repository and ``contents: read`` (expires within the hour)."""
        installation_id = self.installation_id(full_name)
        body = {"repositories": [full_name.split("/", 1)[1]], "permissions": CHECKOUT_PERMISSIONS}
        return self._mint(installation_id, body, f"getting a checkout token for {full_name}")
