"""Real forges through ogr: GitHub (and Enterprise), GitLab, Forgejo/Gitea and Pagure.

Each forge accepts a different set of commit states, so :data:`STATE_MAPS` translates
forgeflow's states per forge. Errors from ogr and the libraries under it are sorted into
:class:`TransientForgeError` (retry) and :class:`ForgeError` (do not).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import github
import requests
from ogr.abstract import CommitStatus
from ogr.services.github import GithubService
from ogr.services.github.auth_providers.token import TokenAuthentication

from service.events import Repository
from service.forges.base import (
    ForgeError,
    PullRequestInfo,
    ReportedStatus,
    StatusReport,
    TransientForgeError,
    describe_state_change,
)
from service.settings import ForgeInstance

log = logging.getLogger(__name__)
T = TypeVar("T")

# forgeflow state -> the CommitStatus each forge accepts
STATE_MAPS: dict[str, dict[str, CommitStatus]] = {
    # GitHub: pending, success, failure, error only.
    "github": {
        "pending": CommitStatus.pending,
        "running": CommitStatus.pending,
        "success": CommitStatus.success,
        "failure": CommitStatus.failure,
        "error": CommitStatus.error,
    },
    # GitLab has running and canceled; it refuses error and warning.
    "gitlab": {
        "pending": CommitStatus.pending,
        "running": CommitStatus.running,
        "success": CommitStatus.success,
        "failure": CommitStatus.failure,
        "error": CommitStatus.failure,
        "canceled": CommitStatus.canceled,
    },
    # Forgejo refuses running and canceled, and ogr cannot read back an "error" it set.
    "forgejo": {
        "pending": CommitStatus.pending,
        "running": CommitStatus.pending,
        "success": CommitStatus.success,
        "failure": CommitStatus.failure,
        "error": CommitStatus.failure,
    },
    "pagure": {
        "pending": CommitStatus.pending,
        "running": CommitStatus.pending,
        "success": CommitStatus.success,
        "failure": CommitStatus.failure,
        "error": CommitStatus.error,
        "canceled": CommitStatus.canceled,
    },
}

# GitHub lists at most 300 files in a comparison and 3,000 in a pull request: at the cap the
# list may be partial, so path filters treat it as unknown.
GITHUB_COMPARE_FILE_CAP = 300
GITHUB_PR_FILE_CAP = 3000

PROJECT_CACHE_SECONDS = 300

CANCEL_WORDS = ("superseded", "cancelled", "canceled", "stopped")


def forge_state(kind: str, state: str, description: str) -> CommitStatus:
    """The state to post on ``kind`` for forgeflow's ``state``."""
    states = STATE_MAPS[kind]
    if state == "error" and "canceled" in states and description.lower().startswith(CANCEL_WORDS):
        return states["canceled"]
    return states[state]


def forge_description(kind: str, state: str, description: str) -> str:
    """Where a forge lacks a state, the description says it (e.g. "running" on GitHub)."""
    mapped = forge_state(kind, state, description).name
    text = description
    if mapped != state and state in ("running", "error") and not text.lower().startswith(state):
        text = f"{state}: {text}" if text else state
    return describe_state_change(state, text)


def reverse_state(value: CommitStatus) -> str:
    return {
        CommitStatus.pending: "pending",
        CommitStatus.running: "running",
        CommitStatus.success: "success",
        CommitStatus.failure: "failure",
        CommitStatus.error: "error",
        CommitStatus.canceled: "error",
        CommitStatus.warning: "failure",
    }[value]


class _ApiRootToken(TokenAuthentication):  # type: ignore[misc]
    """ogr's token authentication, but against a chosen API root (Enterprise, tests)."""

    def __init__(self, token: str, api_url: str, timeout: float) -> None:
        self._token = token
        self._pygithub_instance = _pygithub(token, api_url, timeout)


def _pygithub(token: str, api_url: str, timeout: float) -> github.Github:
    auth = github.Auth.Token(token) if token else None
    return github.Github(auth=auth, base_url=api_url, retry=None, timeout=int(timeout))


class GithubApiService(GithubService):  # type: ignore[misc]
    """ogr's GithubService with a custom API root, which GitHub Enterprise users need."""

    def __init__(self, token: str, api_url: str, timeout: float = 15) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        super().__init__(github_authentication=_ApiRootToken(token, self.api_url, timeout))
        self._token = token

    def get_pygithub_instance(self, namespace: str, repo: str) -> github.Github:
        return _pygithub(self._token, self.api_url, self.timeout)


def _service_for(instance: ForgeInstance) -> Any:
    if instance.kind == "github":
        return GithubApiService(instance.token, instance.api_url)
    if instance.kind == "gitlab":
        from ogr.services.gitlab import GitlabService

        return GitlabService(token=instance.token or None, instance_url=instance.api_url)
    if instance.kind == "forgejo":
        from ogr.services.forgejo import ForgejoService

        return ForgejoService(instance_url=instance.api_url, token=instance.token or None)
    if instance.kind == "pagure":
        from ogr.services.pagure import PagureService

        return PagureService(token=instance.token or None, instance_url=instance.api_url)
    raise ForgeError(f"unknown forge kind {instance.kind!r}")


