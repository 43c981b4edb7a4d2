"""The corpus of mistakes people make in job files, each with the exact ``forgeflow validate``
output as golden text.

Every line that holds a mistake ends with ``# <- mistake: ...`` (or follows a line
``# mistake on the next line: ...``, where a comment would change the value); one run of ``validate`` must
report a problem on each of those lines, and on no other line (no cascade of follow-up errors),
in file order. Regenerate the golden outputs after an intended change with
``FORGEFLOW_UPDATE_GOLDEN=1 make unit`` and review the diff: the messages are the product.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from service import cli

CORPUS = Path(__file__).resolve().parents[1] / "golden" / "mistakes"
FILES = sorted(CORPUS.glob("*.yaml"))
MARK = "# <- mistake"
MARK_BELOW = "# mistake on the next line"  # where a comment cannot go (inside a multi-line value)
PROBLEM = re.compile(r"^(?P<file>[^:\s]+\.yaml):(?P<line>\d+):(?P<column>\d+): ")


@pytest.fixture(autouse=True)
def in_the_corpus(forgeflow_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)  # the output names the files as a user in that folder sees them


def validate(capsys: pytest.CaptureFixture[str], name: str) -> tuple[int, str]:
    code = cli.main(["validate", name])
    out, err = capsys.readouterr()
    assert out == ""
    return code, err


def test_the_corpus_holds_at_least_forty_mistakes():
    marked = sum(path.read_text(encoding="utf-8").count(m) for path in FILES for m in (MARK, MARK_BELOW))
    assert marked >= 40, marked


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_mistake_is_reported_in_one_pass(capsys: pytest.CaptureFixture[str], path: Path):
    code, err = validate(capsys, path.name)
    assert code == 1
    lines = path.read_text(encoding="utf-8").splitlines()
    marked = [n for n, text in enumerate(lines, 1) if MARK in text or (n > 1 and MARK_BELOW in lines[n - 2])]
    reported = [
        (int(m["line"]), int(m["column"]))
        for m in map(PROBLEM.match, err.splitlines())
        if m and m["file"] == path.name
    ]
    assert sorted(reported) == reported, "problems come in file order"
    assert sorted({line for line, _ in reported}) == marked, err

    golden = path.with_suffix(".out")
    if os.environ.get("FORGEFLOW_UPDATE_GOLDEN"):
        golden.write_text(err, encoding="utf-8")
    assert golden.exists(), f"no golden output {golden.name}: run with FORGEFLOW_UPDATE_GOLDEN=1"
    assert err == golden.read_text(encoding="utf-8")


def test_the_fixed_files_pass(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    """The corpus's first file, written as its messages say, validates."""
    fixed = (CORPUS / "01-seven-mistakes.yaml").read_text(encoding="utf-8")
    for old, new in (
        ("branchs:", "branches:"),
        ("[biuld]", "[build]"),
        ("drafts", "draft"),
        ("[3.10,", "['3.10',"),
        ("10 minutes", "10m"),
        ("pushh", "push"),
        ("runs-on: ubuntu-latest", "image: fedora:41"),
    ):
        fixed = fixed.replace(old, new)
    (tmp_path / ".forgeflow.yaml").write_text(fixed, encoding="utf-8")
    code = cli.main(["validate", str(tmp_path)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), err
    assert "ok (3 jobs: build, test, lint)" in out
