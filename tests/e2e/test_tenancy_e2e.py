"""Tenancy on the emulated cluster (``executor=argo``): a private repository is checked out
with a Secret only its run has, owned by its Workflow and deleted with it, whose token shows
nowhere; a granted Secret's value is masked in the stored log."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from service.store.models import Run
from tests.argo_executor.world import REPO, REPO_NAMESPACE, World
from tests.conftest import WEBHOOK_SECRET
from tests.support import payloads

pytestmark = pytest.mark.slow
pytest_plugins = ["tests.k8s_emulator.fixtures", "tests.argo_executor.fixtures"]

TOKEN = "t0ken"  # the fake GitHub's token: the API's, and the only password its git accepts
JOB_FILE = """\
version: 1
jobs:
  build:
    on: [pull_request]
    secrets: [deploy-token]
    steps:
      - name: the source is the event's commit
        run: test "$(git rev-parse HEAD)" = "$FORGEFLOW_SHA" && echo "checked out $FORGEFLOW_SHA"
      - name: what a careless step prints
        run: git remote -v; git config --list; env | sort; echo "deploying with $DEPLOY_TOKEN"
"""


def private_pull_request(world: World, sha: str) -> None:
    payload = payloads.pull_request(REPO, f"{world.github.url}/{REPO}.git", sha)
    for repo in (
        payload["repository"],
        payload["pull_request"]["base"]["repo"],
        payload["pull_request"]["head"]["repo"],
    ):
        repo["private"] = True
    response = world.stack.post("github", payload, "pull_request", secret=WEBHOOK_SECRET)
    assert response.status_code == 202, response.text


def texts_shown(world: World, run_id: int) -> dict[str, str]:
    """Everything forgeflow shows or keeps about the run."""
    http, url = world.stack.http, world.stack.url
    with world.stack.ctx.db.session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        stored = run.manifest_json + run.event_json + run.message + "".join(j.description for j in run.jobs)
    answers = {
        "log": http.get(f"{url}/runs/{run_id}/logs/build", timeout=10),
        "page": http.get(f"{url}/runs/{run_id}", timeout=10),
        "api": http.get(f"{url}/api/runs/{run_id}", timeout=10),
    }
    for where, answer in answers.items():
        assert answer.status_code == 200, (where, answer.status_code, answer.text[:200])
    return {
        **{where: answer.text for where, answer in answers.items()},
        "statuses": json.dumps([s.description for s in world.github.statuses]),
        "database": stored,
        "workflow": json.dumps(world.k8s.objects(REPO_NAMESPACE)),
    }


def test_a_private_repository_runs_with_its_own_short_lived_secret(make_world: Callable[..., World]):
    world = make_world(
        repositories=[
            {
                "match": "octo/*",
                "namespace": REPO_NAMESPACE,
                "service_account": "octo-runner",
                "secrets": [{"name": "deploy-token", "events": ["pull_request"]}],
            }
        ]
    )
    world.github.private.add(REPO)
    world.k8s.create(
        {"metadata": {"name": "deploy-token"}, "stringData": {"DEPLOY_TOKEN": "dep1oy-s3cret"}},
        REPO_NAMESPACE,
        "secrets",
    )
    world.watcher()
    sha = world.repo.commit({".forgeflow.yaml": JOB_FILE}, branch="feature")
    private_pull_request(world, sha)

    final = world.wait_final(sha, ["forgeflow/build"])
    assert final["forgeflow/build"][0] == "success", final
    run_id = world.run_id(sha)
    world.stack.wait_run_final(run_id, timeout=30)

    (workflow,) = world.k8s.objects(REPO_NAMESPACE)
    name, uid = workflow["metadata"]["name"], workflow["metadata"]["uid"]
    secret: dict[str, Any] | None = world.k8s.get(REPO_NAMESPACE, f"{name}-checkout", "secrets")
    assert secret is not None, "the run's checkout Secret is in the run's namespace"
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Workflow", name, uid)
    assert base64.b64decode(secret["data"]["password"]).decode() == TOKEN
    (source,) = workflow["spec"]["templates"][1]["inputs"]["artifacts"]
    assert source["git"]["passwordSecret"] == {"name": f"{name}-checkout", "key": "password"}
    assert "suspend" not in workflow["spec"]  # resumed once its Secret existed

    shown = texts_shown(world, run_id)
    assert f"checked out {sha}" in shown["log"]
    assert "deploying with ***" in shown["log"]  # the granted Secret's value, masked
    for where, text in shown.items():
        assert TOKEN not in text, f"the checkout token shows in the {where}"
        assert "dep1oy-s3cret" not in text, f"the granted Secret's value shows in the {where}"

    world.k8s.delete(REPO_NAMESPACE, name)  # Argo's TTL, or anyone
    assert world.k8s.get(REPO_NAMESPACE, f"{name}-checkout", "secrets") is None
    assert world.k8s.get(REPO_NAMESPACE, "deploy-token", "secrets") is not None  # not the run's own


def test_without_credentials_a_private_repository_fails_and_leaves_nothing(
    make_world: Callable[..., World],
):
    world = make_world(github_token="")
    world.github.private.add(REPO)
    world.watcher()
    sha = world.repo.commit({".forgeflow.yaml": JOB_FILE.replace("    secrets: [deploy-token]\n", "")})
    private_pull_request(world, sha)
    final = world.wait_final(sha, ["forgeflow/build"])
    assert final["forgeflow/build"][0] == "error"
    assert "no credentials" in final["forgeflow/build"][1]
    assert not world.k8s.objects(REPO_NAMESPACE) and not world.k8s.objects(REPO_NAMESPACE, "secrets")
