"""Shared fixtures: settings in a temporary data dir, real git repositories, a fake GitHub."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from service.settings import Settings, load_settings
from tests.support.fake_github import FakeGitHub
from tests.support.gitrepo import GitRepo

WEBHOOK_SECRET = "It's a Secret to Everybody"


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": tmp_path / "data", "log_level": "WARNING"}
        values.update(overrides)
        return load_settings(environ={}, overrides=values)

    return make


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path, "repo")


@pytest.fixture
def fake_github(httpserver: HTTPServer) -> Iterator[FakeGitHub]:
    yield FakeGitHub(httpserver)
