"""Where local Workflow objects live: one JSON file per Workflow, replaced atomically.

Layout under ``<data_dir>``::

    resourceVersion                      machine-wide counter (under .resourceVersion.lock)
    workflows/<ns>/<name>.json           the Workflow object (Argo's shape)
    workflows/<ns>/.<name>.lock          one writer at a time per object (fcntl)
    workflows/<ns>/<name>/               its runner log, git cache, pod workspaces, logs/
    workflows/<ns>/.deleted/<name>.json  tombstones, so a watch can report DELETED

Every write takes the object's lock, then the counter's lock, bumps the counter, stores the new
``metadata.resourceVersion`` and replaces the file before letting go of the counter: files
change in resourceVersion order. Store-private bookkeeping (the resourceVersion the object was
created at, the runner's process identity) sits under the top-level key ``localStore`` and is
stripped from what callers get.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from service.clock import kubernetes_time
from service.executors.base import ExecutorError, Manifest

PRIVATE = "localStore"
TOMBSTONES = ".deleted"
TOMBSTONE_TTL = 3600.0
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_TASK = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.()]*$")

Signature = tuple[int, int, int]


def check_name(namespace: str, name: str) -> None:
    """Refuse names that are not Kubernetes names (they become file names here)."""
    if not _NAMESPACE.match(namespace or ""):
        raise ExecutorError(f"invalid namespace {namespace!r}")
    if not _NAME.match(name or ""):
        raise ExecutorError(f"invalid workflow name {name!r}")


def public(raw: Manifest) -> Manifest:
    """A deep copy of a stored object without the store's private bookkeeping."""
    obj = copy.deepcopy(raw)
    obj.pop(PRIVATE, None)
    return obj


def resource_version(obj: Manifest) -> int:
    """The object's ``metadata.resourceVersion`` as an int (0 when absent)."""
    value = (obj.get("metadata") or {}).get("resourceVersion") or "0"
    return int(value) if str(value).isdigit() else 0


def created_version(obj: Manifest) -> int:
    """The resourceVersion the object was created at (0 when unknown)."""
    return int((obj.get(PRIVATE) or {}).get("createdResourceVersion", 0))


