"""A real-sized project's CI in one job file, end to end with the local executor.

Signed pull request webhook → worker (job file, templates and changed files asked from a fake
GitHub over HTTP) → one Workflow with nested matrix DAGs → local executor → watcher → commit
statuses at the fake GitHub. Then a manual run through ``POST /api/runs`` (``forgeflow
trigger``). The statuses must match what ran: jobs filtered out by paths, conditions or
triggers get none, a failing cell fails, fail-fast stops its siblings, needs skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from service import cli
from service.store.models import Run
from tests.conftest import WEBHOOK_SECRET
from tests.support import payloads
from tests.support.fake_github import FakeGitHub
from tests.support.gitrepo import GitRepo
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

REPO = "octo/shop"
API_TOKEN = "manual-runs-token"
JOB_FILE = """\
version: 1
defaults: {timeout: 2m, env: {LANG: C.UTF-8}}
concurrency: {group: "pr-${{ event.pull_request.number }}", cancel-in-progress: true}
jobs:
  lint:
    steps: [{name: lint, run: "test -f src/app.py"}]
  format:
    uses: org-check
    with: {tool: format}
  typecheck:
    uses: org-check
    with: {tool: typecheck}
  security:
    uses: org-check
    with: {tool: security}
  unit:
    uses: python
    with: {suite: unit}
  tests:
    needs: [lint]
    fail-fast: false
    matrix:
      python: ["3.11", "3.12", "3.13"]
      os: [fedora, ubuntu, debian]
    env: {PY: "${{ matrix.python }}", OS: "${{ matrix.os }}"}
    steps:
      - name: "pytest on ${{ matrix.python }}/${{ matrix.os }}"
        run: 'test "$PY/$OS" != 3.13/debian'
  compat:
    matrix: {db: [sqlite, postgres, mysql]}
    max-parallel: 1
    steps: ['test "${{ matrix.db }}" != sqlite']
  integration:
    needs: [tests]
    steps: ["true"]
  coverage:
    needs: [unit]
    steps: ['test -f src/app.py']
  package:
    needs: [lint, unit]
    artifacts: [dist]
    steps: ["mkdir -p dist && echo wheel > dist/shop.whl"]
  backend:
    paths: ["src/**"]
    steps: ["true"]
  docs:
    paths: ["docs/**"]
    steps: ["true"]
  frontend:
    paths: ["web/**", "!web/README.md"]
    steps: ["true"]
  drafts-only:
    if: "event.pull_request.draft"
    steps: ["true"]
  release:
    on: {tag: ["v*"]}
    steps: ["true"]
  nightly:
    on: {push: {branches: [main]}}
    steps: ["true"]
  deploy:
    on: {manual: {inputs: {target: {type: choice, options: [staging, prod], default: staging}}}}
    steps:
      - 'test "$FORGEFLOW_EVENT" = manual && test "$(cat src/app.py)" = v2'
      - 'test "$FORGEFLOW_INPUT_TARGET" = prod'
"""
PYTHON_TEMPLATE = """\
inputs:
  suite: {}
