"""The run pages in a real browser (headless Chromium through Selenium): a running job's log grows
and its state changes without a reload, the graph shows the needs, the failing step is open,
re-run and cancel work for a maintainer and are absent for an anonymous visitor, a private
repository's run is a sign-in page. Screenshots of the run page and the list page land in
``.screenshots/`` (not committed) for a person to look at.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them where it can);
without them these tests skip, saying so, except in CI (``CI=true``) where they must run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import WEBHOOK_SECRET
from tests.support import payloads
from tests.support.fake_github import FakeGitHub
from tests.support.gitrepo import GitRepo
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".screenshots"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1100",
)
INSTALL = "apt-get install -y chromium chromium-driver"


def _tools() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = f"headless Chromium is not installed (install it with: {INSTALL})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; in CI the browser tests must run")
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, driver_path = _tools()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="forgeflow-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def job_file(gate: Path) -> str:
    return f"""\
version: 1
jobs:
  build:
    steps:
      - {{name: compile, run: "echo compiling"}}
  test:
    needs: [build]
    steps:
      - name: unit tests
        run: |
          for i in 1 2 3; do echo "test line $i"; done
          while [ ! -e {gate} ]; do sleep 0.2; done
          echo "all tests passed"
  style:
    steps:
      - {{name: setup, run: "echo ready"}}
      - name: no trailing whitespace
        run: |
          printf '\\033[31merror:\\033[0m src/a.py has trailing whitespace\\n'
          exit 1
"""


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """The fake GitHub on a threaded server: the browser visits it too (signing in), and a
    browser keeps idle connections open, which would stall a server that serves one at a time."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    try:
        yield FakeGitHub(server)
    finally:
        server.clear()
        server.stop()


@pytest.fixture
def stack(make_settings, fake_github: FakeGitHub) -> Iterator[Stack]:
    settings = make_settings(
        github_webhook_secret=WEBHOOK_SECRET,
        github_token="t0ken",
        github_api_url=fake_github.api_url,
        github_oauth_client_id="forgeflow-app",
        github_oauth_client_secret="app-secret",
        access_cache_seconds=0,
    )
    built = Stack(settings)
    try:
        yield built
    finally:
        built.close()


