"""Fixtures for the argo executor: executors pointed at the Kubernetes API emulator (the test
modules load ``tests.k8s_emulator.fixtures``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.executors.argo.executor import ArgoExecutor
from service.executors.argo.logs import DatabaseLogArchive
from service.store.db import Database
from tests.k8s_emulator import K8sEmulator

NAMESPACES = ("ci", "ci-octo")


def workflow(name: str, namespace: str = "ci", run: str = "1", **extra: Any) -> dict[str, Any]:
    """A minimal forgeflow-labelled Workflow manifest."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "forgeflow", "forgeflow.dev/run": run},
        },
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "x"}}]},
        **extra,
    }


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'forgeflow.sqlite'}")
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def make_executor(k8s_emulator: K8sEmulator, database: Database) -> Callable[..., ArgoExecutor]:
    def make(namespaces: tuple[str, ...] = NAMESPACES, archive: bool = True, **options: Any) -> ArgoExecutor:
        return ArgoExecutor(
            k8s_emulator.api_client(),
            namespaces,
            archive=DatabaseLogArchive(database) if archive else None,
            request_timeout=10,
            **options,
        )

    return make


@pytest.fixture
def executor(make_executor: Callable[..., ArgoExecutor]) -> ArgoExecutor:
    return make_executor()
