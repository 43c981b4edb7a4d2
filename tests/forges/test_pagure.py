"""The Pagure forge against a fake Pagure over real HTTP: ogr's requests-based client."""

from __future__ import annotations

import pytest

from service.events import Repository
from service.forges.base import ForgeError, StatusReport, TransientForgeError
from service.forges.pagure import PagureForge, flag_uid, project_parts
from tests.forges.conftest import post, shown
from tests.support.fake_pagure import FakePagure, PullRequest
from tests.support.gitrepo import GitRepo

FULL = "rpms/foo"
REPO = Repository("rpms", "foo", "")
URL = "https://forgeflow.example/runs/1#job-a"


@pytest.fixture
def hosted(fake_pagure: FakePagure, repo: GitRepo):
    fake_pagure.groups["packagers"] = ["carol"]
    users = {
        "owner": ["pingou"],
        "admin": ["dan"],
        "commit": ["alice"],
        "collaborator": ["erin"],
        "ticket": ["bob"],
    }
    return fake_pagure.add_project(FULL, repo, users=users, groups={"commit": ["packagers"]})


def head(repo: GitRepo, ref: str = "feature") -> str:
    return repo.git("rev-parse", ref)


def status(state: str, description: str = "", **extra: object) -> StatusReport:
    return StatusReport("forgeflow/a", state, description or state, URL, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("full_name", "parts"),
    [
        ("rpms/foo", ("rpms", "foo", None)),
        ("pagure", (None, "pagure", None)),
        ("forks/alice/rpms/foo", ("rpms", "foo", "alice")),
        ("forks/alice/pagure", (None, "pagure", "alice")),
    ],
)
def test_project_names_as_webhooks_give_them(full_name: str, parts):
    namespace, _, name = full_name.rpartition("/")
    assert project_parts(Repository(namespace, name, "")) == parts


def test_files_and_refs(pagure: PagureForge, hosted, repo):
    sha, base = head(repo), head(repo, "main")
    assert pagure.read_file(REPO, ".forgeflow.yaml", sha) == "version: 1\n"
    assert pagure.read_file(REPO, "missing.yaml", sha) is None
    assert pagure.resolve_ref(REPO, "refs/heads/feature") == sha
    assert pagure.resolve_ref(REPO, "refs/tags/v1") == base
    assert pagure.changed_files(REPO, base, sha) is None  # Pagure cannot compare commits


def test_a_push_flags_the_commit_in_place(pagure: PagureForge, fake_pagure: FakePagure, hosted, repo):
    sha = head(repo)
    for state, description in [("pending", "queued"), ("running", "running"), ("error", "no pod")]:
        post(pagure, REPO, sha, status(state, description))
    assert [(s.state, s.description) for s in fake_pagure.statuses] == [
        ("pending", "queued"),
        ("pending", "running"),
        ("error", "no pod"),
    ]
    assert list(fake_pagure.commit_flags) == [(sha, flag_uid(REPO, "forgeflow/a"))]  # one flag, updated
    assert len(flag_uid(REPO, "forgeflow/a")) <= 32
    [read] = shown(pagure, REPO, sha)
    assert (read.context, read.state, read.description, read.target_url) == (
        "forgeflow/a",
        "error",
        "no pod",
        URL,
    )
    post(pagure, REPO, sha, status("error", "superseded by abc1234"))
    assert fake_pagure.statuses[-1].state == "canceled"


def test_a_pull_request_gets_pull_request_flags(pagure: PagureForge, fake_pagure: FakePagure, hosted, repo):
    sha = head(repo)
    fake_pagure.add_pull(PullRequest(FULL, 4, FULL, "feature", "main", sha))
    post(pagure, REPO, sha, status("pending", pull_request=4))
    post(pagure, REPO, sha, status("success", "passed", pull_request=4))
    assert [(s.pull_request, s.state) for s in fake_pagure.statuses] == [(4, "pending"), (4, "success")]
    assert fake_pagure.commit_flags == {}
    assert len(fake_pagure.pr_flags) == 1
    assert fake_pagure.refused == []


def test_errors_are_sorted(pagure: PagureForge, fake_pagure: FakePagure, hosted, repo):
    sha = head(repo)
    fake_pagure.fail_status_posts = 1  # ogr's GitForgeInternalError names the status only in text
    with pytest.raises(TransientForgeError, match="HTTP 502"):
        post(pagure, REPO, sha, status("pending"))
    with pytest.raises(ForgeError) as missing:  # no such pull request: do not retry
        post(pagure, REPO, sha, status("pending", pull_request=99))
    assert not isinstance(missing.value, TransientForgeError)


def test_pull_request_files_and_info(pagure: PagureForge, fake_pagure: FakePagure, hosted, repo, tmp_path):
    sha = head(repo)
    fake_pagure.add_pull(PullRequest(FULL, 4, FULL, "feature", "main", sha))
    assert pagure.pull_request_files(REPO, 4) == ["docs/b.md", "old.txt", "renamed.txt", "src/a.py"]
    fake_pagure.stats_pending.add(4)
    assert pagure.pull_request_files(REPO, 4) is None  # ENOPRSTATS: not known yet
    info = pagure.pull_request_info(REPO, 4)
    assert (info.head_sha, info.author, info.fork, info.state, info.labels) == (
        sha,
        "alice",
        False,
        "open",
        ("ci",),
    )
    assert pagure.pull_request_head(REPO, 4) == sha

    fake_pagure.add_project("fork/alice/rpms/foo", GitRepo(tmp_path, "fork"))
    fake_pagure.add_pull(PullRequest(FULL, 5, "fork/alice/rpms/foo", "feature", "main", sha))
    info = pagure.pull_request_info(REPO, 5)
    assert info.fork and info.source_repo is not None
    assert info.source_repo.full_name == "forks/alice/rpms/foo"
    assert info.source_repo.clone_url == f"{fake_pagure.url}/forks/alice/rpms/foo.git"


def test_a_fork_project_is_addressed_under_fork(pagure: PagureForge, fake_pagure: FakePagure, tmp_path):
    fork = GitRepo(tmp_path, "fork")
    sha = fork.commit({".forgeflow.yaml": "version: 1\n"})
    fake_pagure.add_project("fork/alice/rpms/foo", fork)
    fork_repo = Repository("forks/alice/rpms", "foo", "")
    assert pagure.read_file(fork_repo, ".forgeflow.yaml", sha) == "version: 1\n"
    post(pagure, fork_repo, sha, status("pending"))
    assert fake_pagure.asked("POST", f"/api/0/fork/alice/rpms/foo/c/{sha}/flag")


def test_write_access_is_owner_admin_or_committer(pagure: PagureForge, hosted):
    for user in ("pingou", "dan", "alice", "carol"):  # carol commits through the packagers group
        assert pagure.has_write_access(REPO, user), user
    for user in ("erin", "bob", "nobody"):  # collaborator (some branches), ticket, stranger
        assert not pagure.has_write_access(REPO, user), user


def test_comments_and_no_reactions(pagure: PagureForge, fake_pagure: FakePagure, hosted, repo):
    fake_pagure.add_pull(PullRequest(FULL, 4, FULL, "feature", "main", head(repo)))
    pagure.comment(REPO, 4, "hello")
    assert [(n.repo, n.number, n.body) for n in fake_pagure.notes] == [(FULL, 4, "hello")]
    assert not pagure.react(REPO, 4, "1", "+1")
    assert not fake_pagure.asked("POST", "/whoami")  # ogr would ask who the token is
