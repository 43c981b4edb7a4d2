"""GitHub's ogr service: ogr and PyGithub for the calls forgeflow does not make itself.

Imported by :class:`service.forges.github.GithubForge` at its first such call (changed files,
pull requests, permissions, comments): the statuses, check runs and file reads go through
forgeflow's own REST client (:mod:`service.forges.github_rest`), so a process that only reports
(the watcher) never imports ogr or PyGithub.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import github
from ogr.services.github import GithubService
from ogr.services.github.auth_providers.token import TokenAuthentication

if TYPE_CHECKING:
    from service.forges.github_app import GithubApp

UnknownObjectException = github.UnknownObjectException


class _ApiRootToken(TokenAuthentication):  # type: ignore[misc]
    """ogr's token authentication, but against a chosen API root (Enterprise, tests)."""

    def __init__(self, token: str, api_url: str, timeout: float) -> None:
        self._token = token
        self._pygithub_instance = _pygithub(token, api_url, timeout)


class InstallationAuth(github.Auth.Auth):  # type: ignore[misc]
    """PyGithub authentication with the current installation token of one repository: asked
    for at every request, so a token is replaced before it expires even in long-lived clients."""

    def __init__(self, app: GithubApp, full_name: str) -> None:
        self.app = app
        self.full_name = full_name

    @property
    def token_type(self) -> str:
        return "token"

    @property
    def token(self) -> str:
        return self.app.token(self.full_name)


def _pygithub(token: str | github.Auth.Auth, api_url: str, timeout: float) -> github.Github:
    """PyGithub without its built-in pacing (0.25 s between requests, 1 s between writes): a
    run's statuses would queue behind each other for seconds. Rate limits are handled by
    forgeflow's retries instead (403/429 with Retry-After are transient)."""
    auth = github.Auth.Token(token) if isinstance(token, str) and token else (token or None)
    return github.Github(
        auth=auth,
        base_url=api_url,
        retry=None,
        timeout=int(timeout),
        per_page=100,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


class GithubApiService(GithubService):  # type: ignore[misc]
    """ogr's GithubService with a custom API root, which GitHub Enterprise users need."""

    def __init__(self, token: str, api_url: str, timeout: float = 15, app: GithubApp | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        super().__init__(github_authentication=_ApiRootToken(token, self.api_url, timeout))
        self._token = token
        self.app = app

    def get_pygithub_instance(self, namespace: str, repo: str) -> github.Github:
        if self.app is not None:
            return _pygithub(InstallationAuth(self.app, f"{namespace}/{repo}"), self.api_url, self.timeout)
        return _pygithub(self._token, self.api_url, self.timeout)
