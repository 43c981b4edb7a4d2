"""``forgeflow init`` and the schema it writes for editors."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from service import cli
from service.cli.init import KINDS, detect
from service.cli.schema import schema_text
from service.jobs.yaml_source import load_located

pytestmark = pytest.mark.usefixtures("forgeflow_env")


@pytest.mark.parametrize(
    ("files", "kinds"),
    [
        (["pyproject.toml"], ["python"]),
        (["requirements.txt"], ["python"]),
        (["package.json", "yarn.lock"], ["node"]),
        (["go.mod"], ["go"]),
        (["Cargo.toml"], ["rust"]),
        (["Containerfile"], ["container"]),
        (["pyproject.toml", "Dockerfile"], ["python", "container"]),
        ([], []),
    ],
)
def test_each_project_type_gets_a_starter_that_validates(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, files: list[str], kinds: list[str]
):
    project = tmp_path / "project"
    project.mkdir()
    for name in files:
        (project / name).write_text("")
    assert detect(project) == kinds
    assert cli.main(["init", str(project)]) == 0
    written = (project / ".forgeflow.yaml").read_text()
    assert written.startswith("# yaml-language-server: $schema=.forgeflow/schema.json\n")
    assert (project / ".forgeflow" / "schema.json").read_text() == schema_text()
    capsys.readouterr()
    assert cli.main(["validate", str(project)]) == 0, capsys.readouterr().err
    data = load_located(written).data
    assert list(jsonschema.Draft7Validator(json.loads(schema_text())).iter_errors(data)) == []
    if "container" in kinds:
        assert "image" in data["jobs"]
    if kinds[:1] == ["node"]:
        assert "yarn install" in written


@pytest.mark.parametrize("kind", [*KINDS, "container"])
def test_a_type_can_be_chosen(capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str):
    assert cli.main(["init", str(tmp_path), "--type", kind]) == 0
    assert f"for {kind}" in capsys.readouterr().out
    assert cli.main(["validate", str(tmp_path)]) == 0


def test_an_existing_job_file_is_kept_unless_forced(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    (tmp_path / ".forgeflow.yaml").write_text("mine\n")
    assert cli.main(["init", str(tmp_path)]) == 1
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / ".forgeflow.yaml").read_text() == "mine\n"
    assert cli.main(["init", str(tmp_path), "--force"]) == 0
    assert (tmp_path / ".forgeflow.yaml").read_text() != "mine\n"


def test_schema_can_be_written_for_an_editor(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    target = tmp_path / ".forgeflow" / "schema.json"
    assert cli.main(["schema", "--output", str(target)]) == 0
    assert f"# yaml-language-server: $schema={target}" in capsys.readouterr().out
    schema = json.loads(target.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"  # what yaml-language-server reads
    jsonschema.Draft7Validator.check_schema(schema)
    job = schema["$defs"]["JobSpec"]["properties"]
    assert "3.10" in job["matrix"]["description"]  # hover help in the editor
    validator = jsonschema.Draft7Validator(schema)
    assert list(validator.iter_errors({"version": 1, "jobs": {"bad name!": {"steps": ["x"]}}}))
