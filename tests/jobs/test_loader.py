from __future__ import annotations

import pytest

from service.jobs.loader import JobFileError, load_job_file
from service.jobs.yaml_source import Limits

GOOD = """\
version: 1
defaults: {image: "registry.fedoraproject.org/fedora:41", timeout: 30m, env: {LANG: C.UTF-8}}
jobs:
  lint:
    on: [pull_request, push]
    branches: [main, "release/*"]
    steps: [{run: make lint}]
  tests:
    on:
      pull_request: {types: [opened, synchronize]}
      tag: ["v*"]
    needs: lint
    env: {RETRIES: 3, VERBOSE: true}
    timeout: 1h30m
    steps:
      - pytest -q
      - {name: coverage, run: coverage report}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(JobFileError) as caught:
        load_job_file(text)
    return [str(p) for p in caught.value.problems]


def test_a_good_file_loads_with_its_shorthands():
    job_file = load_job_file(GOOD)
    tests = job_file.jobs["tests"]
    assert tests.need_names == ("lint",)
    assert tests.timeout == 5400
    assert tests.env == {"RETRIES": "3", "VERBOSE": "true"}
    assert [s.run for s in tests.steps] == ["pytest -q", "coverage report"]
    assert tests.on.pull_request is not None and tests.on.pull_request.types == ("opened", "synchronize")
    assert tests.on.tag is not None and tests.on.tag.tags == ("v*",)
    assert tests.on.push is None
    assert job_file.defaults.timeout == 1800


def test_on_is_not_read_as_a_boolean():
    job_file = load_job_file("version: 1\njobs:\n  a:\n    on: push\n    steps: [x]\n")
    assert job_file.jobs["a"].on.push is not None and job_file.jobs["a"].on.pull_request is None


def test_errors_name_file_line_column_and_key():
    found = problems("version: 1\njobs:\n  lint:\n    on: [pull_request, pushh]\n    steps: [{rnu: make}]\n")
    assert ".forgeflow.yaml:4:24: jobs.lint.on[1]: unknown event 'pushh'; did you mean 'push'?" in found[0]
    assert any(p.startswith(".forgeflow.yaml:5:14: jobs.lint.steps[0].rnu: unknown key") for p in found)


def test_every_problem_is_reported_not_only_the_first():
    found = problems(
        "version: 1\njobs:\n  a:\n    timeout: soon\n    steps: []\n  b:\n    colour: red\n    steps: [x]\n"
    )
    assert len(found) == 3
    assert any("jobs.a.timeout" in p and "not a duration" in p for p in found)
    assert any("jobs.a.steps" in p and "at least one step" in p for p in found)
    assert any("jobs.b.colour: unknown key" in p for p in found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("- a\n- b\n", "expected a mapping"),
        ("version: 2\njobs: {}\n", "unsupported version 2"),
        ("version: 1\njobs: {}\n", "define at least one job"),
        ("version: 1\njobs:\n  'bad name!': {steps: [x]}\n", "job name 'bad name!'"),
        ("version: 1\njobs:\n  a: {steps: [x], needs: [nope]}\n", "jobs.a.needs[0]: no job named 'nope'"),
        ("version: 1\njobs:\n  a: {steps: [x], needs: [a]}\n", "a job cannot need itself"),
        ("version: 1\njobs:\n  a: {steps: [x], env: {FORGEFLOW_SHA: x}}\n", "reserved"),
        ("version: 1\njobs:\n  a: {steps: [x]}\n  a: {steps: [y]}\n", "duplicate key 'a'"),
        ("version: 1\njobs: [1\n", "not valid YAML"),
    ],
)
def test_bad_files(text: str, expected: str):
    assert any(expected in p for p in problems(text)), problems(text)


def test_needs_cycles_are_reported_with_the_path():
    found = problems(
        "version: 1\njobs:\n"
        "  a: {steps: [x], needs: [b]}\n  b: {steps: [x], needs: [c]}\n  c: {steps: [x], needs: [a]}\n"
    )
    assert any("needs form a cycle: a -> b -> c -> a" in p for p in found)


def test_anchors_and_merge_keys_work():
    text = """\
version: 1
.base: &base
  on: [push]
  steps: [make]
jobs:
  a: {<<: *base}
  b:
    <<: *base
    steps: [make check]
"""
    # ".base" is not a known top-level key: the anchor must live somewhere valid
    assert any("unknown key" in p for p in problems(text))
    valid = text.replace(".base: &base\n  on: [push]\n  steps: [make]\n", "").replace(
        "jobs:\n  a: {<<: *base}", "jobs:\n  a: &base\n    on: [push]\n    steps: [make]"
    )
    job_file = load_job_file(valid)
    assert job_file.jobs["b"].on.push is not None
    assert [s.run for s in job_file.jobs["b"].steps] == ["make check"]


def test_alias_bomb_is_rejected_before_it_expands():
    # 9**20 values if expanded: a loader that expanded aliases would never finish (the test
    # would hit its timeout); one that counts as it goes stops at its limit
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for level in range(1, 20):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    found = problems("\n".join(lines))
    assert "too many values" in found[0]


def test_deep_nesting_and_size_are_limited():
    assert "nested" in problems("a: " + "[" * 200 + "]" * 200)[0]
    big = "version: 1\n# " + "x" * 1000 + "\n"
    with pytest.raises(JobFileError) as caught:
        load_job_file(big, limits=Limits(max_bytes=100))
    assert "limit is 100" in str(caught.value)
