"""Waiting on a fake server's condition until what a test expects has happened."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_on(changed: threading.Condition, predicate: Callable[[], bool], timeout: float) -> bool:
    """True once ``predicate()`` holds (checked whenever ``changed`` is notified, and at least
    every 0.2 s), False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with changed:
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            changed.wait(min(remaining, 0.2))
        return True
