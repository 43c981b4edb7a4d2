"""A git checkout standing in for the forge: what ``render``/``exec``/``validate`` read.

:class:`CheckoutFiles` is the CLI's :class:`~service.runs.recipe.RepositoryFiles`. The event's
own commit reads the working tree (so a job file being edited is what gets previewed); another
ref (an untrusted fork's target branch) reads that ref's committed file. The changed files for
``paths`` filters come from the checkout's history: ``before..after`` for a push, the merge base
of the pull request's base and head for a pull request.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from service.events import Event, EventKind
from service.jobs.matcher import ChangedFiles
from service.runs.sources import push_base


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False, timeout=60
    )


def commit_of(repo: Path, ref: str) -> str:
    """The commit ``ref`` names in the checkout, or "" when it names none."""
    if not ref:
        return ""
    found = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return found.stdout.strip() if found.returncode == 0 else ""


def first_commit(repo: Path, *refs: str) -> str:
    return next((sha for sha in (commit_of(repo, r) for r in refs) if sha), "")


@dataclass
class CheckoutFiles:
    """The repository's files as a checkout has them."""

    root: Path
    event_sha: str
    notes: list[str] = field(default_factory=list)  # what the reader had to assume

    def read(self, path: str, ref: str) -> bytes | None:
        if ref and ref != self.event_sha:
            commit = first_commit(self.root, ref, f"origin/{ref}")
            if commit:
                shown = subprocess.run(
                    ["git", "-C", str(self.root), "show", f"{commit}:{path}"],
                    capture_output=True,
                    check=False,
                    timeout=60,
                )
                return shown.stdout if shown.returncode == 0 else None
            note = f"note: the checkout has no {ref!r}; {path} was read from the working tree"
            if note not in self.notes:
                self.notes.append(note)
        try:
            return (self.root / path).read_bytes()
        except OSError:
            return None

    def changed_files(self, event: Event) -> ChangedFiles:
        return checkout_changed_files(self.root, event)


def checkout_changed_files(repo: Path, event: Event) -> ChangedFiles:
    """The files the event changed, from the checkout's history (None when it lacks a commit)."""

    def provide() -> Sequence[str] | None:
        if event.changed_files is not None:
            return event.changed_files
        pr = event.pull_request
        if event.kind is EventKind.PULL_REQUEST and pr is not None:
            target = pr.target_branch
            base = first_commit(repo, pr.base_sha, f"origin/{target}" if target else "", target)
            head = first_commit(repo, pr.head_sha, event.sha)
            spec = f"{base}...{head}"
        elif event.kind is EventKind.PUSH:
            wanted = push_base(event)
            base = first_commit(repo, wanted, f"origin/{wanted}" if wanted else "")
            head = first_commit(repo, event.sha)
            spec = f"{base}..{head}"
        else:
            return None
        if not base or not head:
            return None
        diff = git(repo, "diff", "--name-only", "--no-renames", spec)
        return sorted({line for line in diff.stdout.splitlines() if line}) if diff.returncode == 0 else None

    return provide
