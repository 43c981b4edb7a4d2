"""Image names and numeric knobs a job file could get absurdly wrong: refused at their line
with a message that says what is wrong, by ``forgeflow validate`` and by the worker (whose
refusal is the failing ``forgeflow/config`` status), never passed on to Argo."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.cli.main import main
from service.jobs.images import image_problem
from service.jobs.loader import JobFileError, load_job_file
from tests.jobs.test_tenancy import plan, refusals

JOB = "version: 1\njobs:\n  a:\n    %s\n    steps: [make]\n"


def refused(line: str) -> list[str]:
    with pytest.raises(JobFileError) as caught:
        load_job_file(JOB % line)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("image", "says"),
    [
        ("fedora 41", "spaces or control characters"),
        ("fedora:41\\nRUN evil", "spaces or control characters"),
        ("fedora\\t41", "spaces or control characters"),
        ("fedora\\u200b:41", "spaces or control characters"),
        ("-fedora", "starts with '-'"),
        ("--privileged", "starts with '-'"),
        ("Fedora:41", "repository names are lower case"),
        ("quay.io/Team/tools:1", "repository names are lower case"),
        ("fedora:" + "t" * 200, "not an image reference"),
        ("registry.example.com/" + "a" * 300, "longer than 255"),
        ("a" * 2000, "at most 1024"),
        ("fedora@sha256:abc", "not an image reference"),
        ("", "empty"),
    ],
)
def test_an_image_outside_the_reference_grammar_is_refused_at_its_line(image: str, says: str):
    for line in (f'image: "{image}"', f'services: {{db: {{image: "{image}"}}}}'):
        (problem,) = refused(line)
        assert problem.startswith(".forgeflow.yaml:4:") and "jobs.a." in problem and says in problem, problem
    with pytest.raises(JobFileError) as caught:
        load_job_file(f'version: 1\ndefaults: {{image: "{image}"}}\njobs: {{a: {{steps: [make]}}}}\n')
    assert says in str(caught.value.problems[0])


@pytest.mark.parametrize(
    "image",
    [
        "fedora",
        "registry.fedoraproject.org/fedora:41",
        "localhost:5000/team/tool_x__y.z-w:v1.2-rc_3",
        "[::1]:5000/a/b",
        "Quay.IO/org/img:Latest",
        "docker.io/library/python@sha256:" + "0a" * 32,
        "quay.io/example/python:${{ matrix.python }}",
    ],
)
def test_image_references_people_write_pass(image: str):
    assert image_problem(image, template=True) == ""


def test_an_image_that_a_matrix_value_breaks_is_refused_when_planned():
    text = (
        "version: 1\njobs:\n  a:\n    matrix: {v: ['3.12', '3.12 --privileged']}\n"
        '    image: "python:${{ matrix.v }}"\n    steps: [make]\n'
    )
    found = refusals(text)
    assert any(p.startswith(".forgeflow.yaml:5:5: jobs.a.image:") and "spaces" in p for p in found), found


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("max-parallel: 1001", "jobs.a.max-parallel: must be at most 1000, not 1001"),
        ("max-parallel: 100000000000000000000000", "must be at most 1000"),
        ("timeout: 99999999999999d", "jobs.a.timeout: '99999999999999d' is longer than the limit, 30 days"),
        ("timeout: 99999999999999999999", "is longer than the limit, 30 days (30d)"),
        ("retries: {limit: 2, max-backoff: 31d}", "jobs.a.retries.max-backoff:"),
        ("retries: 11", "jobs.a.retries"),
    ],
)
def test_numeric_knobs_are_bounded(line: str, says: str):
    found = refused(line)
    assert any(says in p for p in found), found


def test_bounds_still_allow_what_people_use():
    assert plan(JOB % "timeout: 30d").plan is not None
    load_job_file(
        "version: 1\njobs:\n  a:\n    matrix: {n: [1, 2]}\n    max-parallel: 1000\n"
        "    retries: {limit: 10, backoff: 1h, max-backoff: 1d}\n    steps: [make]\n"
    )


def test_validate_says_what_is_wrong_with_an_image(tmp_path: Path, capsys):
    bad = tmp_path / ".forgeflow.yaml"
    bad.write_text(JOB % 'image: "Fedora:41 "')
    assert main(["validate", str(bad)]) == 1
    assert f"{bad}:4:5: jobs.a.image: the image 'Fedora:41 ' contains spaces" in capsys.readouterr().err


def test_a_schedules_branch_with_control_characters_is_refused():
    """It would be stored with the schedule (PostgreSQL refuses NUL) and shown on pages."""
    for branch in ("ma\\0in", "main\\x1b[2J", "main\\x7f"):
        found = refused(f'on: {{schedule: [{{cron: "0 3 * * *", branch: "{branch}"}}]}}')
        assert any("jobs.a.on.schedule[0].branch" in p and "name one branch" in p for p in found), found


def test_matrix_values_with_control_characters_are_refused():
    """They name the cells' statuses (the forge shows them, PostgreSQL refuses NUL)."""
    for matrix in ('{v: ["a\\0b"]}', '{v: [ok], include: [{v: "x\\x1b[2J"}]}', '{v: ["tab\\there"]}'):
        found = refused(f"matrix: {matrix}")
        assert any("jobs.a.matrix" in p and "no control characters" in p for p in found), found
    load_job_file(JOB % 'matrix: {v: ["3.12", "with space", "ünï"]}')


def test_a_concurrency_group_is_stored_without_control_characters():
    """From the file or from event data, it is kept on the run (PostgreSQL refuses NUL)."""
    groups = set()
    for written in ("a\\0b", "a\\x1bb", "a?b"):
        planned = plan(f'version: 1\nconcurrency: {{group: "{written}"}}\njobs:\n  a: {{steps: [make]}}\n')
        assert planned.plan is not None and planned.plan.concurrency_group.isprintable()
        groups.add(planned.plan.concurrency_group)
    assert len(groups) == 3  # still one group per name
