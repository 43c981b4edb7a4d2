"""GitLab, Forgejo and Pagure over real HTTP: a signed delivery → worker → local executor →
watcher → statuses at a fake forge API (ogr pointed at it), as test_github_e2e does for GitHub.

One forgeflow (SQLite, embedded broker) serves all the fakes of this module: four forge
instances configured through ``forges:`` -- two GitLabs sharing a webhook secret, a Forgejo and
a Pagure. Each test has repositories of its own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from service.settings import load_settings
from service.store.models import Delivery, Run
from tests.conftest import WEBHOOK_SECRET
from tests.support import forge_payloads as fp
from tests.support.fake_forge import FakeForge
from tests.support.fake_forgejo import FakeForgejo
from tests.support.fake_gitlab import FakeGitLab, MergeRequest
from tests.support.fake_pagure import FakePagure, PullRequest
from tests.support.gitrepo import GitRepo
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

TOKEN = "t0ken"
CORP_WEB = "https://gitlab.corp.example"
JOB_FILE = """\
version: 1
defaults: {timeout: 2m}
jobs:
  passes:
    on: [pull_request, push]
    steps:
      - name: the source is the event's commit
        run: test "$(git rev-parse HEAD)" = "$FORGEFLOW_SHA" && test "$(cat VERSION)" = 2
  fails:
    on: [pull_request]
    steps: [{name: broken, run: "exit 3"}]
  pushes-only:
    on: [push]
    steps: [{run: "true"}]
