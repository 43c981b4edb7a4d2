"""Comment commands, permissions and fork safety over real HTTP with the fake GitHub (issue 5)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from service.store.models import Run
from tests.conftest import WEBHOOK_SECRET
from tests.support import payloads
from tests.support.fake_github import FakeGitHub
from tests.support.gitrepo import GitRepo
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

REPO = "octo/hello"
FORK = "mallory/hello"
MAINTAINER = "maria"
STRANGER = "mallory"

JOB_FILE = """\
version: 1
jobs:
  lint:
    on: [pull_request, comment]
    steps: [{name: lint, run: "true"}]
  unit:
    on: [pull_request, comment]
    steps: [{name: unit, run: "test ! -f FAIL"}]
  smoke:
    on: {comment: {command: smoke}}
    steps: ["true"]
  slow:
    on: {comment: {command: slow}}
    steps: ["sleep 60"]
"""


@pytest.fixture
def stack(make_settings, fake_github: FakeGitHub) -> Iterator[Stack]:
    settings = make_settings(
        github_webhook_secret=WEBHOOK_SECRET, github_token="t0ken", github_api_url=fake_github.api_url
    )
    built = Stack(settings)
    yield built
    built.close()


@pytest.fixture
def pull(fake_github: FakeGitHub, git_repo: GitRepo) -> str:
    """Pull request #7 of octo/hello at a head commit whose `unit` fails; maria may write."""
    git_repo.commit({".forgeflow.yaml": JOB_FILE}, "base")
    head = git_repo.commit({"FAIL": "yes"}, "head", branch="feature")
    fake_github.add_repo(REPO, git_repo)
    fake_github.add_pull(REPO, 7, base_sha=git_repo.git("rev-parse", "main"), head_sha=head, author="alice")
    fake_github.permissions[(REPO, MAINTAINER)] = "write"
    return head


def comment(
    stack: Stack, git_repo: GitRepo, body: str, author: str, comment_id: int = 555, delivery: str = ""
):
    payload = payloads.issue_comment(REPO, git_repo.url, 7, body, author, comment_id)
    response = stack.post(
        "github", payload, "issue_comment", secret=WEBHOOK_SECRET, delivery=delivery or None
    )
    assert response.status_code == 202, response.text


def wait_for_reply(fake_github: FakeGitHub, count: int = 1, timeout: float = 30) -> list[str]:
    assert fake_github.wait_for(lambda: len(fake_github.comments) >= count, timeout), fake_github.comments
    return fake_github.replies()


def runs(stack: Stack) -> int:
    with stack.ctx.db.session() as session:
        return session.scalar(select(func.count()).select_from(Run)) or 0


def test_a_maintainers_test_lint_runs_only_lint(stack, fake_github, git_repo, pull):
    comment(stack, git_repo, "/forgeflow test lint", MAINTAINER)
    assert fake_github.wait_final(["forgeflow/lint"]) == {"forgeflow/lint": "success"}
    assert {s.context for s in fake_github.statuses} == {"forgeflow/lint"}
    assert all(s.sha == pull for s in fake_github.statuses)
    reply = wait_for_reply(fake_github)[0]
    assert "Started by @maria" in reply and f"{stack.url}/runs/" in reply
    assert (REPO, 555, "+1") in fake_github.reactions


def test_a_strangers_comment_runs_nothing_and_says_who_can(stack, fake_github, git_repo, pull):
    comment(stack, git_repo, "/forgeflow test", STRANGER)
    reply = wait_for_reply(fake_github)[0]
    assert "@mallory: only people with write access to octo/hello" in reply
    assert "ok-to-test" in reply
    assert fake_github.statuses == [] and runs(stack) == 0


def test_retest_reruns_only_the_failed_job(stack, fake_github, git_repo, pull):
    comment(stack, git_repo, "/forgeflow test", MAINTAINER, comment_id=1)
    assert fake_github.wait_final(["forgeflow/lint", "forgeflow/unit"]) == {
        "forgeflow/lint": "success",
        "forgeflow/unit": "failure",
    }
    before = len(fake_github.statuses_for("forgeflow/lint"))
    comment(stack, git_repo, "/forgeflow retest", MAINTAINER, comment_id=2)
    assert fake_github.wait_for(lambda: len(fake_github.statuses_for("forgeflow/unit")) >= 4, 30)
    assert fake_github.wait_for(lambda: fake_github.statuses_for("forgeflow/unit")[-1] == "failure", 30)
    assert len(fake_github.statuses_for("forgeflow/lint")) == before, "lint passed: not rerun"
    assert "Retest by @maria" in wait_for_reply(fake_github, 2)[-1]


