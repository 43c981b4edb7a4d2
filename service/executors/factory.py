"""Building the executor the settings choose (``local`` or ``argo``), for the processes that run
or watch Workflows (``serve``, ``worker``, ``watcher``). The web tier never imports this: it
holds no Kubernetes client and reads job logs from the database or the local executor's files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.executors.base import Executor
from service.settings import Settings

if TYPE_CHECKING:
    from service.executors.local.executor import LocalExecutorConfig


def build_executor(settings: Settings) -> Executor:
    """The executor the settings choose (``local`` or ``argo``)."""
    if settings.executor == "argo":
        from service.executors.argo.executor import ArgoExecutor

        executor: Executor = ArgoExecutor.from_settings(settings)
        return executor
    from service.executors.local.executor import LocalExecutor

    return LocalExecutor(local_config(settings))


def local_config(settings: Settings, *, detach: bool = True) -> LocalExecutorConfig:
    """The local executor's configuration from the settings (``detach``: a runner process per
    Workflow; ``forgeflow exec`` runs in the foreground)."""
    from service.executors.local.executor import LocalExecutorConfig

    return LocalExecutorConfig(
        data_dir=settings.data_dir,
        container_runtime=settings.local_container_runtime or None,
        cache_max_bytes=settings.local_cache_max_bytes,
        max_parallel=settings.local_max_parallel,
        default_namespace=settings.namespace,
        detach=detach,
    )
