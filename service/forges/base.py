"""The forge seam: what forgeflow asks of a forge, whichever forge it is.

Implementations: :mod:`service.forges.ogr_forge` (GitHub, GitLab, Forgejo/Gitea, Pagure through
ogr) and :mod:`service.forges.local` (bare repositories on this machine, statuses in the
database). Errors are split so callers know what to retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from service.events import Repository
from service.forges.checkout import CheckoutCredential


class ForgeError(Exception):
    """The forge refused for good (not found, forbidden, invalid): do not retry."""


class TransientForgeError(ForgeError):
    """Worth retrying with backoff: 5xx, rate limits, timeouts, connection errors."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class StatusReport:
    """One commit status, in the forge's own words: the reporter maps forgeflow's states
    (pending | running | success | failure | error) onto what each forge accepts
    (``service.reporting.forge_states``) before a forge is asked to post it."""

    context: str
    state: str  # the forge's word for it (ogr's CommitStatus names for the real forges)
    description: str
    target_url: str
    # Where the commit was built, for forges that place statuses by it (all optional):
    pull_request: int | None = None  # the pull/merge request (Pagure flags it, not the commit)
    source_repo: Repository | None = None  # a fork the pull request comes from (GitLab posts there)
    ref: str = ""  # the branch or tag built; for a pull request its source branch


@dataclass(frozen=True)
class ReportedStatus:
    """A status a forge shows, in the forge's words (``forge_states.read_back`` maps them)."""

    context: str
    state: str
    description: str = ""
    target_url: str = ""


class Forge(Protocol):
    kind: str
    name: str

    def read_file(self, repo: Repository, path: str, ref: str) -> str | None:
        """The file's text at ``ref`` (a sha or branch), or None when it does not exist."""
        ...

    def set_status(self, repo: Repository, sha: str, status: StatusReport) -> None:
        """Post one commit status (the latest post for a context wins)."""
        ...

    def statuses(self, repo: Repository, sha: str) -> list[ReportedStatus]:
        """The statuses currently on a commit (latest per context)."""
        ...

    def pull_request_head(self, repo: Repository, number: int) -> str:
        """The current head commit of a pull/merge request."""
        ...

    def resolve_ref(self, repo: Repository, ref: str) -> str:
        """The commit a ref (``refs/tags/v1``, a branch name) points at."""
        ...

    def changed_files(self, repo: Repository, base: str, head: str) -> list[str] | None:
        """Paths changed from commit ``base`` to ``head`` (all pages), or None when the forge
        cannot say completely (path filters then let the job run)."""
        ...

    def pull_request_files(self, repo: Repository, number: int) -> list[str] | None:
        """Paths a pull request changes (all pages), or None when the forge cannot say."""
        ...

    def pull_request_info(self, repo: Repository, number: int) -> PullRequestInfo:
        """The pull request as it is now (for comment commands: head, author, fork)."""
        ...

    def has_write_access(self, repo: Repository, user: str) -> bool:
        """Whether ``user`` may push to ``repo`` (maintainers, collaborators with write)."""
        ...

    def comment(self, repo: Repository, number: int, body: str) -> None:
        """Add a comment to pull/merge request ``number``."""
        ...

    def react(self, repo: Repository, number: int, comment_id: str, reaction: str) -> bool:
        """React to a comment (e.g. ``+1``, ``eyes``); False where the forge has no reactions."""
        ...

    def checkout_credential(self, repo: Repository, clone_url: str) -> CheckoutCredential | None:
        """Credentials for a run to fetch ``repo`` from ``clone_url`` (see
        :mod:`service.forges.checkout`), or None."""
        ...


@dataclass(frozen=True)
class PullRequestInfo:
    number: int
    head_sha: str
    author: str
    source_branch: str = ""
    target_branch: str = ""
    source_repo: Repository | None = None
    fork: bool = False
    state: str = "open"  # open | closed | merged
    draft: bool = False
    title: str = ""
    labels: tuple[str, ...] = ()