def test_cancel_ends_running_jobs_as_error(stack, fake_github, git_repo, pull):
    comment(stack, git_repo, "/forgeflow slow", MAINTAINER, comment_id=1)
    assert fake_github.wait_for(
        lambda: (
            "forgeflow/slow" in fake_github.final_states()
            or len(fake_github.statuses_for("forgeflow/slow")) >= 1
        ),
        30,
    )
    time.sleep(1)
    comment(stack, git_repo, "/forgeflow cancel", MAINTAINER, comment_id=2)
    final = fake_github.wait_final(["forgeflow/slow"])
    assert final["forgeflow/slow"] == "error"
    last = [s for s in fake_github.statuses if s.context == "forgeflow/slow"][-1]
    assert last.description == "cancelled by @maria"


def test_one_comment_delivered_twice_starts_once(stack, fake_github, git_repo, pull):
    comment(stack, git_repo, "/forgeflow smoke", MAINTAINER, comment_id=9, delivery="first")
    payload = payloads.issue_comment(REPO, git_repo.url, 7, "/forgeflow smoke", MAINTAINER, 9)
    # the same signed body under another delivery id (a replay) is a duplicate at the door...
    replay = stack.post("github", payload, "issue_comment", secret=WEBHOOK_SECRET, delivery="second")
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    # ...and the same comment in a body that differs elsewhere is handled once by the worker
    payload["installation"] = {"id": 1}
    again = stack.post("github", payload, "issue_comment", secret=WEBHOOK_SECRET, delivery="third")
    assert again.status_code == 202, again.text
    fake_github.wait_final(["forgeflow/smoke"])
    time.sleep(2)  # let the second delivery be processed too
    assert runs(stack) == 1
    assert len(fake_github.replies()) == 1


def test_help_unknown_commands_and_unknown_jobs_get_helpful_replies(stack, fake_github, git_repo, pull):
    comment(stack, git_repo, "/forgeflow help", STRANGER, comment_id=1)
    assert "Jobs in this repository: `lint`, `unit`, `smoke`, `slow`" in wait_for_reply(fake_github)[0]
    comment(stack, git_repo, "/forgeflow deploy", MAINTAINER, comment_id=2)
    assert "I don't know `/forgeflow deploy`" in wait_for_reply(fake_github, 2)[-1]
    comment(stack, git_repo, "/forgeflow test nope", MAINTAINER, comment_id=3)
    assert "No job named `nope`" in wait_for_reply(fake_github, 3)[-1]
    assert runs(stack) == 0


@pytest.fixture
def fork_pull(fake_github: FakeGitHub, git_repo: GitRepo, tmp_path) -> tuple[GitRepo, str]:
    """A fork by a stranger whose pull request changes the job file: a new job and a secret."""
    git_repo.commit({".forgeflow.yaml": JOB_FILE}, "base")
    fork = GitRepo(tmp_path, "fork")
    fork.git("fetch", "-q", str(git_repo.bare), "main")
    fork.git("checkout", "-q", "-B", "feature", "FETCH_HEAD")
    evil = JOB_FILE.replace(
        'steps: [{name: lint, run: "true"}]', 'secrets: [deploy-key]\n    steps: ["true"]'
    )
    evil += '  evil:\n    on: [pull_request]\n    steps: ["true"]\n'
    head = fork.commit({".forgeflow.yaml": evil}, "take over", branch="feature")
    fake_github.add_repo(REPO, git_repo)
    fake_github.add_repo(FORK, fork)
    fake_github.add_pull(
        REPO, 7, git_repo.git("rev-parse", "main"), head, author=STRANGER, head_full_name=FORK
    )
    fake_github.permissions[(REPO, MAINTAINER)] = "write"
    return fork, head


