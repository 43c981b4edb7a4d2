"""Which container engine answers on this machine: ``podman info`` / ``docker info`` succeed.

A client without its daemon (``docker`` installed, no ``dockerd`` running) is no engine: its
``info`` fails. Every probe is bounded by ``timeout`` seconds.
"""

from __future__ import annotations

import shutil
import subprocess

ENGINES = ("podman", "docker")


def available_engine(preferred: str | None = None, timeout: float = 5.0) -> str | None:
    """``"podman"`` or ``"docker"`` (``preferred`` first) when its ``info`` succeeds, else None."""
    order = [preferred] if preferred in ENGINES else []
    order += [e for e in ENGINES if e not in order]
    for engine in order:
        if engine is None or shutil.which(engine) is None:
            continue
        try:
            done = subprocess.run(
                [engine, "info"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return engine
    return None
