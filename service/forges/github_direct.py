"""GitHub's REST API without PyGithub's and requests' per-request machinery, for the hot calls.

A watcher posts a commit status (or updates a check run) for every job transition. Through
PyGithub and a requests ``Session`` one such request cost about 2 ms of CPU: the session looks
up proxy settings in the environment for every request, merges cookies and hooks, and PyGithub
adds its own header handling and logging. :class:`DirectApi` sends the same request through
requests' ``HTTPAdapter`` (the same urllib3 connection pool, TLS verification and CA bundle
that requests uses), with the PyGithub requester's own base URL and authentication (a token, or
an App installation's token), about four times cheaper. What requests takes from the
environment (proxies and ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``) is looked up
once per API root, as a ``Session`` would on every request. An error answer is raised as
PyGithub would raise it (``Requester.createException``), and a failed connection as requests
does, so :func:`service.forges.errors.classify` sorts them as before.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import requests
from github.Requester import Requester
from requests.adapters import HTTPAdapter

USER_AGENT = "PyGithub/Python"  # what PyGithub sends: GitHub sees the same client as before
POOL_SIZE = 16  # connections kept per host: report threads and worker threads share them


class DirectApi:
    """JSON requests to a GitHub API root on one connection pool; thread-safe."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.adapter = HTTPAdapter(pool_connections=2, pool_maxsize=POOL_SIZE, max_retries=0)
        self._settings: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def settings(self, url: str) -> dict[str, Any]:
        """What a requests ``Session`` would take from the environment for ``url``'s scheme
        and host (``proxies``, ``verify``, ``cert``), looked up once."""
        origin = "/".join(url.split("/", 3)[:3])
        with self._lock:
            found = self._settings.get(origin)
            if found is None:
                with requests.Session() as session:
                    merged = session.merge_environment_settings(origin + "/", {}, None, True, None)
                found = self._settings[origin] = {k: merged[k] for k in ("proxies", "verify", "cert")}
        return found

    def request(
        self, requester: Requester, verb: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[dict[str, str], Any]:
        """(response headers, lower-cased; the decoded JSON body) of one request to ``path``
        under the requester's API root, authenticated as the requester is."""
        url = requester.base_url.rstrip("/") + path
        headers = {"User-Agent": USER_AGENT}
        auth = requester.auth
        if auth is not None:
            headers["Authorization"] = f"{auth.token_type} {auth.token}"
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        prepared = requests.PreparedRequest()
        prepared.prepare(method=verb, url=url, headers=headers, data=data)
        response = self.adapter.send(prepared, timeout=self.timeout, **self.settings(url))
        try:
            answer_headers = {key.lower(): value for key, value in response.headers.items()}
            content = response.content
        finally:
            response.close()
        try:
            output = json.loads(content) if content else None
        except ValueError:
            output = {"data": content.decode(errors="replace")}
        if response.status_code >= 400:
            raise Requester.createException(
                response.status_code, answer_headers, output if isinstance(output, dict) else {"data": output}
            )
        return answer_headers, output

    def close(self) -> None:
        self.adapter.close()
