"""Path filters ask the forge over HTTP: a fake GitHub serving real pagination and caps."""

from __future__ import annotations

import dataclasses

import pytest

from service.events import Event, EventKind, PullRequest, Repository
from service.forges.github import GithubForge
from service.jobs.loader import load_job_file
from service.jobs.matcher import match_jobs
from service.runs.sources import forge_changed_files
from service.settings import ForgeInstance
from tests.support.fake_github import FakeGitHub
from tests.support.gitrepo import GitRepo

NAME = "octo/big"


@pytest.fixture
def forge(fake_github: FakeGitHub) -> GithubForge:
    return GithubForge(ForgeInstance(kind="github", api_url=fake_github.api_url, token="t0ken"))


@pytest.fixture
def repo(fake_github: FakeGitHub, git_repo: GitRepo) -> tuple[Repository, str, str]:
    base = git_repo.commit({"README": "1", "docs/a.md": "1"})
    head = git_repo.commit({"src/a.py": "1", "src/b.py": "1"}, branch="feature")
    fake_github.add_repo(NAME, git_repo)
    return Repository("octo", "big", git_repo.url, default_branch="main"), base, head


def pull_event(repository: Repository, number: int, head: str) -> Event:
    return Event(
        "github",
        EventKind.PULL_REQUEST,
        repository,
        head,
        action="synchronize",
        pull_request=PullRequest(number, target_branch="main", head_sha=head),
    )


def test_a_large_pull_request_is_read_page_by_page(fake_github: FakeGitHub, forge: GithubForge, repo):
    repository, base, head = repo
    files = [f"pkg/module_{i:04}.py" for i in range(2500)] + ["docs/guide.md"]
    fake_github.add_pull(NAME, 12, base, head)
    fake_github.set_pull_files(NAME, 12, files)
    assert forge.pull_request_files(repository, 12) == sorted(files)
    pages = fake_github.asked("GET", f"/repos/{NAME}/pulls/12/files?")
    assert len(pages) > 25  # every page was asked for, following the Link headers

    job_file = load_job_file("version: 1\njobs:\n  docs:\n    paths: ['docs/**']\n    steps: [x]\n")
    (decision,) = match_jobs(
        pull_event(repository, 12, head),
        job_file,
        forge_changed_files(forge, pull_event(repository, 12, head)),
    )
    assert decision.matched and "2501 changed files match" in decision.reason


def test_at_githubs_cap_the_list_is_unknown_and_path_filters_let_the_job_run(
    fake_github: FakeGitHub, forge: GithubForge, repo
):
    repository, base, head = repo
    fake_github.add_pull(NAME, 13, base, head)
    fake_github.set_pull_files(NAME, 13, [f"f{i}" for i in range(3500)])
    assert forge.pull_request_files(repository, 13) is None
    job_file = load_job_file("version: 1\njobs:\n  docs:\n    paths: ['docs/**']\n    steps: [x]\n")
    event = pull_event(repository, 13, head)
    (decision,) = match_jobs(event, job_file, forge_changed_files(forge, event))
    assert decision.matched and "could not list the changed files" in decision.reason


def test_a_pull_requests_files_default_to_its_diff(fake_github: FakeGitHub, forge: GithubForge, repo):
    repository, base, head = repo
    fake_github.add_pull(NAME, 14, base, head)
    assert forge.pull_request_files(repository, 14) == ["src/a.py", "src/b.py"]


def test_a_push_compares_before_and_after_and_a_new_branch_the_default_branch(
    fake_github: FakeGitHub, forge: GithubForge, repo
):
    repository, base, head = repo
    push = Event("github", EventKind.PUSH, repository, head, branch="feature", before=base)
    assert forge_changed_files(forge, push)() == ["src/a.py", "src/b.py"]
    created = dataclasses.replace(push, before="0" * 40, created=True)
    assert forge_changed_files(forge, created)() == ["src/a.py", "src/b.py"]
    assert fake_github.asked("GET", f"/repos/{NAME}/compare/main...{head}")
    listed = dataclasses.replace(push, changed_files=("from/the/payload",))
    before = len(fake_github.requests)
    assert forge_changed_files(forge, listed)() == ("from/the/payload",)
    assert len(fake_github.requests) == before  # the payload's complete list needs no request


def test_an_unknown_base_means_unknown_files(fake_github: FakeGitHub, forge: GithubForge, repo):
    repository, _, head = repo
    push = Event("github", EventKind.PUSH, repository, head, branch="feature", before="1" * 40)
    assert forge_changed_files(forge, push)() is None


def test_a_commits_changed_files_are_asked_for_once(fake_github: FakeGitHub, forge: GithubForge, repo):
    repository, base, head = repo
    fake_github.add_pull(NAME, 15, base, head)
    for _ in range(3):  # e.g. the pull request's event, then a retest of the same commit
        assert forge_changed_files(forge, pull_event(repository, 15, head))() == ["src/a.py", "src/b.py"]
    assert len(fake_github.asked("GET", f"/repos/{NAME}/pulls/15/files")) == 1
    newer = forge_changed_files(forge, pull_event(repository, 15, base))  # another head: asked again
    newer()
    assert len(fake_github.asked("GET", f"/repos/{NAME}/pulls/15/files")) == 2
