"""What the run pages ask for, carried out by the worker over real HTTP: approving a stranger's
waiting fork run and re-running a run go through the same paths as ``/forgeflow ok-to-test``
and ``retest`` (the page's buttons are driven in tests/browser)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.conftest import WEBHOOK_SECRET
from tests.e2e.test_commands_e2e import fork_pull, open_fork_pull  # noqa: F401 (a fixture)
from tests.support.fake_github import FakeGitHub
from tests.support.stack import Stack

pytestmark = pytest.mark.slow
TOKEN = "service-token"


@pytest.fixture
def stack(make_settings, fake_github: FakeGitHub) -> Iterator[Stack]:
    settings = make_settings(
        github_webhook_secret=WEBHOOK_SECRET,
        github_token="t0ken",
        github_api_url=fake_github.api_url,
        api_token=TOKEN,
    )
    built = Stack(settings)
    yield built
    built.close()


def act(stack: Stack, run_id: int, action: str) -> requests.Response:
    return requests.post(
        f"{stack.url}/api/runs/{run_id}/actions",
        json={"action": action},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )


def test_approving_a_waiting_fork_run_and_re_running_it(stack, fake_github, git_repo, fork_pull):  # noqa: F811
    fork, head = fork_pull
    open_fork_pull(stack, git_repo, fork, head)
    assert fake_github.wait_for(lambda: len(fake_github.statuses) >= 2, 30)
    (waiting,) = stack.http.get(f"{stack.url}/api/runs", timeout=10).json()["runs"]
    assert waiting["phase"] == "waiting" and waiting["actions"] == ["approve", "cancel"]
    assert act(stack, waiting["id"], "rerun").status_code == 409  # nothing to re-run yet

    assert act(stack, waiting["id"], "approve").status_code == 202
    final = stack.wait_run_final(waiting["id"])
    assert final["phase"] == "succeeded"
    assert fake_github.wait_final(["forgeflow/lint", "forgeflow/unit"]) == {
        "forgeflow/lint": "success",
        "forgeflow/unit": "success",
    }

    assert act(stack, waiting["id"], "rerun").status_code == 202

    def all_runs() -> list[dict]:
        return stack.http.get(f"{stack.url}/api/runs", timeout=10).json()["runs"]

    assert fake_github.wait_for(lambda: len(all_runs()) == 2, 30)
    rerun = all_runs()[0]
    again = stack.wait_run_final(rerun["id"])
    assert again["phase"] == "succeeded"
    assert sorted(job["name"] for job in again["jobs"]) == ["lint", "unit"]
    page = stack.http.get(f"{stack.url}/runs/{rerun['id']}", timeout=10).text
    assert f"#{waiting['id']}</a> by admin" in page  # "re-run of #1 by admin"
