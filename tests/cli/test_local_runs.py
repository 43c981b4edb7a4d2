"""``render``, ``explain`` and ``exec`` with events made up from a checkout, and a local run
that says what it does: progress, prefixed logs, a summary, the exit code, an engine or not."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from service.cli.main import main
from service.executors.local.engine import available_engine
from tests.cli.test_cli import forgeflow as run_forgeflow
from tests.support.gitrepo import GitRepo

FIXTURES = Path(os.environ.get("FORGEFLOW_FIXTURES", "/work/shared/fixtures"))
JOB_FILE = """\
version: 1
jobs:
  build:
    on: [push, pull_request, release]
    steps:
      - {name: compile, run: 'echo "compiling $FORGEFLOW_BRANCH"'}
      - {name: pack, run: echo packed}
  test:
    needs: [build]
    matrix: {python: ["3.11", "3.12"]}
    steps: ["echo testing ${{ matrix.python }}"]
  lint:
    on: [pull_request, comment]
    steps: [echo lint]
  deploy:
    on: [manual]
    steps: [echo deploy]
"""


pytestmark = pytest.mark.usefixtures("forgeflow_env")


@pytest.fixture
def checkout(tmp_path: Path) -> GitRepo:
    repo = GitRepo(tmp_path, "shop")
    repo.commit({".forgeflow.yaml": JOB_FILE, "src/app.py": "print('hi')\n"})
    repo.git("remote", "set-url", "origin", "git@github.com:octo/shop.git")  # what a clone has
    repo.git("remote", "set-url", "--push", "origin", str(repo.bare))  # (the test pushes here)
    repo.git("config", "user.email", "test@example.invalid")  # who "you" are
    return repo


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_explain_a_push_of_a_branch(capsys, checkout: GitRepo):
    code, out, _ = run(capsys, "explain", "--push", "main", "--repo", str(checkout.work))
    assert code == 0
    sha = checkout.git("rev-parse", "HEAD")
    assert out.splitlines() == [
        f"event: octo/shop: push to main at {sha[:7]}",
        "build: runs: push to main",
        "test: runs (2 matrix cells): push to main",
        "lint: skipped: not triggered by push",
        "deploy: skipped: not triggered by push",
    ]


def test_a_misspelt_branch_is_named(capsys, checkout: GitRepo):
    code, _, err = run(capsys, "explain", "--push", "mian", "--repo", str(checkout.work))
    assert code == 1
    assert "the checkout has no branch 'mian'; did you mean 'main'? (branches: main)" in err


def test_a_pull_request_from_a_fork_waits_and_reads_the_target_branch(capsys, checkout: GitRepo):
    checkout.commit({".forgeflow.yaml": JOB_FILE + "  sneaky:\n    steps: [env]\n"}, branch="feature")
    args = ["explain", "--pr", "9", "--from-fork", "--author", "mallory", "--repo", str(checkout.work)]
    code, out, _ = run(capsys, *args)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("(from the fork mallory/shop by mallory, into main)")
    assert "  - the job file and templates are read from main, not from the pull request" in lines
    assert "  - no job gets Kubernetes Secrets" in lines
    assert any(
        "nothing runs until someone with write access comments /forgeflow ok-to-test" in x for x in lines
    )
    assert "build: waits for approval, from main's job file: pull request opened into main" in lines
    assert "lint: waits for approval, from main's job file: pull request opened into main" in lines
    assert "deploy: skipped: not triggered by pull_request" in lines
    assert any(
        x.startswith("not in main's job file, so not run for this pull request: sneaky") for x in lines
    )


def test_a_pull_request_of_a_trusted_author_runs(capsys, checkout: GitRepo):
    checkout.commit({"src/app.py": "print('changed')\n"}, branch="feature")
    code, out, _ = run(capsys, "explain", "--pr", "3", "--repo", str(checkout.work))
    assert code == 0
    assert "(feature into main)" in out.splitlines()[0]
    assert "lint: runs: pull request opened into main" in out


def test_a_comment_command_is_previewed(capsys, checkout: GitRepo):
    code, out, _ = run(capsys, "explain", "--comment", "/forgeflow test lint", "--repo", str(checkout.work))
    assert code == 0
    assert "command: /forgeflow test lint by test (assumed to have write access, as they must)" in out
    assert "lint: runs: asked by @test with /forgeflow test" in out
    assert "build: skipped: not asked for" in out
    code, out, _ = run(capsys, "explain", "--comment", "/forgeflow test lnit", "--repo", str(checkout.work))
    assert "No job named `lnit` in this repository's job file." in out
    code, out, _ = run(capsys, "explain", "--comment", "/forgeflow retest", "--repo", str(checkout.work))
    assert "only the server knows; name them instead: /forgeflow test JOB" in out


def test_a_comment_on_a_fork_runs_the_target_branch_job_file(capsys, checkout: GitRepo):
    checkout.commit({"src/app.py": "print('fork')\n"}, branch="feature")
    args = ["--comment", "/forgeflow test build", "--pr", "9", "--from-fork", "--author", "eve"]
    code, out, _ = run(capsys, "explain", *args, "--repo", str(checkout.work))
    assert code == 0
    assert "comment on #9 by test (from the fork eve/shop by eve, into main)" in out
    assert "  - the job file and templates are read from main, not from the pull request" in out
    assert "ok-to-test" not in out  # a maintainer's command is the approval
    assert "build: runs, from main's job file: asked by @test with /forgeflow test" in out


def test_a_manual_run_names_what_it_cannot_start(capsys, checkout: GitRepo):
    code, out, _ = run(capsys, "explain", "--manual", "deploy", "--repo", str(checkout.work))
    assert code == 0
    assert "deploy: runs: started manually" in out
    assert "build: skipped: not triggered manually (add 'manual' to on)" in out
    code, out, _ = run(capsys, "explain", "--manual", "depoly", "--repo", str(checkout.work))
    assert "manual run: no job named 'depoly'; did you mean 'deploy'?" in out


def test_a_tag_not_yet_made_is_made_at_head(capsys, checkout: GitRepo):
    code, out, _ = run(capsys, "explain", "--tag", "v1.0", "--repo", str(checkout.work))
    assert code == 0
    assert "note: the checkout has no tag 'v1.0'; as if it were made at HEAD" in out
    assert "no job matched: nothing would be submitted" in out


def test_render_of_a_made_up_push_is_the_webhook_push(capsys, checkout: GitRepo, tmp_path: Path):
    from tests.support import payloads

    sha = checkout.git("rev-parse", "HEAD")
    event = tmp_path / "push.json"
    payload = payloads.push("octo/shop", "git@github.com:octo/shop.git", sha)
    payload["repository"]["default_branch"] = "main"
    event.write_text(__import__("json").dumps(payload))
    code, made_up, _ = run(capsys, "render", "--push", "main", "--repo", str(checkout.work))
    assert code == 0
    code, from_file, _ = run(capsys, "render", "--event", str(event), "--repo", str(checkout.work))
    assert code == 0
    one, two = yaml.safe_load(made_up), yaml.safe_load(from_file)
    assert one["metadata"]["name"] == two["metadata"]["name"] == f"forgeflow-1-{sha[:7]}"
    assert [t["name"] for t in one["spec"]["templates"][0]["dag"]["tasks"]] == ["build", "test"]
    assert one["spec"]["templates"][0] == two["spec"]["templates"][0]


@pytest.mark.skipif(
    not (FIXTURES / "webhooks/github/release.published.4.json").exists(), reason="no fixtures"
)
def test_a_release_of_a_branch_renders_a_valid_workflow(capsys, checkout: GitRepo):
    """Regression: target_commitish a branch left the commit empty: 'forgeflow-1-' was refused."""
    fixture = FIXTURES / "webhooks/github/release.published.4.json"
    code, out, err = run(capsys, "render", "--event", str(fixture), "--repo", str(checkout.work))
    assert code == 0, err
    sha = checkout.git("rev-parse", "HEAD")
    manifest = yaml.safe_load(out)
    assert manifest["metadata"]["name"] == f"forgeflow-1-{sha[:7]}"
    assert "note: the event names no commit and the checkout has no 'refs/tags/v1.0.0'" in err
    assert "build: runs: release v1.0.0" in err


# -- exec ------------------------------------------------------------------------------------------


def forgeflow(
    *args: str, path: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``forgeflow ARGS`` as a user runs it, with ``path`` as its PATH."""
    return run_forgeflow(*args, cwd=cwd, env={**os.environ, "PATH": path or os.environ.get("PATH", "")})


