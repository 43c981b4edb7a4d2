"""The whole path over real HTTP: signed GitHub webhook → worker → local executor → watcher →
statuses at a fake GitHub API, with each broker and database forgeflow supports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import func, select

from service.store.models import Delivery, Run
from tests.conftest import WEBHOOK_SECRET
from tests.support import payloads
from tests.support.fake_github import FakeGitHub
from tests.support.gitrepo import GitRepo
from tests.support.services import postgres_database, rabbitmq_broker, redis_broker
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

REPO = "octo/hello"
JOB_FILE = """\
version: 1
defaults: {timeout: 2m}
jobs:
  passes:
    on: [pull_request, push]
    steps:
      - name: the source is the event's commit
        run: sleep 1 && test "$(git rev-parse HEAD)" = "$FORGEFLOW_SHA" && test "$(cat VERSION)" = 2
      - name: event data arrives as environment, never as script
        run: |
          test "$FORGEFLOW_PR_TITLE" = 'Add a feature; rm -rf / $(echo pwned)'
  fails:
    on: [pull_request]
    steps:
      - {name: ok, run: "true"}
      - {name: broken, run: "exit 3"}
  pushes-only:
    on: [push]
    steps: [{run: "true"}]
  after-passes:
    on: [pull_request]
    needs: [passes]
    steps: [{run: "sleep 1"}]
"""


def make_stack(make_settings, fake_github: FakeGitHub, stack: ExitStack, database: str, broker: str) -> Stack:
    settings = make_settings(
        github_webhook_secret=WEBHOOK_SECRET,
        github_token="t0ken",
        github_api_url=fake_github.api_url,
        database_url=database,
        broker_url=broker,
    )
    built = Stack(settings)
    stack.callback(built.close)
    return built


@pytest.fixture(params=["sqlite+embedded", "postgres+redis", "postgres+rabbitmq"])
def stack(request, make_settings, fake_github, tmp_path) -> Iterator[Stack]:
    with ExitStack() as exits:
        if request.param == "sqlite+embedded":
            database, broker = "", ""
        else:
            database = exits.enter_context(postgres_database())
            broker = redis_broker() if request.param.endswith("redis") else rabbitmq_broker()
        yield make_stack(make_settings, fake_github, exits, database, broker)


def test_pull_request_runs_jobs_and_reports_statuses(
    stack: Stack, fake_github: FakeGitHub, git_repo: GitRepo
):
    git_repo.commit({".forgeflow.yaml": JOB_FILE, "VERSION": "1"}, "first")
    sha = git_repo.commit({"VERSION": "2"}, "second", branch="feature")
    git_repo.commit({"VERSION": "3"}, "a later commit the job must not see", branch="feature")
    fake_github.add_repo(REPO, git_repo)
    payload = payloads.pull_request(REPO, git_repo.url, sha)

    response = stack.post("github", payload, "pull_request", secret=WEBHOOK_SECRET, delivery="d-1")
    assert response.status_code == 202, response.text

    final = fake_github.wait_final(["forgeflow/passes", "forgeflow/fails", "forgeflow/after-passes"])
    assert final["forgeflow/passes"] == "success"
    assert final["forgeflow/fails"] == "failure"
    # a failing job does not stop independent ones (no Argo failFast across jobs)
    assert final["forgeflow/after-passes"] == "success"
    assert fake_github.statuses_for("forgeflow/passes")[0] == "pending"
    assert fake_github.statuses_for("forgeflow/fails")[0] == "pending"
    assert fake_github.statuses_for("forgeflow/pushes-only") == []
    failing = [s for s in fake_github.statuses if s.context == "forgeflow/fails"][-1]
    assert "broken" in failing.description and "exit code 3" in failing.description
    assert failing.target_url.startswith(stack.url + "/runs/")
    assert all(s.sha == sha for s in fake_github.statuses)


def test_redelivery_starts_nothing_new(stack: Stack, fake_github: FakeGitHub, git_repo: GitRepo):
    sha = git_repo.commit({".forgeflow.yaml": JOB_FILE, "VERSION": "2"})
    fake_github.add_repo(REPO, git_repo)
    payload = payloads.pull_request(REPO, git_repo.url, sha)
    first = stack.post("github", payload, "pull_request", secret=WEBHOOK_SECRET, delivery="same-id")
    again = stack.post("github", payload, "pull_request", secret=WEBHOOK_SECRET, delivery="same-id")
    assert first.status_code == 202
    assert again.status_code == 200 and again.json()["duplicate"] is True
    fake_github.wait_final(["forgeflow/passes", "forgeflow/fails"])
    with stack.ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 1
        assert session.scalar(select(func.count()).select_from(Run)) == 1
    # queued and running are both "pending" on GitHub; each transition is posted once
    assert fake_github.statuses_for("forgeflow/passes") in (
        ["pending", "pending", "success"],
        ["pending", "success"],
    )


def test_bad_signature_stores_nothing(stack: Stack, fake_github: FakeGitHub, git_repo: GitRepo):
    payload = payloads.pull_request(REPO, git_repo.url, "a" * 40)
    response = stack.post("github", payload, "pull_request", secret="wrong secret")
    assert response.status_code == 401
    with stack.ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_broken_job_file_gets_a_config_status(stack: Stack, fake_github: FakeGitHub, git_repo: GitRepo):
    sha = git_repo.commit({".forgeflow.yaml": "version: 1\njobs:\n  lint:\n    steps: [{rnu: make}]\n"})
    fake_github.add_repo(REPO, git_repo)
    response = stack.post("github", payloads.push(REPO, git_repo.url, sha), "push", secret=WEBHOOK_SECRET)
    assert response.status_code == 202
    final = fake_github.wait_final(["forgeflow/config"])
    assert final == {"forgeflow/config": "failure"}
    description = fake_github.statuses[-1].description
    assert ".forgeflow.yaml:4" in description and "jobs.lint.steps[0]" in description
