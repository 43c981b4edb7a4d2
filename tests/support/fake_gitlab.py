"""A fake GitLab REST API (``/api/v4``) on a real local HTTP server, backed by real git repos.

It serves what python-gitlab asks for forgeflow: projects by id or URL-encoded path, files at a
ref, branches, tags, comparisons, merge requests with their paginated diffs, notes and award
emoji, users and (inherited) members; and commit statuses with GitLab's own rules: a status
belongs to a ref (none given: the first branch containing the commit, else "404 References for
commit Not Found"), states are pending/running/success/failed/canceled/skipped, and posting a
state the pending or running status already has is answered 400 "Cannot transition status via
:run from :running". A project can be invisible to the token (404) or refuse its statuses (403),
as a fork whose owner never invited forgeflow does.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request, Response

from tests.support.fake_forge import (
    FakeForge,
    Note,
    Posted,
    branches_containing,
    changes,
    commits_between,
    refs,
    rev_parse,
)
from tests.support.gitrepo import GitRepo

P = r"^/api/v4/projects/([^/]+)"
SHA = r"([0-9a-f]{40})"
# state posted -> (GitLab's state machine event, the states it may leave)
TRANSITIONS = {
    "pending": ("enqueue", {"created", "skipped"}),
    "running": ("run", {"created", "pending"}),
    "success": ("success", {"created", "pending", "running"}),
    "failed": ("drop", {"created", "pending", "running"}),
    "canceled": ("cancel", {"created", "pending", "running"}),
    "skipped": ("skip", {"created", "pending"}),
}


@dataclass
class Project:
    id: int
    path: str
    repo: GitRepo
    members: dict[str, int] = field(default_factory=dict)  # username -> access level
    visible: bool = True  # False: the token gets 404 for it
    can_post: bool = True  # False: the token gets 403 posting statuses
    forked_from: int | None = None


@dataclass
class MergeRequest:
    target: str
    iid: int
    source: str
    source_branch: str
    target_branch: str
    sha: str
    title: str = "A change"
    author: str = "alice"
    state: str = "opened"
    labels: list[str] = field(default_factory=list)


@dataclass
class Job:
    """A commit status as GitLab keeps it (one per post that is not a transition)."""

    id: int
    project: int
    sha: str
    ref: str
    name: str
    status: str
    description: str
    target_url: str


class FakeGitLab(FakeForge):
    final_words = frozenset({"success", "failed", "canceled"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.projects: dict[str, Project] = {}
        self.merge_requests: dict[tuple[str, int], MergeRequest] = {}
        self.jobs: list[Job] = []
        self.reactions: list[tuple[int, str]] = []
        self.users = {"alice": 11, "bob": 12, "carol": 13, "forgeflow": 99}
        self._ids = itertools.count(1)

    def add_project(self, path: str, repo: GitRepo, **kwargs: Any) -> Project:
        project = Project(id=100 + len(self.projects), path=path, repo=repo, **kwargs)
        self.projects[path] = project
        return project

    def add_merge_request(self, mr: MergeRequest) -> MergeRequest:
        self.merge_requests[(mr.target, mr.iid)] = mr
        return mr

    def authorized(self, request: Request) -> bool:
        return request.headers.get("PRIVATE-TOKEN") == self.token

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", r"^/api/v4/users$", self.list_users),
            ("GET", P + "$", self.get_project),
            ("GET", P + r"/repository/files/([^/]+)$", self.get_file),
            ("GET", P + r"/repository/branches/([^/]+)$", self.get_branch),
            ("GET", P + r"/repository/tags/([^/]+)$", self.get_tag),
            ("GET", P + r"/repository/compare$", self.compare),
            ("POST", P + r"/statuses/" + SHA + "$", self.post_status),
            ("GET", P + r"/repository/commits/" + SHA + "/statuses$", self.list_statuses),
            ("GET", P + r"/merge_requests/(\d+)$", self.get_merge_request),
            ("GET", P + r"/merge_requests/(\d+)/diffs$", self.merge_request_diffs),
            ("POST", P + r"/merge_requests/(\d+)/notes$", self.post_note),
            ("POST", P + r"/merge_requests/(\d+)/notes/(\d+)/award_emoji$", self.award_emoji),
            ("GET", P + r"/members/all/(\d+)$", self.get_member),
        ]

    # -- lookups ----------------------------------------------------------------------------

    def project(self, key: str) -> Project | None:
        found = next((p for p in self.projects.values() if str(p.id) == key), None)
        found = found or self.projects.get(key)
        return found if found is not None and found.visible else None

    def project_json(self, p: Project) -> dict[str, Any]:
        namespace, _, name = p.path.rpartition("/")
        data: dict[str, Any] = {
            "id": p.id,
            "name": name,
            "path": name,
            "path_with_namespace": p.path,
            "namespace": {"full_path": namespace, "path": namespace.rsplit("/", 1)[-1], "kind": "group"},
            "default_branch": "main",
            "visibility": "public",
            "web_url": f"https://gitlab.example.com/{p.path}",
            "http_url_to_repo": p.repo.url,
            "ssh_url_to_repo": f"git@gitlab.example.com:{p.path}.git",
        }
        if p.forked_from is not None:
            parent = next(x for x in self.projects.values() if x.id == p.forked_from)
            data["forked_from_project"] = {"id": parent.id, "path_with_namespace": parent.path}
        return data

    # -- the API ----------------------------------------------------------------------------

    def list_users(self, request: Request) -> Response:
        name = request.args.get("username", "")
        found = [{"id": i, "username": n, "state": "active"} for n, i in self.users.items() if n == name]
        return self.json(found)

    def get_project(self, request: Request, key: str) -> Response:
        p = self.project(key)
        return self.json(self.project_json(p)) if p else self.not_found("Project")

    def get_file(self, request: Request, key: str, path: str) -> Response:
        p = self.project(key)
        if p is None:
            return self.not_found("Project")
        ref = request.args.get("ref", "main")
        if rev_parse(p.repo, ref) is None:
            return self.not_found("Commit")
        text = p.repo.show(ref, path)
        if text is None:
            return self.not_found("File")
        data = text.encode()
        return self.json(
            {
                "file_name": path.rsplit("/", 1)[-1],
                "file_path": path,
                "size": len(data),
                "encoding": "base64",
                "content": base64.b64encode(data).decode(),
                "ref": ref,
                "blob_id": "0" * 40,
                "commit_id": rev_parse(p.repo, ref),
                "last_commit_id": rev_parse(p.repo, ref),
            }
        )

    def get_branch(self, request: Request, key: str, name: str) -> Response:
        p = self.project(key)
        sha = refs(p.repo, "refs/heads/").get(name) if p else None
        return self.json({"name": name, "commit": {"id": sha}}) if sha else self.not_found("Branch")

    def get_tag(self, request: Request, key: str, name: str) -> Response:
        p = self.project(key)
        sha = refs(p.repo, "refs/tags/").get(name) if p else None
        return self.json({"name": name, "commit": {"id": sha}}) if sha else self.not_found("Tag")

    def compare(self, request: Request, key: str) -> Response:
        p = self.project(key)
        if p is None:
            return self.not_found("Project")
        base, head = request.args["from"], request.args["to"]
        diffs = [
            {
                "old_path": old,
                "new_path": new,
                "new_file": s == "A",
                "deleted_file": s == "D",
                "renamed_file": s == "R",
            }
            for s, old, new in changes(p.repo, base, head)
        ]
        commits = [{"id": sha} for sha in commits_between(p.repo, base, head)]
        return self.json(
            {"commits": commits, "diffs": diffs, "compare_timeout": False, "compare_same_ref": False}
        )

    def post_status(self, request: Request, key: str, sha: str) -> Response:
        p = self.project(key)
        if p is None:
            return self.not_found("Project")
        if not p.can_post:
            return self.json({"message": "403 Forbidden"}, 403)
        if rev_parse(p.repo, sha) is None:
            return self.not_found("Commit")
        data = self.body(request)
        state = str(data.get("state") or "")
        if state not in TRANSITIONS:
            return self.json({"error": "state does not have a valid value"}, 400)
        ref = str(data.get("ref") or "") or next(iter(branches_containing(p.repo, sha)), "")
        if not ref:
            return self.not_found("References for commit")
        if self.take_fault():
            return self.json({"message": f"{self.fault_status} Bad Gateway"}, self.fault_status)
        name = str(data.get("name") or data.get("context") or "default")
        with self.changed:
            active = [
                j
                for j in self.jobs
                if (j.project, j.sha, j.ref, j.name) == (p.id, sha, ref, name)
                and j.status in ("pending", "running")
            ]
            current = active[-1].status if active else "created"
            event, allowed = TRANSITIONS[state]
            if current not in allowed:
                return self.json({"message": f"Cannot transition status via :{event} from :{current}"}, 400)
            job = active[-1] if active else Job(next(self._ids), p.id, sha, ref, name, "", "", "")
            if not active:
                self.jobs.append(job)
            job.status = state
            job.description = str(data.get("description") or "")
            job.target_url = str(data.get("target_url") or "")
            self.record(Posted(p.path, sha, state, name, job.description, job.target_url, ref=ref))
        return self.json(self.job_json(job), 201)

    def job_json(self, job: Job) -> dict[str, Any]:
        return {
            "id": job.id,
            "sha": job.sha,
            "ref": job.ref,
            "status": job.status,
            "name": job.name,
            "description": job.description,
            "target_url": job.target_url,
            "allow_failure": False,
        }

    def list_statuses(self, request: Request, key: str, sha: str) -> Response:
        p = self.project(key)
        if p is None:
            return self.not_found("Project")
        with self.lock:
            latest: dict[tuple[str, str], Job] = {}
            for job in self.jobs:
                if job.project == p.id and job.sha == sha:
                    latest[(job.name, job.ref)] = job
            return self.json([self.job_json(j) for j in latest.values()])

    def get_merge_request(self, request: Request, key: str, iid: str) -> Response:
        p = self.project(key)
        mr = self.merge_requests.get((p.path, int(iid))) if p else None
        if mr is None:
            return self.not_found("Merge Request")
        return self.json(
            {
                "id": 5000 + mr.iid,
                "iid": mr.iid,
                "project_id": self.projects[mr.target].id,
                "title": mr.title,
                "state": mr.state,
                "source_branch": mr.source_branch,
                "target_branch": mr.target_branch,
                "source_project_id": self.projects[mr.source].id,
                "target_project_id": self.projects[mr.target].id,
                "sha": mr.sha,
                "author": {"username": mr.author},
                "labels": mr.labels,
                "draft": mr.title.lower().startswith("draft:"),
                "web_url": f"https://gitlab.example.com/{mr.target}/-/merge_requests/{mr.iid}",
            }
        )

    def merge_request_diffs(self, request: Request, key: str, iid: str) -> Response:
        p = self.project(key)
        mr = self.merge_requests.get((p.path, int(iid))) if p else None
        if p is None or mr is None:
            return self.not_found("Merge Request")
        base = rev_parse(p.repo, mr.target_branch) or mr.target_branch
        source = self.projects[mr.source].repo
        diffs = [{"old_path": old, "new_path": new} for _, old, new in changes(source, base, mr.sha)]
        return self.paginated(request, diffs)

    def paginated(self, request: Request, items: list[Any]) -> Response:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", 20))
        pages = max(1, -(-len(items) // per_page))
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(items)),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
        }
        if page < pages:
            args = {**request.args.to_dict(), "page": str(page + 1), "per_page": str(per_page)}
            query = "&".join(f"{k}={v}" for k, v in args.items())
            headers["Link"] = f'<{request.base_url}?{query}>; rel="next"'
        return self.json(items[(page - 1) * per_page : page * per_page], headers=headers)

    def post_note(self, request: Request, key: str, iid: str) -> Response:
        p = self.project(key)
        if p is None or (p.path, int(iid)) not in self.merge_requests:
            return self.not_found("Merge Request")
        note = Note(p.path, int(iid), str(self.body(request).get("body", "")), id=next(self._ids))
        with self.changed:
            self.notes.append(note)
            self.changed.notify_all()
        return self.json({"id": note.id, "body": note.body, "author": {"username": "forgeflow"}}, 201)

    def award_emoji(self, request: Request, key: str, iid: str, note_id: str) -> Response:
        name = str(self.body(request).get("name", ""))
        if (int(note_id), name) in self.reactions:
            return self.json(
                {"message": '404 Award Emoji {:name=>["has already been taken"]} Not Found'}, 404
            )
        self.reactions.append((int(note_id), name))
        return self.json({"id": next(self._ids), "name": name}, 201)

    def get_member(self, request: Request, key: str, user_id: str) -> Response:
        p = self.project(key)
        name = next((n for n, i in self.users.items() if str(i) == user_id), None)
        if p is None or name is None or name not in p.members:
            return self.not_found("")
        return self.json(
            {"id": int(user_id), "username": name, "access_level": p.members[name], "state": "active"}
        )