def http_status_of(exc: BaseException) -> int | None:
    """The HTTP status somewhere in an exception's cause chain, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for attr in ("status", "response_code", "status_code"):
            value = getattr(current, attr, None)
            if isinstance(value, int) and 100 <= value < 600:
                return value
        response = getattr(current, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
        current = current.__cause__ or current.__context__
    return None


def _is_network_error(exc: BaseException) -> bool:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, requests.ConnectionError | requests.Timeout | ConnectionError | TimeoutError):
            return True
        current = current.__cause__ or current.__context__
    return False


def classify(exc: Exception, what: str) -> ForgeError:
    """Turn a library exception into forgeflow's transient/permanent forge errors."""
    status = http_status_of(exc)
    message = f"{what}: {type(exc).__name__}: {exc}"
    if status is not None:
        message = f"{what}: HTTP {status}: {exc}"
    text = str(exc).lower()
    if status is None and _is_network_error(exc):
        return TransientForgeError(message)
    if status is not None and (status >= 500 or status == 429):
        return TransientForgeError(message)
    if status == 403 and "rate limit" in text:
        return TransientForgeError(message, retry_after=60)
    if status is None and "rate limit" in text:
        return TransientForgeError(message, retry_after=60)
    return ForgeError(message)


class OgrForge:
    """A configured forge instance, spoken to through ogr."""

    def __init__(self, instance: ForgeInstance) -> None:
        self.instance = instance
        self.kind: str = instance.kind
        self.name: str = instance.name
        self._service = _service_for(instance)
        self._projects: dict[str, tuple[float, Any]] = {}
        self._projects_lock = threading.Lock()

    def project(self, repo: Repository) -> Any:
        """ogr's project object, kept a few minutes: it caches what the forge said about the
        repository, which saves a request on every status post."""
        key = repo.full_name.lower()
        moment = time.monotonic()
        with self._projects_lock:
            cached = self._projects.get(key)
            if cached is not None and moment - cached[0] < PROJECT_CACHE_SECONDS:
                return cached[1]
        project = self._service.get_project(namespace=repo.namespace, repo=repo.name)
        with self._projects_lock:
            if len(self._projects) > 1000:
                self._projects.clear()
            self._projects[key] = (moment, project)
        return project

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ForgeError:
            raise
        except Exception as exc:
            raise classify(exc, what) from exc

    def read_file(self, repo: Repository, path: str, ref: str) -> str | None:
        def read() -> str | None:
            try:
                return str(self.project(repo).get_file_content(path=path, ref=ref))
            except FileNotFoundError:
                return None

        try:
            return self._call(f"reading {path} of {repo.full_name} at {ref[:12]}", read)
        except ForgeError as exc:
            if http_status_of(exc) == 404:
                return None
            raise

    def set_status(self, repo: Repository, sha: str, status: StatusReport) -> None:
        state = forge_state(self.kind, status.state, status.description)
        description = forge_description(self.kind, status.state, status.description)

        def post() -> None:
            self.project(repo).set_commit_status(
                sha, state, status.target_url, description, status.context, trim=True
            )

        try:
            self._call(f"setting {status.context} on {repo.full_name}@{sha[:7]}", post)
        except ForgeError as exc:
            # GitLab answers 400 "Cannot transition status via :run from :running" when the
            # state is already what we post: the forge already shows it.
            if "cannot transition status" in str(exc).lower():
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
                        state=reverse_state(flag.state),
                        description=flag.comment or "",
                        target_url=flag.url or "",
                    )
            return list(latest.values())

        return self._call(f"reading statuses of {repo.full_name}@{sha[:7]}", read)

    def pull_request_head(self, repo: Repository, number: int) -> str:
        return self._call(
            f"reading pull request #{number} of {repo.full_name}",
            lambda: str(self.project(repo).get_pr(number).head_commit),
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

        return self._call(f"resolving {ref} of {repo.full_name}", resolve)

    # -- pull requests, permissions, conversation ------------------------------------------

    def changed_files(self, repo: Repository, base: str, head: str) -> list[str] | None:
        if self.kind != "github":
            return None  # forge-specific comparisons: see the forge's own module

        def compare() -> list[str] | None:
            comparison = self.project(repo).github_repo.compare(base, head)
            files = [f.filename for f in comparison.files]
            return None if len(files) >= GITHUB_COMPARE_FILE_CAP else sorted(set(files))

        return self._call(f"comparing {base[:7]}...{head[:7]} of {repo.full_name}", compare)

    def pull_request_files(self, repo: Repository, number: int) -> list[str] | None:
        def files() -> list[str] | None:
            if self.kind == "github":
                names = [f.filename for f in self.project(repo).github_repo.get_pull(number).get_files()]
                return None if len(names) >= GITHUB_PR_FILE_CAP else sorted(set(names))
            diff = self.project(repo).get_pr_files_diff(number)
            return sorted(diff) if isinstance(diff, dict) else None

        return self._call(f"listing the files of #{number} in {repo.full_name}", files)

    def pull_request_info(self, repo: Repository, number: int) -> PullRequestInfo:
        def read() -> PullRequestInfo:
            pr = self.project(repo).get_pr(number)
            source = pr.source_project
            source_repo = Repository(namespace=source.namespace, name=source.repo, clone_url="")
            try:
                clone = source.get_git_urls().get("git", "")
            except Exception:  # a deleted fork
                clone = ""
            source_repo = Repository(source_repo.namespace, source_repo.name, clone)
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
        )

    def comment(self, repo: Repository, number: int, body: str) -> None:
        self._call(
            f"commenting on #{number} of {repo.full_name}",
            lambda: self.project(repo).get_pr(number).comment(body),
        )

    def react(self, repo: Repository, number: int, comment_id: str, reaction: str) -> bool:
        def add() -> bool:
            self.project(repo).get_pr(number).get_comment(int(comment_id)).add_reaction(reaction)
            return True

        try:
            return self._call(f"reacting to comment {comment_id} on {repo.full_name}", add)
        except ForgeError as exc:
            if isinstance(exc, TransientForgeError):
                raise
            log.info("no reaction on %s: %s", self.name, exc)
            return False
