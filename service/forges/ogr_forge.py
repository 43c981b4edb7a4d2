"""Real forges through ogr: what every forge kind shares.

:class:`OgrForge` implements the forge seam (:class:`service.forges.base.Forge`) with ogr's
generic project API; one subclass per forge kind overrides what that forge does differently:
:mod:`service.forges.github`, :mod:`service.forges.gitlab`, :mod:`service.forges.forgejo`,
:mod:`service.forges.pagure` (the table is in :mod:`service.forges.registry`). Each forge accepts
its own set of commit states: the reporter hands it a status in that forge's words, ogr's
``CommitStatus`` names (see :mod:`service.reporting.forge_states`). Errors from ogr and the
libraries under it are sorted into :class:`TransientForgeError` (retry) and :class:`ForgeError`
(do not) by :mod:`service.forges.errors`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from service.events import Repository
from service.forges.base import (
    ForgeError,
    PullRequestInfo,
    ReportedStatus,
    StatusReport,
    TransientForgeError,
)
from service.forges.checkout import CheckoutCredential, configured_credential
from service.forges.errors import classify, http_status_of
from service.forges.notes import NoteLedger
from service.forges.ratelimits import RateLimits
from service.forges.reads import ReadCache, is_commit
from service.metrics import FORGE_REQUESTS
from service.settings import ForgeInstance
from service.store.db import Database

if TYPE_CHECKING:
    from ogr.abstract import CommitStatus

__all__ = ["OgrForge", "classify", "http_status_of"]

log = logging.getLogger(__name__)
T = TypeVar("T")

PROJECT_CACHE_SECONDS = 300
REQUEST_TIMEOUT_SECONDS = 15.0


def _outcome(exc: ForgeError) -> str:
    return "transient" if isinstance(exc, TransientForgeError) else "error"


def already_shown(exc: ForgeError) -> bool:
    """GitLab's answer to a state posted twice: 400 "Cannot transition status via :run from
    :running" (also :enqueue from :pending, and from a later state): the forge shows it already."""
    return "cannot transition status" in str(exc).lower()


