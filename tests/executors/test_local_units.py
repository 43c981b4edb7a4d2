"""Pure parts of the local executor: node ids, manifest reading, selectors, command lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.argo.names import fnv32a, node_id
from service.executors.base import ExecutorError
from service.executors.local.depends import Op, Term
from service.executors.local.manifest import Dependency, UnsupportedManifest, build_plan
from service.executors.local.nodes import workflow_progress
from service.executors.local.pod import container_command, host_path
from service.executors.local.values import parse_duration, parse_int
from service.executors.local.watch import parse_selector, selected


def manifest(templates: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "ff-1-abc", "namespace": "forgeflow", "uid": "u-1"},
        "spec": {"entrypoint": "main", "templates": templates, **spec},
    }


def container(
    name: str, script: str = "true", body: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    spec = {"image": "fedora:41", "command": ["sh", "-c"], "args": [script], **(body or {})}
    return {"name": name, "container": spec, **extra}


def dag(*tasks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "main", "dag": {"tasks": list(tasks), **extra}}


def test_node_ids_are_argos_fnv32a_scheme() -> None:
    # Pairs from Argo's own controller tests (dag-diamond-xfww2).
    assert node_id("dag-diamond-xfww2", "dag-diamond-xfww2.A") == "dag-diamond-xfww2-1488588956"
    assert node_id("dag-diamond-xfww2", "dag-diamond-xfww2.A(0)") == "dag-diamond-xfww2-990947287"
    assert node_id("wf", "wf") == "wf"
    assert fnv32a("") == 0x811C9DC5


def test_progress_counts_pods_only() -> None:
    nodes = {
        "a": {"type": "Pod", "phase": "Succeeded"},
        "b": {"type": "Pod", "phase": "Failed"},
        "c": {"type": "Skipped", "phase": "Omitted"},
        "d": {"type": "DAG", "phase": "Running"},
    }
    assert workflow_progress(nodes) == "1/2"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(30, 30.0), ("30", 30.0), ("1s", 1.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0)],
)
def test_durations(value: Any, seconds: float) -> None:
    assert parse_duration(value, "x") == seconds


@pytest.mark.parametrize("value", ["soon", "1x", "s1", True])
def test_bad_durations_are_reported(value: Any) -> None:
    with pytest.raises(UnsupportedManifest, match="not a"):
        parse_duration(value, "x")


def test_int_or_string() -> None:
    assert parse_int("3", "x") == 3
    assert parse_int(4, "x") == 4
    assert parse_int(None, "x") is None
    with pytest.raises(UnsupportedManifest):
        parse_int("three", "x")


def test_plan_reads_dependencies_depends_and_templates() -> None:
    plan = build_plan(
        manifest(
            [
                dag(
                    {"name": "lint", "template": "lint"},
                    {"name": "build", "template": "lint"},
                    {"name": "tests", "template": "tests", "depends": "lint && build.Succeeded"},
                    {"name": "docs", "template": "lint", "dependencies": ["lint"]},
                ),
                container("lint", activeDeadlineSeconds="1800"),
                container(
                    "tests",
                    retryStrategy={
                        "limit": "2",
                        "retryPolicy": "Always",
                        "backoff": {"duration": "1s", "factor": 2},
                    },
                ),
            ],
            activeDeadlineSeconds=3600,
        )
    )
    assert plan.dag and plan.fail_fast and plan.deadline == 3600.0
    tasks = {t.name: t for t in plan.tasks}
    assert tasks["tests"].deps == (Dependency("lint"), Dependency("build"))
    assert tasks["tests"].logic == Op("&&", Term("lint"), Term("build", "Succeeded"))
    assert tasks["docs"].deps == (Dependency("lint"),)
    assert tasks["lint"].template.deadline == 1800.0
    retry = tasks["tests"].template.retry
    assert retry is not None and retry.limit == 2 and retry.retries("Error")
    assert [retry.delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]


def test_plan_of_a_single_container_entrypoint() -> None:
    plan = build_plan(manifest([container("main", "echo hi")]))
    assert not plan.dag
    assert [t.name for t in plan.tasks] == ["main"]
    assert plan.tasks[0].template.args == ("echo hi",)


def test_fail_fast_false_and_script_templates() -> None:
    script = {"name": "py", "script": {"image": "python", "command": ["python"], "source": "print(1)"}}
    plan = build_plan(manifest([dag({"name": "a", "template": "py"}, failFast=False), script]))
    assert not plan.fail_fast
    assert plan.tasks[0].template.script == "print(1)"


def test_workflow_variables_are_substituted() -> None:
    tmpl = container("main", "echo {{workflow.name}} {{ workflow.parameters.x }}")
    plan = build_plan(manifest([tmpl], arguments={"parameters": [{"name": "x", "value": "7"}]}))
    assert plan.tasks[0].template.args == ("echo ff-1-abc 7",)


def params(**values: str) -> dict[str, Any]:
    return {"parameters": [{"name": name, "value": value} for name, value in values.items()]}


def inputs(*names: str, **defaults: str) -> dict[str, Any]:
    declared = [{"name": name} for name in names]
    return {"parameters": declared + [{"name": n, "default": v} for n, v in defaults.items()]}


def test_task_arguments_fill_the_templates_input_parameters() -> None:
    say = container(
        "say", "echo {{inputs.parameters.what}} {{inputs.parameters.how}}", inputs=inputs("what", how="loud")
    )
    plan = build_plan(
        manifest(
            [
                dag(
                    {"name": "a", "template": "say", "arguments": params(what="hi {{workflow.name}}")},
                    {"name": "b", "template": "say", "arguments": params(what="bye", how="soft")},
                ),
                say,
            ]
        )
    )
    assert [t.template.args for t in plan.tasks] == [("echo hi ff-1-abc loud",), ("echo bye soft",)]


def test_a_nested_dag_passes_its_inputs_to_its_tasks_arguments() -> None:
    # the shape of an `argo:` job: the job's task calls the job's entry template, a DAG
    entry = {
        "name": "job-entry",
        "inputs": inputs("revision"),
        "dag": {
            "tasks": [
                {
                    "name": "t",
                    "template": "job-say",
                    "arguments": params(what="{{inputs.parameters.revision}}"),
                }
            ]
        },
    }
    say = container("job-say", "echo {{inputs.parameters.what}}", inputs=inputs("what"))
    plan = build_plan(
        manifest(
            [dag({"name": "job", "template": "job-entry", "arguments": params(revision="abc")}), entry, say]
        )
    )
    assert [(t.name, t.template.args) for t in plan.tasks] == [("job.t", ("echo abc",))]
    # a template sees its own inputs only, as in Argo
    leaky = container("job-say", "echo {{inputs.parameters.revision}}", inputs=inputs("what"))
    with pytest.raises(UnsupportedManifest, match=r"failed to resolve \{\{inputs.parameters.revision\}\}"):
        build_plan(
            manifest(
                [
                    dag({"name": "job", "template": "job-entry", "arguments": params(revision="abc")}),
                    entry,
                    leaky,
                ]
            )
        )


def test_a_workflowtemplate_task_says_it_needs_the_cluster() -> None:
    task = {"name": "deploy", "templateRef": {"name": "deploy", "template": "main"}}
    with pytest.raises(UnsupportedManifest, match="WorkflowTemplate 'deploy', which lives on a cluster"):
        build_plan(manifest([dag(task)]))


def test_an_input_nobody_supplies_is_an_error_and_workflow_arguments_reach_the_entrypoint() -> None:
    say = container("say", "echo {{inputs.parameters.what}}", inputs=inputs("what"))
    with pytest.raises(UnsupportedManifest, match=r"failed to resolve inputs\.parameters\.what"):
        build_plan(manifest([dag({"name": "a", "template": "say"}), say]))
    entry = container("main", "echo {{inputs.parameters.what}}", inputs=inputs("what"))
    plan = build_plan(manifest([entry], arguments=params(what="from the workflow")))
    assert plan.tasks[0].template.args == ("echo from the workflow",)


@pytest.mark.parametrize(
    ("templates", "expected"),
    [
        ([{"name": "main", "steps": [[{"name": "a", "template": "a"}]]}], "steps templates"),
        ([{"name": "main", "resource": {"action": "create"}}], "resource templates"),
        ([{"name": "main", "suspend": {}}], "suspend templates"),
        ([dag({"name": "a", "template": "a", "when": "true"}), container("a")], "'when'"),
        ([dag({"name": "a", "template": "a", "withItems": [1]}), container("a")], "'withItems'"),
        (
            [dag({"name": "a", "template": "a"}), container("a", outputs={"artifacts": [{"name": "x"}]})],
            "outputs",
        ),
        ([dag({"name": "a", "template": "a", "depends": "(b || "}), container("a")], "depends"),
        ([dag({"name": "a", "template": "a", "depends": "b.Bogus"}), container("a")], "depends result"),
        ([container("main", "echo {{inputs.parameters.x}}")], "failed to resolve {{inputs.parameters.x}}"),
        ([container("main", body={"workingDir": "/src"})], "outside /workspace"),
        ([container("main", body={"volumeMounts": [{"name": "v", "mountPath": "/v"}]})], "volumeMounts"),
        ([container("main", body={"env": [{"name": "X", "valueFrom": {"fieldRef": {}}}]})], "fieldRef"),
        ([dag({"name": "a", "template": "main"})], "nested DAG"),
        ([dag({"name": "a", "template": "a", "dependencies": ["a"]}), container("a")], "unknown task"),
    ],
)
def test_unsupported_manifests_name_what(templates: list[dict[str, Any]], expected: str) -> None:
    with pytest.raises(UnsupportedManifest) as caught:
        build_plan(manifest(templates))
    assert expected in str(caught.value)


def test_unsupported_message_says_local_executor() -> None:
    with pytest.raises(UnsupportedManifest, match=r"^not supported by the local executor: .*steps"):
        build_plan(manifest([{"name": "main", "steps": []}]))


def test_dependency_cycles_are_refused() -> None:
    tasks = [
        {"name": "a", "template": "x", "dependencies": ["b"]},
        {"name": "b", "template": "x", "dependencies": ["a"]},
    ]
    with pytest.raises(UnsupportedManifest, match="cycle"):
        build_plan(manifest([dag(*tasks), container("x")]))


def test_label_selectors() -> None:
    obj = {"metadata": {"labels": {"app": "forgeflow", "run": "12"}}}
    assert selected(obj, parse_selector("app=forgeflow,run==12"))
    assert selected(obj, parse_selector("app, !missing, run!=13"))
    assert not selected(obj, parse_selector("run=13"))
    assert not selected(obj, parse_selector("!app"))
    assert selected(obj, parse_selector(""))
    with pytest.raises(ExecutorError):
        parse_selector("run in (1,2)")


def test_container_command_line_for_podman() -> None:
    argv = container_command(
        "podman",
        name="forgeflow-wf-1",
        image="registry.fedoraproject.org/fedora:41",
        command=["sh", "-c"],
        args=["make test", "forgeflow"],
        workspace=Path("/data/pods/lint-0/workspace"),
        working_dir="/workspace/source",
        env_names=["FORGEFLOW_SHA", "TOKEN"],
    )
    assert argv == [
        "podman", "run", "--rm", "--name", "forgeflow-wf-1",
        "-v", "/data/pods/lint-0/workspace:/workspace:Z", "-w", "/workspace/source",
        "-e", "FORGEFLOW_SHA", "-e", "TOKEN",
        "--entrypoint", "sh", "registry.fedoraproject.org/fedora:41", "-c", "make test", "forgeflow",
    ]  # fmt: skip


def test_container_command_line_for_docker_script_without_command() -> None:
    argv = container_command(
        "docker",
        name="n",
        image="python:3.12",
        command=[],
        args=["/argo/staging/script"],
        workspace=Path("/w"),
        working_dir="/workspace",
        env_names=[],
        staging=Path("/s"),
    )
    assert argv == [
        "docker", "run", "--rm", "--name", "n", "-v", "/w:/workspace", "-w", "/workspace",
        "-v", "/s:/argo/staging:ro", "python:3.12", "/argo/staging/script",
    ]  # fmt: skip


def test_workspace_paths_map_into_the_pod_folder() -> None:
    assert host_path(Path("/p/ws"), "/workspace") == Path("/p/ws")
    assert host_path(Path("/p/ws"), "/workspace/source/sub") == Path("/p/ws/source/sub")


def test_inside_workspace_follows_the_folders_a_job_may_have_linked(tmp_path: Path):
    from service.executors.local.values import inside_workspace

    workspace = tmp_path / "workspace"
    (workspace / "source" / "dist").mkdir(parents=True)
    (workspace / "source" / "out").symlink_to(tmp_path)  # made by the job (or committed)
    (workspace / "source" / "dist" / "link").symlink_to("/etc/passwd")
    assert inside_workspace(workspace, workspace)
    assert inside_workspace(workspace, workspace / "source" / "dist" / "pkg.tgz")
    assert inside_workspace(workspace, workspace / "source" / "dist" / "link")  # copied as a link
    assert not inside_workspace(workspace, workspace / "source" / "dist" / "link", follow=True)
    assert not inside_workspace(workspace, workspace / "source" / "out" / "secret.txt")
    assert not inside_workspace(workspace, workspace / "source" / "out" / "x" / "y")
