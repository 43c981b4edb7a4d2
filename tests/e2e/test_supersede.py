"""Superseded and closed pull requests on the emulated cluster: the old run's Workflow is shut
down (``spec.shutdown``), its unfinished jobs end as ``error`` with the reason (jobs that never
started too), and the new commit's run reports normally."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.argo_executor.world import CONTEXTS, REPO_NAMESPACE, World

pytestmark = pytest.mark.slow
pytest_plugins = ["tests.k8s_emulator.fixtures", "tests.argo_executor.fixtures"]


def started(world: World) -> tuple[str, str]:
    """A pull request whose run is in the middle: `fails` ended, `passes` runs (at its gate),
    `after-passes` has not started. Returns (sha, workflow name)."""
    sha = world.commit("2")
    world.pull_request(sha)
    world.wait_posted(sha, "forgeflow/passes", "pending", "running")
    world.wait_final(sha, ["forgeflow/fails"])
    return sha, world.stack.run_json(world.run_id(sha))["workflow"]["name"]


def assert_stopped(world: World, sha: str, name: str, reason: str) -> None:
    final = world.wait_final(sha, CONTEXTS)
    assert final["forgeflow/passes"] == ("error", reason)
    assert final["forgeflow/after-passes"] == ("error", reason)  # never started, never pending
    assert final["forgeflow/fails"][0] == "failure"  # ended before the stop: stays
    workflow = world.wait_workflow_phase(REPO_NAMESPACE, name, {"Failed", "Error"})
    assert workflow["spec"]["shutdown"] == "Terminate"
    assert workflow["metadata"]["annotations"]["forgeflow.dev/stop-message"] == reason
    run = world.stack.run_json(world.run_id(sha))
    assert (run["phase"], run["message"]) == ("error", reason)


def test_a_new_commit_supersedes_the_running_run(make_world: Callable[..., World]):
    world = make_world()
    world.watcher()
    old, old_workflow = started(world)

    new = world.commit("3")
    world.pull_request(new, action="synchronize")

    assert_stopped(world, old, old_workflow, f"superseded by {new[:7]}")
    world.open_gate(new)
    final = world.wait_final(new, CONTEXTS)
    assert {c: s for c, (s, _) in final.items()} == {
        "forgeflow/passes": "success",
        "forgeflow/fails": "failure",
        "forgeflow/after-passes": "success",
    }
    # The stopped Workflow's own end (its nodes Failed "Stopped with strategy") changes nothing.
    world.open_gate(old)
    assert world.states(old, "forgeflow/passes")[-1] == "error"
    assert world.controller.local_phase(REPO_NAMESPACE, old_workflow) == "Failed"
    world.assert_each_posted_once()


def test_a_closed_pull_request_stops_its_runs(make_world: Callable[..., World]):
    world = make_world()
    world.watcher()
    sha, workflow = started(world)

    world.pull_request(sha, action="closed")

    assert_stopped(world, sha, workflow, "pull request closed")
    world.assert_each_posted_once()
