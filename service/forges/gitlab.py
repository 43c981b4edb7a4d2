"""GitLab (gitlab.com and self-managed) through ogr and python-gitlab, which ogr exposes.

What GitLab does its own way:

- A commit status belongs to a pipeline of a *ref*: without one GitLab picks the first branch
  containing the commit (maybe the wrong one), so forgeflow always names it -- the pushed branch
  or tag, a merge request's source branch. A state posted twice is answered 400 "Cannot
  transition status via :run from :running", which means the forge already shows it.
- A merge request from a fork shows the pipelines of its *source* project, so the statuses go
  on the fork's commit. When forgeflow's token cannot post there (403/404), it says so once in
  a note on the merge request (:mod:`service.forges.notes`) and posts on the target project
  instead, under the merge request's ref ``refs/merge-requests/<iid>/head``.
- Write access means a member (direct or inherited) with at least Developer access (30): the
  role that may push branches and merge; Reporters and Guests may not.
- Comparisons come from the compare API (merge base to head) and merge request files from the
  paginated ``/diffs`` API (``/changes`` on GitLab before 15.7, None when it overflows).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import gitlab
from ogr.abstract import CommitStatus

from service.events import Repository
from service.forges.base import (
    ForgeError,
    PullRequestInfo,
    ReportedStatus,
    StatusReport,
    TransientForgeError,
)
from service.forges.errors import classify, http_status_of
from service.forges.gitlab_api import (
    REACTIONS,
    GitlabApiService,
    diff_paths,
    gitlab_state,
    repository_of,
    same_repository,
)
from service.forges.ogr_forge import PROJECT_CACHE_SECONDS, OgrForge

log = logging.getLogger(__name__)

DEVELOPER_ACCESS = 30
# GitLab lists at most diff_max_files (default 1,000) files in a comparison: at the cap the
# list may be cut, so path filters treat it as unknown.
GITLAB_COMPARE_FILE_CAP = 1000
MERGE_REQUEST_REF = "refs/merge-requests/{number}/head"
FORK_NOTE_TOPIC = "fork-statuses"
FORK_NOTE = (
    "forgeflow cannot post commit statuses on `{fork}`, the project this merge request comes "
    "from: GitLab answered {status} to its token. GitLab shows a merge request the pipelines of "
    "its source project, so forgeflow's results will not appear on this merge request; they are "
    "posted on `{target}` for `{ref}` instead and shown at {run_url}. To see them here, give "
    "forgeflow's user Developer access to `{fork}`."
)


class GitlabForge(OgrForge):
    """gitlab.com or a self-managed GitLab."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._no_access: dict[str, float] = {}  # forks the token cannot post on, and since when
        self._no_access_lock = threading.Lock()

    def make_service(self) -> Any:
        def observe(headers: Mapping[str, str], status: int) -> None:
            self.limits.observe(self.kind, self.name, "token", headers, status)

        return GitlabApiService(self.instance.token, self.instance.api_url, self.timeout, observe)

    @property
    def gl(self) -> gitlab.Gitlab:
        instance: gitlab.Gitlab = self._service.gitlab_instance
        return instance

    def gitlab_project(self, repo: Repository) -> Any:
        """python-gitlab's project (fetched once and cached with ogr's project)."""
        return self.project(repo).gitlab_repo

    # -- statuses --------------------------------------------------------------------------

    def post_status(
        self, repo: Repository, sha: str, report: StatusReport, state: CommitStatus, description: str
    ) -> None:
        fork = report.source_repo
        if report.pull_request is not None and fork is not None and not same_repository(fork, repo):
            self._post_for_fork(repo, fork, sha, report, state, description)
        else:
            self._create_status(repo, sha, report.ref, report, state, description)

    def _create_status(
        self,
        repo: Repository,
        sha: str,
        ref: str,
        report: StatusReport,
        state: CommitStatus,
        description: str,
    ) -> None:
        data = {
            "state": gitlab_state(state),
            "context": report.context,
            "target_url": report.target_url,
            "description": description,
        }
        if ref:
            data["ref"] = ref
        commit = self.gitlab_project(repo).commits.get(sha, lazy=True)
        try:
            commit.statuses.create(data)
        except gitlab.GitlabError as exc:
            if exc.response_code == 409:  # "Another update to this commit status is in progress"
                raise TransientForgeError(f"GitLab is updating {report.context} already: {exc}") from exc
            raise

    def _post_for_fork(
        self,
        repo: Repository,
        fork: Repository,
        sha: str,
        report: StatusReport,
        state: CommitStatus,
        description: str,
    ) -> None:
        status: int | None = None
        if not self._known_without_access(fork):
            try:
                self._create_status(fork, sha, report.ref, report, state, description)
                return
            except ForgeError:
                raise
            except Exception as exc:
                status = http_status_of(exc)
                if status not in (403, 404):
                    raise classify(exc, f"setting {report.context} on {fork.full_name}@{sha[:7]}") from exc
                log.warning("%s: no access to %s (%s); posting on %s", self.name, fork.full_name, exc, repo)
                self._remember_without_access(fork)
        assert report.pull_request is not None
        ref = MERGE_REQUEST_REF.format(number=report.pull_request)
        self._note_fork_once(repo, fork, report, ref, status)
        self._create_status(repo, sha, ref, report, state, description)

    def _known_without_access(self, fork: Repository) -> bool:
        with self._no_access_lock:
            since = self._no_access.get(fork.full_name.lower())
            return since is not None and time.monotonic() - since < PROJECT_CACHE_SECONDS

    def _remember_without_access(self, fork: Repository) -> None:
        with self._no_access_lock:
            self._no_access[fork.full_name.lower()] = time.monotonic()

    def _note_fork_once(
        self, repo: Repository, fork: Repository, report: StatusReport, ref: str, status: int | None
    ) -> None:
        """Tell the merge request, once ever, why its statuses are not where GitLab shows them."""
        number = report.pull_request
        if self.notes is None or number is None:
            return
        body = FORK_NOTE.format(
            fork=fork.full_name,
            target=repo.full_name,
            status=status or "403/404",
            ref=ref,
            run_url=report.target_url.split("#", 1)[0],
        )
        try:
            self.notes.post_once(
                self.kind,
                self.name,
                repo.full_name,
                number,
                FORK_NOTE_TOPIC,
                lambda: self.comment(repo, number, body),
            )
        except ForgeError as exc:  # the note is a courtesy: the statuses still go out
            log.warning("%s: could not note %s!%s: %s", self.name, repo.full_name, number, exc)

    def statuses(self, repo: Repository, sha: str) -> list[ReportedStatus]:
        def read() -> list[ReportedStatus]:
            commit = self.gitlab_project(repo).commits.get(sha, lazy=True)
            latest: dict[str, Any] = {}
            for status in commit.statuses.list(get_all=True):
                current = latest.get(status.name)
                if current is None or status.id > current.id:
                    latest[status.name] = status
            return [
                ReportedStatus(
                    context=s.name,
                    state=s.status,
                    description=s.description or "",
                    target_url=s.target_url or "",
                )
                for s in latest.values()
            ]

        return self._call(f"reading statuses of {repo.full_name}@{sha[:7]}", read)

    # -- comparisons -----------------------------------------------------------------------

    def changed_files(self, repo: Repository, base: str, head: str) -> list[str] | None:
        def compare() -> list[str] | None:
            result = self.gitlab_project(repo).repository_compare(base, head)
            if result.get("compare_timeout"):
                return None
            return diff_paths(result.get("diffs") or [], GITLAB_COMPARE_FILE_CAP)

        return self._call(f"comparing {base[:7]}...{head[:7]} of {repo.full_name}", compare)

    def pull_request_files(self, repo: Repository, number: int) -> list[str] | None:
        def files() -> list[str] | None:
            project = self.gitlab_project(repo)
            try:
                diffs = self.gl.http_list(
                    f"/projects/{project.id}/merge_requests/{number}/diffs", get_all=True, per_page=100
                )
            except gitlab.GitlabHttpError as exc:
                if exc.response_code != 404:
                    raise
                # GitLab before 15.7 has only /changes, which stops at a limit and says so
                changes = project.mergerequests.get(number, lazy=True).changes()
                if changes.get("overflow"):
                    return None
                diffs = changes.get("changes") or []
            return diff_paths(diffs, None)

        return self._call(f"listing the files of !{number} in {repo.full_name}", files)

    # -- merge requests, permissions, conversation -----------------------------------------

    def pull_request_info(self, repo: Repository, number: int) -> PullRequestInfo:
        def read() -> PullRequestInfo:
            project = self.gitlab_project(repo)
            mr = project.mergerequests.get(number).attributes
            fork = mr["source_project_id"] != mr["target_project_id"]
            source: Repository | None = repository_of(project.attributes)
            if fork:
                source = self._project_by_id(mr["source_project_id"])
            labels = mr.get("labels") or []
            return PullRequestInfo(
                number=number,
                head_sha=str(mr.get("sha") or ""),
                author=str((mr.get("author") or {}).get("username", "")),
                source_branch=str(mr.get("source_branch", "")),
                target_branch=str(mr.get("target_branch", "")),
                source_repo=source,
                fork=fork,
                state={"opened": "open", "merged": "merged"}.get(mr.get("state", ""), "closed"),
                draft=bool(mr.get("draft") or mr.get("work_in_progress")),
                title=str(mr.get("title", "")),
                labels=tuple(str(x["name"] if isinstance(x, dict) else x) for x in labels),
            )

        return self._call(f"reading merge request !{number} of {repo.full_name}", read)

    def _project_by_id(self, project_id: int) -> Repository | None:
        """A fork by its id, or None when the token cannot see it (or it was deleted)."""
        try:
            return repository_of(self.gl.projects.get(project_id).attributes)
        except gitlab.GitlabGetError as exc:
            if exc.response_code in (403, 404):
                return None
            raise

    def has_write_access(self, repo: Repository, user: str) -> bool:
        def check() -> bool:
            users = self.gl.users.list(username=user, get_all=False)
            if not users:
                return False
            try:
                member = self.gitlab_project(repo).members_all.get(users[0].id)
            except gitlab.GitlabGetError as exc:
                if exc.response_code == 404:  # not a member, directly or through a group
                    return False
                raise
            state = getattr(member, "state", "active")
            return bool(member.access_level >= DEVELOPER_ACCESS and state == "active")

        return self._call(f"asking whether {user} may write to {repo.full_name}", check)

    def comment(self, repo: Repository, number: int, body: str) -> None:
        self._call(
            f"commenting on !{number} of {repo.full_name}",
            lambda: (
                self.gitlab_project(repo).mergerequests.get(number, lazy=True).notes.create({"body": body})
            ),
        )

    def react(self, repo: Repository, number: int, comment_id: str, reaction: str) -> bool:
        def add() -> bool:
            mr = self.gitlab_project(repo).mergerequests.get(number, lazy=True)
            note = mr.notes.get(int(comment_id), lazy=True)
            try:
                note.awardemojis.create({"name": REACTIONS.get(reaction, reaction)})
            except gitlab.GitlabCreateError as exc:
                if "already been taken" not in str(exc):
                    raise
            return True

        return self._reacting(repo, comment_id, add)
