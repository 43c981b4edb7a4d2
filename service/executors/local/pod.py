"""One pod on this machine: a fresh workspace, input artifacts, env, the process, its log.

:func:`run_pod` runs one attempt of a container/script template and says how it ended, in
Argo's words. Container paths under ``/workspace`` map to the attempt's own
``<pod_dir>/workspace``. Without a container runtime the command runs directly (cwd = the
mapped ``workingDir``, a minimal environment); with ``podman``/``docker`` it runs in the image
with the workspace mounted (see :func:`container_command`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from service.executors.local.engine import available_engine
from service.executors.local.env import (
    EnvError,
    base_env,
    resolve_env,
    secret_folder,
    secret_value,
    secret_values,
)
from service.executors.local.git import GitCache, GitError
from service.executors.local.manifest import PodTemplate
from service.executors.local.nodes import (
    ERROR,
    FAILED,
    MSG_DEADLINE,
    SUCCEEDED,
    exit_code_message,
)
from service.executors.local.proc import exit_code, run_tool, wait_process
from service.executors.local.repository import ArtifactRepository, copy_item
from service.executors.local.services import ServiceError, start_sidecars, stop_sidecars
from service.executors.local.values import WORKSPACE, inside_workspace
from service.executors.log_times import stamp
from service.executors.masking import Masker

FAILED_MARK = "::forgeflow-failed::"
STAGING = "/argo/staging"


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


class PodError(Exception):
    """The pod could not start (artifact, env, command); the node ends in ``Error``."""


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
        _load_artifact(ctx, artifact, workspace, cancel, deadline)
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


def _load_artifact(
    ctx: PodContext,
    artifact: dict[str, object],
    workspace: Path,
    cancel: threading.Event,
    deadline: float | None,
) -> None:
    dest = host_path(workspace, str(artifact["path"]))
    name = artifact.get("name")
    if not inside_workspace(workspace, dest):
        where = artifact["path"]
        raise PodError(f"failed to load input artifact {name!r}: {where} leads outside {WORKSPACE}")
    if "from" in artifact:
        _load_passed(ctx, artifact, dest)
        return
    if "s3" in artifact:
        s3 = artifact["s3"] if isinstance(artifact["s3"], dict) else {}
        key = str(s3.get("key"))
        found = ctx.repository is not None and ctx.repository.load(key, dest)
        if not found and not artifact.get("optional"):
            raise PodError(f"failed to load input artifact {name!r}: nothing saved under {key!r}")
        return
    if "raw" in artifact:
        raw = artifact["raw"] if isinstance(artifact["raw"], dict) else {}
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(str(raw.get("data", "")))
        return
    git = artifact["git"] if isinstance(artifact["git"], dict) else {}
    repo, revision = str(git.get("repo")), str(git.get("revision") or "")
    try:
        credentials = _git_credentials(ctx, git)
        ctx.git.checkout(repo, revision, dest, cancel=cancel, deadline=deadline, credentials=credentials)
    except (GitError, EnvError) as exc:
        raise PodError(f"failed to load input artifact {name!r} from {repo}: {exc}") from exc


def _load_passed(ctx: PodContext, artifact: dict[str, object], dest: Path) -> None:
    """An artifact another task saved (``from: {{tasks.X.outputs.artifacts.Y}}``)."""
    origin = artifact["from"]
    task, source = (str(origin[0]), str(origin[1])) if isinstance(origin, tuple | list) else ("", "")
    folder = ctx.artifacts_root / str(task) / str(source) if ctx.artifacts_root else None
    items = sorted(folder.iterdir()) if folder is not None and folder.is_dir() else []
    if not items:
        if artifact.get("optional"):
            return
        raise PodError(f"failed to load input artifact {artifact.get('name')!r}: {task} saved no {source!r}")
    copy_item(items[0], dest)


def _git_credentials(ctx: PodContext, git: dict[str, object]) -> tuple[str, str] | None:
    """The git artifact's ``usernameSecret``/``passwordSecret`` values, as Argo reads them."""
    refs = [git.get("usernameSecret"), git.get("passwordSecret")]
    if not any(isinstance(ref, dict) for ref in refs):
        return None
    user, password = (
        secret_value(ctx.data_dir, ref, ctx.own_secrets) if isinstance(ref, dict) else "" for ref in refs
    )
    return user, password


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


def read_parameters(ctx: PodContext) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """The output parameters' values (from their files), and a problem when one is missing."""
    workspace = ctx.pod_dir / "workspace"
    values: list[tuple[str, str]] = []
    for parameter in ctx.template.output_parameters:
        source = parameter.get("valueFrom") or {}
        path = host_path(workspace, str(source.get("path", "")))
        if not inside_workspace(workspace, path, follow=True):
            return tuple(values), f"failed to save outputs: {source.get('path')} leads outside {WORKSPACE}"
        try:
            values.append((str(parameter["name"]), path.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            if "default" not in source:
                return tuple(values), f"failed to save outputs: {source.get('path')} not found"
            values.append((str(parameter["name"]), str(source["default"])))
    return tuple(values), None


def save_outputs(ctx: PodContext, succeeded: bool = True) -> str | None:
    """Copy the template's output artifacts out of the workspace; a problem, or None."""
    if ctx.artifacts_dir is None:
        return None
    workspace = ctx.pod_dir / "workspace"
    for artifact in ctx.template.outputs:
        source = host_path(workspace, str(artifact.get("path", "")))
        dest = ctx.artifacts_dir / str(artifact.get("name")) / source.name
        if not inside_workspace(workspace, source):
            return f"failed to save outputs: {artifact.get('path')} leads outside {WORKSPACE}"
        if not os.path.lexists(source):
            if artifact.get("optional"):
                continue
            return f"failed to save outputs: {artifact.get('path')} not found"
        if "s3" in artifact:
            if ctx.repository is not None and succeeded:
                ctx.repository.save(str((artifact["s3"] or {}).get("key")), source)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest, follow_symlinks=False)
    return None


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


def host_path(workspace: Path, container_path: str) -> Path:
    """Where a container path under ``/workspace`` lives on this machine."""
    relative = container_path[len(WORKSPACE) :].strip("/")
    return workspace / relative if relative else workspace


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
