"""One pod on this machine: a fresh workspace, input artifacts, env, the process, its log.

:func:`run_pod` runs one attempt of a container/script template and says how it ended, in
Argo's words. Container paths under ``/workspace`` map to the attempt's own
``<pod_dir>/workspace``. Without a container runtime the command runs directly (cwd = the
mapped ``workingDir``, a minimal environment); with ``podman``/``docker`` it runs in the image
with the workspace mounted (see :func:`container_command`). What it takes in and hands on
(artifacts, output parameters) is :mod:`pod_files`'s; the values it is given and returns are
:mod:`pod_context`'s.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from service.executors.local.engine import available_engine
from service.executors.local.env import (
    EnvError,
    base_env,
    resolve_env,
    secret_folder,
    secret_values,
)
from service.executors.local.nodes import (
    ERROR,
    FAILED,
    MSG_DEADLINE,
    SUCCEEDED,
    exit_code_message,
)
from service.executors.local.pod_context import PodContext, PodResult
from service.executors.local.pod_files import (
    PodError,
    host_path,
    load_artifact,
    read_parameters,
    save_outputs,
)
from service.executors.local.proc import exit_code, run_tool, wait_process
from service.executors.local.services import ServiceError, start_sidecars, stop_sidecars
from service.executors.local.values import WORKSPACE
from service.executors.log_times import stamp
from service.executors.masking import Masker

FAILED_MARK = "::forgeflow-failed::"
STAGING = "/argo/staging"


def run_pod(ctx: PodContext, cancel: threading.Event, on_running: Callable[[], None]) -> PodResult:
    """Run one attempt to its end (or until ``cancel``); ``on_running`` fires at process start."""
    started = time.monotonic()
    deadline = started + ctx.template.deadline if ctx.template.deadline is not None else None
    ctx.log_path.parent.mkdir(parents=True, exist_ok=True)
    # every Secret value the pod can see is masked in its log (and the live output)
    masker = Masker(secret_values(ctx.template, ctx.data_dir, ctx.own_secrets))
    sidecars: list[str] = []
    engine = None
    try:
        with open(ctx.log_path, "a", encoding="utf-8", buffering=1) as log:
            if ctx.header:
                log.write(f"{stamp()} {ctx.header}\n")
            try:
                if ctx.template.sidecars:
                    engine, network, sidecars = _start_services(ctx, cancel)
                else:
                    network = None
                argv, cwd, env = _prepare(ctx, cancel, deadline, network)
                proc = _spawn(argv, cwd, env)
            except PodError as exc:
                if cancel.is_set():
                    return PodResult(FAILED, cancelled=True)
                message = masker(str(exc))
                _emit(ctx, log, f"forgeflow-local: {message}")
                return PodResult(ERROR, message)
            on_running()
            copier = _OutputCopier(proc, log, ctx, masker)
            copier.start()
            outcome = wait_process(proc, cancel, deadline)
            copier.join(timeout=5)
    finally:
        if engine is not None:
            stop_sidecars(engine, sidecars)
    if outcome != "exited" and ctx.runtime:
        _remove_container(ctx)
    code = exit_code(proc.returncode)
    parameters: tuple[tuple[str, str], ...] = ()
    if outcome == "exited":
        problem = save_outputs(ctx, succeeded=code == 0)
        parameters, missing = read_parameters(ctx)
        problem = problem or missing
        if problem and code == 0:
            return PodResult(ERROR, problem, 0, parameters=parameters)
    if outcome == "cancelled":
        return PodResult(FAILED, None, code, cancelled=True)
    if outcome == "deadline":
        return PodResult(FAILED, MSG_DEADLINE, code)
    if code == 0:
        return PodResult(SUCCEEDED, None, 0, parameters=parameters)
    return PodResult(FAILED, copier.failed_message or exit_code_message(code), code, parameters=parameters)


NO_ENGINE = (
    "services need a container engine, and neither podman nor docker answered `info` on this "
    "machine (a client without its daemon is not enough): start one, or run this on Argo"
)


def _start_services(ctx: PodContext, cancel: threading.Event) -> tuple[str, str | None, list[str]]:
    engine = available_engine(Path(ctx.runtime).name if ctx.runtime else None)
    if engine is None:
        raise PodError(NO_ENGINE)
    try:
        network, names = start_sidecars(
            ctx.runtime or engine,
            ctx.node_id,
            ctx.template.sidecars,
            main_in_container=bool(ctx.runtime),
            cancel=cancel,
        )
    except ServiceError as exc:
        raise PodError(str(exc)) from exc
    return ctx.runtime or engine, network, names


def _prepare(
    ctx: PodContext, cancel: threading.Event, deadline: float | None, network: str | None = None
) -> tuple[list[str], Path, dict[str, str]]:
    workspace = ctx.pod_dir / "workspace"
    for sub in ("workspace", "home", "tmp", "staging"):
        (ctx.pod_dir / sub).mkdir(parents=True, exist_ok=True)
    for artifact in ctx.template.artifacts:
        load_artifact(ctx, artifact, workspace, cancel, deadline)
    try:
        env = resolve_env(ctx.template, ctx.data_dir, ctx.own_secrets)
    except EnvError as exc:
        raise PodError(str(exc)) from exc
    script = _write_script(ctx)
    working_dir = ctx.template.working_dir or WORKSPACE
    host_cwd = host_path(workspace, working_dir)
    host_cwd.mkdir(parents=True, exist_ok=True)
    if ctx.runtime:
        argv = container_command(
            ctx.runtime,
            name=container_name(ctx.node_id),
            image=ctx.template.image,
            command=list(ctx.template.command),
            args=[*ctx.template.args, *([f"{STAGING}/script"] if script else [])],
            workspace=workspace,
            staging=ctx.pod_dir / "staging" if script else None,
            working_dir=working_dir,
            env_names=sorted(env),
            network=network,
            mounts=_secret_mounts(ctx),
        )
        return argv, ctx.pod_dir, {**os.environ, **env}
    argv = [*ctx.template.command, *ctx.template.args, *([str(script)] if script else [])]
    if not argv:
        raise PodError("no command: running the image's entrypoint needs a container runtime")
    # without a container, paths under /workspace in env values point into this pod's folder
    mapped = {k: str(host_path(workspace, v)) if _in_workspace(v) else v for k, v in env.items()}
    return argv, host_cwd, {**base_env(ctx.pod_dir), **mapped}


def _in_workspace(value: str) -> bool:
    return value.startswith(WORKSPACE + "/") and "\n" not in value and "/../" not in value + "/"


def _secret_mounts(ctx: PodContext) -> list[tuple[Path, str]]:
    """The template's Secret volumes as (folder on this machine, mount path); only a container
    runtime can mount them (without one the values are in the environment alone)."""
    return [
        (secret_folder(ctx.data_dir, name, ctx.own_secrets), path)
        for path, name in ctx.template.secret_mounts
    ]


def _write_script(ctx: PodContext) -> Path | None:
    if ctx.template.script is None:
        return None
    path = ctx.pod_dir / "staging" / "script"
    path.write_text(ctx.template.script)
    return path


def _spawn(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise PodError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from exc


def _emit(ctx: PodContext, log: IO[str], text: str) -> None:
    log.write(f"{stamp()} {text}\n")  # each line with its time, as Kubernetes keeps them
    if ctx.sink:
        ctx.sink.line(ctx.task, text)


class _OutputCopier(threading.Thread):
    """Copies the process's output to the log (and the live sink), line by line, and keeps
    the last ``::forgeflow-failed::`` message."""

    def __init__(self, proc: subprocess.Popen[bytes], log: IO[str], ctx: PodContext, masker: Masker) -> None:
        super().__init__(name=f"output-{ctx.task}", daemon=True)
        self.proc, self.log, self.ctx, self.masker = proc, log, ctx, masker
        self.failed_message: str | None = None

    def run(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout as pipe:
            for raw in iter(pipe.readline, b""):
                text = self.masker(raw.decode("utf-8", "replace").rstrip("\r\n"))
                if text.startswith(FAILED_MARK):
                    self.failed_message = text[len(FAILED_MARK) :].strip() or None
                try:
                    _emit(self.ctx, self.log, text)
                except ValueError:  # the log was closed: a process that escaped its group
                    return  # kept the pipe open past the attempt's end


def container_name(node_id: str) -> str:
    """The container name for an attempt (unique per workflow node)."""
    return f"forgeflow-{node_id}"[:128]


def container_command(
    runtime: str,
    *,
    name: str,
    image: str,
    command: list[str],
    args: list[str],
    workspace: Path,
    working_dir: str,
    env_names: list[str],
    staging: Path | None = None,
    network: str | None = None,
    mounts: list[tuple[Path, str]] | None = None,
) -> list[str]:
    """The ``podman``/``docker run`` command line for one attempt (pure).

    ``command`` replaces the image's entrypoint and ``args`` its CMD, as in Kubernetes.
    Environment values are not on the command line (other users could read them in ``ps``):
    each is passed by name (``-e NAME``) and taken from the runtime client's environment.
    """
    relabel = ":Z" if os.path.basename(runtime) == "podman" else ""
    argv = [runtime, "run", "--rm", "--name", name]
    if network:  # the sidecars' network namespace: they answer on localhost
        argv += ["--network", f"container:{network}"]
    argv += ["-v", f"{workspace}:{WORKSPACE}{relabel}", "-w", working_dir]
    if staging is not None:
        argv += ["-v", f"{staging}:{STAGING}:ro{relabel.replace(':', ',')}"]
    for host, mount_path in mounts or ():
        argv += ["-v", f"{host}:{mount_path}:ro{relabel.replace(':', ',')}"]
    for env_name in env_names:
        argv += ["-e", env_name]
    if command:
        argv += ["--entrypoint", command[0], image, *command[1:], *args]
    else:
        argv += [image, *args]
    return argv


def _remove_container(ctx: PodContext) -> None:
    """Make sure a killed attempt's container is gone (killing the client may leave it)."""
    assert ctx.runtime is not None
    cmd = [ctx.runtime, "rm", "-f", container_name(ctx.node_id)]
    with contextlib.suppress(OSError):
        run_tool(cmd, cancel=threading.Event(), deadline=time.monotonic() + 30)
