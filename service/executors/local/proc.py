"""Process plumbing for the local executor: waiting with cancel/deadline, killing process
groups, and recognising a process again later (pid plus start time, so a reused pid is not
mistaken for our runner)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Literal

Outcome = Literal["exited", "cancelled", "deadline"]
POLL_SECONDS = 0.05
GRACE_SECONDS = 2.0


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group led by ``pid``; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_process(proc: subprocess.Popen[bytes], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds, and reap the leader."""
    signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
    signal_group(proc.pid, signal.SIGKILL)


def wait_process(proc: subprocess.Popen[bytes], cancel: threading.Event, deadline: float | None) -> Outcome:
    """Wait for ``proc``; kill its group when ``cancel`` is set or ``deadline`` (monotonic)
    passes. Leftover members of the group are killed once the leader exits, as a pod's are."""
    while True:
        try:
            proc.wait(timeout=POLL_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        else:
            signal_group(proc.pid, signal.SIGKILL)
            return "exited"
        if cancel.is_set():
            stop_process(proc)
            return "cancelled"
        if deadline is not None and time.monotonic() >= deadline:
            stop_process(proc)
            return "deadline"


def exit_code(returncode: int) -> int:
    """A shell-style exit code: 128 + N for a process killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def process_identity(pid: int) -> str | None:
    """``"<pid>:<start time>"`` for a live (non-zombie) process, or None when it is gone."""
    if not Path("/proc/self/stat").exists():
        return _identity_without_proc(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return f"{pid}:{fields[19]}"


def _identity_without_proc(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return f"{pid}:"


def is_alive(identity: str) -> bool:
    """Whether the process recorded as ``identity`` (see :func:`process_identity`) runs."""
    pid_text, _, _ = identity.partition(":")
    if not pid_text.isdigit():
        return False
    current = process_identity(int(pid_text))
    if current is None:
        return False
    recorded_start = identity.partition(":")[2]
    return not recorded_start or current == identity or current.endswith(":")


def run_tool(
    argv: list[str],
    *,
    cancel: threading.Event,
    deadline: float | None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[Outcome, int, str]:
    """Run a helper command (git...) in its own process group, honouring cancel/deadline.

    Returns the outcome, the exit code and the combined output (decoded, at most 4 KiB of
    its end).
    """
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        outcome = wait_process(proc, cancel, deadline)
        output.seek(0)
        text = output.read()[-4096:].decode("utf-8", "replace")
    return outcome, exit_code(proc.returncode), text
