"""The embedded ``local`` forge: bare git repositories under ``<data_dir>/repos``.

Each repository ``<owner>/<name>`` is a bare repository at ``<data_dir>/repos/<owner>/<name>``
whose ``post-receive`` hook posts a signed push event to forgeflow, so ``git push`` into it
starts a run. Commit statuses live in the database (``local_statuses``).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from service.events import Repository
from service.forges.base import ForgeError, PullRequestInfo, ReportedStatus, StatusReport, TransientForgeError
from service.forges.checkout import CheckoutCredential
from service.store.db import Database
from service.store.models import LocalStatus

GIT_TIMEOUT = 60.0  # seconds for one git command on a repository of this machine
HOOK = """#!/bin/sh
# forgeflow: deliver a signed push event for every updated ref (see service/forges/local_hook.py)
exec {python} -m service.forges.local_hook --url {url} --secret-file {secret_file} \\
    --namespace {namespace} --name {name}
"""


class LocalForge:
    kind = "local"
    name = "local"

    def __init__(self, repos_dir: Path, db: Database) -> None:
        self.repos_dir = repos_dir
        self.db = db

    def git_dir(self, repo: Repository) -> Path:
        path = (self.repos_dir / repo.namespace / repo.name).resolve()
        if self.repos_dir.resolve() not in path.parents:
            raise ForgeError(f"repository name {repo.full_name!r} leaves the repositories folder")
        if not path.is_dir():
            raise ForgeError(f"no local repository {repo.full_name} under {self.repos_dir}")
        return path

    def _git(self, repo: Repository, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                ["git", "--git-dir", str(self.git_dir(repo)), *args],
                capture_output=True,
                text=True,
                check=False,
                timeout=GIT_TIMEOUT,  # every wait has a bound: a stuck git is retried later
            )
        except subprocess.TimeoutExpired as exc:
            raise TransientForgeError(
                f"git {args[0]} in {repo.full_name} took over {GIT_TIMEOUT:.0f} s"
            ) from exc

    def read_file(self, repo: Repository, path: str, ref: str) -> str | None:
        result = self._git(repo, "show", f"{ref}:{path}")
        if result.returncode != 0:
            if self._git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode:
                raise ForgeError(f"{repo.full_name} has no commit {ref}")
            return None
        return result.stdout

    def set_status(self, repo: Repository, sha: str, status: StatusReport) -> None:
        with self.db.session() as session:
            row = session.scalars(
                select(LocalStatus).where(
                    LocalStatus.repo == repo.full_name,
                    LocalStatus.sha == sha,
                    LocalStatus.context == status.context,
                )
            ).first()
            if row is None:
                row = LocalStatus(repo=repo.full_name, sha=sha, context=status.context)
                session.add(row)
            row.state = status.state
            row.description = status.description
            row.target_url = status.target_url

    def statuses(self, repo: Repository, sha: str) -> list[ReportedStatus]:
        return [
            ReportedStatus(s.context, s.state, s.description, s.target_url)
            for s in local_statuses(self.db, repo.full_name, sha)
        ]

    def pull_request_head(self, repo: Repository, number: int) -> str:
        raise ForgeError("the local forge has no pull requests")

    def resolve_ref(self, repo: Repository, ref: str) -> str:
        result = self._git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if result.returncode != 0:
            raise ForgeError(f"{repo.full_name} has no ref {ref}")
        return result.stdout.strip()

    def changed_files(self, repo: Repository, base: str, head: str) -> list[str] | None:
        result = self._git(repo, "diff", "--name-only", "--no-renames", "-z", f"{base}...{head}")
        if result.returncode != 0:
            return None
        return sorted(path for path in result.stdout.split("\0") if path)

    def pull_request_files(self, repo: Repository, number: int) -> list[str] | None:
        return None

    def pull_request_info(self, repo: Repository, number: int) -> PullRequestInfo:
        raise ForgeError("the local forge has no pull requests")

    def has_write_access(self, repo: Repository, user: str) -> bool:
        return True  # whoever can push into a repository on this machine

    def comment(self, repo: Repository, number: int, body: str) -> None:
        raise ForgeError("the local forge has no pull requests to comment on")

    def react(self, repo: Repository, number: int, comment_id: str, reaction: str) -> bool:
        return False

    def checkout_credential(self, repo: Repository, clone_url: str) -> CheckoutCredential | None:
        """Local repositories are folders on this machine: nothing to authenticate."""
        return None


def local_statuses(db: Database, repo: str, sha: str) -> list[LocalStatus]:
    """Statuses of a commit on the local forge (``sha`` may be a unique prefix)."""
    with db.session() as session:
        query = select(LocalStatus).where(LocalStatus.repo == repo)
        query = (
            query.where(LocalStatus.sha.startswith(sha))
            if len(sha) < 40
            else query.where(LocalStatus.sha == sha)
        )
        return list(session.scalars(query.order_by(LocalStatus.context)))


def create_repository(
    repos_dir: Path, namespace: str, name: str, webhook_url: str, secret_file: Path
) -> Path:
    """Create (or refresh the hook of) a bare repository that reports pushes to forgeflow."""
    path = repos_dir / namespace / name
    if not (path / "HEAD").exists():
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)], check=True)
    hook = path / "hooks" / "post-receive"
    hook.write_text(
        HOOK.format(
            python=shlex.quote(sys.executable),
            url=shlex.quote(webhook_url),
            secret_file=shlex.quote(str(secret_file.resolve())),
            namespace=shlex.quote(namespace),
            name=shlex.quote(name),
        ),
        encoding="utf-8",
    )
    hook.chmod(0o755)
    return path
