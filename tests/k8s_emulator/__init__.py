"""A Kubernetes API emulator (built on kmock) for testing forgeflow against real HTTP.

See :mod:`tests.k8s_emulator.emulator` for usage and :mod:`tests.k8s_emulator.fixtures` for
the pytest fixtures (``k8s_emulator``, ``make_k8s_emulator``).
"""

from tests.k8s_emulator.emulator import K8sEmulator
from tests.k8s_emulator.faults import Fault, WatchDrop
from tests.k8s_emulator.resources import (
    DEFAULT_RESOURCES,
    PODS,
    WORKFLOW_TEMPLATES,
    WORKFLOWS,
    ApiError,
    Resource,
)
from tests.k8s_emulator.selectors import SelectorError, parse_label_selector
from tests.k8s_emulator.server import RecordedRequest

__all__ = [
    "DEFAULT_RESOURCES",
    "PODS",
    "WORKFLOWS",
    "WORKFLOW_TEMPLATES",
    "ApiError",
    "Fault",
    "K8sEmulator",
    "RecordedRequest",
    "Resource",
    "SelectorError",
    "WatchDrop",
    "parse_label_selector",
]