class OgrForge:
    """A configured forge instance, spoken to through ogr."""

    kind: str = ""

    def __init__(
        self,
        instance: ForgeInstance,
        notes: NoteLedger | None = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        *,
        limits: RateLimits | None = None,
        db: Database | None = None,
    ) -> None:
        self.instance = instance
        self.kind = instance.kind
        self.name: str = instance.name
        self.notes = notes
        self.timeout = timeout
        self.limits = limits or RateLimits()
        self.db = db
        self._ogr_service: Any = None
        self._service_lock = threading.Lock()
        self._projects: dict[str, tuple[float, Any]] = {}
        self._projects_lock = threading.Lock()
        self.reads = ReadCache()  # files at a commit, read once (see :mod:`service.forges.reads`)

    def checkout_credential(self, repo: Repository, clone_url: str) -> CheckoutCredential | None:
        """The configured checkout token (see :mod:`service.forges.checkout`)."""
        return configured_credential(self.instance, clone_url)

    # -- what subclasses provide -----------------------------------------------------------

    def make_service(self) -> Any:
        """ogr's service object for this instance."""
        raise NotImplementedError

    @property
    def _service(self) -> Any:
        """ogr's service, made at its first use: a process that only posts statuses through a
        forge's own REST calls (GitHub's watcher) never imports ogr and the libraries under it."""
        if self._ogr_service is None:
            with self._service_lock:
                if self._ogr_service is None:
                    self._ogr_service = self.make_service()
        return self._ogr_service

    def get_project(self, repo: Repository) -> Any:
        """ogr's project object for ``repo`` (not cached; see :meth:`project`)."""
        return self._service.get_project(namespace=repo.namespace, repo=repo.name)

    def post_status(
        self, repo: Repository, sha: str, report: StatusReport, state: CommitStatus, description: str
    ) -> None:
        """Post one status with the forge's state and description already chosen."""
        self.project(repo).set_commit_status(
            sha, state, report.target_url, description, report.context, trim=True
        )

    # -- shared machinery ------------------------------------------------------------------

    def project(self, repo: Repository) -> Any:
        """ogr's project object, kept a few minutes: it caches what the forge said about the
        repository, which saves a request on every status post."""
        key = repo.full_name.lower()
        moment = time.monotonic()
        with self._projects_lock:
            cached = self._projects.get(key)
            if cached is not None and moment - cached[0] < PROJECT_CACHE_SECONDS:
                return cached[1]
        project = self.get_project(repo)
        with self._projects_lock:
            if len(self._projects) > 1000:
                self._projects.clear()
            self._projects[key] = (moment, project)
        return project

    def budget_key(self, repo: Repository | None) -> str:
        """Whose API budget a call about ``repo`` spends (one token for the instance here)."""
        return "token"

    def _call(self, what: str, fn: Callable[[], T], repo: Repository | None = None) -> T:
        """``fn`` under the rate limits of its budget, its errors sorted (see :mod:`errors`)."""
        key = self.budget_key(repo)
        self.limits.before_call(self.kind, self.name, key, what)
        try:
            result = fn()
        except ForgeError as exc:
            FORGE_REQUESTS.labels(self.name, _outcome(exc)).inc()
            raise
        except Exception as exc:
            error = classify(exc, what)
            if isinstance(error, TransientForgeError) and error.retry_after is None:
                error.retry_after = self.limits.wait_hint(self.kind, self.name, key)
            FORGE_REQUESTS.labels(self.name, _outcome(error)).inc()
            raise error from exc
        FORGE_REQUESTS.labels(self.name, "ok").inc()
        return result

    # -- the seam --------------------------------------------------------------------------

    def read_file(self, repo: Repository, path: str, ref: str) -> str | None:
        """The file at ``ref``; at a commit SHA read once and kept a while (a commit's events
        and commands ask for the same job file)."""
        if not is_commit(ref):
            return self.fetch_file(repo, path, ref)
        key = (repo.full_name.lower(), path, ref)
        text: str | None = self.reads.get(key)
        if text is None:
            text = self.fetch_file(repo, path, ref)
            if text is not None:
                self.reads.put(key, text)
        return text

    def fetch_file(self, repo: Repository, path: str, ref: str) -> str | None:
        """The file at ``ref`` as the forge says now (no cache), or None when it does not exist."""

        def read() -> str | None:
            try:
                return str(self.project(repo).get_file_content(path=path, ref=ref))
            except FileNotFoundError:
                return None

        try:
            return self._call(f"reading {path} of {repo.full_name} at {ref[:12]}", read, repo)
        except ForgeError as exc:
            if http_status_of(exc) == 404:
                return None
            raise

    def set_status(self, repo: Repository, sha: str, status: StatusReport) -> None:
        from ogr.abstract import CommitStatus

        try:
            state = CommitStatus[status.state]
        except KeyError:
            raise ForgeError(f"{self.name} has no commit state {status.state!r}") from None
        description = status.description
        try:
            self._call(
                f"setting {status.context} on {repo.full_name}@{sha[:7]}",
                lambda: self.post_status(repo, sha, status, state, description),
                repo,
            )
        except ForgeError as exc:
            if already_shown(exc):
                log.info("%s already shows %s for %s", self.name, state.name, status.context)
                return
            raise

    def statuses(self, repo: Repository, sha: str) -> list[ReportedStatus]:
        def read() -> list[ReportedStatus]:
            latest: dict[str, ReportedStatus] = {}
            for flag in self.project(repo).get_commit_statuses(sha):
                if flag.context not in latest:  # forges list the newest first
                    latest[flag.context] = ReportedStatus(
                        context=flag.context,
                        state=flag.state.name,
                        description=flag.comment or "",
                        target_url=flag.url or "",
                    )
            return list(latest.values())

        return self._call(f"reading statuses of {repo.full_name}@{sha[:7]}", read, repo)

    def pull_request_head(self, repo: Repository, number: int) -> str:
        return self._call(
            f"reading pull request #{number} of {repo.full_name}",
            lambda: str(self.project(repo).get_pr(number).head_commit),
            repo,
        )

    def resolve_ref(self, repo: Repository, ref: str) -> str:
        def resolve() -> str:
            project = self.project(repo)
            if ref.startswith("refs/tags/"):
                return str(project.get_sha_from_tag(ref[len("refs/tags/") :]))
            branch = ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else ref
            sha = project.get_sha_from_branch(branch)
            if not sha:
                raise ForgeError(f"{repo.full_name} has no ref {ref}")
            return str(sha)

        return self._call(f"resolving {ref} of {repo.full_name}", resolve, repo)

    def changed_files(self, repo: Repository, base: str, head: str) -> list[str] | None:
        return None  # a forge that can compare commits overrides this

    def pull_request_files(self, repo: Repository, number: int) -> list[str] | None:
        def files() -> list[str] | None:
            try:
                diff = self.project(repo).get_pr_files_diff(number)
            except NotImplementedError:
                return None
            return sorted(diff) if isinstance(diff, dict) else None

        return self._call(f"listing the files of #{number} in {repo.full_name}", files)

    def pull_request_info(self, repo: Repository, number: int) -> PullRequestInfo:
        def read() -> PullRequestInfo:
            pr = self.project(repo).get_pr(number)
            source = pr.source_project
            try:
                clone = source.get_git_urls().get("git", "")
            except Exception:  # a deleted fork
                clone = ""
            source_repo = Repository(namespace=source.namespace, name=source.repo, clone_url=clone)
            status = getattr(pr.status, "name", str(pr.status))
            return PullRequestInfo(
                number=number,
                head_sha=str(pr.head_commit),
                author=str(pr.author),
                source_branch=str(pr.source_branch),
                target_branch=str(pr.target_branch),
                source_repo=source_repo,
                fork=source_repo.full_name.lower() != repo.full_name.lower(),
                state="open" if status == "open" else ("merged" if status == "merged" else "closed"),
                title=str(pr.title),
                labels=tuple(str(label.name) for label in pr.labels),
            )

        return self._call(f"reading pull request #{number} of {repo.full_name}", read)

    def has_write_access(self, repo: Repository, user: str) -> bool:
        return self._call(
            f"asking whether {user} may write to {repo.full_name}",
            lambda: bool(self.project(repo).has_write_access(user)),
            repo,
        )

    def comment(self, repo: Repository, number: int, body: str) -> None:
        self._call(
            f"commenting on #{number} of {repo.full_name}",
            lambda: self.project(repo).get_pr(number).comment(body),
            repo,
        )

    def react(self, repo: Repository, number: int, comment_id: str, reaction: str) -> bool:
        def add() -> bool:
            self.project(repo).get_pr(number).get_comment(int(comment_id)).add_reaction(reaction)
            return True

        return self._reacting(repo, comment_id, add)

    def _reacting(self, repo: Repository, comment_id: str, add: Callable[[], bool]) -> bool:
        try:
            return self._call(f"reacting to comment {comment_id} on {repo.full_name}", add, repo)
        except TransientForgeError:
            raise
        except ForgeError as exc:
            log.info("no reaction on %s: %s", self.name, exc)
            return False
