"""Notes posted once per pull request, however many reporters race to post them."""

from __future__ import annotations

import threading

import pytest

from service.forges.notes import NoteLedger

KEY = ("gitlab", "gitlab.com", "group/proj", 8, "fork-statuses")


def test_a_note_is_claimed_once(notes: NoteLedger):
    assert notes.claim(*KEY)
    assert not notes.claim(*KEY)
    assert notes.claim("gitlab", "gitlab.com", "group/proj", 9, "fork-statuses")  # another MR


def test_racing_reporters_post_it_once(notes: NoteLedger):
    posted: list[int] = []
    start = threading.Barrier(8)

    def report(i: int) -> None:
        start.wait()
        notes.post_once(*KEY, lambda: posted.append(i))

    threads = [threading.Thread(target=report, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(posted) == 1


def test_a_failed_post_is_tried_again_later(notes: NoteLedger):
    def fails() -> None:
        raise RuntimeError("forge down")

    with pytest.raises(RuntimeError):
        notes.post_once(*KEY, fails)
    posted: list[str] = []
    assert notes.post_once(*KEY, lambda: posted.append("now"))
    assert not notes.post_once(*KEY, lambda: posted.append("again"))
    assert posted == ["now"]