"""


@dataclass
class Fakes:
    gitlab: FakeGitLab
    corp_gitlab: FakeGitLab
    forgejo: FakeForgejo
    pagure: FakePagure


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    servers = [HTTPServer(host="localhost", port=0) for _ in range(4)]
    for server in servers:
        server.start()
    yield Fakes(
        FakeGitLab(servers[0]), FakeGitLab(servers[1]), FakeForgejo(servers[2]), FakePagure(servers[3])
    )
    for server in servers:
        server.clear()
        server.stop()


@pytest.fixture(scope="module")
def stack(fakes: Fakes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    def instance(kind: str, fake: FakeForge, url: str = "") -> dict[str, str]:
        return {
            "kind": kind,
            "api_url": fake.url,
            "url": url,
            "token": TOKEN,
            "webhook_secret": WEBHOOK_SECRET,
        }

    settings = load_settings(
        environ={},
        overrides={
            "data_dir": tmp_path_factory.mktemp("forges") / "data",
            "log_level": "WARNING",
            "github_webhook_secret": WEBHOOK_SECRET,
            "forges": [
                instance("gitlab", fakes.gitlab, fp.GITLAB_WEB),
                instance("gitlab", fakes.corp_gitlab, CORP_WEB),
                instance("forgejo", fakes.forgejo),
                instance("pagure", fakes.pagure),
            ],
        },
    )
    built = Stack(settings)
    yield built
    built.close()


@dataclass
class Case:
    """One forge as a test drives it: its fake, how it names the repository, what it sends."""

    forge: str
    fake: FakeForge
    key: str  # the repository as the fake records it
    repo: GitRepo
    push_event: str
    pull_event: str
    success: str
    failure: str
    push: Callable[[str, str], dict[str, Any]]
    pull_request: Callable[[str], dict[str, Any]]
    file_read: str  # a fragment of the request path that reads the job file


def make_case(forge: str, fakes: Fakes, tmp_path: Path) -> Case:
    repo = GitRepo(tmp_path, "repo")
    name = f"proj-{uuid.uuid4().hex[:8]}"
    if forge == "gitlab":
        path = f"group/{name}"
        project = fakes.gitlab.add_project(path, repo)

        def gitlab_mr(sha: str) -> dict[str, Any]:
            fakes.gitlab.add_merge_request(MergeRequest(path, 7, path, "feature", "main", sha))
            return fp.gitlab_merge_request(path, repo.url, sha)

        return Case(
            forge, fakes.gitlab, path, repo, "Push Hook", "Merge Request Hook", "success", "failed",
            lambda sha, before: fp.gitlab_push(path, repo.url, sha, before), gitlab_mr,
            f"/projects/{project.id}/repository/files/.forgeflow.yaml",
        )  # fmt: skip
    if forge == "forgejo":
        full = f"owner/{name}"
        fakes.forgejo.add_repo(full, repo)
        return Case(
            forge, fakes.forgejo, full, repo, "push", "pull_request", "success", "failure",
            lambda sha, before: fp.forgejo_push(full, repo.url, sha, before),
            lambda sha: fp.forgejo_pull_request(full, repo.url, sha),
            f"/repos/{full}/contents/.forgeflow.yaml",
        )  # fmt: skip
    full = f"rpms/{name}"
    fakes.pagure.add_project(full, repo)
    url = fakes.pagure.url

    def pagure_pr(sha: str) -> dict[str, Any]:
        fakes.pagure.add_pull(PullRequest(full, 4, full, "feature", "main", sha))
        return fp.pagure_pull_request(url, full, sha, 4, str(uuid.uuid4()))

    return Case(
        forge, fakes.pagure, full, repo, "git.receive", "pull-request.new", "success", "failure",
        lambda sha, before: fp.pagure_push(url, full, sha, before, str(uuid.uuid4())), pagure_pr,
        f"/{full}/raw/",
    )  # fmt: skip


FORGES = ["gitlab", "forgejo", "pagure"]


@pytest.mark.parametrize("forge", FORGES)
def test_push_runs_jobs_and_reports_statuses_through_a_502(
    forge: str, stack: Stack, fakes: Fakes, tmp_path: Path
) -> None:
    case = make_case(forge, fakes, tmp_path)
    before = case.repo.commit({".forgeflow.yaml": JOB_FILE, "VERSION": "1"}, "first")
    sha = case.repo.commit({"VERSION": "2"}, "second")
    case.repo.git("push", "-q", "origin", f"{sha}:refs/heads/also-here")  # a branch GitLab would guess
    faults = case.fake.faults_served
    # The first status post answers 502 (pyforgejo tries 3 times itself): retried, not lost.
    case.fake.fail_status_posts = 3 if forge == "forgejo" else 1

    response = stack.post(forge, case.push(sha, before), case.push_event, secret=WEBHOOK_SECRET)
    assert response.status_code == 202, response.text

    final = case.fake.wait_final(["forgeflow/passes", "forgeflow/pushes-only"], repo=case.key)
    assert final == {"forgeflow/passes": case.success, "forgeflow/pushes-only": case.success}
    assert case.fake.faults_served == faults + (3 if forge == "forgejo" else 1)
    assert case.fake.statuses_for("forgeflow/passes", case.key)[0] == "pending"
    assert case.fake.statuses_for("forgeflow/pushes-only", case.key)[0] == "pending"
    assert case.fake.refusals(case.key, sha) == []  # every state posted is one the forge accepts
    assert [p for p in case.fake.asked("GET", case.file_read) if sha in p]
    posted = case.fake.posted(case.key)
    assert all(s.sha == sha for s in posted)
    assert all(s.target_url.startswith(stack.url + "/runs/") for s in posted)
    if forge == "gitlab":
        assert {s.ref for s in posted} == {"main"}  # the pushed branch, not a guess
    if forge == "pagure":
        assert all(s.pull_request is None for s in posted)  # commit flags
        assert len({s.uid for s in posted}) == 2  # one flag per context, updated in place


@pytest.mark.parametrize("forge", FORGES)
def test_pull_request_runs_jobs_and_reports_statuses(
    forge: str, stack: Stack, fakes: Fakes, tmp_path: Path
) -> None:
    case = make_case(forge, fakes, tmp_path)
    case.repo.commit({".forgeflow.yaml": JOB_FILE, "VERSION": "1"}, "first")
    sha = case.repo.commit({"VERSION": "2"}, "second", branch="feature")
    case.repo.git("push", "-q", "origin", f"{sha}:refs/heads/also-here")  # a branch GitLab would guess

    response = stack.post(forge, case.pull_request(sha), case.pull_event, secret=WEBHOOK_SECRET)
    assert response.status_code == 202, response.text

    final = case.fake.wait_final(["forgeflow/passes", "forgeflow/fails"], repo=case.key)
    assert final == {"forgeflow/passes": case.success, "forgeflow/fails": case.failure}
    assert case.fake.statuses_for("forgeflow/passes", case.key)[0] == "pending"
    assert case.fake.statuses_for("forgeflow/fails", case.key)[0] == "pending"
    assert case.fake.statuses_for("forgeflow/pushes-only", case.key) == []
    assert case.fake.refusals(case.key, sha) == []
    failing = [s for s in case.fake.posted(case.key) if s.context == "forgeflow/fails"][-1]
    assert "exit code 3" in failing.description
    assert all(s.sha == sha for s in case.fake.posted(case.key))
    if forge == "gitlab":
        assert {s.ref for s in case.fake.posted(case.key)} == {"feature"}  # the MR's source branch
    if forge == "pagure":
        assert {s.pull_request for s in case.fake.posted(case.key)} == {4}  # flags on the PR
        assert len([k for k in fakes.pagure.pr_flags if k[0] == case.key]) == 2


@pytest.mark.parametrize("forge", ["github", *FORGES])
def test_wrong_secret_or_no_signature_is_401_everywhere(forge: str, stack: Stack, fakes: Fakes) -> None:
    body = b'{"object_kind": "push", "topic": "git.receive", "ref": "refs/heads/main"}'
    event = {"github": "push", "gitlab": "Push Hook", "forgejo": "push", "pagure": "git.receive"}[forge]
    wrong = stack.post(forge, body, event, secret="not the secret")
    unsigned = stack.http.post(
        f"{stack.url}/api/webhooks/{forge}",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert (wrong.status_code, unsigned.status_code) == (401, 401)


def test_gitlab_merge_request_update_without_new_commits_starts_nothing(
    stack: Stack, fakes: Fakes, tmp_path: Path
) -> None:
    case = make_case("gitlab", fakes, tmp_path)
    case.repo.commit({".forgeflow.yaml": JOB_FILE, "VERSION": "1"})
    sha = case.repo.commit({"VERSION": "2"}, branch="feature")
    payload = fp.gitlab_merge_request(case.key, case.repo.url, sha, action="update")

    response = stack.post("gitlab", payload, "Merge Request Hook", secret=WEBHOOK_SECRET)

    assert response.status_code == 202
    assert "without new commits" in response.json()["ignored"]
    time.sleep(1)
    assert case.fake.posted(case.key) == []
    with stack.ctx.db.session() as session:
        assert session.scalars(select(Run).where(Run.repo == case.key)).all() == []


def test_forgejo_comment_on_a_pull_request_is_not_a_push(stack: Stack, fakes: Fakes, tmp_path: Path) -> None:
    case = make_case("forgejo", fakes, tmp_path)
    case.repo.commit({".forgeflow.yaml": JOB_FILE, "VERSION": "2"})
    sha = case.repo.commit({"VERSION": "2"}, branch="feature")
    payload = fp.forgejo_pull_request_comment(case.key, case.repo.url, sha)

    response = stack.post("forgejo", payload, "issue_comment", secret=WEBHOOK_SECRET, delivery="c-1")

    assert response.status_code == 202
    assert "comment on #3" in response.json()["event"]
    with stack.ctx.db.session() as session:
        delivery = session.scalars(select(Delivery).where(Delivery.delivery_id == "c-1")).one()
        assert '"kind":"comment"' in delivery.event_json
    time.sleep(1)
    with stack.ctx.db.session() as session:
        kinds = session.scalars(select(Run.event_kind).where(Run.repo == case.key)).all()
    assert "push" not in kinds
    assert case.fake.statuses_for("forgeflow/pushes-only", case.key) == []


def gitlab_fork(fakes: Fakes, tmp_path: Path, **fork_options: Any) -> tuple[str, str, str, GitRepo]:
    """A target project and a fork with a merge request's commit, as GitLab keeps them: the
    target holds the commit too, under refs/merge-requests/<iid>/head."""
    target, fork = GitRepo(tmp_path, "target"), GitRepo(tmp_path, "fork")
    name = f"proj-{uuid.uuid4().hex[:8]}"
    target_path, fork_path = f"group/{name}", f"alice/{name}"
    target.commit({".forgeflow.yaml": JOB_FILE, "VERSION": "1"})
    fork.git("pull", "-q", target.url, "main")
    sha = fork.commit({"VERSION": "2"}, branch="feature")
    fork.git("push", "-q", target.url, f"{sha}:refs/merge-requests/8/head")
    target_project = fakes.gitlab.add_project(target_path, target)
    target_project.members["alice"] = 30  # a Developer: her fork's merge requests run at once
    fakes.gitlab.add_project(fork_path, fork, forked_from=target_project.id, **fork_options)
    fakes.gitlab.add_merge_request(MergeRequest(target_path, 8, fork_path, "feature", "main", sha))
    return target_path, fork_path, sha, fork


def fork_payload(target_path: str, fork_path: str, sha: str, fork: GitRepo, tmp_path: Path) -> dict[str, Any]:
    return fp.gitlab_merge_request(
        target_path,
        str(tmp_path / "target.git"),
        sha,
        iid=8,
        source_path=fork_path,
        source_clone_url=fork.url,
    )


def test_gitlab_fork_merge_request_statuses_go_on_the_source_project(
    stack: Stack, fakes: Fakes, tmp_path: Path
) -> None:
    target_path, fork_path, sha, fork = gitlab_fork(fakes, tmp_path)
    payload = fork_payload(target_path, fork_path, sha, fork, tmp_path)

    assert stack.post("gitlab", payload, "Merge Request Hook", secret=WEBHOOK_SECRET).status_code == 202

    final = fakes.gitlab.wait_final(["forgeflow/passes", "forgeflow/fails"], repo=fork_path)
    assert final == {"forgeflow/passes": "success", "forgeflow/fails": "failed"}
    assert {s.ref for s in fakes.gitlab.posted(fork_path)} == {"feature"}
    assert fakes.gitlab.posted(target_path) == []
    assert [n for n in fakes.gitlab.notes if n.repo == target_path] == []


def test_gitlab_fork_without_access_gets_one_note_however_often_it_is_reported(
    stack: Stack, fakes: Fakes, tmp_path: Path
) -> None:
    target_path, fork_path, sha, fork = gitlab_fork(fakes, tmp_path, visible=False)  # a private fork
    payload = fork_payload(target_path, fork_path, sha, fork, tmp_path)

    for attempt in range(2):  # the same merge request delivered twice: two runs, one note
        delivery = f"fork-{target_path}-{attempt}"
        payload["attempt"] = attempt  # not a replay of the same signed body
        assert stack.post("gitlab", payload, "Merge Request Hook", secret=WEBHOOK_SECRET, delivery=delivery)
        assert fakes.gitlab.wait_for(
            lambda n=attempt + 1: (
                fakes.gitlab.statuses_for("forgeflow/passes", target_path).count("success") == n
                and fakes.gitlab.statuses_for("forgeflow/fails", target_path).count("failed") == n
            )
        ), fakes.gitlab.posted(target_path)
    again = stack.post("gitlab", payload, "Merge Request Hook", secret=WEBHOOK_SECRET, delivery=delivery)
    assert again.json().get("duplicate") is True

    assert fakes.gitlab.final_states(target_path)["forgeflow/fails"] == "failed"
    assert {s.ref for s in fakes.gitlab.posted(target_path)} == {"refs/merge-requests/8/head"}
    assert fakes.gitlab.posted(fork_path) == []
    notes = [n for n in fakes.gitlab.notes if n.repo == target_path]
    assert len(notes) == 1, notes
    assert notes[0].number == 8 and fork_path in notes[0].body and "Developer" in notes[0].body


def test_two_gitlab_instances_sharing_a_secret_each_report_to_their_own(
    stack: Stack, fakes: Fakes, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path, "corp")
    before = repo.commit({".forgeflow.yaml": JOB_FILE, "VERSION": "1"})
    sha = repo.commit({"VERSION": "2"})
    path = f"corp/proj-{uuid.uuid4().hex[:8]}"
    fakes.corp_gitlab.add_project(path, repo)
    fakes.gitlab.add_project(path, repo)  # the same name on gitlab.example.com must stay untouched
    payload = fp.gitlab_push(path, repo.url, sha, before, web=CORP_WEB)

    assert stack.post("gitlab", payload, "Push Hook", secret=WEBHOOK_SECRET).status_code == 202

    final = fakes.corp_gitlab.wait_final(["forgeflow/passes", "forgeflow/pushes-only"], repo=path)
    assert set(final.values()) == {"success"}
    assert fakes.gitlab.posted(path) == [] and fakes.gitlab.asked("GET", path) == []
    with stack.ctx.db.session() as session:
        assert session.scalars(select(Run.instance).where(Run.repo == path)).one() == "gitlab.corp.example"
