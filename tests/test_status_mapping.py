from __future__ import annotations

from service.runs.node_states import job_updates

WF = "forgeflow-1-abc"


def workflow(phase: str, nodes: dict, message: str = "") -> dict:
    return {
        "metadata": {"name": WF},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "name": "main",
                    "dag": {
                        "tasks": [
                            {"name": "lint", "template": "lint"},
                            {"name": "test", "template": "test", "dependencies": ["lint"]},
                        ]
                    },
                },
            ],
        },
        "status": {"phase": phase, "message": message, "nodes": nodes},
    }


def node(task: str, phase: str, message: str = "", kind: str = "Pod", **extra) -> dict:
    return {
        "id": f"{WF}-{task}",
        "name": f"{WF}.{task}",
        "displayName": task,
        "type": kind,
        "phase": phase,
        "message": message,
        "startedAt": "2026-01-01T00:00:00Z",
        "finishedAt": "2026-01-01T00:01:05Z",
        **extra,
    }


def states(wf: dict, stop_reason: str = "") -> dict:
    return {k: (v.state, v.description) for k, v in job_updates(wf, ["lint", "test"], stop_reason).items()}


def test_pending_and_running():
    wf = workflow(
        "Running",
        {WF: {"id": WF, "name": WF, "displayName": WF, "type": "DAG"}, "x": node("lint", "Running")},
    )
    assert states(wf) == {"lint": ("running", "running"), "test": ("pending", "queued")}


def test_success_and_step_failure_and_skipped_dependent():
    wf = workflow(
        "Failed",
        {
            "a": node("lint", "Failed", "step 'lint' failed with exit code 2"),
            "b": node("test", "Omitted"),
        },
    )
    assert states(wf) == {
        "lint": ("failure", "failed: step 'lint' failed with exit code 2 (1m 5s)"),
        "test": ("error", "skipped: lint failed"),
    }


def test_retry_node_wins_over_its_attempts():
    wf = workflow(
        "Succeeded",
        {
            "r": node("lint", "Succeeded", kind="Retry"),
            "p0": {**node("lint(0)", "Failed"), "name": f"{WF}.lint(0)"},
            "p1": {**node("lint(1)", "Succeeded"), "name": f"{WF}.lint(1)"},
            "t": node("test", "Succeeded"),
        },
    )
    assert states(wf)["lint"] == ("success", "passed in 1m 5s")


def test_deadline_is_a_timeout_failure():
    wf = workflow(
        "Failed",
        {"a": node("lint", "Failed", "Pod was active on the node longer than the specified deadline")},
    )
    assert states(wf)["lint"] == ("failure", "timed out after 1m 5s")


def test_stopped_workflow_uses_the_stop_reason():
    wf = workflow(
        "Failed",
        {"a": node("lint", "Failed", "Stopped with strategy 'Terminate'")},
        "Stopped with strategy 'Terminate'",
    )
    assert states(wf, "superseded by 1234567") == {
        "lint": ("error", "superseded by 1234567"),
        "test": ("error", "superseded by 1234567"),
    }


def test_workflow_error_without_nodes_never_leaves_jobs_pending():
    wf = workflow("Error", {}, "invalid spec: templates.lint.container.image is required")
    result = states(wf)
    assert result["lint"][0] == "error" and "invalid spec" in result["lint"][1]
