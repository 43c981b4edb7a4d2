"""A fake Forgejo/Gitea REST API (``/api/v1``) on a real local HTTP server, backed by real git.

It serves what pyforgejo asks for forgeflow: repositories, contents at a ref, branches, tags,
``/compare/{base}...{head}`` (Forgejo's shape with ``files``; Gitea's without, when
``compare_files`` is off), pull requests with their paginated files, collaborator permissions
(403 unless the token's user is a repository admin, as Forgejo answers), issue comments and
reactions; and commit statuses with Forgejo's state set (pending, success, error, failure,
warning -- anything else is a 422), listed per commit and combined (latest per context).
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request, Response

from tests.support.fake_forge import FakeForge, Note, Posted, changes, commits_between, refs, rev_parse
from tests.support.gitrepo import GitRepo

R = r"^/api/v1/repos/([^/]+)/([^/]+)"
SHA = r"([0-9a-f]{40})"
STATES = {"pending", "success", "error", "failure", "warning"}


@dataclass
class Repo:
    id: int
    full_name: str
    repo: GitRepo
    permissions: dict[str, str] = field(default_factory=dict)  # user -> owner|admin|write|read
    token_is_admin: bool = True  # may the token's user read others' permissions


@dataclass
class Pull:
    repo: str
    number: int
    head_repo: str
    head_ref: str
    base_ref: str
    sha: str
    title: str = "A change"
    author: str = "alice"


class FakeForgejo(FakeForge):
    final_words = frozenset({"success", "failure", "error", "warning"})

    def __init__(self, *args: Any, compare_files: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.repos: dict[str, Repo] = {}
        self.pulls: dict[tuple[str, int], Pull] = {}
        self.reactions: list[tuple[int, str]] = []
        self.compare_files = compare_files
        self.users = {"alice", "bob", "carol", "owner", "forgeflow"}
        self._ids = itertools.count(1)

    def add_repo(self, full_name: str, repo: GitRepo, **kwargs: Any) -> Repo:
        added = Repo(id=200 + len(self.repos), full_name=full_name, repo=repo, **kwargs)
        self.repos[full_name] = added
        return added

    def add_pull(self, pull: Pull) -> Pull:
        self.pulls[(pull.repo, pull.number)] = pull
        return pull

    def authorized(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"token {self.token}"

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", R + "$", self.get_repo),
            ("GET", R + r"/contents/(.+)$", self.get_contents),
            ("GET", R + r"/branches/(.+)$", self.get_branch),
            ("GET", R + r"/tags/(.+)$", self.get_tag),
            ("GET", R + r"/compare/(.+)$", self.compare),
            ("POST", R + r"/statuses/" + SHA + "$", self.post_status),
            ("GET", R + r"/statuses/" + SHA + "$", self.list_statuses),
            ("GET", R + r"/commits/([^/]+)/status$", self.combined_status),
            ("GET", R + r"/pulls/(\d+)$", self.get_pull),
            ("GET", R + r"/pulls/(\d+)/files$", self.pull_files),
            ("GET", R + r"/collaborators/([^/]+)/permission$", self.permission),
            ("POST", R + r"/issues/(\d+)/comments$", self.post_comment),
            ("POST", R + r"/issues/comments/(\d+)/reactions$", self.post_reaction),
        ]

    def repo(self, owner: str, name: str) -> Repo | None:
        return self.repos.get(f"{owner}/{name}")

    def repo_json(self, r: Repo) -> dict[str, Any]:
        owner, name = r.full_name.split("/")
        return {
            "id": r.id,
            "name": name,
            "full_name": r.full_name,
            "owner": {"id": 1, "login": owner, "username": owner},
            "html_url": f"https://forgejo.example.com/{r.full_name}",
            "clone_url": r.repo.url,
            "ssh_url": f"git@forgejo.example.com:{r.full_name}.git",
            "default_branch": "main",
            "private": False,
            "fork": False,
        }

    def get_repo(self, request: Request, owner: str, name: str) -> Response:
        r = self.repo(owner, name)
        return self.json(self.repo_json(r)) if r else self.not_found("repo")

    def get_contents(self, request: Request, owner: str, name: str, path: str) -> Response:
        r = self.repo(owner, name)
        ref = request.args.get("ref") or "main"
        text = r.repo.show(ref, path) if r else None
        if text is None:
            return self.json({"message": "object does not exist", "errors": []}, 404)
        data = text.encode()
        return self.json(
            {
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "sha": "0" * 40,
                "type": "file",
                "size": len(data),
                "encoding": "base64",
                "content": base64.b64encode(data).decode(),
            }
        )

    def get_branch(self, request: Request, owner: str, name: str, branch: str) -> Response:
        r = self.repo(owner, name)
        sha = refs(r.repo, "refs/heads/").get(branch) if r else None
        return self.json({"name": branch, "commit": {"id": sha}}) if sha else self.not_found("branch")

    def get_tag(self, request: Request, owner: str, name: str, tag: str) -> Response:
        r = self.repo(owner, name)
        sha = refs(r.repo, "refs/tags/").get(tag) if r else None
        return self.json({"name": tag, "commit": {"sha": sha}}) if sha else self.not_found("tag")

    def compare(self, request: Request, owner: str, name: str, basehead: str) -> Response:
        r = self.repo(owner, name)
        if r is None or "..." not in basehead:
            return self.not_found("compare")
        base, head = basehead.split("...", 1)
        shas = commits_between(r.repo, base, head)
        commits = []
        for sha in shas:
            parent = rev_parse(r.repo, f"{sha}^") or sha
            files = [{"filename": new, "status": s} for s, _, new in changes(r.repo, parent, sha)]
            commits.append({"sha": sha, "files": files})
        body: dict[str, Any] = {"total_commits": len(shas), "commits": commits}
        if self.compare_files:
            body["files"] = [{"filename": new, "status": s} for s, _, new in changes(r.repo, base, head)]
        return self.json(body)

    def post_status(self, request: Request, owner: str, name: str, sha: str) -> Response:
        r = self.repo(owner, name)
        if r is None:
            return self.not_found("repo")
        data = self.body(request)
        state = str(data.get("state") or "")
        if state not in STATES:
            return self.json({"message": f"[State]: invalid commit status state {state!r}"}, 422)
        if self.take_fault():
            return self.json({"message": "Bad Gateway"}, self.fault_status)
        posted = Posted(
            r.full_name,
            sha,
            state,
            str(data.get("context") or "default"),
            str(data.get("description") or ""),
            str(data.get("target_url") or ""),
        )
        self.record(posted)
        return self.json(self.status_json(len(self.statuses), posted), 201)

    @staticmethod
    def status_json(index: int, s: Posted) -> dict[str, Any]:
        return {
            "id": index,
            "status": s.state,
            "context": s.context,
            "description": s.description,
            "target_url": s.target_url,
        }

    def latest(self, full_name: str, sha: str) -> list[tuple[int, Posted]]:
        with self.lock:
            rows = [(i + 1, s) for i, s in enumerate(self.statuses) if s.repo == full_name and s.sha == sha]
        latest: dict[str, tuple[int, Posted]] = {s.context: (i, s) for i, s in rows}
        return sorted(latest.values(), key=lambda row: -row[0])

    def list_statuses(self, request: Request, owner: str, name: str, sha: str) -> Response:
        page = int(request.args.get("page", 1))
        rows = self.latest(f"{owner}/{name}", sha) if page == 1 else []
        return self.json([self.status_json(i, s) for i, s in rows])

    def combined_status(self, request: Request, owner: str, name: str, ref: str) -> Response:
        r = self.repo(owner, name)
        if r is None:
            return self.not_found("repo")
        sha = rev_parse(r.repo, ref) or ref
        page, limit = int(request.args.get("page", 1)), int(request.args.get("limit", 30))
        rows = self.latest(r.full_name, sha)
        chunk = rows[(page - 1) * limit : page * limit]
        return self.json(
            {"sha": sha, "total_count": len(rows), "statuses": [self.status_json(i, s) for i, s in chunk]}
        )

    def get_pull(self, request: Request, owner: str, name: str, number: str) -> Response:
        pull = self.pulls.get((f"{owner}/{name}", int(number)))
        if pull is None:
            return self.not_found("pull")
        base, head = self.repos[pull.repo], self.repos[pull.head_repo]
        return self.json(
            {
                "id": 900 + pull.number,
                "number": pull.number,
                "title": pull.title,
                "state": "open",
                "merged": False,
                "draft": False,
                "user": {"id": 2, "login": pull.author},
                "head": {
                    "ref": pull.head_ref,
                    "sha": pull.sha,
                    "repo_id": head.id,
                    "repo": self.repo_json(head),
                },
                "base": {"ref": pull.base_ref, "sha": "", "repo_id": base.id, "repo": self.repo_json(base)},
                "labels": [{"id": 1, "name": "ci"}],
                "html_url": f"https://forgejo.example.com/{pull.repo}/pulls/{pull.number}",
            }
        )

    def pull_files(self, request: Request, owner: str, name: str, number: str) -> Response:
        pull = self.pulls.get((f"{owner}/{name}", int(number)))
        if pull is None:
            return self.not_found("pull")
        page, limit = int(request.args.get("page", 1)), int(request.args.get("limit", 30))
        repo = self.repos[pull.head_repo].repo
        base = rev_parse(self.repos[pull.repo].repo, pull.base_ref) or pull.base_ref
        files = [
            {"filename": new, "previous_filename": old if old != new else "", "status": s}
            for s, old, new in changes(repo, base, pull.sha)
        ]
        return self.json(files[(page - 1) * limit : page * limit], headers={"X-Total-Count": str(len(files))})

    def permission(self, request: Request, owner: str, name: str, user: str) -> Response:
        r = self.repo(owner, name)
        if r is None:
            return self.not_found("repo")
        if not r.token_is_admin:
            return self.json({"message": "Only admins can query all permissions"}, 403)
        if user not in self.users:
            return self.json({"message": "user does not exist"}, 404)
        level = r.permissions.get(user, "read")
        return self.json({"permission": level, "role_name": level, "user": {"login": user}})

    def post_comment(self, request: Request, owner: str, name: str, number: str) -> Response:
        note = Note(f"{owner}/{name}", int(number), str(self.body(request).get("body", "")), next(self._ids))
        with self.changed:
            self.notes.append(note)
            self.changed.notify_all()
        return self.json({"id": note.id, "body": note.body, "user": {"login": "forgeflow"}}, 201)

    def post_reaction(self, request: Request, owner: str, name: str, comment_id: str) -> Response:
        content = str(self.body(request).get("content", ""))
        known = (int(comment_id), content) in self.reactions
        if not known:
            self.reactions.append((int(comment_id), content))
        return self.json({"content": content, "user": {"login": "forgeflow"}}, 200 if known else 201)
