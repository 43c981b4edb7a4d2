"""A fake GitHub REST API on a real local HTTP server, backed by real git repositories
(the shared fake-forge base: request log, recorded statuses, waiting helpers, faults).

ogr (through PyGithub) talks to it exactly as to api.github.com: it serves repositories, file
contents at a commit, commits, pull requests and collaborator permissions, and records every
commit status posted, in order. Faults can be injected (the next N status posts answer 502).

Changed files as GitHub lists them: ``/pulls/{n}/files`` pages (``per_page`` up to 100, a
``Link`` header to the next page, at most 3,000 files in all) and ``/compare/{base}...{head}``
(at most 300 files), computed from the git repository or set with :meth:`set_pull_files`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.support.fake_forge import FakeForge, Note, Posted, git, rev_parse
from tests.support.fake_github_app import GithubAppFake
from tests.support.git_http import GIT_PATHS, serve_git
from tests.support.gitrepo import GitRepo


class FakeGitHub(GithubAppFake, FakeForge):
    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server)
        self.init_app_fake()
        self.repos: dict[str, GitRepo] = {}
        self.pulls: dict[tuple[str, int], dict[str, Any]] = {}
        self.permissions: dict[tuple[str, str], str] = {}  # (repo, user) -> admin/write/read
        self.reactions: list[tuple[str, int, str]] = []  # (repo, comment id, content)
        self.pull_files: dict[tuple[str, int], list[str]] = {}
        self.private: set[str] = set()  # repositories that are private
        self.oauth_user = "maria"  # who signs in through the OAuth pages (as if they said yes)
        self.oauth_codes: dict[str, str] = {}  # code -> user
        self.oauth_tokens: dict[str, str] = {}  # access token -> user

    @property
    def api_url(self) -> str:
        return self.url

    def add_repo(self, full_name: str, repo: GitRepo) -> None:
        self.repos[full_name] = repo

    @property
    def comments(self) -> list[tuple[str, int, str]]:
        """(repo, number, body) of every comment forgeflow posted."""
        with self.lock:
            return [(n.repo, n.number, n.body) for n in self.notes]

    # -- the API ----------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        # GitHub answers anonymous reads too: tokens are checked only in App mode (enable_app)
        return self.app_authorized(request)

    def handle(self, request: Request) -> Response:
        response = super().handle(request)
        response.headers.update(self.rate_headers())
        return response

    def routes(self) -> list[tuple[str, str, Callable[..., Response]]]:
        return [
            *self.app_routes(),
            ("GET", r"^/([^/]+/[^/]+)" + GIT_PATHS, self.git_http),
            ("POST", r"^/([^/]+/[^/]+)" + GIT_PATHS, self.git_http),
            ("GET", r"^/repos/([^/]+/[^/]+)$", self.get_repo),
            ("GET", r"^/repos/([^/]+/[^/]+)/contents/(.+)$", self.get_contents),
            ("GET", r"^/repos/([^/]+/[^/]+)/commits/([0-9a-f]{40})$", self.get_commit),
            ("GET", r"^/repos/([^/]+/[^/]+)/commits/([0-9a-f]{40})/statuses$", self.list_statuses),
            ("GET", r"^/repos/([^/]+/[^/]+)/statuses/([0-9a-f]{40})$", self.list_statuses),  # PyGithub's
            ("POST", r"^/repos/([^/]+/[^/]+)/statuses/([0-9a-f]{40})$", self.post_status),
            ("GET", r"^/repos/([^/]+/[^/]+)/pulls/(\d+)$", self.get_pull),
            ("GET", r"^/repos/([^/]+/[^/]+)/pulls/(\d+)/files$", self.list_pull_files),
            ("GET", r"^/repos/([^/]+/[^/]+)/compare/(.+)\.\.\.(.+)$", self.compare),
            ("GET", r"^/repos/([^/]+/[^/]+)/branches/(.+)$", self.get_branch),
            ("GET", r"^/repos/([^/]+/[^/]+)/collaborators/([^/]+)/permission$", self.get_permission),
            ("POST", r"^/repos/([^/]+/[^/]+)/issues/(\d+)/comments$", self.post_comment),
            ("GET", r"^/repos/([^/]+/[^/]+)/issues/comments/(\d+)$", self.get_comment),
            ("POST", r"^/repos/([^/]+/[^/]+)/issues/comments/(\d+)/reactions$", self.post_reaction),
            ("GET", r"^/login/oauth/authorize$", self.oauth_authorize),
            ("POST", r"^/login/oauth/access_token$", self.oauth_token),
            ("GET", r"^/user$", self.get_user),
        ]

    def git_http(self, request: Request, full_name: str, path: str) -> Response:
        """Clone over HTTP (``<url>/<owner>/<name>.git``); only private repositories are served."""
        repo = self.repos.get(full_name)
        if repo is None or full_name not in self.private:
            return self.not_found("repository")
        return serve_git(request, repo, path, self.token)

    def repo_json(self, full_name: str) -> dict[str, Any]:
        owner, name = full_name.split("/")
        return {
            "id": abs(hash(full_name)) % 10**8,
            "name": name,
            "full_name": full_name,
            "owner": {"login": owner, "id": 1, "type": "User"},
            "private": full_name in self.private,
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
        limited = self._rate_limited()
        if limited is not None:
            return limited
        if self.take_fault():
            return self.json({"message": "Bad Gateway"}, self.fault_status)
        self.record(
            Posted(
                repo=full_name,
                sha=sha,
                state=body["state"],
                context=body.get("context", "default"),
                description=body.get("description", ""),
                target_url=body.get("target_url", ""),
            )
        )
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

    # -- changed files ------------------------------------------------------------------------

    PULL_FILES_CAP = 3000
    COMPARE_FILES_CAP = 300

    def add_pull(
        self,
        full_name: str,
        number: int,
        base_sha: str,
        head_sha: str,
        base: str = "main",
        head: str = "feature",
        author: str = "alice",
        head_full_name: str | None = None,
    ) -> dict[str, Any]:
        """A pull request as ``GET /pulls/{number}`` answers it (``head_full_name``: a fork)."""
        pull = {
            "number": number,
            "url": f"{self.api_url}/repos/{full_name}/pulls/{number}",
            "issue_url": f"{self.api_url}/repos/{full_name}/issues/{number}",
            "html_url": f"https://github.com/{full_name}/pull/{number}",
            "state": "open",
            "title": f"pull request {number}",
            "user": {"login": author, "id": 3},
            "head": {"ref": head, "sha": head_sha, "repo": self.repo_json(head_full_name or full_name)},
            "base": {"ref": base, "sha": base_sha, "repo": self.repo_json(full_name)},
            "labels": [],
            "draft": False,
            "merged": False,
        }
        self.pulls[(full_name, number)] = pull
        return pull

    def set_pull_files(self, full_name: str, number: int, files: list[str]) -> None:
        """What ``/pulls/{number}/files`` lists (default: the git diff of its base and head)."""
        self.pull_files[(full_name, number)] = list(files)

    def diff(self, full_name: str, base: str, head: str) -> list[str] | None:
        repo = self.repos.get(full_name)
        if repo is None:
            return None
        result = git(repo, "diff", "--name-only", "--no-renames", f"{base}...{head}")
        return [line for line in result.stdout.splitlines() if line] if result.returncode == 0 else None

    def list_pull_files(self, request: Request, full_name: str, number: str) -> Response:
        key = (full_name, int(number))
        pull = self.pulls.get(key)
        files = self.pull_files.get(key)
        if files is None and pull is not None:
            files = self.diff(full_name, pull["base"]["sha"], pull["head"]["sha"])
        if files is None:
            return self.json({"message": "Not Found"}, 404)
        files = files[: self.PULL_FILES_CAP]
        per_page = max(1, min(int(request.args.get("per_page", 30)), 100))
        page = max(1, int(request.args.get("page", 1)))
        chunk = files[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(files) // per_page))
        response = self.json([self.file_json(name) for name in chunk])
        base = f"{self.api_url}/repos/{full_name}/pulls/{number}/files?per_page={per_page}"
        links = []
        if page < last:
            links.append(f'<{base}&page={page + 1}>; rel="next"')
            links.append(f'<{base}&page={last}>; rel="last"')
        if page > 1:
            links.append(f'<{base}&page=1>; rel="first"')
            links.append(f'<{base}&page={page - 1}>; rel="prev"')
        if links:
            response.headers["Link"] = ", ".join(links)
        return response

    def compare(self, request: Request, full_name: str, base: str, head: str) -> Response:
        files = self.diff(full_name, base, head)
        if files is None:
            return self.json({"message": "Not Found"}, 404)
        url = f"{self.api_url}/repos/{full_name}/compare/{base}...{head}"
        return self.json(
            {
                "url": url,
                "html_url": url,
                "status": "ahead",
                "ahead_by": 1,
                "behind_by": 0,
                "total_commits": 1,
                "commits": [],
                "files": [self.file_json(name) for name in files[: self.COMPARE_FILES_CAP]],
            }
        )

    def get_branch(self, request: Request, full_name: str, branch: str) -> Response:
        repo = self.repos.get(full_name)
        sha = rev_parse(repo, f"refs/heads/{branch}") if repo else None
        if sha is None:
            return self.json({"message": "Branch not found"}, 404)
        return self.json(
            {"name": branch, "commit": {"sha": sha, "url": f"{self.api_url}/repos/{full_name}/commits/{sha}"}}
        )

    def file_json(self, name: str) -> dict[str, Any]:
        return {"sha": "0" * 40, "filename": name, "status": "modified", "additions": 1, "changes": 1}

    # -- conversation and permissions (comment commands) ----------------------------------

    def get_permission(self, request: Request, full_name: str, user: str) -> Response:
        level = self.permissions.get((full_name, user), "none")
        return self.json({"permission": level, "role_name": level, "user": {"login": user, "id": 9}})

    def post_comment(self, request: Request, full_name: str, number: str) -> Response:
        body = json.loads(request.get_data())
        with self.changed:
            comment_id = 1000 + len(self.notes)
            self.notes.append(Note(full_name, int(number), body["body"], comment_id))
            self.changed.notify_all()
        return self.json(self.comment_json(full_name, comment_id, body["body"]), 201)

    def comment_json(self, full_name: str, comment_id: int, body: str) -> dict[str, Any]:
        return {
            "id": comment_id,
            "body": body,
            "user": {"login": "forgeflow[bot]", "id": 1},
            "url": f"{self.api_url}/repos/{full_name}/issues/comments/{comment_id}",
            "html_url": f"https://github.com/{full_name}/issues/1#issuecomment-{comment_id}",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }

    def get_comment(self, request: Request, full_name: str, comment_id: str) -> Response:
        return self.json(self.comment_json(full_name, int(comment_id), "a comment"))

    def post_reaction(self, request: Request, full_name: str, comment_id: str) -> Response:
        content = json.loads(request.get_data())["content"]
        with self.changed:
            self.reactions.append((full_name, int(comment_id), content))
            self.changed.notify_all()
        return self.json(
            {"id": len(self.reactions), "content": content, "user": {"login": "forgeflow[bot]"}}, 201
        )

    # -- signing in (OAuth2 web flow) ---------------------------------------------------------

    def oauth_authorize(self, request: Request) -> Response:
        """The consent page, answered yes at once: back to the app with a code."""
        import secrets
        from urllib.parse import urlencode

        code = secrets.token_hex(8)
        with self.lock:
            self.oauth_codes[code] = self.oauth_user
        query = urlencode({"code": code, "state": request.args.get("state", "")})
        return Response(status=302, headers={"Location": f"{request.args['redirect_uri']}?{query}"})

    def oauth_token(self, request: Request) -> Response:
        import secrets

        with self.lock:
            user = self.oauth_codes.pop(request.form.get("code", ""), None)
            if user is None:
                return self.json({"error": "bad_verification_code"}, 200)
            token = "gho_" + secrets.token_hex(10)
            self.oauth_tokens[token] = user
        return self.json({"access_token": token, "token_type": "bearer", "scope": "read:user"})

    def get_user(self, request: Request) -> Response:
        token = request.headers.get("Authorization", "").split(" ")[-1]
        user = self.oauth_tokens.get(token)
        if user is None:
            return self.json({"message": "Bad credentials"}, 401)
        return self.json({"login": user, "id": 42})

    def replies(self, number: int | None = None) -> list[str]:
        with self.lock:
            return [n.body for n in self.notes if number is None or n.number == number]
