"""``forgeflow validate``, ``forgeflow schema`` and ``forgeflow render`` on a checkout."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from service import cli
from service.cli.schema import SCHEMA_FILE, job_file_schema, schema_text
from service.jobs.yaml_source import load_located
from tests.support import payloads
from tests.support.gitrepo import GitRepo
from tests.test_compiler import CASES, REPOSITORY_TEMPLATES

JOB_FILE = """\
version: 1
jobs:
  docs:
    paths: ["docs/**"]
    steps: [make docs]
  code:
    paths-ignore: ["docs/**"]
    uses: python
  pr-only:
    on: [pull_request]
    paths: ["src/**"]
    steps: [make check]
"""


@pytest.fixture(autouse=True)
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("FORGEFLOW_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FORGEFLOW_DATA_DIR", str(tmp_path / "data"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_committed_schema_is_the_generated_one():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), "stale schema: run `make schema`"


def test_the_schema_accepts_every_golden_job_file_and_rejects_mistakes():
    validator = jsonschema.Draft7Validator(job_file_schema())  # what yaml-language-server reads
    for _, text in CASES.values():
        errors = list(validator.iter_errors(load_located(text).data))
        assert errors == [], errors
    assert list(validator.iter_errors({"version": 1, "jobs": {"a": {"steps": ["x"], "colour": "red"}}}))
    assert list(validator.iter_errors({"version": 1, "jobs": {"a": {"steps": ["x"], "on": ["pushh"]}}}))
    assert list(validator.iter_errors({"version": 2, "jobs": {}}))


def test_schema_command(capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(capsys, "schema")
    assert code == 0 and json.loads(out)["$id"].endswith("forgeflow.schema.json")


def test_validate_reports_every_problem_with_file_line_and_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
):
    path = tmp_path / ".forgeflow.yaml"
    path.write_text(
        "version: 1\njobs:\n  a:\n    if: event.branch ==\n    steps: [x]\n  b:\n    uses: nope\n"
    )
    code, _, err = run(capsys, "validate", str(tmp_path))
    assert code == 1
    assert err.splitlines()[:2] == [  # in file order
        f"{path}:4:22: jobs.a.if: not a valid CEL expression (syntax error at character 14): "
        "'event.branch =='; the expression ends after '==': something is missing there",
        f"{path}:7:5: jobs.b.uses: no template named 'nope' (looked for .forgeflow/templates/nope.yaml "
        "and in the service config)",
    ]


def test_validate_finds_templates_in_the_checkout(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    (tmp_path / ".forgeflow" / "templates").mkdir(parents=True)
    (tmp_path / ".forgeflow" / "templates" / "python.yaml").write_text(REPOSITORY_TEMPLATES["python"])
    (tmp_path / ".forgeflow.yaml").write_text(JOB_FILE)
    code, out, _ = run(capsys, "validate", str(tmp_path))
    assert code == 0 and "ok (3 jobs: docs, code, pr-only)" in out


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[GitRepo, str, str, str]:
    repo = GitRepo(tmp_path, "project")
    first = repo.commit(
        {
            ".forgeflow.yaml": JOB_FILE,
            ".forgeflow/templates/python.yaml": REPOSITORY_TEMPLATES["python"],
            "docs/index.md": "1",
            "src/a.py": "1",
        }
    )
    docs_only = repo.commit({"docs/index.md": "2"})
    feature = repo.commit({"src/a.py": "2"}, branch="feature")
    return repo, first, docs_only, feature


def event_file(tmp_path: Path, payload: dict) -> str:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return str(path)


def test_render_resolves_path_filters_from_the_push_history(
    capsys: pytest.CaptureFixture[str], tmp_path, checkout
):
    repo, first, docs_only, _ = checkout
    payload = payloads.push("octo/project", repo.url, docs_only, before=first)
    payload["commits"] = []  # the payload does not list the files: the checkout's history does
    code, out, err = run(capsys, "render", "--event", event_file(tmp_path, payload), "--repo", str(repo.work))
    assert code == 0, err
    manifest = yaml.safe_load(out)
    assert [t["name"] for t in manifest["spec"]["templates"][0]["dag"]["tasks"]] == ["docs"]
    assert "docs: runs: push to main; 1 changed file match the paths filters" in err
    assert "code: skipped: every changed file matches paths-ignore ['docs/**'] (1 changed file)" in err


def test_render_compares_a_pull_request_with_its_base(capsys: pytest.CaptureFixture[str], tmp_path, checkout):
    repo, _, docs_only, feature = checkout
    payload = payloads.pull_request("octo/project", repo.url, feature)
    payload["pull_request"]["base"]["sha"] = docs_only
    code, out, err = run(capsys, "render", "--event", event_file(tmp_path, payload), "--repo", str(repo.work))
    assert code == 0, err
    tasks = [t["name"] for t in yaml.safe_load(out)["spec"]["templates"][0]["dag"]["tasks"]]
    assert tasks == ["code", "pr-only"]
    image = yaml.safe_load(out)["spec"]["templates"][1]["container"]["image"]
    assert image == "quay.io/example/python:3.11"  # `uses` from the checkout's templates


def test_render_explains_when_nothing_matches(capsys: pytest.CaptureFixture[str], tmp_path, checkout):
    repo, first, _, _ = checkout
    payload = payloads.push("octo/project", repo.url, first, ref="refs/tags/v1", before=first)
    code, out, _ = run(
        capsys, "render", "--explain", "--event", event_file(tmp_path, payload), "--repo", str(repo.work)
    )
    assert code == 1
    assert "no job matched: nothing would be submitted" in out


def test_render_compares_a_new_branch_with_the_default_branch(
    capsys: pytest.CaptureFixture[str], tmp_path, checkout
):
    repo, _, _, feature = checkout
    payload = payloads.push("octo/project", repo.url, feature, ref="refs/heads/feature", before="0" * 40)
    payload["created"], payload["commits"] = True, []
    code, out, err = run(capsys, "render", "--event", event_file(tmp_path, payload), "--repo", str(repo.work))
    assert code == 0, err
    assert [t["name"] for t in yaml.safe_load(out)["spec"]["templates"][0]["dag"]["tasks"]] == ["code"]
    assert "docs: skipped: no changed file matches paths ['docs/**'] (1 changed file)" in err