def open_fork_pull(stack: Stack, git_repo: GitRepo, fork: GitRepo, sha: str, action: str = "opened") -> None:
    payload = payloads.pull_request(
        REPO,
        git_repo.url,
        sha,
        number=7,
        action=action,
        head_full_name=FORK,
        head_clone_url=fork.url,
        author=STRANGER,
    )
    assert stack.post("github", payload, "pull_request", secret=WEBHOOK_SECRET).status_code == 202


def test_a_strangers_fork_waits_for_approval_then_runs(stack, fake_github, git_repo, fork_pull):
    fork, head = fork_pull
    open_fork_pull(stack, git_repo, fork, head)
    assert fake_github.wait_for(lambda: len(fake_github.statuses) >= 2, 30)
    time.sleep(1)
    assert {s.state for s in fake_github.statuses} == {"pending"}
    assert all("waiting for approval" in s.description for s in fake_github.statuses)
    # the fork's job file is not used: no `evil` job, and `lint` gets no secret
    assert {s.context for s in fake_github.statuses} == {"forgeflow/lint", "forgeflow/unit"}

    comment(stack, git_repo, "/forgeflow ok-to-test", MAINTAINER, comment_id=5)
    final = fake_github.wait_final(["forgeflow/lint", "forgeflow/unit"])
    assert final == {"forgeflow/lint": "success", "forgeflow/unit": "success"}
    assert "approved" in wait_for_reply(fake_github)[0]
    with stack.ctx.db.session() as session:
        manifest = json.loads(session.scalars(select(Run.manifest_json)).first())
    assert "deploy-key" not in json.dumps(manifest)
    sources = {
        t["inputs"]["artifacts"][0]["git"]["repo"] for t in manifest["spec"]["templates"] if "inputs" in t
    }
    assert sources == {fork.url}, "the fork's commit is what runs"

    # a new commit needs a new approval
    newer = fork.commit({"README": "more"}, "more", branch="feature")
    fake_github.add_pull(
        REPO, 7, git_repo.git("rev-parse", "main"), newer, author=STRANGER, head_full_name=FORK
    )
    open_fork_pull(stack, git_repo, fork, newer, action="synchronize")
    assert fake_github.wait_for(
        lambda: any(s.sha == newer and "waiting for approval" in s.description for s in fake_github.statuses),
        30,
    )
    time.sleep(1)
    assert all(s.state == "pending" for s in fake_github.statuses if s.sha == newer)


def test_a_stranger_cannot_approve(stack, fake_github, git_repo, fork_pull):
    fork, head = fork_pull
    open_fork_pull(stack, git_repo, fork, head)
    assert fake_github.wait_for(lambda: len(fake_github.statuses) >= 2, 30)
    comment(stack, git_repo, "/forgeflow ok-to-test", STRANGER, comment_id=6)
    assert "only people with write access" in wait_for_reply(fake_github)[0]
    time.sleep(1)
    assert {s.state for s in fake_github.statuses} == {"pending"}


def test_githubs_rerun_button_reruns_the_failed_jobs(stack, fake_github, git_repo, pull):
    comment(stack, git_repo, "/forgeflow test", MAINTAINER, comment_id=1)
    fake_github.wait_final(["forgeflow/lint", "forgeflow/unit"])
    lint_before = len(fake_github.statuses_for("forgeflow/lint"))
    unit_before = len(fake_github.statuses_for("forgeflow/unit"))
    payload = {
        "action": "rerequested",
        "check_suite": {"head_sha": pull, "head_branch": "feature", "pull_requests": [{"number": 7}]},
        "repository": payloads.repository(REPO, git_repo.url),
        "sender": {"login": MAINTAINER},
    }
    assert stack.post("github", payload, "check_suite", secret=WEBHOOK_SECRET).status_code == 202
    assert fake_github.wait_for(
        lambda: len(fake_github.statuses_for("forgeflow/unit")) >= unit_before + 2, 30
    )
    assert fake_github.wait_for(lambda: fake_github.statuses_for("forgeflow/unit")[-1] == "failure", 30)
    assert len(fake_github.statuses_for("forgeflow/lint")) == lint_before
