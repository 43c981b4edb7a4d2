"""Pytest fixtures for the Kubernetes API emulator.

Enable them with ``pytest_plugins = ["tests.k8s_emulator.fixtures"]`` (in ``tests/conftest.py``
or in a test module)::

    def test_submit(k8s_emulator):
        api = kubernetes.client.CustomObjectsApi(k8s_emulator.api_client())
        ...

    def test_short_history(make_k8s_emulator):
        k8s = make_k8s_emulator(history_size=5, bookmark_interval=0.1)
        ...

Every emulator is stopped at teardown (its API clients closed, open watches ended) and the
test fails if the emulator itself crashed on a request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.k8s_emulator.emulator import K8sEmulator


@pytest.fixture
def make_k8s_emulator() -> Iterator[Callable[..., K8sEmulator]]:
    """A factory: ``make_k8s_emulator(**options)`` returns a started :class:`K8sEmulator`."""
    started: list[K8sEmulator] = []

    def make(**options: Any) -> K8sEmulator:
        emulator = K8sEmulator(**options).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in reversed(started):
        emulator.stop()
    for emulator in started:
        emulator.check()


@pytest.fixture
def k8s_emulator(make_k8s_emulator: Callable[..., K8sEmulator]) -> K8sEmulator:
    """A started emulator with the default resources (workflows, workflowtemplates, pods)."""
    return make_k8s_emulator()
