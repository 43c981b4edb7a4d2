"""Regression: values YAML reads as numbers or booleans where text was meant.

``python: [3.10]`` used to become the image ``python:3.1`` without a word; ``debug: [yes]`` the
text "true". Now each is an error that says how to write it.
"""

from __future__ import annotations

import pytest

from service.jobs.loader import JobFileError, load_job_file
from service.jobs.matcher import match_jobs
from service.jobs.plan import plan_workflow
from tests.test_compiler import EVENTS, OPTIONS

PUSH = EVENTS["push"]
JOB = """\
version: 1
jobs:
  tests:
    matrix: {{python: [{value}]}}
    image: "python:${{{{ matrix.python }}}}"
    steps: [pytest]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(JobFileError) as caught:
        load_job_file(text)
    return [str(p) for p in caught.value.problems]


def test_a_version_that_yaml_shortens_is_refused_with_the_fix():
    assert problems(JOB.format(value="3.10")) == [
        ".forgeflow.yaml:4:23: jobs.tests.matrix.python[0]: "
        "YAML reads 3.10 as the number 3.1; quote it: '3.10'"
    ]


def test_quoted_it_reaches_the_image_as_written():
    job_file = load_job_file(JOB.format(value="'3.10'"))
    plan = plan_workflow(PUSH, job_file, match_jobs(PUSH, job_file), OPTIONS)
    assert [t.image for t in plan.tasks] == ["python:3.10"]


def test_numbers_that_read_back_as_written_stay_allowed():
    job_file = load_job_file(JOB.format(value="3.12, 3"))
    plan = plan_workflow(PUSH, job_file, match_jobs(PUSH, job_file), OPTIONS)
    assert [t.image for t in plan.tasks] == ["python:3.12", "python:3"]


@pytest.mark.parametrize(
    ("place", "written", "read"),
    [
        ("matrix: {debug: [yes]}\n    steps: [x]", "yes", "the boolean true"),
        ("matrix: {debug: [off]}\n    steps: [x]", "off", "the boolean false"),
        ("env: {UMASK: 022}\n    steps: [x]", "022", "the number 18"),
        ("env: {SINCE: 2024-01-01}\n    steps: [x]", "2024-01-01", "the date 2024-01-01"),
        ("matrix: {include: [{python: 3.10}]}\n    steps: [x]", "3.10", "the number 3.1"),
        ("services: {db: {image: pg, env: {FSYNC: no}}}\n    steps: [x]", "no", "the boolean false"),
    ],
)
def test_every_text_place_says_quote_it(place: str, written: str, read: str):
    found = problems(f"version: 1\njobs:\n  a:\n    {place}\n")
    assert any(f"YAML reads {written} as {read}; quote it: '{written}'" in p for p in found), found


def test_a_template_input_given_as_a_number_is_refused():
    from service.jobs.templates import TemplateDocument

    def source(name: str) -> TemplateDocument:
        return TemplateDocument(
            f"{name}.yaml", text="inputs: {version: {}}\nsteps: ['make ${{ inputs.version }}']\n"
        )

    with pytest.raises(JobFileError) as caught:
        load_job_file("version: 1\njobs:\n  a: {uses: py, with: {version: 3.10}}\n", templates=source)
    assert "jobs.a.with.version: YAML reads 3.10 as the number 3.1; quote it: '3.10'" in str(caught.value)
