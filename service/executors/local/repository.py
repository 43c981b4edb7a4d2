"""The local executor's artifact repository: key-only ``s3`` artifacts as folders.

``<data_dir>/artifact-repository/<key>/<name>`` holds what was saved under ``key`` (``name``
is the saved path's last part), as an S3-compatible repository holds the archive on Argo.
A load marks the key used (its folder's mtime); after a save under ``forgeflow-cache/``, the
caches of that repository (``forgeflow-cache/<forge>/<repository>/``) are trimmed to
``max_bytes``, least recently used first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from pathlib import Path

CACHE_ROOT = "forgeflow-cache"
CACHE_SCOPE_DEPTH = 3  # forgeflow-cache / forge / repository (quoted) / branch / slot


def _size(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).lstat().st_size
    return total


def copy_item(source: Path, dest: Path) -> None:
    """Copy a file or folder (symlinks as links), replacing what ``dest`` held."""
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    elif dest.exists() or dest.is_symlink():
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, dest, symlinks=True)
    else:
        shutil.copy2(source, dest, follow_symlinks=False)


class ArtifactRepository:
    def __init__(self, data_dir: Path, max_cache_bytes: int = 0) -> None:
        self.root = Path(data_dir) / "artifact-repository"
        self.max_cache_bytes = max_cache_bytes

    def folder(self, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise ValueError(f"invalid artifact key {key!r}")
        return self.root.joinpath(*parts)

    def load(self, key: str, dest: Path) -> bool:
        """Unpack ``key`` at ``dest``; False when nothing is saved under it."""
        folder = self.folder(key)
        items = sorted(folder.iterdir()) if folder.is_dir() else []
        if not items:
            return False
        copy_item(items[0], dest)
        with contextlib.suppress(OSError):
            os.utime(folder)
        return True

    def save(self, key: str, source: Path) -> None:
        """Keep ``source`` under ``key`` (replacing what was there), then trim its caches."""
        folder = self.folder(key)
        staging = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}")
        copy_item(source, staging / source.name)
        old = folder.with_name(f".{folder.name}.old.{uuid.uuid4().hex}")
        with contextlib.suppress(FileNotFoundError):
            folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
        os.utime(folder)
        if self.max_cache_bytes and key.startswith(CACHE_ROOT + "/"):
            self.trim(key)

    def trim(self, key: str) -> list[str]:
        """Remove the least recently used caches of ``key``'s repository beyond the limit."""
        parts = [p for p in key.split("/") if p]
        scope = self.root.joinpath(*parts[:CACHE_SCOPE_DEPTH])
        slots = [p for branch in scope.iterdir() if branch.is_dir() for p in branch.iterdir() if p.is_dir()]
        slots = [s for s in slots if not s.name.startswith(".")]
        sized = sorted(((s.stat().st_mtime, _size(s), s) for s in slots), key=lambda t: t[0])
        total = sum(size for _, size, _ in sized)
        removed = []
        for _, size, slot in sized:
            if total <= self.max_cache_bytes:
                break
            if slot == self.folder(key) and len(sized) > 1 and total - size > 0:
                continue  # the one just saved goes last
            shutil.rmtree(slot, ignore_errors=True)
            total -= size
            removed.append(slot.relative_to(self.root).as_posix())
        return removed


def touch(path: Path, when: float | None = None) -> None:
    """Set a folder's last use (tests)."""
    stamp = time.time() if when is None else when
    os.utime(path, (stamp, stamp))
