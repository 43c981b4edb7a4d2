"""One pod's attempt as values: where and how it runs (:class:`PodContext`), how it ended
(:class:`PodResult`), and the live output of ``forgeflow exec`` (:class:`LineSink`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from service.executors.local.git import GitCache
from service.executors.local.manifest import PodTemplate
from service.executors.local.repository import ArtifactRepository


class LineSink:
    """Live output for ``forgeflow exec``: every line as ``[task] text``, one writer at a time."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def line(self, task: str, text: str) -> None:
        with self._lock:
            self.stream.write(f"[{task}] {text}\n")
            self.stream.flush()


@dataclass(frozen=True)
class PodContext:
    """Where and how one attempt runs."""

    task: str
    node_id: str
    template: PodTemplate
    pod_dir: Path
    log_path: Path
    data_dir: Path
    git: GitCache
    runtime: str | None = None
    header: str | None = None
    sink: LineSink | None = None
    artifacts_dir: Path | None = None  # where output artifacts are kept (``<name>/<basename>``)
    artifacts_root: Path | None = None  # every task's artifacts dir, for artifacts passed on
    repository: ArtifactRepository | None = None  # key-only s3 artifacts (caches)
    own_secrets: Path | None = None  # the run's own Secrets (its checkout's credentials)


@dataclass(frozen=True)
class PodResult:
    """How an attempt ended: node phase, node message, exit code (None if it never ran)."""

    phase: str
    message: str | None = None
    exit_code: int | None = None
    cancelled: bool = False
    parameters: tuple[tuple[str, str], ...] = ()  # output parameters, read when it ended
