"""forgeflow's own GitHub REST calls: commit statuses, check runs, file contents.

PyGithub and ``requests`` spend more CPU on each request than the request itself: ``requests``
scans the whole process environment for proxy and CA-bundle variables at every request, and
PyGithub's requester wraps each call in several layers. A status post is the hot path of every
job transition, so these calls go through :class:`RestClient`: one urllib3 connection pool per
API root, with what ``requests`` would read from the environment (the proxy for that host unless
``no_proxy`` exempts it, the CA bundle of ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``) read once,
when it is made. It imports neither library (a process that only reports, the watcher, is
spared their memory). An error status raises :class:`GithubHttpError` (``.status``,
``.headers``, ``.data``), no answer :class:`GithubUnreachable` or :class:`GithubTimeout`
(built-in ``ConnectionError``/``TimeoutError``): :mod:`service.forges.errors` sorts them into
transient and permanent forge errors as it does PyGithub's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import certifi
import urllib3

USER_AGENT = "forgeflow"
POOL_SIZE = 10


class GithubHttpError(Exception):
    """GitHub answered with an error status (``data``: its JSON, e.g. ``{"message": ...}``)."""

    def __init__(self, status: int, headers: Mapping[str, str], data: dict[str, Any]) -> None:
        super().__init__(f"{status} {json.dumps(data)[:500]}")
        self.status = status
        self.headers = dict(headers)
        self.data = data


class GithubUnreachable(ConnectionError):
    """No connection to GitHub (refused, reset, DNS, TLS)."""


class GithubTimeout(TimeoutError):
    """GitHub did not answer in time."""


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``https_proxy`` and the like), unless
    ``no_proxy`` exempts its host: what ``requests`` would use."""
    parts = urlsplit(url)
    if parts.hostname and proxy_bypass(parts.hostname):
        return None
    proxies = getproxies()
    return proxies.get(parts.scheme or "https") or proxies.get("all")


def environment_ca_bundle() -> str:
    """The CA bundle ``requests`` would use: ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, certifi's."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()


class RestClient:
    """Requests under one GitHub API root (``https://api.github.com``, an Enterprise ``/api/v3``)."""

    def __init__(self, api_url: str, timeout: float) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)
        # what requests would read from the environment at every request, read once
        proxy = environment_proxy(self.api_url)
        tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED", "ca_certs": environment_ca_bundle()}
        options: dict[str, Any] = {"num_pools": 4, "maxsize": POOL_SIZE, "retries": False, **tls}
        self.pool: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        )

    def request(
        self, verb: str, path: str, token: str | None = None, body: dict[str, Any] | None = None
    ) -> tuple[Mapping[str, str], Any]:
        """(headers, decoded JSON) of one request to ``path`` under the API root. Raises
        :class:`GithubHttpError` for an error status, :class:`GithubUnreachable` or
        :class:`GithubTimeout` when the forge cannot be reached or does not answer."""
        headers = {"Accept": "application/vnd.github+json", "User-Agent": USER_AGENT}
        if token:
            headers["Authorization"] = f"token {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        url = self.api_url + path
        try:
            response = self.pool.request(verb, url, body=data, headers=headers, timeout=self.timeout)
        except urllib3.exceptions.TimeoutError as exc:
            raise GithubTimeout(f"{verb} {url}: {exc}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise GithubUnreachable(f"{verb} {url}: {exc}") from exc
        try:
            output = json.loads(response.data) if response.data else None
        except ValueError:
            output = {"message": response.data[:500].decode(errors="replace")}
        if response.status >= 400:
            if not isinstance(output, dict):
                output = {"message": str(output)[:500]} if output else {}
            raise GithubHttpError(response.status, response.headers, output)
        return response.headers, output

    def close(self) -> None:
        self.pool.clear()
