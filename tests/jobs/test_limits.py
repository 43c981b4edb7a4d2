"""Hostile job files are refused before they expand, each with a clear message.

No clock here: each hostile file is built so that expanding it would never finish (9**20
values, a 10**12-cell matrix); a loader that expanded first would hit the test timeout.
"""

from __future__ import annotations

import pytest

from service.jobs.loader import JobFileError, load_job_file
from service.jobs.templates import TemplateDocument, TemplateSource
from service.jobs.yaml_source import Limits

LIMITS = Limits(max_bytes=256 * 1024, max_jobs=200, max_matrix_cells=256)


def refused(text: str, templates: TemplateSource | None = None, limits: Limits = LIMITS) -> list[str]:
    with pytest.raises(JobFileError) as caught:
        load_job_file(text, limits=limits, templates=templates)
    return [str(p) for p in caught.value.problems]


def bomb(levels: int = 20) -> str:
    """YAML whose aliases stand for 9**levels values."""
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_a_file_over_the_size_limit():
    found = refused("version: 1\n# " + "x" * 300_000 + "\n")
    assert found == [".forgeflow.yaml: file is 300014 bytes; the limit is 262144"]


def test_an_alias_bomb():
    assert "too many values" in refused(bomb())[0]


def test_deep_nesting():
    assert "nested deeper than 32 levels" in refused("version: 1\njobs: " + "[" * 500 + "]" * 500 + "\n")[0]


def test_too_many_jobs():
    jobs = "".join(f"  j{i}: {{steps: [x]}}\n" for i in range(201))
    assert refused("version: 1\njobs:\n" + jobs) == [".forgeflow.yaml:2:1: jobs: 201 jobs; the limit is 200"]


def test_a_matrix_with_too_many_cells_is_refused_without_expanding_it():
    axes = ", ".join(f"a{i}: [{', '.join(str(v) for v in range(10))}]" for i in range(12))
    found = refused(f"version: 1\njobs:\n  m:\n    matrix: {{{axes}}}\n    steps: [x]\n")
    assert found == [
        ".forgeflow.yaml:4:5: jobs.m.matrix: the matrix has up to 1000000000000 cells; the limit is 256"
    ]


def test_matrix_cells_count_towards_the_job_limit():
    jobs = "".join(f"  j{i}: {{matrix: {{n: [1, 2, 3, 4, 5]}}, steps: [x]}}\n" for i in range(41))
    assert refused("version: 1\njobs:\n" + jobs) == [
        ".forgeflow.yaml:2:1: jobs: 205 jobs and matrix cells; the limit is 200"
    ]


def test_a_huge_condition():
    condition = " || ".join(["event.branch == 'x'"] * 100)
    found = refused(f'version: 1\njobs:\n  a:\n    if: "{condition}"\n    steps: [x]\n')
    assert "at most 1000 characters" in found[0]


def test_too_many_different_templates_stop_before_asking_for_more():
    asked: list[str] = []

    def source(name: str) -> TemplateDocument:
        asked.append(name)
        return TemplateDocument(f"{name}.yaml", text="steps: [x]\n")

    jobs = "".join(f"  j{i}: {{uses: t{i}}}\n" for i in range(30))
    found = refused("version: 1\njobs:\n" + jobs, source)
    assert any("more than 20 different templates" in p for p in found)
    assert len(asked) == 20


def test_a_template_is_held_to_the_same_limits():
    def source(name: str) -> TemplateDocument:
        return TemplateDocument(".forgeflow/templates/boom.yaml", text=bomb())

    found = refused("version: 1\njobs:\n  a: {uses: boom}\n", source)
    assert found[0].startswith(".forgeflow/templates/boom.yaml:") and "too many values" in found[0]


def test_a_number_too_long_for_python_is_a_problem_at_its_line():
    found = refused("version: 1\njobs:\n  a:\n    steps: [make]\n    env: {A: " + "9" * 5000 + "}\n")
    assert found == [".forgeflow.yaml:5:14: a number too long to read (5000 characters); quote it"]
