"""GitHub (and GitHub Enterprise) through ogr and PyGithub.

What differs from the generic ogr forge: the API root is configurable (Enterprise, tests), and
changed files come from GitHub's compare and pull-request files APIs, which cap their lists
(at the cap the list may be partial, so path filters treat it as unknown).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import github
from ogr.abstract import CommitStatus
from ogr.services.github import GithubService
from ogr.services.github.auth_providers.token import TokenAuthentication

from service.events import Repository
from service.forges.base import PullRequestInfo, StatusReport
from service.forges.ogr_forge import OgrForge
from service.metrics import FORGE_RATE_LIMIT_REMAINING

# GitHub lists at most 300 files in a comparison and 3,000 in a pull request.
GITHUB_COMPARE_FILE_CAP = 300
GITHUB_PR_FILE_CAP = 3000


class _ApiRootToken(TokenAuthentication):  # type: ignore[misc]
    """ogr's token authentication, but against a chosen API root (Enterprise, tests)."""

    def __init__(self, token: str, api_url: str, timeout: float) -> None:
        self._token = token
        self._pygithub_instance = _pygithub(token, api_url, timeout)


def _pygithub(token: str, api_url: str, timeout: float) -> github.Github:
    """PyGithub without its built-in pacing (0.25 s between requests, 1 s between writes): a
    run's statuses would queue behind each other for seconds. Rate limits are handled by
    forgeflow's retries instead (403/429 with Retry-After are transient)."""
    auth = github.Auth.Token(token) if token else None
    return github.Github(
        auth=auth,
        base_url=api_url,
        retry=None,
        timeout=int(timeout),
        per_page=100,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


class GithubApiService(GithubService):  # type: ignore[misc]
    """ogr's GithubService with a custom API root, which GitHub Enterprise users need."""

    def __init__(self, token: str, api_url: str, timeout: float = 15) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        super().__init__(github_authentication=_ApiRootToken(token, self.api_url, timeout))
        self._token = token

    def get_pygithub_instance(self, namespace: str, repo: str) -> github.Github:
        return _pygithub(self._token, self.api_url, self.timeout)


GITHUB_WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})


class GithubForge(OgrForge):
    """github.com or a GitHub Enterprise instance."""

    def make_service(self) -> Any:
        return GithubApiService(self.instance.token, self.instance.api_url, self.timeout)

    def post_status(
        self, repo: Repository, sha: str, report: StatusReport, state: CommitStatus, description: str
    ) -> None:
        """One ``POST /repos/{owner}/{repo}/statuses/{sha}``: ogr's commit flag first GETs the
        commit (and the repository), a request or two per status that tells us nothing.
        GitHub keeps at most 140 characters of a description."""
        requester = self.project(repo).github_instance.requester
        owner, name = quote(repo.namespace, safe=""), quote(repo.name, safe="")
        url = f"/repos/{owner}/{name}/statuses/{quote(sha, safe='')}"  # under the API root
        body = {
            "state": state.name,
            "target_url": report.target_url,
            "description": description[:140],
            "context": report.context,
        }
        requester.requestJsonAndCheck("POST", url, input=body)
        remaining = (getattr(requester, "rate_limiting", None) or (-1,))[0]
        if isinstance(remaining, int) and remaining >= 0:  # what GitHub's last answer said
            FORGE_RATE_LIMIT_REMAINING.labels(self.name).set(remaining)

    def changed_files(self, repo: Repository, base: str, head: str) -> list[str] | None:
        def compare() -> list[str] | None:
            comparison = self.project(repo).github_repo.compare(base, head)
            files = [f.filename for f in comparison.files]
            return None if len(files) >= GITHUB_COMPARE_FILE_CAP else sorted(set(files))

        return self._call(f"comparing {base[:7]}...{head[:7]} of {repo.full_name}", compare)

    def pull_request_files(self, repo: Repository, number: int) -> list[str] | None:
        def files() -> list[str] | None:
            pull = self.project(repo).github_repo.get_pull(number)
            names = [f.filename for f in pull.get_files()]
            return None if len(names) >= GITHUB_PR_FILE_CAP else sorted(set(names))

        return self._call(f"listing the files of #{number} in {repo.full_name}", files)

    def has_write_access(self, repo: Repository, user: str) -> bool:
        """admin, maintain or write on the repository (one request, not the collaborator list)."""

        def permission() -> bool:
            try:
                level = self.project(repo).github_repo.get_collaborator_permission(user)
            except github.UnknownObjectException:
                return False  # no such user
            return level in GITHUB_WRITE_PERMISSIONS

        return self._call(f"asking whether {user} may write to {repo.full_name}", permission)

    def pull_request_info(self, repo: Repository, number: int) -> PullRequestInfo:
        """One request: everything comes from the pull request's own JSON."""

        def read() -> PullRequestInfo:
            pull = self.project(repo).github_repo.get_pull(number)
            head_repo = pull.head.repo  # None when the fork was deleted
            source = (
                Repository(
                    head_repo.owner.login, head_repo.name, head_repo.clone_url or "", head_repo.html_url or ""
                )
                if head_repo is not None
                else None
            )
            fork = source is None or source.full_name.lower() != repo.full_name.lower()
            state = "merged" if pull.merged else ("open" if pull.state == "open" else "closed")
            return PullRequestInfo(
                number=number,
                head_sha=pull.head.sha,
                author=pull.user.login if pull.user else "",
                source_branch=pull.head.ref,
                target_branch=pull.base.ref,
                source_repo=source,
                fork=fork,
                state=state,
                draft=bool(pull.draft),
                title=pull.title or "",
                labels=tuple(label.name for label in pull.labels),
            )

        return self._call(f"reading pull request #{number} of {repo.full_name}", read)
