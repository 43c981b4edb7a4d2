"""Forgejo and Gitea (Codeberg, self-hosted) through ogr and pyforgejo, which ogr exposes.

What Forgejo does its own way:

- Commit states are pending, success, error, failure and warning: no running, no canceled
  (see :mod:`service.reporting.forge_states`). Statuses go on the target repository's commit
  even for a pull request from a fork: Forgejo shows a pull request the statuses its base
  repository holds for the head commit.
- Statuses are read back from the combined status (latest per context), read leniently: ogr
  cannot read an ``error`` state, other tools may post one.
- Write access is the collaborator permission ``write``, ``admin`` or ``owner`` (teams of an
  organisation included: Forgejo computes the effective permission).
- Comparisons come from ``/compare/{base}...{head}``: Forgejo lists the changed files; Gitea only
  commits with their files, which are used when the list of commits is whole.
- pyforgejo speaks httpx, not requests: its transport errors are retried like any network error.
  It retries 408/409/429/5xx answers twice itself (a second or two of backoff, or Retry-After);
  what still fails is a transient error for forgeflow's own retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any

from ogr.services.forgejo import ForgejoService
from pyforgejo import PyforgejoApi

from service.events import Repository
from service.forges.base import PullRequestInfo, ReportedStatus
from service.forges.errors import http_status_of
from service.forges.ogr_forge import OgrForge

WRITE_PERMISSIONS = ("owner", "admin", "write")
PAGE_SIZE = 50  # Forgejo's default MAX_RESPONSE_ITEMS
MAX_PAGES = 200
DRAFT_PREFIXES = ("wip:", "[wip]", "draft:", "[draft]")


class ForgejoApiService(ForgejoService):  # type: ignore[misc]
    """ogr's ForgejoService with a request timeout."""

    def __init__(self, instance_url: str, token: str, timeout: float) -> None:
        super().__init__(instance_url=instance_url, token=token or None)
        self.timeout = timeout

    @cached_property
    def api(self) -> PyforgejoApi:
        return PyforgejoApi(base_url=self.instance_url, api_key=self._token, timeout=self.timeout)


def pages(fetch: Callable[[int], list[Any] | None]) -> Iterator[Any]:
    """Every item of a paginated list: pages 1, 2, ... until one comes back short or empty."""
    for page in range(1, MAX_PAGES + 1):
        items = fetch(page) or []
        yield from items
        if len(items) < PAGE_SIZE:
            return


