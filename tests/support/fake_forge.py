"""What the fake forge APIs share: a real local HTTP server, real git repositories behind it,
a record of every request and every status posted, waiting helpers and injected faults.

Each fake (fake_gitlab, fake_forgejo, fake_pagure) serves exactly the REST calls ogr and the
libraries under it make, found by running them against the fake and reading what they ask.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.support.gitrepo import GitRepo
from tests.support.waiting import wait_on


@dataclass
class Posted:
    """One status as the forge recorded it, in the forge's own words."""

    repo: str
    sha: str
    state: str
    context: str
    description: str
    target_url: str
    ref: str = ""
    pull_request: int | None = None  # Pagure: a pull-request flag
    uid: str = ""
    at: float = field(default_factory=time.monotonic)


@dataclass
class Note:
    """A comment posted on a pull/merge request."""

    repo: str
    number: int
    body: str
    id: int = 0


class FakeForge:
    """Base of the fakes: subclasses define ``routes`` and the forge's ``final_words``."""

    final_words: frozenset[str] = frozenset({"success", "failure", "error"})

    def __init__(self, server: HTTPServer, token: str = "t0ken") -> None:  # noqa: S107
        self.server = server
        self.token = token
        self.statuses: list[Posted] = []
        self.notes: list[Note] = []
        self.requests: list[tuple[str, str]] = []  # (method, path with query)
        self.refused: list[tuple[str, int, str]] = []  # (path, status, body) of failed POSTs
        self.fail_status_posts = 0  # the next N status posts answer fault_status
        self.fault_status = 502
        self.faults_served = 0
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        server.expect_request(re.compile(r"^/.*")).respond_with_handler(self.handle)

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    # -- what tests look at -----------------------------------------------------------------

    def statuses_for(self, context: str, repo: str | None = None) -> list[str]:
        with self.lock:
            return [s.state for s in self.statuses if s.context == context and repo in (None, s.repo)]

    def final_states(self, repo: str | None = None) -> dict[str, str]:
        """The last state posted per context (of one repository's commits, if given)."""
        with self.lock:
            return {s.context: s.state for s in self.statuses if repo in (None, s.repo)}

    def posted(self, repo: str) -> list[Posted]:
        with self.lock:
            return [s for s in self.statuses if s.repo == repo]

    def asked(self, method: str, fragment: str) -> list[str]:
        """Paths of the requests with ``method`` whose path contains ``fragment``."""
        with self.lock:
            return [p for m, p in self.requests if m == method and fragment in p]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30) -> bool:
        return wait_on(self.changed, predicate, timeout)

    def wait_final(self, contexts: list[str], repo: str | None = None, timeout: float = 30) -> dict[str, str]:
        """Wait until every context's last state is final; return the last state per context."""

        def done() -> bool:
            states = {s.context: s.state for s in self.statuses if repo in (None, s.repo)}
            return all(states.get(c) in self.final_words for c in contexts)

        if not self.wait_for(done, timeout):
            raise AssertionError(f"no final statuses for {contexts} in {timeout}s; got {self.statuses}")
        return self.final_states(repo)

    def record(self, posted: Posted) -> None:
        with self.changed:
            self.statuses.append(posted)
            self.changed.notify_all()

    def take_fault(self) -> bool:
        """True when this status post is to fail with ``fault_status`` (and counts it)."""
        with self.lock:
            if self.fail_status_posts > 0:
                self.fail_status_posts -= 1
                self.faults_served += 1
                return True
            return False

    # -- serving ----------------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str, Callable[..., Response]]]:
        raise NotImplementedError

    def authorized(self, request: Request) -> bool:
        raise NotImplementedError

    def handle(self, request: Request) -> Response:
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
        raw_path = raw.split("?", 1)[0]
        with self.lock:
            self.requests.append((request.method, unquote(raw)))
        if not self.authorized(request):
            return self.unauthorized()
        response = self.not_found("route")
        for method, pattern, handler in self.routes():
            match = re.match(pattern, raw_path)
            if match and request.method == method:
                response = handler(request, *(unquote(g) for g in match.groups()))
                break
        if request.method == "POST" and response.status_code >= 400:
            with self.lock:
                self.refused.append(
                    (unquote(raw_path), response.status_code, response.get_data(as_text=True))
                )
        return response

    def refusals(self, *fragments: str) -> list[tuple[str, int, str]]:
        """POSTs the fake refused whose path contains any of ``fragments`` (faults aside)."""
        with self.lock:
            return [
                r for r in self.refused if any(f in r[0] for f in fragments) and r[1] != self.fault_status
            ]

    def json(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(body), status=status, content_type="application/json", headers=headers)

    def not_found(self, what: str) -> Response:
        return self.json({"message": f"404 {what} Not Found"}, 404)

    def unauthorized(self) -> Response:
        return self.json({"message": "401 Unauthorized"}, 401)

    @staticmethod
    def body(request: Request) -> dict[str, Any]:
        """A JSON body, or a form's fields (Pagure's client posts forms)."""
        data = request.get_json(silent=True)
        if isinstance(data, dict):
            return data
        return {k: v for k, v in request.form.items()}


# -- git, as the forges see their repositories ------------------------------------------------


def git(repo: GitRepo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "--git-dir", str(repo.bare), *args], capture_output=True, text=True, check=False
    )


def rev_parse(repo: GitRepo, ref: str) -> str | None:
    result = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return result.stdout.strip() if result.returncode == 0 else None


def refs(repo: GitRepo, prefix: str) -> dict[str, str]:
    """Short ref name -> commit, for ``refs/heads/`` or ``refs/tags/``."""
    result = git(repo, "for-each-ref", "--format=%(refname)%00%(objectname)%00%(*objectname)", prefix)
    found = {}
    for line in result.stdout.splitlines():
        name, obj, peeled = line.split("\0")
        found[name[len(prefix) :]] = peeled or obj
    return found


def branches_containing(repo: GitRepo, sha: str) -> list[str]:
    result = git(repo, "for-each-ref", "--format=%(refname:short)", "--contains", sha, "refs/heads/")
    return sorted(result.stdout.split()) if result.returncode == 0 else []


def changes(repo: GitRepo, base: str, head: str) -> list[tuple[str, str, str]]:
    """(status letter, old path, new path) from the merge base of ``base`` and ``head`` to head."""
    result = git(repo, "diff", "--name-status", "-M", "-z", f"{base}...{head}")
    fields = [f for f in result.stdout.split("\0") if f]
    found = []
    i = 0
    while i < len(fields):
        status = fields[i]
        if status.startswith(("R", "C")):
            found.append((status[0], fields[i + 1], fields[i + 2]))
            i += 3
        else:
            found.append((status[0], fields[i + 1], fields[i + 1]))
            i += 2
    return found


def commits_between(repo: GitRepo, base: str, head: str) -> list[str]:
    result = git(repo, "rev-list", "--reverse", f"{base}..{head}")
    return result.stdout.split()


def serve_dumb_git(repo: GitRepo, path: str) -> Response:
    """A file of the bare repository over git's "dumb" HTTP protocol (what a clone over
    ``http://`` falls back to when the server does not speak the smart one)."""
    if path.startswith("info/refs"):
        subprocess.run(["git", "--git-dir", str(repo.bare), "update-server-info"], check=True)
    root = Path(repo.bare).resolve()
    target = (root / path).resolve()
    if root not in target.parents or not target.is_file():
        return Response("not found", status=404)
    return Response(target.read_bytes(), content_type="application/octet-stream")
