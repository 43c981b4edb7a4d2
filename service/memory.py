"""The web and watcher processes give back the memory a burst took.

A web worker runs many threads; glibc's allocator gives each thread an arena of its own (up to
eight per core), and memory freed in an arena mostly stays with the process. After a burst of
large or hostile deliveries a worker kept a third more memory than before, for good. So the
web process uses two arenas (:func:`limit_arenas`, what ``MALLOC_ARENA_MAX=2`` does) and each
worker hands free memory back to the system every few seconds (:func:`trim_now_and_then`,
``malloc_trim``: a few milliseconds, off the request threads). The watcher, whose threads
(watch, report threads) are as many, uses two arenas too and trims once it has applied a full
list of Workflows (:func:`trim`: the list's objects are gone by then). All do nothing where the
C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2
TRIM_EVERY = 10.0  # seconds


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def limit_arenas(arenas: int = ARENAS) -> None:
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, arenas)


def trim_now_and_then(every: float = TRIM_EVERY) -> None:
    """Start a thread that returns free memory to the system every ``every`` seconds."""
    libc = _libc()
    if libc is None:
        return

    def trim() -> None:
        while not threading.Event().wait(every):
            libc.malloc_trim(0)

    threading.Thread(target=trim, name="forgeflow-malloc-trim", daemon=True).start()


def trim() -> None:
    """Return free memory to the system now."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
