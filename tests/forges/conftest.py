"""Fixtures for the forge seam's unit tests: each fake forge on a real local HTTP server, a
forge object of forgeflow pointed at it, and a database for the notes ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from service.events import Repository
from service.forges.base import Forge, ReportedStatus, StatusReport
from service.forges.forgejo import ForgejoForge
from service.forges.gitlab import GitlabForge
from service.forges.notes import NoteLedger
from service.forges.pagure import PagureForge
from service.reporting.forge_states import for_forge, read_back
from service.settings import ForgeInstance
from service.store.db import Database
from tests.support.fake_forgejo import FakeForgejo
from tests.support.fake_gitlab import FakeGitLab
from tests.support.fake_pagure import FakePagure
from tests.support.gitrepo import GitRepo

TOKEN = "t0ken"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'forgeflow.sqlite'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def notes(db: Database) -> NoteLedger:
    return NoteLedger(db)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """A repository with a job file on main and a change on ``feature``."""
    git_repo = GitRepo(tmp_path, "repo")
    git_repo.commit({".forgeflow.yaml": "version: 1\n", "src/a.py": "a = 1\n", "old.txt": "x"}, "first")
    git_repo.git("tag", "-a", "v1", "-m", "release")  # an annotated tag: resolved to its commit
    git_repo.git("push", "-q", "origin", "v1")
    git_repo.git("mv", "old.txt", "renamed.txt")
    git_repo.commit({"src/a.py": "a = 2\n", "docs/b.md": "b"}, "second", branch="feature")
    return git_repo


def instance(kind: str, url: str) -> ForgeInstance:
    return ForgeInstance(kind=kind, api_url=url, token=TOKEN, webhook_secret="s")


@pytest.fixture
def fake_gitlab(httpserver: HTTPServer) -> FakeGitLab:
    return FakeGitLab(httpserver, token=TOKEN)


@pytest.fixture
def gitlab(fake_gitlab: FakeGitLab, notes: NoteLedger) -> GitlabForge:
    return GitlabForge(instance("gitlab", fake_gitlab.url), notes=notes)


@pytest.fixture
def fake_forgejo(httpserver: HTTPServer) -> FakeForgejo:
    return FakeForgejo(httpserver, token=TOKEN)


@pytest.fixture
def forgejo(fake_forgejo: FakeForgejo) -> ForgejoForge:
    return ForgejoForge(instance("forgejo", fake_forgejo.url))


@pytest.fixture
def fake_pagure(httpserver: HTTPServer) -> FakePagure:
    return FakePagure(httpserver, token=TOKEN)


@pytest.fixture
def pagure(fake_pagure: FakePagure) -> PagureForge:
    return PagureForge(instance("pagure", fake_pagure.url))


def post(forge: Forge, repo: Repository, sha: str, report: StatusReport) -> None:
    """Post a forgeflow state the way the reporter does: in the forge's own words."""
    forge.set_status(repo, sha, for_forge(forge.kind, report))


def shown(forge: Forge, repo: Repository, sha: str) -> list[ReportedStatus]:
    """The statuses a forge shows, read back into forgeflow's states."""
    return [read_back(forge.kind, status) for status in forge.statuses(repo, sha)]
