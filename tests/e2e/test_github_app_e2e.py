"""forgeflow as a GitHub App over real HTTP: a signed delivery → worker → local executor →
watcher → check runs at a fake GitHub that checks the App's JWT and installation tokens.

Proves: check runs created ``queued`` at once, ``in_progress`` with ``started_at``, completed
with the conclusion, summary, log tail and annotations, each transition one request; tokens
replaced when GitHub stops taking them; a 403 secondary rate limit with ``Retry-After`` waited
out without losing the transition; the merge queue; the Re-run buttons and who may press them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from service.forges.installations import InstallationStore
from tests.conftest import WEBHOOK_SECRET
from tests.support import payloads
from tests.support.fake_github import FakeGitHub
from tests.support.fake_github_app import make_app_key
from tests.support.gitrepo import GitRepo
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

REPO = "octo/hello"
APP_ID = 4242
INSTALLATION = 77
MAINTAINER = "maria"
STRANGER = "mallory"
JOB_FILE = """\
version: 1
defaults: {timeout: 2m}
jobs:
  passes:
    on: [pull_request, push]
    steps: [{name: wait a little, run: "sleep 1"}]
  lint:
    on: [pull_request]
    steps:
      - {name: setup, run: "echo setting up"}
      - name: ruff
        run: |
          echo "src/app.py:3:8: F401 [*] 'os' imported but unused"
          echo "./tests/test_app.py:12: AssertionError"
          echo "/usr/include/stdio.h:1:1: warning: not ours"
          echo "Found 2 errors."
          exit 1
  docs:
    on: [pull_request]
    paths: ["docs/**"]
    required: true
    steps: [{run: "true"}]
  queue:
    on: [merge_group]
    steps: [{run: "true"}]
