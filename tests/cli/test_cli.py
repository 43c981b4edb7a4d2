"""The user's commands, run as a user runs them (``forgeflow ...`` in a subprocess where it matters)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from service.cli.main import main
from tests.support import payloads
from tests.support.gitrepo import GitRepo

JOB_FILE = """\
version: 1
jobs:
  build:
    on: [push, pull_request]
    steps: [{name: build, run: 'echo "building $FORGEFLOW_BRANCH"'}]
  release:
    on: {tag: ["v*"]}
    steps: [make release]
"""


def forgeflow(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_validate_ok_and_errors_with_positions(tmp_path: Path, capsys):
    good = tmp_path / "good"
    good.mkdir()
    (good / ".forgeflow.yaml").write_text(JOB_FILE)
    assert main(["validate", str(good)]) == 0
    assert "ok (2 jobs: build, release)" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\njobs:\n  a:\n    on: [pusj]\n    steps: []\n")
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:4:10: jobs.a.on[0]: unknown event 'pusj'; did you mean 'push'?" in err
    assert f"{bad}:5:5: jobs.a.steps: a job needs at least one step" in err
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2


def test_render_prints_the_workflow_and_explains(tmp_path: Path, git_repo: GitRepo):
    sha = git_repo.commit({".forgeflow.yaml": JOB_FILE})
    event = tmp_path / "push.json"
    event.write_text(json.dumps(payloads.push("octo/hello", "https://github.com/octo/hello.git", sha)))
    result = forgeflow("render", "--event", str(event), "--repo", str(git_repo.work), env=_env(tmp_path))
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(result.stdout)
    assert manifest["kind"] == "Workflow"
    assert [t["name"] for t in manifest["spec"]["templates"][0]["dag"]["tasks"]] == ["build"]
    assert "build: runs: push to main" in result.stderr
    assert "release: skipped: not triggered by push" in result.stderr


def test_render_with_no_matching_job_says_so(tmp_path: Path, git_repo: GitRepo):
    sha = git_repo.commit({".forgeflow.yaml": JOB_FILE.replace("[push, pull_request]", "[pull_request]")})
    event = tmp_path / "push.json"
    event.write_text(json.dumps(payloads.push("octo/hello", "https://github.com/octo/hello.git", sha)))
    result = forgeflow(
        "render", "--event", str(event), "--repo", str(git_repo.work), "--explain", env=_env(tmp_path)
    )
    assert result.returncode == 1
    assert "no job matched" in result.stdout + result.stderr


def test_render_type_can_be_forced(tmp_path: Path, git_repo: GitRepo):
    sha = git_repo.commit({".forgeflow.yaml": JOB_FILE})
    event = tmp_path / "pr.json"
    event.write_text(json.dumps(payloads.pull_request("octo/hello", git_repo.url, sha)))
    result = forgeflow(
        "render",
        "--event",
        str(event),
        "--type",
        "pull_request",
        "--repo",
        str(git_repo.work),
        env=_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "pull request #7 opened" in result.stderr


def exec_push(tmp_path: Path, git_repo: GitRepo, job_file: str) -> tuple[str, subprocess.CompletedProcess]:
    """Commit ``job_file``, then ``forgeflow exec`` a push of that commit: (sha, the result)."""
    sha = git_repo.commit({".forgeflow.yaml": job_file})
    event = tmp_path / "push.json"
    event.write_text(json.dumps(payloads.push("octo/hello", git_repo.url, sha)))
    return sha, forgeflow(
        "exec", "--event", str(event), "--repo", str(git_repo.work), "--on-host", env=_env(tmp_path)
    )


def test_exec_runs_the_jobs_here_and_streams_output(tmp_path: Path, git_repo: GitRepo):
    _, result = exec_push(tmp_path, git_repo, JOB_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[build] building main" in result.stdout
    assert "workflow Succeeded" in result.stdout


ARGO_JOB_FILE = """\
version: 1
jobs:
  smoke:
    arguments: {revision: "${{ event.sha }}", greeting: hello}
    argo:
      entrypoint: smoke
      templates:
        - name: smoke
          inputs: {parameters: [{name: revision}, {name: greeting}, {name: extra, default: later}]}
          dag:
            tasks:
              - name: one
                template: say
                arguments:
                  parameters:
                    - {name: what, value: "{{inputs.parameters.greeting}} {{inputs.parameters.revision}}"}
              - name: two
                template: say
                dependencies: [one]
                arguments: {parameters: [{name: what, value: "{{inputs.parameters.extra}}"}]}
        - name: say
          inputs: {parameters: [{name: what}]}
          container:
            image: "alpine:3"
            command: [sh, -c, 'echo "$WHAT"']
            env: [{name: WHAT, value: "{{inputs.parameters.what}}"}]
