"""Branch protection with filters, over real HTTP on GitHub (statuses), GitLab and Forgejo: a job
marked ``required: true`` (or listed by the repository policy) that a path filter skips gets a
passing "skipped: <why>" status instead of none; ``forgeflow/summary`` is green only when every
job of the run is. (GitHub in App mode: a ``skipped`` check run, see test_github_app_e2e.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import WEBHOOK_SECRET
from tests.e2e.test_forges_e2e import Fakes, fakes, make_case, stack  # noqa: F401 (fixtures)
from tests.support import payloads
from tests.support.fake_forgejo import Pull
from tests.support.fake_github import FakeGitHub
from tests.support.gitrepo import GitRepo
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

JOB_FILE = """\
version: 1
jobs:
  build:
    on: [pull_request]
    steps: [{run: "test ! -f BROKEN"}]
  docs:
    on: [pull_request]
    paths: ["docs/**"]
    required: true
    steps: [{run: "true"}]
  tests:
    on: [pull_request]
    paths: ["docs/**"]
    matrix: {python: ["3.12", "3.13"]}
    steps: [{run: "true"}]
  optional:
    on: [pull_request]
    paths: ["docs/**"]
    steps: [{run: "true"}]
"""
SKIPPED = "skipped: no changed file matches paths ['docs/**'] (1 changed file)"


@pytest.mark.parametrize("forge", ["gitlab", "forgejo"])
def test_a_required_job_skipped_by_a_path_filter_passes_as_skipped(
    forge: str,
    stack: Stack,  # noqa: F811 (the fixture imported above)
    fakes: Fakes,  # noqa: F811
    tmp_path: Path,
) -> None:
    case = make_case(forge, fakes, tmp_path)
    case.repo.commit({".forgeflow.yaml": JOB_FILE}, "first")
    sha = case.repo.commit({"src/main.c": "int main;"}, "second", branch="feature")
    if forge == "forgejo":  # the pull request whose files Forgejo lists
        fakes.forgejo.add_pull(Pull(case.key, 3, case.key, "feature", "main", sha))

    response = stack.post(forge, case.pull_request(sha), case.pull_event, secret=WEBHOOK_SECRET)
    assert response.status_code == 202, response.text

    final = case.fake.wait_final(["forgeflow/build", "forgeflow/docs"], repo=case.key)
    assert final == {"forgeflow/build": case.success, "forgeflow/docs": case.success}
    assert case.fake.statuses_for("forgeflow/docs", case.key) == [case.success], "posted once, passed"
    docs = next(s for s in case.fake.posted(case.key) if s.context == "forgeflow/docs")
    assert docs.description == SKIPPED and docs.sha == sha
    assert case.fake.statuses_for("forgeflow/optional", case.key) == [], "not required: no status"
    assert case.fake.statuses_for("forgeflow/tests (python=3.12)", case.key) == []
    assert case.fake.refusals(case.key, sha) == []


@pytest.fixture
def github_stack(make_settings, fake_github: FakeGitHub) -> Iterator[Stack]:
    settings = make_settings(
        github_webhook_secret=WEBHOOK_SECRET,
        github_token="t0ken",
        github_api_url=fake_github.api_url,
        summary_status=True,
        repositories=[{"match": "octo/*", "required_jobs": ["tests"]}],
    )
    built = Stack(settings)
    yield built
    built.close()


def test_github_statuses_skipped_required_jobs_and_the_summary(
    github_stack: Stack, fake_github: FakeGitHub, git_repo: GitRepo
) -> None:
    base = git_repo.commit({".forgeflow.yaml": JOB_FILE}, "first")
    good = git_repo.commit({"src/main.c": "int main;"}, "second", branch="feature")
    fake_github.add_repo("octo/hello", git_repo)
    fake_github.add_pull("octo/hello", 7, base_sha=base, head_sha=good)
    response = github_stack.post(
        "github",
        payloads.pull_request("octo/hello", git_repo.url, good),
        "pull_request",
        secret=WEBHOOK_SECRET,
    )
    assert response.status_code == 202, response.text

    cells = ["forgeflow/tests (python=3.12)", "forgeflow/tests (python=3.13)"]
    final = fake_github.wait_final(["forgeflow/build", "forgeflow/docs", *cells, "forgeflow/summary"])
    assert set(final.values()) == {"success"}
    assert fake_github.statuses_for("forgeflow/optional") == []
    summary = [s for s in fake_github.statuses if s.context == "forgeflow/summary"]
    assert summary[0].state == "pending" and summary[-1].description == "all 4 jobs passed"
    cell = next(s for s in fake_github.statuses if s.context == cells[0])
    assert cell.description.startswith("skipped: "), "a policy's required job is skipped per cell"

    broken = git_repo.commit({"BROKEN": "yes"}, "third", branch="feature")
    fake_github.add_pull("octo/hello", 7, base_sha=base, head_sha=broken)
    github_stack.post(
        "github",
        payloads.pull_request("octo/hello", git_repo.url, broken, action="synchronize"),
        "pull_request",
        secret=WEBHOOK_SECRET,
    )

    def summary_final() -> bool:
        states = [
            s.state for s in fake_github.statuses if s.context == "forgeflow/summary" and s.sha == broken
        ]
        return bool(states) and states[-1] != "pending"

    assert fake_github.wait_for(summary_final, 30)
    last = [s for s in fake_github.statuses if s.context == "forgeflow/summary" and s.sha == broken][-1]
    assert last.state == "failure" and "build" in last.description
