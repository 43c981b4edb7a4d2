"""Real git repositories for tests: a bare repository plus a working checkout to commit from."""

from __future__ import annotations

import subprocess
from pathlib import Path

IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]


class GitRepo:
    def __init__(self, root: Path, name: str = "repo") -> None:
        self.bare = root / f"{name}.git"
        self.work = root / f"{name}-work"
        subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(self.bare)], check=True)
        subprocess.run(["git", "init", "-q", "--initial-branch=main", str(self.work)], check=True)
        self.git("remote", "add", "origin", str(self.bare))

    def git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", *IDENTITY, *args], cwd=self.work, check=True, capture_output=True, text=True
        )
        return result.stdout.strip()

    def commit(self, files: dict[str, str], message: str = "change", branch: str = "main") -> str:
        """Write files, commit, push to the bare repository; return the commit sha."""
        current = self.git("rev-parse", "--abbrev-ref", "HEAD") if self.has_commits() else "main"
        if current != branch:
            exists = (
                subprocess.run(
                    ["git", "rev-parse", "--verify", "--quiet", branch], cwd=self.work, capture_output=True
                ).returncode
                == 0
            )
            self.git("checkout", "-q", branch) if exists else self.git("checkout", "-q", "-b", branch)
        for path, text in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        self.git("push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return self.git("rev-parse", "HEAD")

    def has_commits(self) -> bool:
        return (
            subprocess.run(["git", "rev-parse", "HEAD"], cwd=self.work, capture_output=True).returncode == 0
        )

    def show(self, sha: str, path: str) -> str | None:
        result = subprocess.run(
            ["git", "--git-dir", str(self.bare), "show", f"{sha}:{path}"], capture_output=True, text=True
        )
        return result.stdout if result.returncode == 0 else None

    @property
    def url(self) -> str:
        return str(self.bare)