"""


def test_exec_runs_argo_jobs_with_arguments(tmp_path: Path, git_repo: GitRepo):
    sha, result = exec_push(tmp_path, git_repo, ARGO_JOB_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"[smoke.one] hello {sha}" in result.stdout
    assert "[smoke.two] later" in result.stdout
    assert "workflow Succeeded" in result.stdout


def test_exec_says_why_a_workflow_could_not_run(tmp_path: Path, git_repo: GitRepo):
    job_file = "version: 1\njobs:\n  deploy:\n    workflowTemplate: deploy\n    arguments: {version: '1'}\n"
    _, result = exec_push(tmp_path, git_repo, job_file)
    assert result.returncode == 1
    assert "error: not supported by the local executor: DAG task 'deploy' uses" in result.stdout
    assert "workflow Error" in result.stdout


def test_exec_fails_when_a_job_fails(tmp_path: Path, git_repo: GitRepo):
    _, result = exec_push(tmp_path, git_repo, JOB_FILE.replace('echo "building $FORGEFLOW_BRANCH"', "exit 4"))
    assert result.returncode == 1
    assert "workflow Failed" in result.stdout


def test_bad_event_file_is_a_clear_error(tmp_path: Path, capsys):
    event = tmp_path / "e.json"
    event.write_text("[1]")
    assert main(["render", "--event", str(event), "--repo", str(tmp_path)]) == 1
    assert "JSON object" in capsys.readouterr().err


def _env(tmp_path: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEFLOW_")}
    env["FORGEFLOW_DATA_DIR"] = str(tmp_path / "data")
    return env


@pytest.mark.slow
def test_replay_and_status_against_a_running_service(make_settings, tmp_path: Path, capsys, monkeypatch):
    """A push into the local forge's repository, replayed, and the statuses read back."""
    from service.forges.local import create_repository
    from service.settings import local_webhook_secret
    from tests.support.stack import Stack

    stack = Stack(make_settings())
    try:
        settings = stack.settings
        secret_file = settings.data_dir / "local-webhook-secret"
        local_webhook_secret(settings)
        bare = create_repository(
            settings.repos_dir, "team", "app", f"{stack.url}/api/webhooks/local", secret_file
        )
        work = GitRepo(tmp_path, "app")
        work.git("remote", "set-url", "origin", str(bare))
        sha = work.commit({".forgeflow.yaml": JOB_FILE})  # the push runs the hook
        for key, value in {"FORGEFLOW_DATA_DIR": str(settings.data_dir)}.items():
            monkeypatch.setenv(key, value)
        _wait_for_status(capsys, "team/app", sha)
        payload = tmp_path / "replay.json"
        payload.write_text(
            json.dumps(
                {
                    "repository": {"namespace": "team", "name": "app", "clone_url": str(bare)},
                    "ref": "refs/tags/v1.0",
                    "before": "0" * 40,
                    "after": sha,
                    "pusher": "me",
                }
            )
        )
        assert main(["replay", str(payload), "--url", stack.url, "--forge", "local"]) == 0
        assert "202" in capsys.readouterr().out
    finally:
        stack.close()


def _wait_for_status(capsys, repo: str, sha: str) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        code = main(["status", repo, sha[:10]])
        out = capsys.readouterr().out
        if code == 0 and "success  forgeflow/build" in out:
            return
        time.sleep(0.3)
    raise AssertionError(f"no success status for {repo}@{sha}: {out}")


def test_status_says_the_database_does_not_answer_without_a_traceback(tmp_path: Path):
    import os
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "FORGEFLOW_DATA_DIR": str(tmp_path)}
    down = forgeflow(
        "status",
        "octo/hello",
        "abc",
        env={**env, "FORGEFLOW_DATABASE_URL": f"postgresql://ci:pw@127.0.0.1:{port}/x"},
    )
    assert down.returncode == 2 and "Traceback" not in down.stderr, down.stderr
    assert f"cannot read the database postgresql://ci:***@127.0.0.1:{port}/x" in down.stderr
    assert "pw" not in down.stderr
    fresh = forgeflow("status", env=env)  # a database nobody migrated yet
    assert fresh.returncode == 2 and "Traceback" not in fresh.stderr, fresh.stderr
    assert "has no forgeflow tables yet (run forgeflow migrate)" in fresh.stderr
