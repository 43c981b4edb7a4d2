"""The naive baseline for the watcher: GET every Workflow once a second and notice phase changes.

Run as its own process: ``python -m benchmarks.poller KUBECONFIG NAMESPACE NAMES_FILE OUT_FILE``.
It touches ``OUT_FILE.ready`` after its first sweep; on SIGTERM it writes
``[[name, phase, wall_time], ...]`` for every change it saw.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

import kubernetes


def main(kubeconfig: str, namespace: str, names_file: str, out_file: str) -> int:
    client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
    api = kubernetes.client.CustomObjectsApi(client)
    names = json.loads(Path(names_file).read_text())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    phases: dict[str, str] = {}
    seen: list[tuple[str, str, float]] = []
    first = True
    while not stop.is_set():
        started = time.monotonic()
        for name in names:
            obj = api.get_namespaced_custom_object("argoproj.io", "v1alpha1", namespace, "workflows", name)
            phase = str((obj.get("status") or {}).get("phase") or "")
            if phases.get(name) != phase:
                phases[name] = phase
                if not first:
                    seen.append((name, phase, time.time()))
            if stop.is_set():
                break
        if first:
            Path(out_file + ".ready").touch()  # the first sweep only learns the phases
        first = False
        stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))
    Path(out_file).write_text(json.dumps(seen))
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
