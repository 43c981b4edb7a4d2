"""Git input artifacts for the local executor.

Each repository is cloned once per workflow (``git clone --bare`` into the workflow's cache),
and every pod gets its own ``git clone --shared`` of that cache, checked out detached at exactly
the requested revision, with ``origin`` pointing back at the real repository as in Argo's
artifact. Git never prompts. A private repository's credentials (the artifact's
``usernameSecret``/``passwordSecret``) reach git through an askpass helper that reads them
from its environment: never in the URL, the command line or a git config file.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from pathlib import Path

from service.executors.local.proc import run_tool


class GitError(Exception):
    """Fetching or checking out the source failed (the message says how)."""


class GitCache:
    """Bare clones shared by the pods of one workflow, made once per repository."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def checkout(
        self,
        repo: str,
        revision: str,
        dest: Path,
        *,
        cancel: threading.Event,
        deadline: float | None,
        credentials: tuple[str, str] | None = None,
    ) -> str:
        """Put ``repo`` at ``revision`` (detached) into ``dest``; return the commit checked out.
        ``credentials``: (username, password) for fetching ``repo``."""
        mirror = self._mirror(repo, cancel=cancel, deadline=deadline, credentials=credentials)
        git = _Git(cancel, deadline)
        dest.parent.mkdir(parents=True, exist_ok=True)
        git.run(["clone", "--shared", "--no-checkout", "--quiet", "--", str(mirror), str(dest)])
        commit = git.resolve(dest, revision or "HEAD")
        git.run(["-C", str(dest), "checkout", "--quiet", "--detach", commit])
        git.run(["-C", str(dest), "remote", "set-url", "origin", repo])
        return commit

    def _mirror(
        self,
        repo: str,
        *,
        cancel: threading.Event,
        deadline: float | None,
        credentials: tuple[str, str] | None = None,
    ) -> Path:
        key = hashlib.sha256(repo.encode()).hexdigest()[:16]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        mirror = self.root / f"{key}.git"
        with lock:
            if not (mirror / "HEAD").exists():
                self.root.mkdir(parents=True, exist_ok=True)
                git = _Git(cancel, deadline)
                args = ["clone", "--bare", "--quiet", "--", repo, str(mirror)]
                if credentials is not None:
                    git.env.update(
                        GIT_ASKPASS=str(self._askpass()),
                        FORGEFLOW_GIT_USERNAME=credentials[0],
                        FORGEFLOW_GIT_PASSWORD=credentials[1],
                    )
                    args = ["-c", "credential.helper=", *args]  # nothing stores them
                git.run(args, what="clone")
        return mirror

    def _askpass(self) -> Path:
        """A helper git asks for the username and password: it prints them from its environment."""
        path = self.root / "askpass.sh"
        if not path.exists():
            path.write_text(ASKPASS)
            path.chmod(stat.S_IRWXU)
        return path


ASKPASS = """#!/bin/sh
case "$1" in
  [Uu]sername*) printf '%s\\n' "$FORGEFLOW_GIT_USERNAME" ;;
  *) printf '%s\\n' "$FORGEFLOW_GIT_PASSWORD" ;;
esac
"""


class _Git:
    """Runs git non-interactively, turning failures into :class:`GitError`."""

    def __init__(self, cancel: threading.Event, deadline: float | None) -> None:
        self.cancel = cancel
        self.deadline = deadline
        self.env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "true",
            "SSH_ASKPASS": "true",
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
            "LC_ALL": "C",
            "GIT_ADVICE": "0",
        }

    def run(self, args: list[str], what: str = "git") -> str:
        try:
            outcome, code, output = run_tool(
                ["git", *args], cancel=self.cancel, deadline=self.deadline, env=self.env
            )
        except OSError as exc:
            raise GitError(f"cannot run git: {exc}") from exc
        if outcome == "cancelled":
            raise GitError("cancelled")
        if outcome == "deadline":
            raise GitError(f"git {what} did not finish before the deadline")
        if code != 0:
            detail = output.strip().splitlines()[-1] if output.strip() else f"exit code {code}"
            raise GitError(f"git {args[0] if what == 'git' else what} failed: {detail}")
        return output

    def resolve(self, clone: Path, revision: str) -> str:
        """The commit ``revision`` names in ``clone`` (a sha, a tag, a branch of origin)."""
        for candidate in (revision, f"origin/{revision}"):
            try:
                out = self.run(
                    ["-C", str(clone), "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"]
                )
            except GitError:
                continue
            if out.strip():
                return out.strip().splitlines()[-1]
        raise GitError(f"revision {revision!r} not found in the repository")
