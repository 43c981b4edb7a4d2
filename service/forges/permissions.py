"""Write-access answers from a forge, kept briefly: one request per user and minute."""

from __future__ import annotations

import threading
import time

from service.events import Repository
from service.forges.base import Forge

PERMISSION_TTL_SECONDS = 60.0


class PermissionCache:
    """Write-access answers from the forge, kept briefly (one request per user and minute)."""

    def __init__(self, ttl: float = PERMISSION_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._answers: dict[tuple[str, str, str], tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def has_write_access(self, forge: Forge, repo: Repository, user: str) -> bool:
        key = (forge.name, repo.full_name.lower(), user.lower())
        moment = time.monotonic()
        with self._lock:
            cached = self._answers.get(key)
            if cached is not None and moment - cached[0] < self.ttl:
                return cached[1]
        answer = forge.has_write_access(repo, user)
        with self._lock:
            if len(self._answers) > 10_000:
                self._answers.clear()
            self._answers[key] = (moment, answer)
        return answer