env: {SUITE: "${{ inputs.suite }}"}
steps: [{name: "${{ inputs.suite }} tests", run: 'test "$SUITE" = "${{ inputs.suite }}"'}]
"""
ORG_TEMPLATES = {
    "org-check": {
        "inputs": {"tool": {}},
        "steps": [{"name": "${{ inputs.tool }}", "run": "echo checking with ${{ inputs.tool }}"}],
    }
}
RAN = {
    "lint",
    "format",
    "typecheck",
    "security",
    "unit",
    *(
        f"tests (python={p}, os={o})"
        for p in ("3.11", "3.12", "3.13")
        for o in ("fedora", "ubuntu", "debian")
    ),
    *(f"compat (db={db})" for db in ("sqlite", "postgres", "mysql")),
    "integration",
    "coverage",
    "package",
    "backend",
}


@pytest.fixture
def stack(make_settings, fake_github: FakeGitHub) -> Iterator[Stack]:
    settings = make_settings(
        github_webhook_secret=WEBHOOK_SECRET,
        github_token="t0ken",
        github_api_url=fake_github.api_url,
        api_token=API_TOKEN,
        templates=ORG_TEMPLATES,
        local_max_parallel=8,
        repositories=[{"match": "octo/locked", "allow_secrets": False}],
    )
    built = Stack(settings)
    yield built
    built.close()


def contexts(states: dict[str, str]) -> set[str]:
    return {c.removeprefix("forgeflow/") for c in states}


def test_a_real_projects_ci(stack: Stack, fake_github: FakeGitHub, git_repo: GitRepo, tmp_path: Path, capsys):
    base = git_repo.commit(
        {
            ".forgeflow.yaml": JOB_FILE,
            ".forgeflow/templates/python.yaml": PYTHON_TEMPLATE,
            "src/app.py": "v1",
            "docs/index.md": "docs",
            "web/README.md": "web",
        }
    )
    head = git_repo.commit({"src/app.py": "v2", "web/README.md": "only the readme"}, branch="feature")
    fake_github.add_repo(REPO, git_repo)
    fake_github.add_pull(REPO, 7, base, head)
    payload = payloads.pull_request(REPO, git_repo.url, head)
    payload["pull_request"]["base"]["sha"] = base

    response = stack.post("github", payload, "pull_request", secret=WEBHOOK_SECRET)
    assert response.status_code == 202, response.text
    expected = [f"forgeflow/{name}" for name in RAN]
    final = fake_github.wait_final(expected, timeout=60)

    assert contexts(final) == RAN  # path filters, if: false and other triggers: no status at all
    assert {c: s for c, s in final.items() if s != "success"} == {
        "forgeflow/tests (python=3.13, os=debian)": "failure",
        "forgeflow/compat (db=sqlite)": "failure",
        "forgeflow/compat (db=postgres)": "error",
        "forgeflow/compat (db=mysql)": "error",
        "forgeflow/integration": "error",
    }
    descriptions = {s.context: s.description for s in fake_github.statuses}
    assert descriptions["forgeflow/compat (db=mysql)"] == "skipped: another cell of compat failed (fail-fast)"
    assert descriptions["forgeflow/integration"] == "skipped: tests failed"
    assert "pytest on 3.13/debian" in descriptions["forgeflow/tests (python=3.13, os=debian)"]
    assert fake_github.statuses_for("forgeflow/compat (db=postgres)") == ["pending", "error"]  # never ran
    assert fake_github.asked("GET", f"/repos/{REPO}/pulls/7/files")
    assert all(s.sha == head for s in fake_github.statuses)

    with stack.ctx.db.session() as session:
        run = session.scalars(select(Run)).one()
        run_id, group, cancel = run.id, run.concurrency_group, run.cancel_in_progress
        workflow = (run.namespace, run.workflow_name)
    assert (group, cancel) == ("pr-7", True)
    stack.wait_run_final(run_id)
    kept = (
        stack.settings.data_dir / "workflows" / workflow[0] / workflow[1] / "artifacts" / "package" / "dist"
    )
    assert (kept / "dist" / "shop.whl").read_text() == "wheel\n"
    page = requests.get(f"{stack.url}/runs/{run_id}", timeout=10).text
    link = f"/runs/{run_id}/artifacts/package/dist/dist/shop.whl"
    assert f'href="{link}"' in page
    assert requests.get(stack.url + link, timeout=10).text == "wheel\n"
    assert requests.get(f"{stack.url}/runs/{run_id}/artifacts/package/../../x", timeout=10).status_code == 404

    # a manual run: the API wants the token; `forgeflow trigger` sends it
    url = f"{stack.url}/api/runs"
    body = {"forge": "github", "repo": REPO, "ref": "feature", "jobs": ["deploy"]}
    assert requests.post(url, json=body, timeout=10).status_code == 401
    bad = requests.post(url, json=body, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bad.status_code == 401
    missing = requests.post(
        url,
        json={**body, "ref": "no-such-branch"},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=10,
    )
    assert missing.status_code == 422
    code = cli.main(
        [
            "trigger",
            REPO,
            "feature",
            "deploy",
            "--forge",
            "github",
            "--url",
            stack.url,
            "--token",
            API_TOKEN,
            "--input",
            "target=prod",
        ]
    )
    assert code == 0, capsys.readouterr()
    said = capsys.readouterr().out
    assert "accepted: octo/shop: manual run of feature" in said
    assert "runs: deploy (run " in said  # what the worker decided, not only "accepted"
    assert fake_github.wait_final(["forgeflow/deploy"], timeout=30)["forgeflow/deploy"] == "success"
    assert [s.sha for s in fake_github.statuses if s.context == "forgeflow/deploy"][-1] == head
    assert fake_github.statuses_for("forgeflow/lint")[-1] == "success"  # only deploy ran again
    assert len(fake_github.statuses_for("forgeflow/lint")) <= 3

    # a job without `on: manual` is not started by naming it: trigger says so, and why
    code = cli.main(
        ["trigger", REPO, "feature", "lint", "--forge", "github", "--url", stack.url, "--token", API_TOKEN]
    )
    said = capsys.readouterr().out
    assert code == 1, said
    assert "nothing runs: lint: not triggered manually (add 'manual' to on)" in said
    assert "a job runs from forgeflow trigger only with manual in its on:" in said


def test_a_secret_the_service_config_forbids_is_a_config_status(
    stack: Stack, fake_github: FakeGitHub, git_repo: GitRepo
):
    job_file = (
        "version: 1\njobs:\n  build:\n    steps: [make]\n  publish:\n    secrets: [pypi]\n    steps: [x]\n"
    )
    sha = git_repo.commit({".forgeflow.yaml": job_file})
    fake_github.add_repo("octo/locked", git_repo)
    response = stack.post(
        "github", payloads.push("octo/locked", git_repo.url, sha), "push", secret=WEBHOOK_SECRET
    )
    assert response.status_code == 202
    assert fake_github.wait_final(["forgeflow/config"]) == {"forgeflow/config": "failure"}
    assert fake_github.statuses[-1].description == (
        ".forgeflow.yaml:6: jobs.publish.secrets: the service config does not allow Kubernetes Secrets "
        "for octo/locked (asked for pypi)"
    )
