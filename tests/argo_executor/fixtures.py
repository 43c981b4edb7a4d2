"""The ``make_world`` fixture (see :mod:`tests.argo_executor.world`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from tests.argo_executor.controller import EmulatedController
from tests.argo_executor.world import NAMESPACE, REPO, REPO_ACCOUNT, REPO_NAMESPACE, World, write_kubeconfig
from tests.conftest import WEBHOOK_SECRET
from tests.k8s_emulator import K8sEmulator
from tests.support.fake_github import FakeGitHub
from tests.support.gitrepo import GitRepo
from tests.support.stack import Stack


@pytest.fixture
def make_world(
    make_k8s_emulator: Callable[..., K8sEmulator],
    make_settings: Callable[..., Settings],
    fake_github: FakeGitHub,
    git_repo: GitRepo,
    tmp_path: Path,
) -> Iterator[Callable[..., World]]:
    with ExitStack() as exits:

        def make(database_url: str = "", **overrides: Any) -> World:
            k8s = make_k8s_emulator(bookmark_interval=0.5)
            controller = EmulatedController(k8s, tmp_path / "argo").start()
            exits.callback(controller.stop)
            values: dict[str, Any] = {
                "executor": "argo",
                "kubeconfig": str(write_kubeconfig(tmp_path / "kubeconfig", k8s.url)),
                "namespace": NAMESPACE,
                "repositories": [
                    {"match": "octo/*", "namespace": REPO_NAMESPACE, "service_account": REPO_ACCOUNT}
                ],
                "github_webhook_secret": WEBHOOK_SECRET,
                "github_token": "t0ken",
                "github_api_url": fake_github.api_url,
                "database_url": database_url,
            }
            settings = make_settings(**{**values, **overrides})
            stack = Stack(settings, watcher=False)
            exits.callback(stack.close)
            fake_github.add_repo(REPO, git_repo)
            gates = tmp_path / "gates"
            gates.mkdir(exist_ok=True)
            return World(k8s, stack, controller, fake_github, git_repo, gates, exits)

        yield make
