"""End to end on the local executor: the compiled manifests of jobs that hand each other
files, values and caches, run as Argo would run them (issue 16)."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from service.argo.validation import validate_manifest
from service.compiler import compile_workflow
from service.events import Event, EventKind, PullRequest, Repository
from service.executors.local.engine import available_engine
from service.executors.local.executor import LocalExecutor, LocalExecutorConfig
from service.executors.local.repository import ArtifactRepository, touch
from service.jobs.loader import load_job_file
from service.jobs.matcher import match_jobs
from service.jobs.plan import bind_run, plan_workflow
from service.runs.node_states import job_updates
from tests.support.gitrepo import GitRepo
from tests.test_compiler import OPTIONS, RUN_URL

PIPELINE = """\
version: 1
defaults: {timeout: 2m}
jobs:
  build:
    on: [tag]
    artifacts: [dist/]
    outputs: [version]
    steps:
      - mkdir -p dist && cp VERSION dist/pkg-$(cat VERSION).txt
      - echo "version=$(cat VERSION)" >> "$FORGEFLOW_OUTPUT"
  test:
    on: [tag]
    needs: [build]
    steps: ['test "$FAIL" != yes']
    env: {FAIL: "no"}
  publish:
    on: [tag]
    needs: [build, test]
    if: "!event.tag.contains('-rc')"
    env: {VERSION: "${{ needs.build.outputs.version }}"}
    steps:
      - ls dist/pkg-1.2.3.txt
      - 'test "$VERSION" = 1.2.3'
  smoke: {on: [tag], needs: [publish], steps: ["true"]}
  cleanup: {on: [tag], needs: [test], if: "always()", steps: ["echo cleaning up"]}
  announce: {on: [tag], needs: [{job: publish, optional: true}, build], steps: ["echo announced"]}
  flaky: {on: [tag], continue-on-error: true, steps: ["exit 3"]}
  after-flaky: {on: [tag], needs: [flaky], steps: ["true"]}
"""


@pytest.fixture
def git(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path, "lib")


@pytest.fixture
def repo(git: GitRepo) -> tuple[Repository, str]:
    sha = git.commit({"VERSION": "1.2.3", "requirements.txt": "flask\n"})
    return Repository("octo", "lib", git.url, default_branch="main"), sha


def run(tmp_path: Path, event: Event, text: str, name: int = 7) -> tuple[dict[str, Any], str, Any]:
    job_file = load_job_file(text)
    plan = bind_run(plan_workflow(event, job_file, match_jobs(event, job_file), OPTIONS), name, RUN_URL)
    manifest = compile_workflow(plan)
    validate_manifest(manifest)
    output = io.StringIO()
    executor = LocalExecutor(
        LocalExecutorConfig(data_dir=tmp_path / "data", detach=False, cache_max_bytes=10_000)
    )
    final = executor.run_foreground(manifest, output)
    return final, output.getvalue(), plan


def states(final: dict[str, Any], plan: Any) -> dict[str, tuple[str, str]]:
    found = job_updates(final, [t.task for t in plan.tasks])
    result = {task: (u.state, u.description) for task, u in found.items()}
    result.update({r.task: (r.state, r.reason) for r in plan.refused})
    return result


def tag(repo: tuple[Repository, str], name: str) -> Event:
    repository, sha = repo
    return Event("github", EventKind.TAG, repository, sha, ref=f"refs/tags/{name}", tag=name)


def test_build_hands_dist_and_its_version_to_publish(tmp_path: Path, repo: tuple[Repository, str]) -> None:
    final, log, plan = run(tmp_path, tag(repo, "v1.2.3"), PIPELINE)
    found = states(final, plan)
    assert found["publish"][0] == "success", log
    assert "[publish] dist/pkg-1.2.3.txt" in log
    assert found["smoke"][0] == "success" and found["announce"][0] == "success"
    assert found["flaky"][0] == "failure" and found["after-flaky"][0] == "success"  # continue-on-error
    assert final["status"]["phase"] == "Succeeded", log  # the flaky failure does not fail the run
    build = next(n for n in final["status"]["nodes"].values() if n["displayName"] == "build")
    assert build["outputs"]["parameters"] == [{"name": "version", "value": "1.2.3"}]


def test_a_skipped_publish_stops_smoke_and_an_optional_need_does_not_block(
    tmp_path: Path, repo: tuple[Repository, str]
) -> None:
    final, log, plan = run(tmp_path, tag(repo, "v1.2.3-rc1"), PIPELINE)
    found = states(final, plan)
    assert "publish" not in found
    assert found["smoke"] == (
        "success",
        "skipped: publish did not run (if: !event.tag.contains('-rc') is false)",
    )
    assert found["announce"][0] == "success", log
    assert final["status"]["phase"] == "Succeeded", log


def test_always_runs_cleanup_after_a_failure(tmp_path: Path, repo: tuple[Repository, str]) -> None:
    failing = PIPELINE.replace('env: {FAIL: "no"}', 'env: {FAIL: "yes"}')
    final, log, plan = run(tmp_path, tag(repo, "v1.2.3"), failing)
    found = states(final, plan)
    assert found["test"][0] == "failure"
    assert found["cleanup"][0] == "success" and "[cleanup] cleaning up" in log
    assert found["publish"] == ("error", "skipped: test failed")
    assert found["smoke"] == ("error", "skipped: publish did not run")
    assert found["announce"][0] == "success"  # publish is optional for it


CACHED = """\
version: 1
jobs:
  deps:
    cache: {key: "pip-${{ hashFiles('requirements.txt') }}", paths: [.cache/pip], restore-keys: [pip-]}
    steps:
      - 'if [ -f .cache/pip/wheel ]; then echo "restored $(cat .cache/pip/wheel)"; else echo cold; fi'
      - mkdir -p .cache/pip && echo "built-by-$FORGEFLOW_EVENT" > .cache/pip/wheel
