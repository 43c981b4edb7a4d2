"""The watcher's report threads: a run's changes in order on one thread, all posted by close."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from service.watcher import Reporters


def test_each_runs_changes_keep_their_order_and_close_posts_what_is_queued():
    posted: list[tuple[int, list[int], str]] = []
    lock = threading.Lock()

    def slow_report(ctx: Any, run_id: int, job_ids: list[int] | None = None) -> None:
        time.sleep(0.01 if run_id % 2 else 0.002)  # runs on different threads overtake each other
        with lock:
            posted.append((run_id, job_ids or [], threading.current_thread().name))

    reporters = Reporters(ctx=None, count=3, report=slow_report)  # type: ignore[arg-type]
    for step in range(5):
        for run_id in (1, 2, 3, 4):
            reporters.submit(run_id, [run_id * 10 + step])
    reporters.close()
    assert len(posted) == 20  # nothing queued was dropped by close()
    for run_id in (1, 2, 3, 4):
        mine = [entry for entry in posted if entry[0] == run_id]
        assert [jobs for _, jobs, _ in mine] == [[run_id * 10 + step] for step in range(5)]
        assert len({thread for _, _, thread in mine}) == 1  # one thread per run
    assert not any(thread.is_alive() for thread in reporters.threads)


def test_a_failing_report_does_not_stop_the_thread(caplog: pytest.LogCaptureFixture):
    posted: list[int] = []

    def report(ctx: Any, run_id: int, job_ids: list[int] | None = None) -> None:
        if run_id == 1:
            raise RuntimeError("the database went away")
        posted.append(run_id)

    reporters = Reporters(ctx=None, count=1, report=report)  # type: ignore[arg-type]
    reporters.submit(1, [1])
    reporters.submit(2, [2])
    reporters.close()
    assert posted == [2]
    assert "reporting run 1 failed" in caplog.text