def no_engine_path(tmp_path: Path) -> str:
    """A PATH where podman and docker exist but answer nothing (a client without its daemon)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for engine in ("podman", "docker"):
        fake = bin_dir / engine
        fake.write_text("#!/bin/sh\necho 'Cannot connect to the daemon' >&2\nexit 1\n")
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    git = shutil.which("git")
    assert git is not None
    return os.pathsep.join([str(bin_dir), str(Path(git).parent), "/usr/bin", "/bin"])


def test_exec_refuses_without_an_engine_and_names_on_host(tmp_path: Path, checkout: GitRepo):
    result = forgeflow("exec", "--push", "main", path=no_engine_path(tmp_path), cwd=checkout.work)
    assert result.returncode == 2
    assert "no container engine answers here: podman is installed but `podman info` fails" in result.stderr
    assert "--on-host" in result.stderr
    assert "[build]" not in result.stdout  # nothing ran


def test_exec_on_host_says_so_streams_progress_and_sums_up(tmp_path: Path, checkout: GitRepo):
    result = forgeflow(
        "exec", "--push", "main", "--on-host", path=no_engine_path(tmp_path), cwd=checkout.work
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "running on this host with its own tools: the jobs' images" in out
    assert "[build] compiling main" in out
    assert "[test.3-12] testing 3.12" in out
    assert "-- 0/3 jobs done; running on this host: build [compile]" in out
    assert out.count("-- 3/3 jobs done\n") == 1
    table = out[out.index("job  ") :].splitlines()
    assert table[0].split() == ["job", "result", "time"]
    assert [row.split()[:2] for row in table[2:5]] == [
        ["build", "success"],
        ["test", "(python=3.11)"],
        ["test", "(python=3.12)"],
    ]
    assert "all 3 jobs succeeded" in out
    assert "workflow Succeeded" in out


def test_exec_fails_when_a_job_fails_and_job_runs_one_job_with_its_needs(tmp_path: Path, checkout: GitRepo):
    checkout.commit({".forgeflow.yaml": JOB_FILE.replace("echo lint", "echo lint; exit 3")})
    path = no_engine_path(tmp_path)
    result = forgeflow("exec", "--pr", "4", "--on-host", "--job", "lint", path=path, cwd=checkout.work)
    assert result.returncode == 1
    assert "lint: runs: asked for with --job" in result.stdout
    assert "build: skipped: not asked for with --job" in result.stdout
    assert "lint  failure" in result.stdout
    assert "0 of 1 jobs succeeded" in result.stdout
    result = forgeflow("exec", "--push", "main", "--on-host", "--job", "test", path=path, cwd=checkout.work)
    assert result.returncode == 0, result.stdout
    assert "build: runs: needed by test" in result.stdout
    assert "[build] ==> compile" in result.stdout  # the need ran first
    assert "all 3 jobs succeeded" in result.stdout
    unknown = forgeflow("exec", "--push", "main", "--on-host", "--job", "tset", path=path, cwd=checkout.work)
    assert "--job tset: no job named 'tset'; did you mean 'test'?" in unknown.stdout + unknown.stderr


@pytest.mark.skipif(available_engine() is None, reason="no container engine answers here")
def test_exec_runs_each_job_in_its_image(checkout: GitRepo):
    job_file = (
        "version: 1\njobs:\n  os:\n    image: docker.io/library/alpine:3\n    steps: [cat /etc/os-release]\n"
    )
    checkout.commit({".forgeflow.yaml": job_file})
    result = forgeflow("exec", "--push", "main", cwd=checkout.work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "running each job in its image with" in result.stdout
    assert '[os] NAME="Alpine Linux"' in result.stdout
    assert "all 1 jobs succeeded" in result.stdout
