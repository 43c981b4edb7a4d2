"""The whole path with ``executor=argo``: a signed GitHub webhook → web → worker → the emulated
cluster (the official client over real HTTP; an emulated Argo controller runs each Workflow
through the local executor) → watcher → statuses at a fake GitHub. Then the watcher's hard
days: a restart mid-run, 410 Gone and API 5xx, two replicas on one database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from service.executors.argo.logs import pod_name
from service.store.models import Run
from tests.argo_executor.world import CONTEXTS, REPO_ACCOUNT, REPO_NAMESPACE, World
from tests.support.services import postgres_database

pytestmark = pytest.mark.slow
pytest_plugins = ["tests.k8s_emulator.fixtures", "tests.argo_executor.fixtures"]


def check_statuses(world: World, sha: str) -> None:
    """What the skeleton's GitHub test expects, and each transition posted once."""
    final = world.wait_final(sha, CONTEXTS)
    assert final["forgeflow/passes"][0] == "success"
    assert final["forgeflow/fails"][0] == "failure"
    assert "broken" in final["forgeflow/fails"][1] and "exit code 3" in final["forgeflow/fails"][1]
    assert final["forgeflow/after-passes"][0] == "success"  # no failFast across jobs
    for context in CONTEXTS:
        assert world.states(sha, context)[0] == "pending"
        assert world.states(sha, context)[-1] == final[context][0]
    world.assert_each_posted_once()


def test_a_pull_request_runs_on_the_cluster_and_reports(make_world: Callable[..., World]):
    world = make_world()
    world.watcher()
    sha = world.commit("2")
    world.open_gate(sha)

    world.pull_request(sha)
    check_statuses(world, sha)

    run_id = world.run_id(sha)
    # the statuses leave from report threads: the run's own row may end a moment later
    run = world.stack.wait_run_final(run_id, timeout=30)
    assert run["executor"] == "argo" and run["phase"] == "failed"
    assert run["workflow"]["namespace"] == REPO_NAMESPACE  # from the service config
    (workflow,) = world.k8s.objects(REPO_NAMESPACE)
    assert workflow["metadata"]["name"] == run["workflow"]["name"]
    assert workflow["spec"]["serviceAccountName"] == REPO_ACCOUNT  # never from the job file
    assert workflow["spec"]["podGC"]["strategy"] == "OnWorkflowCompletion"
    assert workflow["spec"]["ttlStrategy"]["secondsAfterCompletion"] > 0
    assert workflow["spec"]["activeDeadlineSeconds"] >= 2 * 120  # two chained 2m jobs
    assert workflow["status"]["phase"] == "Failed"
    statuses = [s for s in world.github.statuses if s.context == "forgeflow/passes"]
    assert all(s.target_url.startswith(f"{world.stack.url}/runs/{run_id}") for s in statuses)

    # The job logs outlive the pods Argo garbage-collects (archived when each job ended).
    for node in workflow["status"]["nodes"].values():
        if node["type"] == "Pod":
            world.k8s.delete(REPO_NAMESPACE, pod_name(workflow["metadata"]["name"], node, "v2"), "pods")
    log = world.stack.http.get(f"{world.stack.url}/runs/{run_id}/logs/passes", timeout=10)
    assert log.status_code == 200 and f"checked out {sha}" in log.text
    broken = world.stack.http.get(f"{world.stack.url}/runs/{run_id}/logs/fails", timeout=10).text
    assert "==> broken" in broken


def test_a_watcher_restarted_mid_run_loses_nothing_and_repeats_nothing(make_world: Callable[..., World]):
    world = make_world()
    first = world.watcher()
    sha = world.commit("2")
    world.pull_request(sha)
    world.wait_posted(sha, "forgeflow/passes", "pending", "running")
    world.wait_final(sha, ["forgeflow/fails"])  # one job ended while the first watcher ran

    first.stop()
    world.open_gate(sha)  # passes and after-passes run and end while no watcher watches
    run = world.stack.run_json(world.run_id(sha))
    world.wait_workflow_phase(REPO_NAMESPACE, run["workflow"]["name"], {"Failed"})
    assert world.states(sha, "forgeflow/passes")[-1] == "pending"

    second = world.watcher()
    check_statuses(world, sha)
    assert second.watcher.relists >= 1


def test_410_gone_and_api_errors_during_list_and_watch_are_recovered(make_world: Callable[..., World]):
    world = make_world()
    runner = world.watcher()
    sha = world.commit("2")
    world.pull_request(sha)
    world.wait_posted(sha, "forgeflow/passes", "pending", "running")

    # The API fails every watch for a while; meanwhile the run finishes and etcd compacts.
    broken_watches = world.k8s.fail_next(503, count=10**6, watch=True)
    world.k8s.drop_watches(mode="abort")
    assert world.github.wait_for(lambda: broken_watches.hits >= 2, 30)
    world.open_gate(sha)
    name = world.stack.run_json(world.run_id(sha))["workflow"]["name"]
    world.wait_workflow_phase(REPO_NAMESPACE, name, {"Failed"})
    world.k8s.compact()
    relists = runner.watcher.relists
    broken_list = world.k8s.fail_next(500, method="GET", watch=False, path=r"/workflows$")
    broken_watches.count = 1  # one more failed watch, then they work again (and get 410)

    check_statuses(world, sha)
    assert runner.watcher.expired >= 1  # the resumed watch got 410 Gone
    assert broken_list.hits == 1 and runner.watcher.relists > relists


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with ExitStack() as exits:
        yield exits.enter_context(postgres_database()) if request.param == "postgres" else ""


def test_two_watchers_on_one_database_post_each_transition_once(
    make_world: Callable[..., World], database_url: str
):
    world = make_world(database_url=database_url)
    one, two = world.watcher(), world.watcher()
    shas = [world.commit(str(n), branch=f"feature-{n}") for n in (2, 3)]
    for number, sha in enumerate(shas, start=10):
        world.open_gate(sha)
        world.pull_request(sha, number=number)
    for sha in shas:
        check_statuses(world, sha)
    with world.stack.ctx.db.session() as session:
        assert session.query(Run).count() == 2
    assert one.watcher.relists >= 1 and two.watcher.relists >= 1
