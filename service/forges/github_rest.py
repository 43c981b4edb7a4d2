"""forgeflow's own GitHub REST calls: commit statuses, check runs, file contents.

PyGithub and ``requests`` spend more CPU on each request than the request itself: ``requests``
scans the whole process environment for proxy and CA-bundle variables at every request, and
PyGithub's requester wraps each call in several layers. A status post is the hot path of every
job transition, so these calls go through :class:`RestClient`: one urllib3 connection pool per
API root, with what ``requests`` would read from the environment (the proxy for that host, the
CA bundle) read once, when it is made. Errors are PyGithub's own exceptions
(``Requester.createException``) and ``requests``' connection errors, so they are sorted into
transient and permanent forge errors exactly as before (:mod:`service.forges.errors`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import certifi
import requests
import urllib3
from github.Requester import Requester
from requests.utils import get_environ_proxies

USER_AGENT = "forgeflow"
POOL_SIZE = 10


class RestClient:
    """Requests under one GitHub API root (``https://api.github.com``, an Enterprise ``/api/v3``)."""

    def __init__(self, api_url: str, timeout: float) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)
        # what requests would read from the environment at every request, read once: the proxy
        # for this host (unless no_proxy exempts it) and the CA bundle
        scheme = urlsplit(self.api_url).scheme or "https"
        proxy = get_environ_proxies(self.api_url).get(scheme)
        ca_certs = requests.Session().merge_environment_settings(self.api_url, {}, None, None, None)["verify"]
        tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED", "ca_certs": certifi.where()}
        if isinstance(ca_certs, str):
            tls["ca_certs"] = ca_certs
        elif ca_certs is False:
            tls = {"cert_reqs": "CERT_NONE"}
        options: dict[str, Any] = {"num_pools": 4, "maxsize": POOL_SIZE, "retries": False, **tls}
        self.pool: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        )

    def request(
        self, verb: str, path: str, token: str | None = None, body: dict[str, Any] | None = None
    ) -> tuple[Mapping[str, str], Any]:
        """(headers, decoded JSON) of one request to ``path`` under the API root. Raises
        PyGithub's ``GithubException`` (or a subclass) for an error status, and ``requests``'
        ``ConnectionError``/``Timeout`` when the forge cannot be reached or does not answer."""
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
            raise requests.Timeout(f"{verb} {url}: {exc}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise requests.ConnectionError(f"{verb} {url}: {exc}") from exc
        try:
            output = json.loads(response.data) if response.data else None
        except ValueError:
            output = {"message": response.data[:500].decode(errors="replace")}
        if response.status >= 400:
            if not isinstance(output, dict):
                output = {"message": str(output)[:500]} if output else {}
            raise Requester.createException(response.status, dict(response.headers), output)
        return response.headers, output

    def close(self) -> None:
        self.pool.clear()
