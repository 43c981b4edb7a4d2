"""Job states for the shapes the job language compiles to: matrix cells in nested DAGs,
needs on a matrix job, fail-fast, retries, raw Argo DAGs (service.runs.node_states)."""

from __future__ import annotations

from service.runs.node_states import dependencies_of, job_updates, task_nodes

WF = "forgeflow-3-abc"
SPEC = {
    "entrypoint": "main",
    "templates": [
        {
            "name": "main",
            "dag": {
                "tasks": [
                    {"name": "lint", "template": "lint"},
                    {"name": "tests", "template": "tests", "dependencies": ["lint"]},
                    {"name": "package", "template": "package", "dependencies": ["tests"]},
                ]
            },
        },
        {
            "name": "tests",
            "dag": {
                "failFast": True,
                "tasks": [{"name": "a", "template": "tests-a"}, {"name": "b", "template": "tests-b"}],
            },
        },
    ],
}
TASKS = ["lint", "tests.a", "tests.b", "package"]


def node(path: str, phase: str, kind: str = "Pod", message: str = "") -> dict:
    return {
        "id": f"id-{path}",
        "name": f"{WF}.{path}",
        "displayName": path.rsplit(".", 1)[-1],
        "type": kind,
        "phase": phase,
        "message": message,
        "startedAt": "2026-01-01T00:00:00Z",
        "finishedAt": "2026-01-01T00:00:10Z",
    }


def states(phase: str, *nodes: dict) -> dict[str, tuple[str, str]]:
    workflow = {
        "metadata": {"name": WF},
        "spec": SPEC,
        "status": {"phase": phase, "nodes": {n["id"]: n for n in nodes}},
    }
    return {k: (v.state, v.description) for k, v in job_updates(workflow, TASKS).items()}


def test_cells_are_found_by_their_path_below_the_nested_dag():
    workflow = {
        "metadata": {"name": WF},
        "status": {"nodes": {"x": node("tests", "Running", "DAG"), "y": node("tests.a", "Running")}},
    }
    assert set(task_nodes(workflow)) == {"tests", "tests.a"}
    assert dependencies_of({"spec": SPEC}) == {
        "lint": [],
        "tests": ["lint"],
        "tests.a": [],
        "tests.b": [],
        "package": ["tests"],
    }


def test_running_cells_and_a_waiting_dependent():
    found = states(
        "Running", node("lint", "Succeeded"), node("tests", "Running", "DAG"), node("tests.a", "Running")
    )
    assert found == {
        "lint": ("success", "passed in 10s"),
        "tests.a": ("running", "running"),
        "tests.b": ("pending", "queued"),
        "package": ("pending", "queued"),
    }


def test_fail_fast_stops_the_cells_that_had_not_started_and_skips_dependents():
    found = states(
        "Failed",
        node("lint", "Succeeded"),
        node("tests", "Failed", "DAG", "template has failed or errored children and failFast enabled"),
        node("tests.a", "Failed", message="step 'pytest' failed with exit code 1"),
        node("package", "Omitted", "Skipped"),
    )
    assert found == {
        "lint": ("success", "passed in 10s"),
        "tests.a": ("failure", "failed: step 'pytest' failed with exit code 1 (10s)"),
        "tests.b": ("error", "skipped: another cell of tests failed (fail-fast)"),
        "package": ("error", "skipped: tests failed"),
    }


def test_cells_of_a_matrix_job_whose_need_failed_are_skipped_with_the_reason():
    found = states(
        "Failed",
        node("lint", "Failed", message="step 'lint' failed with exit code 2"),
        node("tests", "Omitted", "Skipped"),
        node("package", "Omitted", "Skipped"),
    )
    assert found["tests.a"] == found["tests.b"] == ("error", "skipped: lint failed")
    assert found["package"] == ("error", "skipped: tests did not run")


def test_a_cell_that_retries_is_its_retry_node():
    found = states(
        "Succeeded",
        node("lint", "Succeeded"),
        node("tests", "Succeeded", "DAG"),
        node("tests.a", "Succeeded", "Retry"),
        {**node("tests.a", "Failed"), "id": "attempt", "name": f"{WF}.tests.a(0)", "displayName": "a(0)"},
        node("tests.b", "Succeeded"),
        node("package", "Succeeded"),
    )
    assert found["tests.a"] == ("success", "passed in 10s")


def test_a_raw_argo_job_is_its_dag_node():
    workflow = {
        "metadata": {"name": WF},
        "spec": {
            "entrypoint": "main",
            "templates": [{"name": "main", "dag": {"tasks": [{"name": "smoke", "template": "smoke-smoke"}]}}],
        },
        "status": {
            "phase": "Failed",
            "nodes": {
                "s": node("smoke", "Failed", "DAG", "child 'x' failed"),
                "p": node("smoke.check", "Failed"),
            },
        },
    }
    assert job_updates(workflow, ["smoke"])["smoke"].state == "failure"