"""


@pytest.fixture
def app_key() -> tuple[str, str]:
    return make_app_key()


@pytest.fixture
def stack(make_settings, fake_github: FakeGitHub, app_key: tuple[str, str]) -> Iterator[Stack]:
    private, public = app_key
    fake_github.enable_app(APP_ID, public, {INSTALLATION: [REPO]})
    settings = make_settings(
        github_webhook_secret=WEBHOOK_SECRET,
        github_api_url=fake_github.api_url,
        github_app_id=str(APP_ID),
        github_app_private_key=private,
        sweep_seconds=1,
    )
    built = Stack(settings)
    yield built
    built.close()


@pytest.fixture
def pull(fake_github: FakeGitHub, git_repo: GitRepo) -> str:
    base = git_repo.commit({".forgeflow.yaml": JOB_FILE, "src/app.py": "import os\n"}, "base")
    head = git_repo.commit({"src/app.py": "import os\nimport sys\n"}, "head", branch="feature")
    fake_github.add_repo(REPO, git_repo)
    fake_github.add_pull(REPO, 7, base_sha=base, head_sha=head, author="alice")
    fake_github.permissions[(REPO, MAINTAINER)] = "write"
    return head


def deliver(stack: Stack, payload: dict[str, Any], event: str) -> None:
    response = stack.post("github", payload, event, secret=WEBHOOK_SECRET)
    assert response.status_code == 202, response.text


def with_installation(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "installation": {"id": INSTALLATION, "node_id": "MDIz"}}


def test_a_pull_request_gets_check_runs_with_summary_log_and_annotations(
    stack: Stack, fake_github: FakeGitHub, git_repo: GitRepo, pull: str
) -> None:
    deliver(stack, with_installation(payloads.pull_request(REPO, git_repo.url, pull)), "pull_request")

    runs = fake_github.wait_check_runs(["forgeflow/passes", "forgeflow/lint", "forgeflow/docs"])
    passes, lint, docs = runs["forgeflow/passes"], runs["forgeflow/lint"], runs["forgeflow/docs"]
    assert passes.statuses[0] == "queued" and passes.statuses[-1] == "completed:success"
    assert "in_progress" in passes.statuses
    running = next(b for b in passes.bodies if b["status"] == "in_progress")
    assert running["started_at"].endswith("Z")
    assert len(passes.statuses) == len(set(passes.statuses)), "each transition is one request"
    assert passes["details_url"].startswith(stack.url + "/runs/")
    assert passes["external_id"].endswith("/passes")
    assert all(c.head_sha == pull for c in fake_github.check_runs)

    assert lint["conclusion"] == "failure"
    output = lint["output"]
    assert "ruff" in output["summary"] and "exit code 1" in output["summary"]
    assert "| `passes` |" in output["summary"] and "| `lint` |" in output["summary"]
    assert "Found 2 errors." in output["text"] and "echo setting up" not in output["text"]
    notes = {(a["path"], a["start_line"]): a for a in output["annotations"]}
    assert set(notes) == {("src/app.py", 3), ("tests/test_app.py", 12)}
    assert notes[("src/app.py", 3)]["start_column"] == 8
    assert "F401" in notes[("src/app.py", 3)]["message"]
    assert lint["actions"][0]["identifier"] == "rerun-failed"

    # `docs` is required and its path filter skipped it: a passing, skipped check run
    assert docs["conclusion"] == "skipped" and docs.statuses == ["completed:skipped"]
    assert "docs/**" in docs["output"]["title"]
    assert fake_github.statuses == [], "App mode reports check runs, not statuses"
    # one JWT-authenticated token request served every call of the run
    assert len(fake_github.tokens_minted) == 1 and fake_github.auth_refusals == []
    assert fake_github.asked("GET", "/installation") == [], "the delivery named the installation"


def test_an_expired_token_is_replaced_and_nothing_is_lost(
    stack: Stack, fake_github: FakeGitHub, git_repo: GitRepo, pull: str
) -> None:
    deliver(stack, payloads.pull_request(REPO, git_repo.url, pull), "pull_request")  # no installation id
    assert fake_github.wait_for(lambda: len(fake_github.check_run_named("forgeflow/passes")) == 1, 30)
    fake_github.expire_tokens()
    runs = fake_github.wait_check_runs(["forgeflow/passes", "forgeflow/lint"])
    assert runs["forgeflow/passes"]["conclusion"] == "success"
    assert fake_github.auth_refusals, "GitHub refused the expired token at least once"
    assert len(fake_github.tokens_minted) >= 2
    assert len(fake_github.asked("GET", f"/repos/{REPO}/installation")) == 1, "looked up once, then cached"
    assert [c.name for c in fake_github.check_runs].count("forgeflow/passes") == 1


def test_a_secondary_rate_limit_is_waited_out(
    stack: Stack, fake_github: FakeGitHub, git_repo: GitRepo, pull: str
) -> None:
    fake_github.rate_limit_next(2, retry_after=1)
    started = time.monotonic()
    deliver(stack, with_installation(payloads.pull_request(REPO, git_repo.url, pull)), "pull_request")
    runs = fake_github.wait_check_runs(["forgeflow/passes", "forgeflow/lint", "forgeflow/docs"])
    assert len(fake_github.rate_limit_answers) == 2
    assert runs["forgeflow/passes"]["conclusion"] == "success"
    assert runs["forgeflow/passes"].statuses[0] == "queued", "the queued transition was not lost"
    created = [c for c in fake_github.check_runs]
    assert len({c.name for c in created}) == len(created), "no check run was created twice"
    assert time.monotonic() - started >= 1, "the Retry-After second was waited"


def test_installation_events_are_kept_and_a_merge_group_runs_on_its_head(
    stack: Stack, fake_github: FakeGitHub, git_repo: GitRepo, pull: str
) -> None:
    added = {
        "action": "added",
        "installation": {"id": INSTALLATION, "account": {"login": "octo"}, "app_id": APP_ID},
        "repository_selection": "selected",
        "repositories_added": [{"id": 1, "name": "hello", "full_name": REPO, "private": True}],
        "repositories_removed": [],
        "sender": {"login": "octo"},
    }
    deliver(stack, added, "installation_repositories")
    store, instance = InstallationStore(stack.ctx.db), stack.ctx.forges.instances[0].name
    deadline = time.monotonic() + 30
    while store.find(instance, REPO) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.find(instance, REPO) == INSTALLATION

    group_head = git_repo.commit({"MERGED": "1"}, "merge group", branch="gh-readonly-queue/main/pr-7-abc")
    payload = {  # no installation id: the one the installation webhook named is used
        "action": "checks_requested",
        "merge_group": {
            "head_sha": group_head,
            "head_ref": "refs/heads/gh-readonly-queue/main/pr-7-abc",
            "base_sha": git_repo.git("rev-parse", "main"),
            "base_ref": "refs/heads/main",
            "head_commit": {"id": group_head, "message": "merge group"},
        },
        "repository": payloads.repository(REPO, git_repo.url),
        "sender": {"login": "octocat"},
    }
    deliver(stack, payload, "merge_group")
    runs = fake_github.wait_check_runs(["forgeflow/queue"])
    assert runs["forgeflow/queue"]["conclusion"] == "success"
    assert {c.name for c in fake_github.check_runs} == {"forgeflow/queue"}
    assert all(c.head_sha == group_head for c in fake_github.check_runs)
    assert fake_github.asked("GET", "/installation") == [], "the installation webhook said which"


def rerun_payload(
    git_repo: GitRepo, sha: str, event: str, action: str, sender: str, **check: Any
) -> dict[str, Any]:
    suite = {
        "id": 5,
        "head_sha": sha,
        "head_branch": "feature",
        "pull_requests": [
            {"number": 7, "head": {"ref": "feature", "sha": sha}, "base": {"ref": "main", "sha": "2" * 40}}
        ],
    }
    payload: dict[str, Any] = {
        "action": action,
        "repository": payloads.repository(REPO, git_repo.url),
        "sender": {"login": sender},
    }
    if event == "check_suite":
        payload["check_suite"] = suite
    else:
        payload["check_run"] = {"id": 1, "head_sha": sha, "check_suite": suite, **check}
    return with_installation(payload)


def completed_runs(fake_github: FakeGitHub, name: str) -> int:
    return sum(1 for c in fake_github.check_run_named(name) if c["status"] == "completed")


@pytest.mark.parametrize(
    ("event", "action", "check"),
    [
        ("check_run", "rerequested", {"name": "forgeflow/lint", "external_id": ""}),
        ("check_suite", "rerequested", {}),
        ("check_run", "requested_action", {"name": "forgeflow/lint", "requested_action": None}),
    ],
)
def test_re_run_buttons_run_the_failed_jobs_again_for_writers_only(
    stack: Stack, fake_github: FakeGitHub, git_repo: GitRepo, pull: str, event: str, action: str, check: dict
) -> None:
    deliver(stack, with_installation(payloads.pull_request(REPO, git_repo.url, pull)), "pull_request")
    fake_github.wait_check_runs(["forgeflow/passes", "forgeflow/lint", "forgeflow/docs"])
    lint_before = fake_github.check_run_named("forgeflow/lint")[-1]
    extra = dict(check)
    if "external_id" in extra:
        extra["external_id"] = lint_before["external_id"]
    payload_extra: dict[str, Any] = {}
    if "requested_action" in extra:
        extra.pop("requested_action")
        payload_extra["requested_action"] = {"identifier": "rerun-failed"}

    refused = rerun_payload(git_repo, pull, event, action, STRANGER, **extra) | payload_extra
    deliver(stack, refused, event)
    assert fake_github.wait_for(lambda: any("@mallory" in r for r in fake_github.replies(7)), 30)
    assert completed_runs(fake_github, "forgeflow/lint") == 1, "a stranger re-runs nothing"

    allowed = rerun_payload(git_repo, pull, event, action, MAINTAINER, **extra) | payload_extra
    deliver(stack, allowed, event)
    assert fake_github.wait_for(lambda: completed_runs(fake_github, "forgeflow/lint") == 2, 60)
    assert len(fake_github.check_run_named("forgeflow/passes")) == 1, "passes did not fail: not re-run"
    assert len(fake_github.check_run_named("forgeflow/docs")) == 1
