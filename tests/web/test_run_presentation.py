"""What the run page makes of a run: steps and their times from the log, ANSI colours, hidden
markers, the first error line, the graph of needs, links to the forge, messages in words."""

from __future__ import annotations

from datetime import datetime

import pytest

from service.events import EventKind
from service.web.graph import boxes_of, job_edges, render_graph
from service.web.logview import ansi_to_html, parse_log
from service.web.present import event_links, human_duration, job_message, job_seconds, run_message
from tests.support.runs import MANIFEST_NEEDS, event

LOG = """2026-01-01T12:00:00.000000Z ==> install
2026-01-01T12:00:00.100000Z collecting
2026-01-01T12:00:01.350000Z ==> no trailing whitespace
2026-01-01T12:00:01.400000Z checking 3 files
2026-01-01T12:00:01.500000Z src/a.py:3: trailing whitespace
2026-01-01T12:00:01.600000Z error: 1 file has trailing whitespace
2026-01-01T12:00:01.750000Z ::forgeflow-failed::step 'no trailing whitespace' failed with exit code 1
"""


def test_steps_have_their_times_exit_codes_and_the_first_error_line():
    view = parse_log(LOG, job_final=True, job_passed=False)
    assert [s.name for s in view.steps] == ["install", "no trailing whitespace"]
    install, check = view.steps
    assert (install.exit_code, check.exit_code) == (0, 1)
    assert install.seconds == pytest.approx(1.35) and check.seconds == pytest.approx(0.4)
    assert view.failed_step is check
    assert view.first_error is not None and view.first_error.number == 6  # "error: 1 file ..."
    assert view.first_error.error
    shown = [str(line.html) for step in view.steps for line in step.lines]
    assert not any("forgeflow-failed" in text or text.startswith("==>") for text in shown)
    assert check.lines[0].at == datetime(2026, 1, 1, 12, 0, 1, 400000)


def test_a_passed_jobs_last_step_exited_zero_and_a_running_ones_still_runs():
    text = "2026-01-01T12:00:00Z ==> build\n2026-01-01T12:00:02Z compiling\n"
    passed = parse_log(text, job_final=True, job_passed=True)
    assert passed.steps[0].exit_code == 0 and passed.failed_step is None
    running = parse_log(text, job_final=False, job_passed=False)
    assert running.steps[0].running and running.steps[0].exit_code is None
    assert job_message("build", "running", "running", running) == "job `build` is running step 'build'"


def test_retries_and_output_without_steps():
    text = (
        "==> flaky\nboom\n::forgeflow-failed::step 'flaky' failed with exit code 3\n"
        "----- forgeflow: retry 1 (wf.flaky(1)) -----\n==> flaky\nfine\n"
    )
    view = parse_log(text, job_final=True, job_passed=True)
    assert [(s.name, s.attempt, s.exit_code) for s in view.steps] == [("flaky", 0, 3), ("flaky", 1, 0)]
    assert view.attempts == 2
    plain = parse_log("just output\n", job_final=True, job_passed=False)  # an argo: job
    assert [s.name for s in plain.steps] == ["log"] and plain.failed_step is plain.steps[0]


def test_ansi_colours_become_classes_and_nothing_else_gets_through():
    html = str(ansi_to_html("\x1b[1;31mFAIL\x1b[0m <script>alert(1)</script> \x1b[38;5;196mred\x1b[39m"))
    assert '<span class="a-b a-fg1">FAIL</span>' in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert 'style="color:#ff0000"' in html
    assert str(ansi_to_html("\x1b[2K\x1b]0;title\x07progress 10%\rprogress 100%")) == "progress 100%"
    assert str(ansi_to_html("\x1b[38;2;300;0;0mx\x1b[0m")) == '<span style="color:#ff0000">x</span>'
    assert str(ansi_to_html('a"b\x00c')) == "a&#34;bc"


def test_graph_draws_needs_and_groups_matrix_cells():
    rows = [
        ("build", "build", "forgeflow/build", "success", "2.0s"),
        ("test", "test.py3-11", "forgeflow/test (python=3.11)", "running", "1.0s"),
        ("test", "test.py3-12", "forgeflow/test (python=3.12)", "failure", "3.0s"),
        ("style", "style", "forgeflow/style", "failure", "0.4s"),
    ]
    boxes = boxes_of(rows)
    assert [b.job for b in boxes] == ["build", "test", "style"]
    assert boxes[1].matrix and boxes[1].state == "failure"
    edges = job_edges(boxes, MANIFEST_NEEDS)
    assert edges == [("build", "test")]
    svg = str(render_graph(boxes, edges))
    assert svg.startswith("<svg") and 'data-from="build" data-to="test"' in svg
    assert 'data-task="test.py3-12"' in svg and "python=3.12" in svg
    assert svg.count("<path") == 1


def test_links_to_the_forge_and_only_to_web_addresses():
    links = event_links(event(pr=7, sender="ann"))
    assert links.commit == "https://github.com/octo/hello/commit/" + "a" * 40
    assert links.pull_request == "https://github.com/octo/hello/pull/7"
    assert links.sender == "https://github.com/ann"
    push = event_links(event())
    assert push.branch == "https://github.com/octo/hello/tree/main"
    hostile = event_links(event(web="javascript:alert(1)//"))
    assert hostile.commit == "" and hostile.sender == ""


def test_messages_in_words_not_argos():
    view = parse_log(LOG, job_final=True, job_passed=False)
    message = job_message("style", "failure", "failed: exit code 1", view)
    assert message == "job `style` failed at step 'no trailing whitespace' (exit 1)"
    summary = run_message(
        "failed",
        "child 'forgeflow-1-d91859e-1409222639' failed",
        [("build", "success", "job `build` passed"), ("style", "failure", message)],
    )
    assert summary == "1 of 2 jobs passed; " + message
    assert "child '" not in run_message("running", "child 'x' failed", [("a", "running", "")])


def test_durations_are_not_zero_for_quick_jobs():
    assert (
        human_duration(0.4) == "0.4s" and human_duration(75) == "1m 15s" and human_duration(3700) == "1h 1m"
    )
    view = parse_log(LOG, job_final=True, job_passed=False)
    same_second = datetime(2026, 1, 1, 12, 0, 1)
    assert job_seconds(same_second, same_second, view, same_second) == pytest.approx(1.75)


def test_an_action_event_describes_itself():
    from dataclasses import replace

    action = replace(event(), kind=EventKind.ACTION, action="rerun", extra={"run": "5"}, sender="maria")
    assert action.describe() == "octo/hello: rerun of run 5 by maria"
