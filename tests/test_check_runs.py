"""What a job's check run says: its status and conclusion, the failing step, the log tail and
the annotations read from ``file:line: message`` lines (GCC, pytest, ruff, flake8 styles)."""

from __future__ import annotations

from datetime import datetime

import pytest

from service.forges.checks import CheckRunReport, check_run_body
from service.reporting.check_output import failing_step, find_annotations, tail
from service.reporting.check_runs import JobView, build_check_run, check_status, needs_new_check_run

LOG = """\
==> install
pip install -e .
==> lint
src/app.py:3:8: F401 [*] `os` imported but unused
src/app.py:10:80: E501 line too long (99 > 79 characters)
./lib/x.c:12:5: warning: unused variable 'y' [-Wunused-variable]
/workspace/source/lib/x.c:14:1: error: expected ';' before '}' token
/usr/include/stdio.h:27:1: note: not the repository's
tests/test_app.py:41: AssertionError
tests/test_app.py:41: AssertionError
::forgeflow-failed::step 'lint' failed with exit code 1
"""


def test_the_failing_step_and_its_output_are_found() -> None:
    step = failing_step(LOG)
    assert step.step == "lint" and step.exit_code == "1"
    assert step.lines[0].startswith("src/app.py:3:8") and "pip install -e ." not in step.lines


def test_annotations_in_the_common_formats() -> None:
    found = {(a.path, a.line, a.column): a for a in find_annotations(failing_step(LOG).lines)}
    assert set(found) == {
        ("src/app.py", 3, 8),
        ("src/app.py", 10, 80),
        ("lib/x.c", 12, 5),
        ("lib/x.c", 14, 1),
        ("tests/test_app.py", 41, 0),
    }
    assert found[("lib/x.c", 12, 5)].level == "warning"
    assert found[("lib/x.c", 14, 1)].level == "failure"
    assert found[("src/app.py", 3, 8)].message.startswith("F401")


def test_annotations_are_bounded() -> None:
    lines = tuple(f"src/f{i}.py:{i + 1}: E1 bad" for i in range(500))
    assert len(find_annotations(lines)) == 50


def test_the_log_tail_is_bounded() -> None:
    lines = tuple(f"line {i}" for i in range(10_000))
    shown = tail(lines)
    assert shown.endswith("line 9999") and shown.count("\n") < 150
    assert len(tail(("x" * 100_000,))) == 20_000


@pytest.mark.parametrize(
    ("state", "description", "expected"),
    [
        ("pending", "queued", ("queued", "")),
        (
            "pending",
            "waiting for approval: a maintainer can comment /forgeflow ok-to-test",
            ("completed", "action_required"),
        ),
        ("running", "running", ("in_progress", "")),
        ("success", "passed in 3s", ("completed", "success")),
        ("success", "skipped: no changed file matches paths ['docs/**']", ("completed", "skipped")),
        ("failure", "failed: step 'x' failed with exit code 1", ("completed", "failure")),
        ("failure", "timed out after 2m", ("completed", "timed_out")),
        ("error", "superseded by abc1234", ("completed", "cancelled")),
        ("error", "cancelled by @maria", ("completed", "cancelled")),
        ("error", "skipped: lint failed", ("completed", "cancelled")),
        ("error", "not run: untrusted runs never get secrets", ("completed", "failure")),
    ],
)
def test_forgeflow_states_as_check_run_words(state: str, description: str, expected: tuple[str, str]) -> None:
    assert check_status(state, description) == expected


def test_a_failed_jobs_check_run_has_everything() -> None:
    start, end = datetime(2026, 1, 1, 10, 0, 0), datetime(2026, 1, 1, 10, 0, 42)
    job = JobView(
        "lint",
        "lint",
        "forgeflow/lint",
        "failure",
        "failed: step 'lint' failed with exit code 1 (42s)",
        start,
        end,
    )
    other = JobView("build", "build", "forgeflow/build", "success", "passed in 1m 2s", start, end)
    report = build_check_run(job, [other, job], "http://ci/runs/3#job-lint", 3, LOG, "99")
    assert (report.status, report.conclusion, report.check_run_id) == ("completed", "failure", "99")
    assert report.external_id == "3/lint" and report.started_at == start and report.completed_at == end
    assert (
        "`lint` (exit code 1)" in report.summary
        and "| `build` |" in report.summary
        and "42s" in report.summary
    )
    assert "tests/test_app.py:41: AssertionError" in report.text and "pip install" not in report.text
    assert report.actions[0].identifier == "rerun-failed" and len(report.annotations) == 5
    body = check_run_body(report, "a" * 40)
    assert "head_sha" not in body, "an update never sends head_sha"
    assert body["conclusion"] == "failure" and body["completed_at"] == "2026-01-01T10:00:42Z"
    assert len(body["output"]["annotations"]) == 5


def test_a_new_check_run_is_created_only_after_a_wait_for_approval() -> None:
    waiting = ("pending", "waiting for approval: comment /forgeflow ok-to-test")
    assert needs_new_check_run(*waiting, "running", "running")
    assert not needs_new_check_run("pending", "queued", "running", "running")
    assert not needs_new_check_run("running", "running", "success", "passed")


def test_a_create_carries_the_commit_and_no_completion() -> None:
    body = check_run_body(
        CheckRunReport("forgeflow/x", "1/x", "http://ci/runs/1", "queued", title="queued"), "b" * 40
    )
    assert body["head_sha"] == "b" * 40 and body["status"] == "queued"
    assert "conclusion" not in body and "completed_at" not in body
