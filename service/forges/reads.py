"""What a forge said about a commit, kept a while: a file at a commit never changes.

The events and commands of one commit (a push and its pull request, a monorepo push that
triggers several deliveries, ``/forgeflow retest``) read the same job file at the same SHA; each
forge keeps what it read in a small cache, bounded in entries and in age (:class:`ReadCache`),
keyed by repository, path and commit. The files a pull request or push changed are kept the same
way, keyed by its head commit (:func:`service.runs.sources.forge_changed_files`). Only answers at
a full commit SHA are kept (a branch moves), and only those that say something (a missing file
may appear once the token is given access; an unknown list of changed files may become known).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

COMMIT_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
MAX_ENTRIES = 512
MAX_AGE_SECONDS = 600.0


def is_commit(ref: str) -> bool:
    """Whether ``ref`` names one commit for good (a full SHA-1 or SHA-256), not a branch or tag."""
    return bool(COMMIT_SHA.match(ref))


class ReadCache:
    """A thread-safe LRU of at most ``max_entries`` answers, each kept ``max_age`` seconds."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_age: float = MAX_AGE_SECONDS) -> None:
        self.max_entries, self.max_age = max_entries, max_age
        self._items: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        """The answer kept for ``key``, or None."""
        moment = time.monotonic()
        with self._lock:
            found = self._items.get(key)
            if found is None or moment - found[0] > self.max_age:
                if found is not None:
                    del self._items[key]
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found[1]

    def remember(self, key: Hashable, fetch: Callable[[], T | None]) -> T | None:
        """The answer kept for ``key``, else ``fetch()``'s (kept unless None: "cannot say")."""
        found: T | None = self.get(key)
        if found is None:
            found = fetch()
            if found is not None:
                self.put(key, found)
        return found

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