"""


def push(repo: tuple[Repository, str], branch: str = "main") -> Event:
    repository, sha = repo
    return Event("github", EventKind.PUSH, repository, sha, ref=f"refs/heads/{branch}", branch=branch)


def pull_request(repo: tuple[Repository, str]) -> Event:
    repository, sha = repo
    pr = PullRequest(5, source_branch="fix", target_branch="main", source_repo=repository, head_sha=sha)
    return Event(
        "github", EventKind.PULL_REQUEST, repository, sha, action="opened", branch="fix", pull_request=pr
    )


def test_a_cache_saved_by_one_run_is_restored_by_the_next_and_never_written_by_a_pr(
    tmp_path: Path, repo: tuple[Repository, str], git: GitRepo
) -> None:
    first, log, _ = run(tmp_path, push(repo), CACHED, 1)
    assert first["status"]["phase"] == "Succeeded", log
    assert "[deps] cold" in log and "cache: saved pip-" in log
    _, log, _ = run(tmp_path, pull_request(repo), CACHED, 2)
    assert "[deps] restored built-by-push" in log  # the target branch's cache
    assert "not saved again" in log
    # the pull request changes requirements.txt, so the key: it reads the nearest cache
    # (restore-keys), and writes nothing
    changed = (repo[0], git.commit({"requirements.txt": "flask\nrequests\n"}, branch="fix"))
    _, log, _ = run(tmp_path, pull_request(changed), CACHED, 3)
    assert "[deps] restored built-by-push" in log and "partial match" in log
    assert "never write it" in log
    repository = ArtifactRepository(tmp_path / "data")
    saved = list((repository.root / "forgeflow-cache").rglob("wheel"))
    assert [p.read_text().strip() for p in saved] == ["built-by-push"]
    _, log, _ = run(tmp_path, push(changed, "fix"), CACHED, 4)  # a push of fix saves its own
    assert "restored built-by-push" in log and "cache: saved" in log  # from main, the default


def test_caches_are_evicted_least_recently_used_first(tmp_path: Path) -> None:
    repository = ArtifactRepository(tmp_path, max_cache_bytes=2500)
    source = tmp_path / "payload"
    source.mkdir()
    (source / "blob").write_bytes(b"x" * 1000)
    keys = [f"forgeflow-cache/github/octo%2Flib/main/{n}.tgz" for n in "abc"]
    for index, key in enumerate(keys[:2]):
        repository.save(key, source)
        touch(repository.folder(key), 1000 + index)
    assert repository.load(keys[0], tmp_path / "out")  # a is used now: b is the oldest
    repository.save(keys[2], source)
    assert [repository.folder(k).exists() for k in keys] == [True, False, True]
    other = "forgeflow-cache/github/octo%2Fother/main/a.tgz"  # another repository: its own limit
    repository.save(other, source)
    assert repository.folder(keys[0]).exists() and repository.folder(other).exists()


SERVICES = """\
version: 1
jobs:
  test:
    services: {db: {image: "postgres:16", env: {POSTGRES_PASSWORD: x}, ports: [5432]}}
    steps: [psql -h localhost -c 'select 1']