class LocalStore:
    """Workflow objects as files under ``data_dir``, safe across threads and processes."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "workflows"
        self._cache: dict[Path, tuple[Signature, Manifest]] = {}
        self._cache_lock = threading.Lock()

    # -- paths ---------------------------------------------------------------------------
    def object_path(self, namespace: str, name: str) -> Path:
        return self.root / namespace / f"{name}.json"

    def workflow_dir(self, namespace: str, name: str) -> Path:
        return self.root / namespace / name

    def log_path(self, namespace: str, name: str, task: str) -> Path:
        """The combined stdout/stderr log of one task."""
        if not _TASK.match(task):
            raise ExecutorError(f"invalid task name {task!r}")
        return self.workflow_dir(namespace, name) / "logs" / f"{task}.log"

    def _tombstone_path(self, namespace: str, name: str) -> Path:
        return self.root / namespace / TOMBSTONES / f"{name}.json"

    # -- locking and the counter -----------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, lock_path: Path) -> Iterator[None]:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _object_lock(self, namespace: str, name: str) -> contextlib.AbstractContextManager[None]:
        return self._locked(self.root / namespace / f".{name}.lock")

    def _counter_lock(self) -> contextlib.AbstractContextManager[None]:
        return self._locked(self.data_dir / ".resourceVersion.lock")

    def current_version(self) -> int:
        """The last resourceVersion handed out on this machine."""
        try:
            return int((self.data_dir / "resourceVersion").read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _next_version(self) -> int:
        value = self.current_version() + 1
        _write_atomic(self.data_dir / "resourceVersion", str(value))
        return value

    def _commit(self, path: Path, raw: Manifest) -> None:
        """Stamp a new resourceVersion on ``raw`` and replace ``path`` (object lock held)."""
        with self._counter_lock():
            raw.setdefault("metadata", {})["resourceVersion"] = str(self._next_version())
            _write_atomic(path, json.dumps(raw, sort_keys=True))

    # -- reading -----------------------------------------------------------------------------
    def read(self, path: Path) -> Manifest | None:
        """The raw object stored at ``path`` (cached by mtime/size/inode), or None."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._cache_lock:
            cached = self._cache.get(path)
        if cached and cached[0] == signature:
            return cached[1]
        try:
            raw: Manifest = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        with self._cache_lock:
            self._cache[path] = (signature, raw)
        return raw

    def get_raw(self, namespace: str, name: str) -> Manifest | None:
        """The stored object including private bookkeeping (do not mutate), or None."""
        return self.read(self.object_path(namespace, name))

    def get(self, namespace: str, name: str) -> Manifest | None:
        """A copy of the stored object, or None."""
        raw = self.get_raw(namespace, name)
        return public(raw) if raw is not None else None

    def object_paths(self, tombstones: bool = False) -> Iterator[Path]:
        """Every object file (or every tombstone file) under the store."""
        if not self.root.is_dir():
            return
        for ns_dir in sorted(self.root.iterdir()):
            folder = ns_dir / TOMBSTONES if tombstones else ns_dir
            if not folder.is_dir() or ns_dir.name.startswith("."):
                continue
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if entry.name.endswith(".json") and not entry.name.startswith("."):
                    yield Path(entry.path)

    def all_raw(self) -> list[Manifest]:
        """Every stored object (raw), sorted by namespace and name."""
        return [raw for path in self.object_paths() if (raw := self.read(path)) is not None]

    # -- writing -----------------------------------------------------------------------------
    def create(self, manifest: Manifest) -> tuple[Manifest, bool]:
        """Store a new Workflow; if the name exists, return the stored one and False."""
        meta = manifest.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        check_name(namespace, name)
        path = self.object_path(namespace, name)
        with self._object_lock(namespace, name):
            existing = self.read(path)
            if existing is not None:
                return public(existing), False
            raw = copy.deepcopy(manifest)
            raw["metadata"] = {
                **meta,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": kubernetes_time(),
            }
            raw["status"] = {"phase": "Pending"}
            with self._counter_lock():
                version = self._next_version()
                raw["metadata"]["resourceVersion"] = str(version)
                raw[PRIVATE] = {"createdResourceVersion": str(version)}
                _write_atomic(path, json.dumps(raw, sort_keys=True))
        return public(raw), True

    def update(self, namespace: str, name: str, mutate: Callable[[Manifest], bool | None]) -> Manifest | None:
        """Apply ``mutate`` to the stored object under its lock and store it (new rv).

        ``mutate`` edits the raw object in place; returning False means "no change" and
        nothing is written. Returns the public view afterwards, or None when it doesn't exist.
        """
        check_name(namespace, name)
        path = self.object_path(namespace, name)
        with self._object_lock(namespace, name):
            current = self.read(path)
            if current is None:
                return None
            raw = copy.deepcopy(current)
            if mutate(raw) is False:
                return public(raw)
            self._commit(path, raw)
        return public(raw)

    def delete(self, namespace: str, name: str) -> bool:
        """Remove the object (leaving a tombstone for watches) and its files."""
        check_name(namespace, name)
        path = self.object_path(namespace, name)
        with self._object_lock(namespace, name):
            current = self.read(path)
            if current is None:
                return False
            tombstone = self._tombstone_path(namespace, name)
            tombstone.parent.mkdir(parents=True, exist_ok=True)
            self._commit(tombstone, copy.deepcopy(current))
            path.unlink()
        with self._cache_lock:
            self._cache.pop(path, None)
        shutil.rmtree(self.workflow_dir(namespace, name), ignore_errors=True)
        self._prune_tombstones()
        return True

    def _prune_tombstones(self) -> None:
        cutoff = time.time() - TOMBSTONE_TTL
        for path in self.object_paths(tombstones=True):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
