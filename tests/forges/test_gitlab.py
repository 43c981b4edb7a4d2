"""The GitLab forge against a fake GitLab over real HTTP: python-gitlab's real requests."""

from __future__ import annotations

import time

import pytest

from service.events import Repository
from service.forges.base import ForgeError, StatusReport, TransientForgeError
from service.forges.gitlab import GitlabForge
from service.forges.notes import NoteLedger
from tests.forges.conftest import post, shown
from tests.support.fake_gitlab import FakeGitLab, MergeRequest
from tests.support.gitrepo import GitRepo

PATH = "group/sub/proj"  # a nested group
REPO = Repository("group/sub", "proj", "")
URL = "https://forgeflow.example/runs/1#job-a"


def report(state: str, description: str = "", **extra: object) -> StatusReport:
    return StatusReport("forgeflow/a", state, description or state, URL, **extra)  # type: ignore[arg-type]


@pytest.fixture
def project(fake_gitlab: FakeGitLab, repo: GitRepo):
    members = {"alice": 30, "bob": 20, "carol": 40}
    return fake_gitlab.add_project(PATH, repo, members=members)


def head(repo: GitRepo, ref: str = "feature") -> str:
    return repo.git("rev-parse", ref)


def test_files_refs_and_comparisons(gitlab: GitlabForge, project, repo: GitRepo):
    sha, base = head(repo), head(repo, "main")
    assert gitlab.read_file(REPO, ".forgeflow.yaml", sha) == "version: 1\n"
    assert gitlab.read_file(REPO, "missing.yaml", sha) is None
    assert gitlab.resolve_ref(REPO, "refs/heads/feature") == sha
    assert gitlab.resolve_ref(REPO, "feature") == sha
    assert gitlab.resolve_ref(REPO, "refs/tags/v1") == base  # the commit, not the tag object
    with pytest.raises(ForgeError):
        gitlab.resolve_ref(REPO, "refs/heads/nope")
    assert gitlab.changed_files(REPO, base, sha) == ["docs/b.md", "old.txt", "renamed.txt", "src/a.py"]


def test_every_state_is_one_gitlab_accepts(
    gitlab: GitlabForge, fake_gitlab: FakeGitLab, project, repo: GitRepo
):
    sha = head(repo)
    for state, description in [
        ("pending", "queued"),
        ("running", "running"),
        ("success", "passed"),
        ("error", "error: no pod"),
        ("failure", "failed: exit code 1"),
        ("error", "superseded by a newer commit"),
    ]:
        post(gitlab, REPO, sha, report(state, description, ref="feature"))
    assert [s.state for s in fake_gitlab.statuses] == [
        "pending",
        "running",
        "success",
        "failed",
        "failed",
        "canceled",
    ]
    assert fake_gitlab.refused == []
    assert {s.ref for s in fake_gitlab.statuses} == {"feature"}


def test_a_state_posted_twice_is_not_an_error(gitlab: GitlabForge, fake_gitlab: FakeGitLab, project, repo):
    sha = head(repo)
    post(gitlab, REPO, sha, report("running", ref="feature"))
    post(gitlab, REPO, sha, report("running", ref="feature"))  # 400 Cannot transition ... :running
    post(gitlab, REPO, sha, report("pending", ref="feature"))  # 400 ... via :enqueue from :running
    assert [r[1] for r in fake_gitlab.refused] == [400, 400]
    assert "Cannot transition status via :run from :running" in fake_gitlab.refused[0][2]
    post(gitlab, REPO, sha, report("success", ref="feature"))
    statuses = shown(gitlab, REPO, sha)
    assert [(s.context, s.state, s.target_url) for s in statuses] == [("forgeflow/a", "success", URL)]


def test_without_a_ref_gitlab_guesses_and_may_refuse(
    gitlab: GitlabForge, fake_gitlab: FakeGitLab, project, repo
):
    # forgeflow always names the ref; GitLab would otherwise take the first branch with the commit
    sha = head(repo)
    repo.git("push", "-q", "origin", f"{sha}:refs/heads/aaa")
    post(gitlab, REPO, sha, report("pending"))
    post(gitlab, REPO, sha, report("pending", "queued again", ref="feature"))
    assert [s.ref for s in fake_gitlab.statuses] == ["aaa", "feature"]


def test_statuses_keep_the_latest_per_context(gitlab: GitlabForge, project, repo):
    sha = head(repo)
    post(gitlab, REPO, sha, report("failure", "failed", ref="feature"))
    post(gitlab, REPO, sha, report("pending", "queued again", ref="feature"))
    [status] = shown(gitlab, REPO, sha)
    assert (status.state, status.description) == ("pending", "queued again")


def test_a_429_is_transient_at_once(gitlab: GitlabForge, fake_gitlab: FakeGitLab, project, repo):
    fake_gitlab.fail_status_posts, fake_gitlab.fault_status = 1, 429  # python-gitlab would sleep
    started = time.monotonic()
    with pytest.raises(TransientForgeError, match="429"):
        post(gitlab, REPO, head(repo), report("pending", ref="feature"))
    assert time.monotonic() - started < 5 and fake_gitlab.faults_served == 1


def test_a_502_is_transient_and_a_403_is_not(gitlab: GitlabForge, fake_gitlab: FakeGitLab, project, repo):
    sha = head(repo)
    fake_gitlab.fail_status_posts = 1
    with pytest.raises(TransientForgeError, match="502"):
        post(gitlab, REPO, sha, report("pending", ref="feature"))
    project.can_post = False
    with pytest.raises(ForgeError, match="403") as refused:
        post(gitlab, REPO, sha, report("pending", ref="feature"))
    assert not isinstance(refused.value, TransientForgeError)


