"""The Forgejo/Gitea forge against a fake Forgejo over real HTTP: pyforgejo's real requests."""

from __future__ import annotations

import pytest

from service.events import Repository
from service.forges.base import ForgeError, StatusReport, TransientForgeError
from service.forges.forgejo import ForgejoForge
from tests.forges.conftest import post, shown
from tests.support.fake_forge import Posted
from tests.support.fake_forgejo import FakeForgejo, Pull
from tests.support.gitrepo import GitRepo

FULL = "owner/proj"
REPO = Repository("owner", "proj", "")
URL = "https://forgeflow.example/runs/1#job-a"


@pytest.fixture
def hosted(fake_forgejo: FakeForgejo, repo: GitRepo):
    permissions = {"alice": "write", "bob": "read", "carol": "admin", "owner": "owner"}
    return fake_forgejo.add_repo(FULL, repo, permissions=permissions)


def head(repo: GitRepo, ref: str = "feature") -> str:
    return repo.git("rev-parse", ref)


def test_files_refs_and_comparisons(forgejo: ForgejoForge, fake_forgejo: FakeForgejo, hosted, repo):
    sha, base = head(repo), head(repo, "main")
    assert forgejo.read_file(REPO, ".forgeflow.yaml", sha) == "version: 1\n"
    assert forgejo.read_file(REPO, "missing.yaml", sha) is None
    assert forgejo.resolve_ref(REPO, "refs/heads/feature") == sha
    assert forgejo.resolve_ref(REPO, "refs/tags/v1") == base
    expected = ["docs/b.md", "renamed.txt", "src/a.py"]
    assert forgejo.changed_files(REPO, base, sha) == expected  # Forgejo lists the files
    fake_forgejo.compare_files = False  # Gitea lists commits with their files
    assert forgejo.changed_files(REPO, base, sha) == expected


def test_states_are_ones_forgejo_accepts_and_read_back(
    forgejo: ForgejoForge, fake_forgejo: FakeForgejo, hosted, repo
):
    sha = head(repo)
    posts = [("pending", "queued"), ("running", "running"), ("error", "no pod"), ("success", "passed")]
    for state, description in posts:
        post(forgejo, REPO, sha, StatusReport("forgeflow/a", state, description, URL))
    words = [(s.state, s.description) for s in fake_forgejo.statuses]
    assert words == [
        ("pending", "queued"),
        ("pending", "running"),
        ("failure", "error: no pod"),
        ("success", "passed"),
    ]
    assert fake_forgejo.refused == []
    # another tool's "error" and "warning" read back too (ogr's own reader cannot read "error")
    fake_forgejo.record(Posted(FULL, sha, "error", "other/ci", "broken", ""))
    fake_forgejo.record(Posted(FULL, sha, "warning", "other/lint", "meh", ""))
    states = {s.context: s.state for s in shown(forgejo, REPO, sha)}
    assert states == {"forgeflow/a": "success", "other/ci": "error", "other/lint": "failure"}


def test_a_502_is_transient(forgejo: ForgejoForge, fake_forgejo: FakeForgejo, hosted, repo):
    fake_forgejo.fail_status_posts = 3  # pyforgejo itself tries 3 times (with a short backoff)
    with pytest.raises(TransientForgeError, match="502"):
        post(forgejo, REPO, head(repo), StatusReport("forgeflow/a", "pending", "queued", URL))
    assert fake_forgejo.faults_served == 3


def test_pull_request_files_come_from_every_page(
    forgejo: ForgejoForge, fake_forgejo: FakeForgejo, hosted, repo
):
    sha = repo.commit({f"gen/f{i:03}.txt": str(i) for i in range(60)}, "many", branch="feature")
    fake_forgejo.add_pull(Pull(FULL, 3, FULL, "feature", "main", sha))
    files = forgejo.pull_request_files(REPO, 3)
    assert files is not None and len(files) == 60 + 4  # with the renamed file's old name
    assert "old.txt" in files and "renamed.txt" in files
    assert len(fake_forgejo.asked("GET", "/pulls/3/files")) == 2  # 50 per page


def test_pull_request_info(forgejo: ForgejoForge, fake_forgejo: FakeForgejo, hosted, repo, tmp_path):
    sha = head(repo)
    fake_forgejo.add_pull(Pull(FULL, 3, FULL, "feature", "main", sha))
    info = forgejo.pull_request_info(REPO, 3)
    assert (info.head_sha, info.author, info.fork, info.state, info.labels) == (
        sha,
        "alice",
        False,
        "open",
        ("ci",),
    )
    assert forgejo.pull_request_head(REPO, 3) == sha
    fake_forgejo.add_repo("alice/proj", GitRepo(tmp_path, "fork"))
    fake_forgejo.add_pull(Pull(FULL, 4, "alice/proj", "feature", "main", sha))
    info = forgejo.pull_request_info(REPO, 4)
    assert info.fork and info.source_repo is not None and info.source_repo.full_name == "alice/proj"


def test_write_access_is_write_admin_or_owner(forgejo: ForgejoForge, hosted):
    assert [forgejo.has_write_access(REPO, u) for u in ("alice", "carol", "owner")] == [True] * 3
    assert not forgejo.has_write_access(REPO, "bob")  # read
    assert not forgejo.has_write_access(REPO, "nobody")  # no such user: 404
    hosted.token_is_admin = False  # Forgejo lets only repository admins ask about others
    with pytest.raises(ForgeError, match="403"):
        forgejo.has_write_access(REPO, "alice")


def test_comments_and_reactions(forgejo: ForgejoForge, fake_forgejo: FakeForgejo, hosted, repo):
    fake_forgejo.add_pull(Pull(FULL, 3, FULL, "feature", "main", head(repo)))
    forgejo.comment(REPO, 3, "hello")
    [note] = fake_forgejo.notes
    assert (note.repo, note.number, note.body) == (FULL, 3, "hello")
    assert forgejo.react(REPO, 3, str(note.id), "eyes")
    assert forgejo.react(REPO, 3, str(note.id), "eyes")
    assert fake_forgejo.reactions == [(note.id, "eyes")]
