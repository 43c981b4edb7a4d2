"""The repository's files as the worker reads them: through the forge seam.

:class:`ForgeFiles` is the worker's :class:`~service.runs.recipe.RepositoryFiles`: files at a
commit or branch, and the files a push or pull request changed (for ``paths`` filters), asked
lazily (only when a job has a path filter) and at most once. ``forgeflow render``/``exec`` read
a checkout instead (:mod:`service.cli.checkout`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.events import Event, EventKind, Repository, is_zero_sha
from service.forges.base import Forge, ForgeError, TransientForgeError
from service.forges.reads import ReadCache, is_commit
from service.jobs.matcher import ChangedFiles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForgeFiles:
    """One repository's files, read through its forge."""

    forge: Forge
    repository: Repository

    def read(self, path: str, ref: str) -> str | None:
        return self.forge.read_file(self.repository, path, ref)

    def changed_files(self, event: Event) -> ChangedFiles:
        return forge_changed_files(self.forge, event)


def push_base(event: Event) -> str:
    """What a push is compared with: the commit before it, or for a new branch (or a push
    whose payload has no "before") the repository's default branch."""
    if event.before and not is_zero_sha(event.before) and not event.created:
        return event.before
    if event.repository.default_branch and event.branch != event.repository.default_branch:
        return event.repository.default_branch
    return ""


def forge_changed_files(forge: Forge, event: Event) -> ChangedFiles:
    """A provider of the changed files (None when nobody can say): from the payload when it
    lists them completely, else from the forge (``pull_request_files``, ``changed_files``), kept
    in the forge's read cache by head commit (:mod:`service.forges.reads`) so the events and
    commands of one commit ask once. Transient forge errors propagate (the task is retried);
    others mean "unknown"."""
    reads: ReadCache | None = getattr(forge, "reads", None)
    repo = event.repository
    kept = reads is not None and is_commit(event.sha)

    def ask(key: tuple[str, ...], fetch: Callable[[], list[str] | None]) -> Sequence[str] | None:
        if reads is None or not kept:
            return fetch()
        return reads.remember((repo.full_name.lower(), *key, event.sha), fetch)

    def provide() -> Sequence[str] | None:
        if event.changed_files is not None:
            return event.changed_files
        try:
            if event.kind is EventKind.PULL_REQUEST and event.pull_request is not None:
                number = event.pull_request.number
                return ask(("pull", str(number)), lambda: forge.pull_request_files(repo, number))
            if event.kind is EventKind.PUSH:
                base = push_base(event)
                if not base:
                    return None
                return ask(("compare", base), lambda: forge.changed_files(repo, base, event.sha))
        except TransientForgeError:
            raise
        except ForgeError as exc:
            log.info("changed files of %s unknown: %s", event.describe(), exc)
        return None

    return provide