"""


@pytest.mark.skipif(available_engine() is not None, reason="a container engine answers here")
def test_a_service_is_refused_clearly_when_no_container_engine_answers(
    tmp_path: Path, repo: tuple[Repository, str]
) -> None:
    final, log, plan = run(tmp_path, push(repo), SERVICES)
    found = states(final, plan)
    assert found["test"][0] == "error"
    assert "services need a container engine" in found["test"][1]
    assert "neither podman nor docker answered" in log
    if shutil.which("docker"):  # this machine: a docker client without its daemon
        assert available_engine("docker", timeout=10) is None


MATRIX = """\
version: 1
jobs:
  build:
    artifacts: [{name: wheel, path: dist}]
    outputs: [version]
    steps: ["mkdir -p dist && echo w > dist/lib.whl", "echo version=9 >> $FORGEFLOW_OUTPUT"]
  tests:
    needs: [build]
    matrix: {python: ["3.11", "3.12"]}
    env: {VERSION: "${{ needs.build.outputs.version }}"}
    steps: ['test -f dist/lib.whl && test "$VERSION" = 9 && echo "cell ${{ matrix.python }} ok"']
"""


def test_matrix_cells_get_their_needs_artifacts_and_outputs(
    tmp_path: Path, repo: tuple[Repository, str]
) -> None:
    final, log, _ = run(tmp_path, push(repo), MATRIX)
    assert final["status"]["phase"] == "Succeeded", log
    assert "cell 3.11 ok" in log and "cell 3.12 ok" in log


def test_manual_inputs_reach_steps_as_environment(tmp_path: Path, repo: tuple[Repository, str]) -> None:
    repository, sha = repo
    text = """\
version: 1
jobs:
  deploy:
    on: {manual: {inputs: {target: {type: choice, options: [staging, prod], default: staging}}}}
    steps: ['echo "deploying to $FORGEFLOW_INPUT_TARGET"']
"""
    event = Event(
        "github",
        EventKind.MANUAL,
        repository,
        sha,
        ref="refs/heads/main",
        branch="main",
        extra={"inputs": json.dumps({"target": "prod; rm -rf /"})},
    )
    final, log, _ = run(tmp_path, dataclasses.replace(event), text)
    assert final["status"]["phase"] == "Succeeded", log
    assert "deploying to prod; rm -rf /" in log


def test_a_job_cannot_make_the_executor_copy_files_from_outside_its_workspace(
    tmp_path: Path, repo: tuple[Repository, str]
) -> None:
    """A symlink the job makes is followed on this machine, not in the job's container: an
    artifact or output read through one would hand this machine's files (the data dir's
    secrets, a home folder) to the run page."""
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (secret / "secret.txt").write_text("TOPSECRET")
    text = f"""\
version: 1
jobs:
  leak:
    on: [tag]
    artifacts: [out/secret.txt]
    steps: ['ln -s {secret} out']
  steal:
    on: [tag]
    argo:
      entrypoint: main
      templates:
      - name: main
        script:
          image: x
          command: [sh]
          source: 'ln -s {secret} link'
        outputs:
          parameters: [{{name: stolen, valueFrom: {{path: /workspace/link/secret.txt}}}}]
"""
    final, log, plan = run(tmp_path, tag(repo, "v1"), text)
    found = states(final, plan)
    assert found["leak"][0] != "success" and "leads outside /workspace" in found["leak"][1], (found, log)
    assert found["steal"][0] != "success" and "leads outside /workspace" in found["steal"][1], (found, log)
    kept = tmp_path / "data"
    assert not [p for p in kept.rglob("*") if p.is_file() and "TOPSECRET" in p.read_text(errors="replace")]
    assert "TOPSECRET" not in json.dumps(final)
