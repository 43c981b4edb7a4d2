"""A fake Pagure (``/api/0`` plus raw files and git over HTTP) on a real local HTTP server.

It serves what ogr's Pagure client asks for forgeflow: projects (``ns/name``, top-level
``name``, forks under ``fork/<user>/``) with their users and groups, raw files at a ref,
branches and tags with commits, pull requests with their diffstats and comments, groups; and
flags as Pagure keeps them: commit flags keyed by commit and uid across all projects, pull
request flags keyed by pull request and uid, updated in place when a uid comes again ("Flag
updated"), statuses success/failure/error/pending/canceled, forms validated (400 EINVALIDREQ).
Repositories are also served over git's dumb HTTP protocol at ``/<project>.git``, so a clone
URL Pagure's payloads imply (``<instance>/<fullname>.git``) really clones.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request, Response

from tests.support.fake_forge import FakeForge, Note, Posted, changes, refs, rev_parse, serve_dumb_git
from tests.support.gitrepo import GitRepo

FLAG_STATES = {"success", "failure", "error", "pending", "canceled"}


@dataclass
class Project:
    url_path: str  # "rpms/foo", "pagure", "fork/alice/rpms/foo"
    repo: GitRepo
    users: dict[str, list[str]] = field(default_factory=dict)  # level -> users
    groups: dict[str, list[str]] = field(default_factory=dict)  # level -> groups

    @property
    def fullname(self) -> str:
        return (
            "forks/" + self.url_path[len("fork/") :] if self.url_path.startswith("fork/") else self.url_path
        )


@dataclass
class PullRequest:
    project: str
    id: int
    source: str  # url_path of the project the branch comes from
    branch_from: str
    branch: str
    commit_stop: str
    title: str = "A change"
    author: str = "alice"
    status: str = "Open"


class FakePagure(FakeForge):
    final_words = frozenset({"success", "failure", "error", "canceled"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.projects: dict[str, Project] = {}
        self.pulls: dict[tuple[str, int], PullRequest] = {}
        self.groups: dict[str, list[str]] = {}
        self.commit_flags: dict[tuple[str, str], dict[str, Any]] = {}  # (sha, uid) -> flag
        self.pr_flags: dict[tuple[str, int, str], dict[str, Any]] = {}  # (project, id, uid) -> flag
        self.stats_pending: set[int] = set()  # pull requests Pagure has no diffstats for yet
        self.user_tokens: dict[str, str] = {}  # a user's own API token -> the user (sign-in)
        self._ids = itertools.count(1)

    def add_project(self, url_path: str, repo: GitRepo, **kwargs: Any) -> Project:
        self.projects[url_path] = project = Project(url_path, repo, **kwargs)
        return project

    def add_pull(self, pull: PullRequest) -> PullRequest:
        self.pulls[(pull.project, pull.id)] = pull
        return pull

    def authorized(self, request: Request) -> bool:
        given = request.headers.get("Authorization")
        users = {f"token {t}" for t in self.user_tokens}
        return given == f"token {self.token}" or given in users or (given is None and request.method == "GET")

    def unauthorized(self) -> Response:
        return self.json({"error": "Invalid or expired token", "error_code": "EINVALIDTOK"}, 401)

    def not_found(self, what: str) -> Response:
        return self.json({"error": f"{what} not found", "error_code": "ENOPROJECT"}, 404)

    def routes(self) -> list[tuple[str, str, Any]]:
        names = "|".join(re.escape(p) for p in sorted(self.projects, key=len, reverse=True)) or "$^"
        api = rf"^/api/0/({names})"
        return [
            ("GET", r"^/api/0/group/([^/]+)$", self.get_group),
            ("POST", r"^/api/0/-/whoami$", self.whoami),
            ("GET", api + "$", self.get_project),
            ("GET", api + r"/git/branches$", self.get_branches),
            ("GET", api + r"/git/tags$", self.get_tags),
            ("POST", api + r"/c/([0-9a-f]{40})/flag$", self.post_commit_flag),
            ("GET", api + r"/c/([0-9a-f]{40})/flag$", self.list_commit_flags),
            ("GET", api + r"/pull-request/(\d+)$", self.get_pull),
            ("POST", api + r"/pull-request/(\d+)/flag$", self.post_pull_flag),
            ("GET", api + r"/pull-request/(\d+)/diffstats$", self.diffstats),
            ("POST", api + r"/pull-request/(\d+)/comment$", self.post_comment),
            ("GET", rf"^/({names})/raw/([^/]+)/f/(.+)$", self.raw_file),
            ("GET", rf"^/({names})\.git/(.+)$", self.git_file),
        ]

    def whoami(self, request: Request) -> Response:
        """Who a token belongs to (``POST /api/0/-/whoami``)."""
        token = request.headers.get("Authorization", "").removeprefix("token ")
        user = self.user_tokens.get(token)
        return self.json({"username": user}) if user else self.unauthorized()

    def project_json(self, p: Project) -> dict[str, Any]:
        parts = p.fullname.split("/")
        fork = parts[0] == "forks"
        name, namespace = parts[-1], ("/".join(parts[3 if fork else 0 : -1]) or None)
        parent = self.projects.get("/".join(parts[2:])) if fork else None
        return {
            "id": abs(hash(p.url_path)) % 10**6,
            "name": name,
            "namespace": namespace,
            "fullname": p.fullname,
            "url_path": p.url_path,
            "full_url": f"{self.url}/{p.url_path}",
            "description": name,
            "parent": self.project_json(parent) if parent else None,
            "user": {"name": parts[1] if fork else "owner", "fullname": "Owner"},
            "access_users": {
                level: p.users.get(level, [])
                for level in ("owner", "admin", "commit", "collaborator", "ticket")
            },
            "access_groups": {
                level: p.groups.get(level, []) for level in ("admin", "commit", "collaborator", "ticket")
            },
            "tags": [],
            "date_created": "1700000000",
        }

    def form_error(self, errors: dict[str, list[str]]) -> Response:
        body = {
            "error": "Invalid or incomplete input submitted",
            "error_code": "EINVALIDREQ",
            "errors": errors,
        }
        return self.json(body, 400)

    def validate_flag(self, form: dict[str, Any]) -> Response | None:
        errors = {k: ["This field is required."] for k in ("username", "comment", "url") if not form.get(k)}
        if form.get("status") not in FLAG_STATES:
            errors["status"] = ["Not a valid choice"]
        if len(form.get("uid") or "") > 32:
            errors["uid"] = ["Field cannot be longer than 32 characters."]
        return self.form_error(errors) if errors else None

    def flag_json(self, form: dict[str, Any], uid: str, created: str) -> dict[str, Any]:
        return {
            "username": form["username"],
            "comment": form["comment"],
            "status": form["status"],
            "url": form["url"],
            "percent": form.get("percent"),
            "uid": uid,
            "date_created": created,
            "date_updated": str(time.time_ns()),
            "user": {"name": "forgeflow"},
        }

    # -- the API ----------------------------------------------------------------------------

    def get_group(self, request: Request, name: str) -> Response:
        if name not in self.groups:
            return self.not_found("Group")
        return self.json({"name": name, "display_name": name, "members": self.groups[name]})

    def get_project(self, request: Request, path: str) -> Response:
        return self.json(self.project_json(self.projects[path]))

    def get_branches(self, request: Request, path: str) -> Response:
        branches = refs(self.projects[path].repo, "refs/heads/")
        if request.args.get("with_commits") in ("True", "true", "1"):
            return self.json({"branches": branches, "default": "main", "total_branches": len(branches)})
        return self.json({"branches": sorted(branches), "default": "main", "total_branches": len(branches)})

    def get_tags(self, request: Request, path: str) -> Response:
        tags = refs(self.projects[path].repo, "refs/tags/")
        return self.json({"tags": tags, "total_tags": len(tags)})

    def raw_file(self, request: Request, path: str, ref: str, file: str) -> Response:
        text = self.projects[path].repo.show(ref, file)
        if text is None:
            return Response("<html>Not found</html>", status=404, content_type="text/html")
        return Response(text, content_type="text/plain; charset=utf-8")

    def git_file(self, request: Request, path: str, file: str) -> Response:
        return serve_dumb_git(self.projects[path].repo, file)

    def post_commit_flag(self, request: Request, path: str, sha: str) -> Response:
        p = self.projects[path]
        if rev_parse(p.repo, sha) is None:
            return self.json({"error": "Commit not found", "error_code": "ENOCOMMIT"}, 404)
        form = self.body(request)
        if error := self.validate_flag(form):
            return error
        if self.take_fault():
            return Response("<html>Bad Gateway</html>", status=self.fault_status, content_type="text/html")
        uid = str(form.get("uid") or f"{next(self._ids):032x}")
        with self.changed:
            old = self.commit_flags.get((sha, uid))
            flag = self.flag_json(form, uid, old["date_created"] if old else str(time.time_ns()))
            self.commit_flags[(sha, uid)] = {**flag, "commit_hash": sha, "project": path}
            self.record(
                Posted(
                    p.fullname, sha, form["status"], form["username"], form["comment"], form["url"], uid=uid
                )
            )
        message = "Flag updated" if old else "Flag added"
        return self.json({"flag": self.commit_flags[(sha, uid)], "message": message, "uid": uid})

    def list_commit_flags(self, request: Request, path: str, sha: str) -> Response:
        with self.lock:
            flags = [f for (s, _), f in self.commit_flags.items() if s == sha and f["project"] == path]
        return self.json({"flags": flags, "total_flags": len(flags)})

    def pull_json(self, pr: PullRequest) -> dict[str, Any]:
        return {
            "id": pr.id,
            "uid": f"pr{pr.id:030d}",
            "title": pr.title,
            "branch": pr.branch,
            "branch_from": pr.branch_from,
            "commit_start": pr.commit_stop,
            "commit_stop": pr.commit_stop,
            "project": self.project_json(self.projects[pr.project]),
            "repo_from": self.project_json(self.projects[pr.source]),
            "remote_git": None,
            "status": pr.status,
            "user": {"name": pr.author},
            "tags": ["ci"],
            "initial_comment": "",
            "comments": [],
            "closed_by": None,
            "date_created": "1700000000",
            "full_url": f"{self.url}/{pr.project}/pull-request/{pr.id}",
        }

    def get_pull(self, request: Request, path: str, number: str) -> Response:
        pr = self.pulls.get((path, int(number)))
        if pr is None:
            return self.json({"error": "Pull-Request not found", "error_code": "ENOREQ"}, 404)
        return self.json(self.pull_json(pr))

    def post_pull_flag(self, request: Request, path: str, number: str) -> Response:
        pr = self.pulls.get((path, int(number)))
        if pr is None:
            return self.json({"error": "Pull-Request not found", "error_code": "ENOREQ"}, 404)
        form = self.body(request)
        if error := self.validate_flag(form):
            return error
        if self.take_fault():
            return Response("<html>Bad Gateway</html>", status=self.fault_status, content_type="text/html")
        uid = str(form.get("uid") or f"{next(self._ids):032x}")
        key = (path, pr.id, uid)
        with self.changed:
            old = self.pr_flags.get(key)
            flag = self.flag_json(form, uid, old["date_created"] if old else str(time.time_ns()))
            self.pr_flags[key] = {**flag, "pull_request_uid": f"pr{pr.id:030d}"}
            self.record(
                Posted(
                    self.projects[path].fullname,
                    pr.commit_stop,
                    form["status"],
                    form["username"],
                    form["comment"],
                    form["url"],
                    pull_request=pr.id,
                    uid=uid,
                )
            )
        message = "Flag updated" if old else "Flag added"
        return self.json({"flag": self.pr_flags[key], "message": message, "uid": uid})

    def diffstats(self, request: Request, path: str, number: str) -> Response:
        pr = self.pulls.get((path, int(number)))
        if pr is None:
            return self.json({"error": "Pull-Request not found", "error_code": "ENOREQ"}, 404)
        if pr.id in self.stats_pending:
            return self.json(
                {"error": "No statistics could be computed for this PR", "error_code": "ENOPRSTATS"}, 400
            )
        base = rev_parse(self.projects[path].repo, pr.branch) or pr.branch
        stats = {
            new: {"lines_added": 1, "lines_removed": 0, "old_path": old if old != new else None, "status": s}
            for s, old, new in changes(self.projects[pr.source].repo, base, pr.commit_stop)
        }
        return self.json(stats)

    def post_comment(self, request: Request, path: str, number: str) -> Response:
        if (path, int(number)) not in self.pulls:
            return self.json({"error": "Pull-Request not found", "error_code": "ENOREQ"}, 404)
        comment = str(self.body(request).get("comment") or "")
        if not comment:
            return self.form_error({"comment": ["This field is required."]})
        with self.changed:
            self.notes.append(Note(self.projects[path].fullname, int(number), comment, next(self._ids)))
            self.changed.notify_all()
        return self.json({"message": "Comment added", "avatar_url": "", "user": "forgeflow"})