def wait_until(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:  # the page is between states (an element replaced): look again
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def push(stack: Stack, fake_github: FakeGitHub, repo: str, git_repo: GitRepo, files: dict[str, str]) -> int:
    sha = git_repo.commit(files)
    fake_github.add_repo(repo, git_repo)
    before = {r["id"] for r in requests.get(f"{stack.url}/api/runs", timeout=10).json()["runs"]}
    body = payloads.push(repo, git_repo.url, sha)
    assert stack.post("github", body, "push", secret=WEBHOOK_SECRET).status_code == 202

    def new_run() -> int | None:
        with stack.ctx.db.session() as session:
            from sqlalchemy import select

            from service.store.models import Run

            ids = set(session.scalars(select(Run.id).where(Run.repo == repo, Run.sha == sha)))
        return max(ids - before, default=None)

    run_id: int = wait_until(new_run, f"a run of {repo}")
    return run_id


def find(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def text_of(driver: Any, css: str) -> str:
    """The element's text, shown or folded away (in a closed <details>)."""
    found = find(driver, css)
    return " ".join(str(found[0].get_attribute("textContent") or "").split()) if found else ""


def shoot(driver: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / name))


def sign_in(driver: Any, stack: Stack, fake_github: FakeGitHub, user: str, back_to: str) -> None:
    fake_github.oauth_user = user
    driver.get(f"{stack.url}/login?next={back_to}")
    find(driver, "a.button[id^=signin-]")[0].click()  # the fake forge says yes at once
    wait_until(lambda: driver.current_url.endswith(back_to), "the way back after signing in")


def test_a_run_page_follows_the_run_and_a_maintainer_acts_on_it(
    browser: Any, stack: Stack, fake_github: FakeGitHub, git_repo: GitRepo, tmp_path: Path
):
    gate = tmp_path / "gate"
    run_id = push(stack, fake_github, "octo/web", git_repo, {".forgeflow.yaml": job_file(gate)})
    driver = browser
    driver.delete_all_cookies()
    driver.get(f"{stack.url}/runs/{run_id}")
    driver.execute_script("window.forgeflowNoReload = 'still here'")

    # the test job's log grows while it runs, then it passes: no reload
    wait_until(lambda: "test line 3" in text_of(driver, "#job-test .lines"), "the running job's log")
    assert find(driver, '#job-test[data-state="running"]')
    shoot(driver, "run-page-running.png")
    gate.touch()
    wait_until(lambda: find(driver, '#job-test[data-state="success"]'), "the test job to pass")
    wait_until(lambda: text_of(driver, "#run-phase") == "failed", "the run to end")
    assert "all tests passed" in text_of(driver, "#job-test")
    assert driver.execute_script("return window.forgeflowNoReload") == "still here"

    # the graph has the needs edge; the failing step is open with its error line marked
    assert find(driver, 'svg.graph path.edge[data-from="build"][data-to="test"]')
    assert find(driver, 'svg.graph g.node.st-failure[data-task="style"]')
    failed = find(driver, "#job-style details.step.failed")
    assert len(failed) == 1 and failed[0].get_attribute("open") is not None
    assert "no trailing whitespace" in failed[0].text
    assert "trailing whitespace" in text_of(driver, "#job-style .l.err")
    assert text_of(driver, "#job-style .a-fg1") == "error:"
    message = "job `style` failed at step 'no trailing whitespace' (exit 1)"
    assert message in text_of(driver, "#job-style .msg")
    assert "forgeflow-failed" not in text_of(driver, "#job-style") + text_of(driver, "#job-test")
    assert not find(driver, "#action-rerun") and not find(driver, "#action-cancel")  # anonymous
    shoot(driver, "run-page.png")

    # a maintainer signs in with the forge and re-runs the failed job
    fake_github.permissions[("octo/web", "maria")] = "write"
    sign_in(driver, stack, fake_github, "maria", f"/runs/{run_id}")
    find(driver, "#action-rerun-failed")[0].click()
    wait_until(lambda: "requested=action-" in driver.current_url, "the re-run to be asked for")

    def rerun() -> dict[str, Any] | None:
        runs = requests.get(f"{stack.url}/api/runs?repo=octo/web", timeout=10).json()["runs"]
        newer = [r for r in runs if r["id"] > run_id]
        return newer[0] if newer else None

    again = wait_until(rerun, "the re-run")
    assert [job["name"] for job in again["jobs"]] == ["style"]  # only the failed job
    driver.get(f"{stack.url}/runs/{again['id']}")
    assert "re-run of" in text_of(driver, "dl.event") and "maria" in text_of(driver, "dl.event")

    # ...and cancels a run that waits on its gate
    gate.unlink()
    second = GitRepo(tmp_path, "second")
    waiting = push(stack, fake_github, "octo/web", second, {".forgeflow.yaml": job_file(gate)})
    driver.get(f"{stack.url}/runs/{waiting}")
    wait_until(lambda: find(driver, '#job-test[data-state="running"]'), "the second run's test job")
    find(driver, "#action-cancel")[0].click()
    wait_until(lambda: text_of(driver, "#run-phase") == "error", "the cancelled run", timeout=30)
    wait_until(lambda: "cancelled by maria" in text_of(driver, "#job-test"), "the job's reason")

    driver.get(f"{stack.url}/runs")
    assert find(driver, f'tr.run-row[data-run="{run_id}"]')
    shoot(driver, "runs-list.png")


def test_a_private_repositorys_run_is_a_sign_in_page_for_anonymous_visitors(
    browser: Any, stack: Stack, fake_github: FakeGitHub, git_repo: GitRepo
):
    fake_github.private.add("octo/hidden")
    files = {".forgeflow.yaml": "version: 1\njobs:\n  a:\n    steps: [true]\n"}
    run_id = push(stack, fake_github, "octo/hidden", git_repo, files)
    driver = browser
    driver.delete_all_cookies()
    driver.get(f"{stack.url}/runs/{run_id}")
    assert driver.title.startswith("Sign in") and "Sign in with" in text_of(driver, "main")
    assert "octo/hidden" not in driver.page_source
    driver.get(f"{stack.url}/runs")
    assert not find(driver, f'tr.run-row[data-run="{run_id}"]')