def test_merge_request_files_come_from_every_page(
    gitlab: GitlabForge, fake_gitlab: FakeGitLab, project, repo
):
    many = {f"gen/file{i:03}.txt": str(i) for i in range(130)}
    sha = repo.commit(many, "many files", branch="feature")
    fake_gitlab.add_merge_request(MergeRequest(PATH, 7, PATH, "feature", "main", sha))
    files = gitlab.pull_request_files(REPO, 7)
    assert files is not None and len(files) == 130 + 4
    assert len(fake_gitlab.asked("GET", "/merge_requests/7/diffs")) == 2  # 100 per page


def test_merge_request_info_and_forks(gitlab: GitlabForge, fake_gitlab: FakeGitLab, project, repo, tmp_path):
    sha = head(repo)
    fake_gitlab.add_merge_request(MergeRequest(PATH, 7, PATH, "feature", "main", sha, labels=["ci"]))
    info = gitlab.pull_request_info(REPO, 7)
    assert (info.head_sha, info.author, info.fork, info.state, info.labels) == (
        sha,
        "alice",
        False,
        "open",
        ("ci",),
    )
    assert info.source_repo is not None and info.source_repo.full_name == PATH
    assert gitlab.pull_request_head(REPO, 7) == sha

    fork = fake_gitlab.add_project("alice/proj", GitRepo(tmp_path, "fork"), forked_from=project.id)
    fake_gitlab.add_merge_request(MergeRequest(PATH, 8, fork.path, "feature", "main", sha))
    info = gitlab.pull_request_info(REPO, 8)
    assert info.fork and info.source_repo is not None and info.source_repo.full_name == "alice/proj"
    fork.visible = False  # a private fork the token cannot see
    assert gitlab.pull_request_info(REPO, 8).source_repo is None


def test_write_access_is_developer_or_more(gitlab: GitlabForge, project):
    assert gitlab.has_write_access(REPO, "alice")  # developer (30)
    assert gitlab.has_write_access(REPO, "carol")  # maintainer (40)
    assert not gitlab.has_write_access(REPO, "bob")  # reporter (20)
    assert not gitlab.has_write_access(REPO, "forgeflow")  # not a member
    assert not gitlab.has_write_access(REPO, "nobody")  # no such user


def test_comments_and_reactions(gitlab: GitlabForge, fake_gitlab: FakeGitLab, project, repo):
    fake_gitlab.add_merge_request(MergeRequest(PATH, 7, PATH, "feature", "main", head(repo)))
    gitlab.comment(REPO, 7, "hello")
    [note] = fake_gitlab.notes
    assert (note.repo, note.number, note.body) == (PATH, 7, "hello")
    assert gitlab.react(REPO, 7, str(note.id), "+1")
    assert gitlab.react(REPO, 7, str(note.id), "+1")  # awarded already: still done
    assert fake_gitlab.reactions == [(note.id, "thumbsup")]


def fork_setup(fake_gitlab: FakeGitLab, project, repo: GitRepo, tmp_path, **options):
    sha = head(repo)
    fork = fake_gitlab.add_project("alice/proj", GitRepo(tmp_path, "fork"), forked_from=project.id, **options)
    fork.repo.git("fetch", "-q", repo.url, "feature")
    fork.repo.git("push", "-q", "origin", "FETCH_HEAD:refs/heads/feature")
    fake_gitlab.add_merge_request(MergeRequest(PATH, 8, fork.path, "feature", "main", sha))
    source = Repository("alice", "proj", fork.repo.url)
    return sha, fork, source


def test_fork_statuses_go_on_the_source_project(gitlab, fake_gitlab, project, repo, tmp_path):
    sha, _, source = fork_setup(fake_gitlab, project, repo, tmp_path)
    post(gitlab, REPO, sha, report("running", pull_request=8, source_repo=source, ref="feature"))
    assert [(s.repo, s.ref, s.state) for s in fake_gitlab.statuses] == [("alice/proj", "feature", "running")]
    assert fake_gitlab.notes == []


@pytest.mark.parametrize("option", [{"can_post": False}, {"visible": False}], ids=["403", "404"])
def test_fork_without_access_is_noted_once_and_reported_on_the_target(
    gitlab, fake_gitlab, project, repo, tmp_path, notes: NoteLedger, option
):
    sha, _, source = fork_setup(fake_gitlab, project, repo, tmp_path, **option)
    for state in ("pending", "running", "success"):
        post(gitlab, REPO, sha, report(state, pull_request=8, source_repo=source, ref="feature"))
    # another forgeflow process (no memory of the fork) reports again: the ledger remembers
    other = GitlabForge(gitlab.instance, notes=notes)
    post(other, REPO, sha, report("pending", "again", pull_request=8, source_repo=source, ref="feature"))

    assert [(s.repo, s.ref) for s in fake_gitlab.statuses] == [(PATH, "refs/merge-requests/8/head")] * 4
    [note] = fake_gitlab.notes
    assert note.number == 8 and "alice/proj" in note.body and "https://forgeflow.example/runs/1" in note.body
    assert "#job-a" not in note.body


def test_a_failing_note_does_not_stop_the_status(gitlab, fake_gitlab, project, repo, tmp_path, notes):
    sha, _, source = fork_setup(fake_gitlab, project, repo, tmp_path, visible=False)
    del fake_gitlab.merge_requests[(PATH, 8)]  # the note's POST now answers 404
    post(gitlab, REPO, sha, report("pending", pull_request=8, source_repo=source, ref="feature"))
    assert [s.repo for s in fake_gitlab.statuses] == [PATH]
    assert notes.claim("gitlab", gitlab.name, PATH, 8, "fork-statuses")  # released for a later try
