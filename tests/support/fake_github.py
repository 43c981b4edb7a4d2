"""A fake GitHub REST API on a real local HTTP server, backed by real git repositories.

ogr (through PyGithub) talks to it exactly as to api.github.com: it serves repositories, file
contents at a commit, commits, pull requests and collaborator permissions, and records every
commit status posted, in order. Faults can be injected (the next N status posts answer 502).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.support.gitrepo import GitRepo


@dataclass
class PostedStatus:
    repo: str
    sha: str
    state: str
    context: str
    description: str
    target_url: str
    at: float = field(default_factory=time.monotonic)


class FakeGitHub:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.repos: dict[str, GitRepo] = {}
        self.pulls: dict[tuple[str, int], dict[str, Any]] = {}
        self.statuses: list[PostedStatus] = []
        self.requests: list[tuple[str, str]] = []
        self.fail_status_posts = 0
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        server.expect_request(re.compile(r"^/.*")).respond_with_handler(self.handle)

    @property
    def api_url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def add_repo(self, full_name: str, repo: GitRepo) -> None:
        self.repos[full_name] = repo

    # -- what tests look at ---------------------------------------------------------------

    def statuses_for(self, context: str) -> list[str]:
        with self.lock:
            return [s.state for s in self.statuses if s.context == context]

    def final_states(self) -> dict[str, str]:
        with self.lock:
            return {s.context: s.state for s in self.statuses}

    def wait_for(self, predicate: Any, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.changed.wait(min(remaining, 0.2))
            return True

    def wait_final(self, contexts: list[str], timeout: float = 60) -> dict[str, str]:
        final = {"success", "failure", "error"}

        def done() -> bool:
            states = {s.context: s.state for s in self.statuses}
            return all(states.get(c) in final for c in contexts)

        if not self.wait_for(done, timeout):
            raise AssertionError(f"no final statuses for {contexts} in {timeout}s; got {self.statuses}")
        return self.final_states()

    # -- the API ----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        path = request.path
        with self.lock:
            self.requests.append((request.method, path))
        route = [
            ("GET", r"^/repos/([^/]+/[^/]+)$", self.get_repo),
            ("GET", r"^/repos/([^/]+/[^/]+)/contents/(.+)$", self.get_contents),
            ("GET", r"^/repos/([^/]+/[^/]+)/commits/([0-9a-f]{40})$", self.get_commit),
            ("GET", r"^/repos/([^/]+/[^/]+)/commits/([0-9a-f]{40})/statuses$", self.list_statuses),
            ("POST", r"^/repos/([^/]+/[^/]+)/statuses/([0-9a-f]{40})$", self.post_status),
            ("GET", r"^/repos/([^/]+/[^/]+)/pulls/(\d+)$", self.get_pull),
        ]
        for method, pattern, handler in route:
            match = re.match(pattern, path)
            if match and request.method == method:
                return handler(request, *match.groups())
        return self.json({"message": "Not Found"}, 404)

    def json(self, body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, content_type="application/json")

    def repo_json(self, full_name: str) -> dict[str, Any]:
        owner, name = full_name.split("/")
        return {
            "id": abs(hash(full_name)) % 10**8,
            "name": name,
            "full_name": full_name,
            "owner": {"login": owner, "id": 1, "type": "User"},
            "private": False,
            "default_branch": "main",
            "url": f"{self.api_url}/repos/{full_name}",
            "html_url": f"https://github.com/{full_name}",
            "clone_url": self.repos[full_name].url,
        }

    def get_repo(self, request: Request, full_name: str) -> Response:
        if full_name not in self.repos:
            return self.json({"message": "Not Found"}, 404)
        return self.json(self.repo_json(full_name))

    def get_contents(self, request: Request, full_name: str, path: str) -> Response:
        repo = self.repos.get(full_name)
        ref = request.args.get("ref", "main")
        text = repo.show(ref, path) if repo else None
        if text is None:
            return self.json({"message": "Not Found"}, 404)
        data = text.encode()
        return self.json(
            {
                "type": "file",
                "encoding": "base64",
                "size": len(data),
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "content": base64.b64encode(data).decode(),
                "sha": "0" * 40,
                "url": f"{self.api_url}/repos/{full_name}/contents/{path}",
            }
        )

    def get_commit(self, request: Request, full_name: str, sha: str) -> Response:
        return self.json({"sha": sha, "url": f"{self.api_url}/repos/{full_name}/commits/{sha}"})

    def post_status(self, request: Request, full_name: str, sha: str) -> Response:
        body = json.loads(request.get_data())
        with self.changed:
            if self.fail_status_posts > 0:
                self.fail_status_posts -= 1
                return self.json({"message": "Bad Gateway"}, 502)
            self.statuses.append(
                PostedStatus(
                    repo=full_name,
                    sha=sha,
                    state=body["state"],
                    context=body.get("context", "default"),
                    description=body.get("description", ""),
                    target_url=body.get("target_url", ""),
                )
            )
            self.changed.notify_all()
        return self.json(
            {"id": len(self.statuses), "state": body["state"], "context": body.get("context")}, 201
        )

    def list_statuses(self, request: Request, full_name: str, sha: str) -> Response:
        with self.lock:
            rows = [s for s in reversed(self.statuses) if s.repo == full_name and s.sha == sha]
        return self.json(
            [
                {
                    "id": i,
                    "state": s.state,
                    "context": s.context,
                    "description": s.description,
                    "target_url": s.target_url,
                }
                for i, s in enumerate(rows)
            ]
        )

    def get_pull(self, request: Request, full_name: str, number: str) -> Response:
        pull = self.pulls.get((full_name, int(number)))
        if pull is None:
            return self.json({"message": "Not Found"}, 404)
        return self.json(pull)