class ForgejoForge(OgrForge):
    """A Forgejo or Gitea instance."""

    def make_service(self) -> Any:
        return ForgejoApiService(self.instance.api_url, self.instance.token, self.timeout)

    @property
    def repos(self) -> Any:
        """pyforgejo's repository API."""
        return self._service.api.repository

    @property
    def issues(self) -> Any:
        """pyforgejo's issue API (comments and reactions of pull requests too)."""
        return self._service.api.issue

    def statuses(self, repo: Repository, sha: str) -> list[ReportedStatus]:
        def read() -> list[ReportedStatus]:
            def fetch(page: int) -> list[Any] | None:
                combined = self.repos.repo_get_combined_status_by_ref(
                    owner=repo.namespace, repo=repo.name, ref=sha, page=page, limit=PAGE_SIZE
                )
                return list(combined.statuses or [])

            latest: dict[str, ReportedStatus] = {}
            for s in pages(fetch):
                word = getattr(s.status, "value", s.status) or ""
                latest.setdefault(
                    s.context or "",
                    ReportedStatus(
                        context=s.context or "",
                        state=str(word),
                        description=s.description or "",
                        target_url=s.target_url or "",
                    ),
                )
            return list(latest.values())

        return self._call(f"reading statuses of {repo.full_name}@{sha[:7]}", read)

    def changed_files(self, repo: Repository, base: str, head: str) -> list[str] | None:
        def compare() -> list[str] | None:
            result = self.repos.repo_compare_diff(
                owner=repo.namespace, repo=repo.name, basehead=f"{base}...{head}"
            )
            if result.files is not None:  # Forgejo: the comparison's files
                return sorted({f.filename for f in result.files if f.filename})
            commits = result.commits or []
            if result.total_commits != len(commits) or any(c.files is None for c in commits):
                return None  # Gitea: files only per commit, and only when every commit is listed
            return sorted({f.filename for c in commits for f in c.files or [] if f.filename})

        return self._call(f"comparing {base[:7]}...{head[:7]} of {repo.full_name}", compare)

    def pull_request_files(self, repo: Repository, number: int) -> list[str] | None:
        def files() -> list[str] | None:
            def fetch(page: int) -> list[Any] | None:
                return self.repos.repo_get_pull_request_files(  # type: ignore[no-any-return]
                    owner=repo.namespace, repo=repo.name, index=number, page=page, limit=PAGE_SIZE
                )

            paths: set[str] = set()
            for changed in pages(fetch):
                paths.update(p for p in (changed.filename, changed.previous_filename) if p)
            return sorted(paths)

        return self._call(f"listing the files of #{number} in {repo.full_name}", files)

    def pull_request_info(self, repo: Repository, number: int) -> PullRequestInfo:
        def read() -> PullRequestInfo:
            pr = self.repos.repo_get_pull_request(owner=repo.namespace, repo=repo.name, index=number)
            head, base = pr.head, pr.base
            source = _repository(head.repo) if head is not None and head.repo is not None else None
            if source is not None:
                fork = source.full_name.lower() != repo.full_name.lower()
            else:  # a deleted fork: never trusted
                fork = head is None or base is None or head.repo_id != base.repo_id
            state = "merged" if pr.merged else str(getattr(pr.state, "value", pr.state) or "open")
            title = pr.title or ""
            return PullRequestInfo(
                number=number,
                head_sha=(head.sha if head else "") or "",
                author=(pr.user.login if pr.user else "") or "",
                source_branch=(head.ref if head else "") or "",
                target_branch=(base.ref if base else "") or "",
                source_repo=source,
                fork=fork,
                state=state if state in ("open", "merged") else "closed",
                draft=bool(pr.draft) or title.strip().lower().startswith(DRAFT_PREFIXES),
                title=title,
                labels=tuple(label.name for label in pr.labels or [] if label.name),
            )

        return self._call(f"reading pull request #{number} of {repo.full_name}", read)

    def has_write_access(self, repo: Repository, user: str) -> bool:
        def check() -> bool:
            try:
                permission = self.repos.repo_get_repo_permissions(
                    owner=repo.namespace, repo=repo.name, collaborator=user
                )
            except Exception as exc:
                if http_status_of(exc) == 404:  # no such user
                    return False
                raise
            return (permission.permission or "") in WRITE_PERMISSIONS

        return self._call(f"asking whether {user} may write to {repo.full_name}", check)

    def comment(self, repo: Repository, number: int, body: str) -> None:
        self._call(
            f"commenting on #{number} of {repo.full_name}",
            lambda: self.issues.create_comment(owner=repo.namespace, repo=repo.name, index=number, body=body),
        )

    def react(self, repo: Repository, number: int, comment_id: str, reaction: str) -> bool:
        def add() -> bool:
            self.issues.post_comment_reaction(
                owner=repo.namespace, repo=repo.name, id=int(comment_id), content=reaction
            )
            return True

        return self._reacting(repo, comment_id, add)


def _repository(repo: Any) -> Repository:
    owner = repo.owner.login if repo.owner is not None else ""
    full_name = repo.full_name or f"{owner}/{repo.name}"
    namespace, _, name = full_name.partition("/")
    return Repository(
        namespace=namespace,
        name=name,
        clone_url=repo.clone_url or "",
        html_url=repo.html_url or "",
        default_branch=repo.default_branch or "",
        private=bool(repo.private),
    )
