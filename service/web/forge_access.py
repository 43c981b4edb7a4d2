"""The web tier's one question to the forges: may this user read (or write to) this repository?

The web tier does not load ogr (it stays light), so this asks each forge's REST API directly,
with the service's token, over ``requests`` with bounded timeouts, and keeps every answer
``access_cache_seconds``. Two calls per forge: whether a repository is public, and a user's
permission on it. The rules match the comment commands' (:mod:`service.forges`): write access
is GitHub admin/maintain/write, GitLab Developer or more, Forgejo write/admin/owner, Pagure
owner/admin/commit (groups included).

A forge that does not answer raises :class:`AccessUnknown` (the page answers 503): access is
never granted because a forge was down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any
from urllib.parse import quote

import requests

from service.settings import ForgeInstance, Settings


class Permission(IntEnum):
    NONE = 0
    READ = 1
    WRITE = 2


class AccessUnknown(Exception):
    """The forge could not say (unreachable, 5xx, rate limited): neither yes nor no."""


@dataclass(frozen=True)
class RepoKey:
    forge: str  # kind: github, gitlab, forgejo, pagure, local
    instance: str  # the configured instance's name
    repo: str  # namespace/name


GITHUB_LEVELS = {"admin": 2, "maintain": 2, "write": 2, "triage": 1, "read": 1}
FORGEJO_LEVELS = {"owner": 2, "admin": 2, "write": 2, "read": 1}
PAGURE_WRITE = ("owner", "admin", "commit")
PAGURE_READ = ("collaborator", "ticket")
GITLAB_REPORTER, GITLAB_DEVELOPER = 20, 30


class ForgeAccess:
    """Cached answers from the configured forges (the local forge: everything is public)."""

    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        self.instances: dict[tuple[str, str], ForgeInstance] = {
            (i.kind, i.name): i for i in settings.forge_instances()
        }
        self.ttl = settings.access_cache_seconds
        self.timeout = (min(3.0, settings.forge_timeout_seconds), settings.forge_timeout_seconds)
        self.http = session or requests.Session()
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    # -- the two questions -------------------------------------------------------------------

    def is_public(self, key: RepoKey) -> bool:
        if key.forge == "local":
            return True
        return bool(self._cached(("public", key), lambda: self._public(key)))

    def permission(self, key: RepoKey, login: str) -> Permission:
        if key.forge == "local" or not login:
            return Permission.NONE
        return Permission(self._cached(("perm", key, login.lower()), lambda: self._permission(key, login)))

    def whoami_pagure(self, instance: ForgeInstance, token: str) -> str | None:
        """The user a Pagure API token belongs to, or None when Pagure refuses it."""
        response = self._request(instance, "POST", "/api/0/-/whoami", token=token, expect=(200, 401, 403))
        if response.status_code != 200:
            return None
        user = response.json().get("username")
        return user if isinstance(user, str) and user else None

    # -- per forge -----------------------------------------------------------------------------

    def _public(self, key: RepoKey) -> bool:
        instance = self._instance(key)
        repo = quote(key.repo, safe="") if key.forge == "gitlab" else _quoted(key)
        path = REPO_PATHS[key.forge].format(repo=repo)
        response = self._request(instance, "GET", path, expect=(200, 401, 403, 404))
        if response.status_code != 200:
            return False
        data = response.json()
        if key.forge == "gitlab":
            return bool(data.get("visibility") == "public")
        return data.get("private") is False or (key.forge == "pagure" and not data.get("private"))

    def _permission(self, key: RepoKey, login: str) -> int:
        instance = self._instance(key)
        ask = PERMISSION_QUESTIONS[key.forge]
        return int(ask(self, instance, key, login))

    def _github(self, instance: ForgeInstance, key: RepoKey, login: str) -> int:
        path = f"/repos/{_quoted(key)}/collaborators/{quote(login, safe='')}/permission"
        response = self._request(instance, "GET", path, expect=(200, 403, 404))
        if response.status_code != 200:
            return 0
        level = str(response.json().get("permission") or "")
        return GITHUB_LEVELS.get(level, 0)

    def _forgejo(self, instance: ForgeInstance, key: RepoKey, login: str) -> int:
        path = f"/api/v1/repos/{_quoted(key)}/collaborators/{quote(login, safe='')}/permission"
        response = self._request(instance, "GET", path, expect=(200, 403, 404))
        if response.status_code != 200:
            return 0
        return FORGEJO_LEVELS.get(str(response.json().get("permission") or ""), 0)

    def _gitlab(self, instance: ForgeInstance, key: RepoKey, login: str) -> int:
        users = self._request(
            instance, "GET", f"/api/v4/users?username={quote(login, safe='')}", expect=(200,)
        )
        found = users.json()
        if not isinstance(found, list) or not found:
            return 0
        user_id = int(found[0].get("id") or 0)
        path = f"/api/v4/projects/{quote(key.repo, safe='')}/members/all/{user_id}"
        response = self._request(instance, "GET", path, expect=(200, 403, 404))
        if response.status_code != 200:
            return 0
        member = response.json()
        if member.get("state", "active") != "active":
            return 0
        level = int(member.get("access_level") or 0)
        return 2 if level >= GITLAB_DEVELOPER else 1 if level >= GITLAB_REPORTER else 0

    def _pagure(self, instance: ForgeInstance, key: RepoKey, login: str) -> int:
        response = self._request(instance, "GET", f"/api/0/{_quoted(key)}", expect=(200, 404))
        if response.status_code != 200:
            return 0
        info = response.json()
        users, groups = info.get("access_users") or {}, info.get("access_groups") or {}
        for levels, answer in ((PAGURE_WRITE, 2), (PAGURE_READ, 1)):
            if any(login in (users.get(level) or []) for level in levels):
                return answer
            for name in sorted({g for level in levels for g in groups.get(level) or []}):
                group = self._request(
                    instance, "GET", f"/api/0/group/{quote(name, safe='')}", expect=(200, 404)
                )
                if group.status_code == 200 and login in (group.json().get("members") or []):
                    return answer
        return 1 if not info.get("private") else 0

    # -- plumbing ------------------------------------------------------------------------------

    def _instance(self, key: RepoKey) -> ForgeInstance:
        instance = self.instances.get((key.forge, key.instance))
        if instance is None:
            candidates = [i for (kind, _), i in self.instances.items() if kind == key.forge]
            if len(candidates) != 1:
                raise AccessUnknown(f"no {key.forge} instance {key.instance!r} is configured")
            instance = candidates[0]
        return instance

    def _request(
        self,
        instance: ForgeInstance,
        method: str,
        path: str,
        *,
        token: str | None = None,
        expect: tuple[int, ...],
    ) -> requests.Response:
        secret = instance.token if token is None else token
        headers = {"Accept": "application/json", "User-Agent": "forgeflow-web"}
        if secret:
            headers["Authorization"] = f"{AUTH_SCHEMES[instance.kind]} {secret}"
        try:
            response = self.http.request(
                method, instance.api_url + path, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise AccessUnknown(f"{instance.name} did not answer: {type(exc).__name__}") from exc
        if response.status_code not in expect:
            raise AccessUnknown(f"{instance.name} answered {response.status_code}")
        return response

    def _cached(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        moment = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and moment - hit[0] < self.ttl:
                return hit[1]
        try:
            value = compute()
        except (ValueError, TypeError, AttributeError) as exc:  # a body that is not what we asked
            raise AccessUnknown(f"unexpected answer: {type(exc).__name__}") from exc
        with self._lock:
            if len(self._cache) > 20_000:
                self._cache.clear()
            self._cache[key] = (moment, value)
        return value


def _quoted(key: RepoKey) -> str:
    return "/".join(quote(part, safe="") for part in key.repo.split("/"))


REPO_PATHS = {
    "github": "/repos/{repo}",
    "gitlab": "/api/v4/projects/{repo}",
    "forgejo": "/api/v1/repos/{repo}",
    "pagure": "/api/0/{repo}",
}
AUTH_SCHEMES = {"github": "token", "gitlab": "Bearer", "forgejo": "token", "pagure": "token"}
PERMISSION_QUESTIONS: dict[str, Callable[[ForgeAccess, ForgeInstance, RepoKey, str], int]] = {
    "github": ForgeAccess._github,
    "gitlab": ForgeAccess._gitlab,
    "forgejo": ForgeAccess._forgejo,
    "pagure": ForgeAccess._pagure,
}
