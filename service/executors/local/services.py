"""A pod's sidecars on this machine: service containers started before the main one.

Only with a container engine that answers (see :mod:`engine`); without one the pod is refused
with a message saying so. When the job itself runs in a container, the sidecars and the job
share the first sidecar's network namespace (so ``localhost:<port>`` reaches them, as in a
Kubernetes pod); when it runs directly on this machine, each port is published on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from service.executors.local.proc import run_tool

START_SECONDS = 120.0


class ServiceError(Exception):
    """A sidecar could not start (the message says which and why)."""


def sidecar_name(node_id: str, name: str) -> str:
    return f"forgeflow-{node_id}-{name}"[:128]


def sidecar_command(
    engine: str, node_id: str, sidecar: dict[str, Any], *, network: str | None, publish: bool
) -> list[str]:
    """``<engine> run -d`` for one sidecar (pure). Environment values are passed by name."""
    argv = [engine, "run", "-d", "--rm", "--name", sidecar_name(node_id, str(sidecar["name"]))]
    if network:
        argv += ["--network", f"container:{network}"]
    if publish:
        for port in sidecar.get("ports") or ():
            number = int(port.get("containerPort", 0)) if isinstance(port, dict) else int(port)
            argv += ["-p", f"127.0.0.1:{number}:{number}"]
    for entry in sidecar.get("env") or ():
        argv += ["-e", str(entry.get("name"))]
    command = [str(c) for c in sidecar.get("command") or ()]
    if command:
        argv += ["--entrypoint", command[0]]
    argv.append(str(sidecar["image"]))
    argv += command[1:] + [str(a) for a in sidecar.get("args") or ()]
    return argv


def start_sidecars(
    engine: str,
    node_id: str,
    sidecars: Sequence[dict[str, Any]],
    *,
    main_in_container: bool,
    cancel: threading.Event,
) -> tuple[str | None, list[str]]:
    """Start every sidecar; (the network to join, the container names to remove later)."""
    started: list[str] = []
    network: str | None = None
    for sidecar in sidecars:
        env = {str(e.get("name")): str(e.get("value", "")) for e in sidecar.get("env") or ()}
        argv = sidecar_command(engine, node_id, sidecar, network=network, publish=not main_in_container)
        try:
            outcome, code, output = run_tool(
                argv, cancel=cancel, deadline=time.monotonic() + START_SECONDS, env={**os.environ, **env}
            )
        except OSError as exc:
            stop_sidecars(engine, started)
            raise ServiceError(f"service {sidecar['name']!r}: cannot run {engine}: {exc}") from exc
        if outcome != "exited" or code != 0:
            stop_sidecars(engine, started)
            raise ServiceError(f"service {sidecar['name']!r} did not start: {output.strip()[-300:]}")
        name = sidecar_name(node_id, str(sidecar["name"]))
        started.append(name)
        if main_in_container and network is None:
            network = name
    return network, started


def stop_sidecars(engine: str, names: Sequence[str]) -> None:
    for name in names:
        with contextlib.suppress(OSError):
            run_tool([engine, "rm", "-f", name], cancel=threading.Event(), deadline=time.monotonic() + 30)
