"""The local executor end to end: real git repositories, real runner processes, real commands."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.argo.names import node_id
from service.executors.base import WatchEvent, WorkflowRef
from service.executors.local.executor import LocalExecutor, LocalExecutorConfig
from service.executors.local.proc import process_identity
from tests.support.gitrepo import GitRepo

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
FINAL = ("Succeeded", "Failed", "Error")


# -- helpers ---------------------------------------------------------------------------------
class Source:
    """A bare repository with two commits: ``f.txt`` is "one" at ``first``, "two" at ``second``."""

    def __init__(self, repo: GitRepo) -> None:
        self.url = repo.url
        self.first = repo.commit({"f.txt": "one\n"}, "first")
        self.second = repo.commit({"f.txt": "two\n"}, "second")


@pytest.fixture
def source(git_repo: GitRepo) -> Source:
    return Source(git_repo)


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[LocalExecutor]:
    executor = LocalExecutor(LocalExecutorConfig(data_dir=tmp_path / "data"))
    yield executor
    for obj in executor.list("")[0]:  # never leave a runner (and its sleep 60) behind
        ref = WorkflowRef.of(obj)
        executor.stop(ref, "test over")
        wait_until(lambda: phase(executor, ref) in (*FINAL, "Pending"))  # noqa: B023


def task_template(name: str, script: str, source: Source | None = None, **extra: Any) -> dict[str, Any]:
    """A template shaped like the compiler's: git source artifact, ``sh -c`` driver."""
    template: dict[str, Any] = {
        "name": name,
        "metadata": {"labels": {"forgeflow.dev/job": name}},
        "container": {
            "image": "registry.fedoraproject.org/fedora:41",
            "command": ["sh", "-c"],
            "args": [script],
            "workingDir": "/workspace/source",
            "env": [{"name": "FORGEFLOW_JOB", "value": name}],
        },
        **extra,
    }
    if source is not None:
        git = {"repo": source.url, "revision": source.first}
        template["inputs"] = {"artifacts": [{"name": "source", "path": "/workspace/source", "git": git}]}
    return template


def build_workflow(
    name: str,
    tasks: dict[str, str],
    *,
    needs: dict[str, list[str]] | None = None,
    source: Source | None = None,
    templates: dict[str, dict[str, Any]] | None = None,
    dag: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Workflow manifest with one DAG task (and template) per entry of ``tasks``."""
    needs = needs or {}
    dag_tasks = []
    for task in tasks:
        entry: dict[str, Any] = {"name": task, "template": task}
        if needs.get(task):
            entry["dependencies"] = needs[task]
        dag_tasks.append(entry)
    extra = templates or {}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": name,
            "namespace": "forgeflow",
            "labels": {"app.kubernetes.io/managed-by": "forgeflow", "forgeflow.dev/run": "12"},
            "annotations": {"forgeflow.dev/sha": "abc"},
        },
        "spec": {
            "entrypoint": "main",
            "serviceAccountName": "forgeflow-workflow",
            "ttlStrategy": {"secondsAfterCompletion": 3600},
            "podGC": {"strategy": "OnPodSuccess"},
            "templates": [
                {"name": "main", "dag": {"tasks": dag_tasks, **(dag or {})}},
                *(task_template(t, s, source, **extra.get(t, {})) for t, s in tasks.items()),
            ],
            **spec,
        },
    }


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def phase(executor: LocalExecutor, ref: WorkflowRef) -> str:
    return str(((executor.get(ref) or {}).get("status") or {}).get("phase"))


def finished(executor: LocalExecutor, ref: WorkflowRef, timeout: float = 20.0) -> dict[str, Any]:
    wait_until(lambda: phase(executor, ref) in FINAL, timeout)
    obj = executor.get(ref)
    assert obj is not None
    return obj


def nodes_by_display(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["displayName"]: n for n in ((obj.get("status") or {}).get("nodes") or {}).values()}


def script_waiting_for(path: Path, then: str = "true") -> str:
    quoted = shlex.quote(str(path))
    return f"i=0; while [ ! -e {quoted} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; {then}"


# -- tests -----------------------------------------------------------------------------------
def test_dag_succeeds_with_argos_shape_at_the_requested_commit(
    executor: LocalExecutor, source: Source
) -> None:
    wf = build_workflow(
        "ff-12-abc1234",
        {"a": "git rev-parse HEAD; cat f.txt; echo job=$FORGEFLOW_JOB", "b": "echo b", "c": "echo c"},
        needs={"c": ["a", "b"]},
        source=source,
    )
    ref = executor.submit(wf)
    assert ref == WorkflowRef("forgeflow", "ff-12-abc1234")
    obj = finished(executor, ref)
    status = obj["status"]
    assert status["phase"] == "Succeeded" and status["progress"] == "3/3"
    assert TIMESTAMP.match(status["startedAt"]) and TIMESTAMP.match(status["finishedAt"])
    assert obj["metadata"]["labels"]["workflows.argoproj.io/completed"] == "true"

    name = ref.name
    ids = {t: node_id(name, f"{name}.{t}") for t in "abc"}
    nodes = status["nodes"]
    assert set(nodes) == {name, *ids.values()}
    root = nodes[name]
    assert root["type"] == "DAG" and root["displayName"] == name and root["templateName"] == "main"
    assert root["phase"] == "Succeeded" and sorted(root["children"]) == sorted([ids["a"], ids["b"]])
    assert root["outboundNodes"] == [ids["c"]]
    for task in "abc":
        node = nodes[ids[task]]
        assert node["name"] == f"{name}.{task}" and node["displayName"] == task
        assert node["type"] == "Pod" and node["templateName"] == task and node["boundaryID"] == name
        assert node["phase"] == "Succeeded" and node["outputs"] == {"exitCode": "0"}
        assert node["hostNodeName"] == "local"
        assert TIMESTAMP.match(node["startedAt"]) and TIMESTAMP.match(node["finishedAt"])
    assert nodes[ids["a"]]["children"] == [ids["c"]] and nodes[ids["b"]]["children"] == [ids["c"]]

    log = executor.logs(ref, "a")
    assert log is not None
    assert log.splitlines() == [source.first, "one", "job=a"]  # exactly the requested commit
    assert executor.logs(ref, "nope") is None


def test_failing_step_fails_its_node_and_omits_dependents(executor: LocalExecutor, source: Source) -> None:
    failing = "echo working; echo \"::forgeflow-failed::step 'test' failed with exit code 2\"; exit 2"
    wf = build_workflow(
        "ff-13-fail",
        {
            "build": "echo ::forgeflow-failed::not me; true",
            "test": failing,
            "deploy": "echo never",
            "report": "true",
        },
        needs={"deploy": ["test", "build"], "report": ["deploy"]},
        source=source,
    )
    obj = finished(executor, executor.submit(wf))
    assert obj["status"]["phase"] == "Failed"
    nodes = nodes_by_display(obj)
    test = nodes["test"]
    assert test["phase"] == "Failed" and test["message"] == "step 'test' failed with exit code 2"
    assert test["outputs"] == {"exitCode": "2"}
    assert nodes["build"]["phase"] == "Succeeded" and "message" not in nodes["build"]
    for omitted in ("deploy", "report"):
        assert nodes[omitted]["phase"] == "Omitted" and nodes[omitted]["type"] == "Skipped"
        assert nodes[omitted]["message"] == "omitted: depends condition not met"
    assert obj["status"]["message"] == f"child '{test['id']}' failed"
    assert "never" not in (executor.logs(WorkflowRef.of(obj), "deploy") or "")


def test_plain_nonzero_exit_gets_argos_message(executor: LocalExecutor) -> None:
    obj = finished(executor, executor.submit(build_workflow("ff-14-exit", {"a": "exit 3"})))
    assert nodes_by_display(obj)["a"]["message"] == "Error (exit code 3)"


def test_independent_tasks_run_at_the_same_time(executor: LocalExecutor, tmp_path: Path) -> None:
    a_started, b_started = tmp_path / "a-started", tmp_path / "b-started"
    overlap = "touch {mine}; " + script_waiting_for(Path("{other}"), "test -e {other}")
    tasks = {
        "a": overlap.format(mine=a_started, other=b_started),
        "b": overlap.format(mine=b_started, other=a_started),
    }
    obj = finished(executor, executor.submit(build_workflow("ff-15-par", tasks)))
    assert obj["status"]["phase"] == "Succeeded"  # each saw the other start before it ended


def test_fail_fast_starts_nothing_new_after_a_failure(executor: LocalExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "a-failed"
    tasks = {"a": f"touch {marker}; exit 1", "b": script_waiting_for(marker, "sleep 0.5"), "c": "echo c"}
    obj = finished(executor, executor.submit(build_workflow("ff-16-ff", tasks, needs={"c": ["b"]})))
    nodes = nodes_by_display(obj)
    assert obj["status"]["phase"] == "Failed"
    assert nodes["a"]["phase"] == "Failed" and nodes["b"]["phase"] == "Succeeded"
    assert "c" not in nodes  # never scheduled, as in Argo
    assert obj["status"]["message"] == "template has failed or errored children and failFast enabled"


def test_without_fail_fast_independent_branches_go_on(executor: LocalExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "a-failed"
    tasks = {"a": f"touch {marker}; exit 1", "b": script_waiting_for(marker), "c": "echo c"}
    wf = build_workflow("ff-17-noff", tasks, needs={"c": ["b"]}, dag={"failFast": False})
    obj = finished(executor, executor.submit(wf))
    nodes = nodes_by_display(obj)
    assert obj["status"]["phase"] == "Failed" and nodes["c"]["phase"] == "Succeeded"


def test_task_deadline_kills_the_process_group(executor: LocalExecutor) -> None:
    wf = build_workflow(
        "ff-18-slow", {"slow": "sleep 60 & sleep 60"}, templates={"slow": {"activeDeadlineSeconds": 1}}
    )
    started = time.monotonic()
    obj = finished(executor, executor.submit(wf), timeout=15)
    assert time.monotonic() - started < 10
    node = nodes_by_display(obj)["slow"]
    assert node["phase"] == "Failed"
    assert node["message"] == "Pod was active on the node longer than the specified deadline"
    assert obj["status"]["phase"] == "Failed"


def test_workflow_deadline_stops_everything(executor: LocalExecutor) -> None:
    wf = build_workflow("ff-19-wfdl", {"slow": "sleep 60"}, activeDeadlineSeconds="1")
    obj = finished(executor, executor.submit(wf), timeout=15)
    assert obj["status"]["phase"] == "Failed"
    assert obj["status"]["message"] == "Step exceeded its deadline"
    assert nodes_by_display(obj)["slow"]["message"] == "Step exceeded its deadline"


def test_retry_produces_retry_and_pod_children(executor: LocalExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"
    script = f"if [ -e {marker} ]; then echo second; else touch {marker}; echo first; exit 1; fi"
    retry = {
        "retryStrategy": {"limit": 2, "retryPolicy": "Always", "backoff": {"duration": "100ms", "factor": 2}}
    }
    wf = build_workflow(
        "ff-20-retry",
        {"flaky": script, "after": "true"},
        needs={"after": ["flaky"]},
        templates={"flaky": retry},
    )
    ref = executor.submit(wf)
    obj = finished(executor, ref)
    assert obj["status"]["phase"] == "Succeeded" and obj["status"]["progress"] == "2/3"
    nodes = nodes_by_display(obj)
    name = ref.name
    parent = nodes["flaky"]
    assert parent["type"] == "Retry" and parent["phase"] == "Succeeded"
    assert parent["children"] == [node_id(name, f"{name}.flaky(0)"), node_id(name, f"{name}.flaky(1)")]
    first, second = nodes["flaky(0)"], nodes["flaky(1)"]
    assert first["type"] == second["type"] == "Pod"
    assert first["phase"] == "Failed" and first["outputs"] == {"exitCode": "1"}
    assert second["phase"] == "Succeeded" and second["name"] == f"{name}.flaky(1)"
    assert second["children"] == [nodes["after"]["id"]]  # dependents hang off the last attempt
    log = executor.logs(ref, "flaky")
    assert log is not None and log.splitlines()[0] == "first" and log.splitlines()[-1] == "second"
    assert "retry 1" in log


def test_retries_run_out(executor: LocalExecutor) -> None:
    retry = {"retryStrategy": {"limit": "1"}}
    obj = finished(
        executor, executor.submit(build_workflow("ff-21-out", {"bad": "exit 4"}, templates={"bad": retry}))
    )
    nodes = nodes_by_display(obj)
    assert nodes["bad"]["phase"] == "Failed" and nodes["bad"]["message"] == "No more retries left"
    assert [nodes[f"bad({i})"]["message"] for i in (0, 1)] == ["Error (exit code 4)"] * 2


def test_stop_terminates_a_running_workflow(executor: LocalExecutor) -> None:
    ref = executor.submit(
        build_workflow("ff-22-stop", {"long": "sleep 60", "next": "true"}, needs={"next": ["long"]})
    )
    wait_until(lambda: nodes_by_display(executor.get(ref) or {}).get("long", {}).get("phase") == "Running")
    stopped_at = time.monotonic()
    executor.stop(ref, "superseded by a newer push")
    obj = finished(executor, ref, timeout=10)
    assert time.monotonic() - stopped_at < 5
    assert obj["status"]["phase"] == "Failed"
    assert obj["status"]["message"] == "Stopped with strategy 'Terminate'"
    assert obj["spec"]["shutdown"] == "Terminate"
    assert obj["metadata"]["annotations"]["forgeflow.dev/stop-message"] == "superseded by a newer push"
    nodes = nodes_by_display(obj)
    assert (
        nodes["long"]["phase"] == "Failed" and nodes["long"]["message"] == "Stopped with strategy 'Terminate'"
    )
    assert "next" not in nodes
    version = obj["metadata"]["resourceVersion"]
    executor.stop(ref, "again")  # finished: no-op
    assert (executor.get(ref) or {})["metadata"]["resourceVersion"] == version


def test_submitting_twice_runs_once(executor: LocalExecutor, tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    wf = build_workflow("ff-23-once", {"count": f"echo run >> {counter}"})
    first = executor.submit(wf)
    uid = (executor.get(first) or {})["metadata"]["uid"]
    assert executor.submit(wf) == first
    finished(executor, first)
    assert executor.submit(wf) == first
    time.sleep(0.3)
    assert counter.read_text() == "run\n"
    assert (executor.get(first) or {})["metadata"]["uid"] == uid


def test_watch_sees_pending_running_succeeded_in_order(executor: LocalExecutor, tmp_path: Path) -> None:
    older = finished(executor, executor.submit(build_workflow("ff-24-older", {"a": "true"})))
    assert older["status"]["phase"] == "Succeeded"
    release = tmp_path / "release"
    ref, created = executor.create(build_workflow("ff-25-watched", {"a": script_waiting_for(release)}))
    assert created
    _, version = executor.list("app.kubernetes.io/managed-by=forgeflow")
    events: list[WatchEvent] = []

    def consume() -> None:
        for event in executor.watch("forgeflow.dev/run=12", version, 20):
            events.append(event)
            obj_phase = event.object["status"]["phase"]
            if obj_phase == "Running":
                release.touch()
            if obj_phase in FINAL:
                return

    consumer = threading.Thread(target=consume)
    consumer.start()
    executor.annotate(ref, {"forgeflow.dev/reported": "pending"})  # a change while Pending
    wait_until(lambda: bool(events))
    executor.start(ref)
    consumer.join(timeout=25)
    assert not consumer.is_alive()
    assert {e.object["metadata"]["name"] for e in events} == {"ff-25-watched"}  # nothing older
    assert {e.type for e in events} == {"MODIFIED"}
    versions = [int(e.resource_version) for e in events]
    assert versions == sorted(versions) and versions[0] > int(version)
    phases = [e.object["status"]["phase"] for e in events]
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == [
        "Pending",
        "Running",
        "Succeeded",
    ]


def test_unsupported_template_ends_in_error(executor: LocalExecutor) -> None:
    wf = build_workflow("ff-26-steps", {"a": "true"})
    wf["spec"]["templates"].append({"name": "s", "steps": [[{"name": "x", "template": "a"}]]})
    wf["spec"]["templates"][0]["dag"]["tasks"].append({"name": "s", "template": "s"})
    obj = finished(executor, executor.submit(wf))
    assert obj["status"]["phase"] == "Error"
    assert obj["status"]["message"] == "not supported by the local executor: template 's': steps templates"
    assert obj["status"]["nodes"] == {}


def test_malformed_manifest_ends_in_error_without_crashing(executor: LocalExecutor) -> None:
    wf = build_workflow("ff-39-bad", {"a": "true"})
    wf["spec"]["templates"][1]["container"]["env"] = [1]
    obj = executor.run_foreground(wf, io.StringIO())
    assert obj["status"]["phase"] == "Error"
    assert obj["status"]["message"].startswith("invalid Workflow manifest: ")


def test_secrets_come_from_the_data_dir(executor: LocalExecutor, tmp_path: Path) -> None:
    secret = tmp_path / "data" / "secrets" / "pypi-token"
    secret.mkdir(parents=True)
    (secret / "token").write_text("s3cr3t")
    (secret / "USER").write_text("me")
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "pypi-token", "key": "token"}}}]
    templates = {
        "uses": {
            "container": {
                "image": "x",
                "command": ["sh", "-c"],
                "args": ["echo $TOKEN $USER"],
                "env": env,
                "envFrom": [{"secretRef": {"name": "pypi-token"}}],
            }
        },
        "missing": {
            "container": {
                "image": "x",
                "command": ["sh", "-c"],
                "args": ["true"],
                "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}],
            }
        },
    }
    wf = build_workflow(
        "ff-27-secret", {"uses": "", "missing": ""}, templates=templates, dag={"failFast": False}
    )
    ref = executor.submit(wf)
    obj = finished(executor, ref)
    nodes = nodes_by_display(obj)
    assert nodes["uses"]["phase"] == "Succeeded"
    # the stored log masks Secret values (of 4 characters or more: "me" is not masked)
    assert executor.logs(ref, "uses") == "*** me\n"
    assert nodes["missing"]["phase"] == "Error"
    assert nodes["missing"]["message"].startswith('secret "nope" not found')


def test_clone_failure_errors_the_node(executor: LocalExecutor, source: Source, tmp_path: Path) -> None:
    wf = build_workflow("ff-28-clone", {"a": "true"}, source=source)
    wf["spec"]["templates"][1]["inputs"]["artifacts"][0]["git"]["repo"] = str(tmp_path / "no-such-repo.git")
    node = nodes_by_display(finished(executor, executor.submit(wf)))["a"]
    assert node["phase"] == "Error"
    assert node["message"].startswith("failed to load input artifact 'source' from ")
    wf = build_workflow("ff-29-rev", {"a": "true"}, source=source)
    wf["spec"]["templates"][1]["inputs"]["artifacts"][0]["git"]["revision"] = "0" * 40
    node = nodes_by_display(finished(executor, executor.submit(wf)))["a"]
    assert node["phase"] == "Error" and "not found" in node["message"]


def test_reap_orphans_marks_workflows_whose_runner_died(executor: LocalExecutor) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    ref, _ = executor.create(build_workflow("ff-30-orphan", {"a": "true"}))
    alive, _ = executor.create(build_workflow("ff-31-alive", {"a": "true"}))

    def running_under(identity: str) -> Callable[[dict[str, Any]], None]:
        def mutate(raw: dict[str, Any]) -> None:
            raw["localStore"]["runner"] = identity
            raw["status"] = {"phase": "Running", "nodes": {}}

        return mutate

    from service.executors.local.status import process_identity_here

    executor.store.update(ref.namespace, ref.name, running_under(f"{dead.pid}:1"))
    executor.store.update(alive.namespace, alive.name, running_under(process_identity_here()))
    assert executor.reap_orphans() == [ref]
    obj = executor.get(ref) or {}
    assert obj["status"]["phase"] == "Error" and obj["status"]["message"] == "local runner died"
    assert phase(executor, alive) == "Running"
    assert executor.reap_orphans() == []
    executor.store.update(alive.namespace, alive.name, lambda raw: raw["status"].update(phase="Succeeded"))


def test_run_foreground_streams_prefixed_lines(executor: LocalExecutor, source: Source) -> None:
    out = io.StringIO()
    wf = build_workflow(
        "ff-32-fg", {"a": "echo hello; echo world >&2", "b": "cat f.txt"}, needs={"b": ["a"]}, source=source
    )
    obj = executor.run_foreground(wf, out)
    assert obj["status"]["phase"] == "Succeeded"
    assert out.getvalue().splitlines() == ["[a] hello", "[a] world", "[b] one"]
    again = executor.run_foreground(wf, io.StringIO())  # a finished run of that name is replaced
    assert again["metadata"]["uid"] != obj["metadata"]["uid"]


def test_single_container_entrypoint_and_script_template(executor: LocalExecutor) -> None:
    wf = build_workflow("ff-33-plain", {})
    wf["spec"]["templates"] = [
        {"name": "main", "script": {"image": "python", "command": ["sh"], "source": "echo from-script"}}
    ]
    ref = executor.submit(wf)
    obj = finished(executor, ref)
    assert obj["status"]["phase"] == "Succeeded"
    root = obj["status"]["nodes"][ref.name]
    assert root["type"] == "Pod" and root["displayName"] == ref.name and root["templateName"] == "main"
    assert executor.logs(ref, "main") == "from-script\n"


def test_run_survives_the_process_that_submitted_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    wf = build_workflow("ff-34-survive", {"a": "sleep 0.5; echo done"})
    code = (
        "import json, sys; from pathlib import Path;"
        "from service.executors.local.executor import LocalExecutor, LocalExecutorConfig;"
        "LocalExecutor(LocalExecutorConfig(data_dir=Path(sys.argv[1]))).submit(json.loads(sys.argv[2]))"
    )
    subprocess.run([sys.executable, "-c", code, str(data), json.dumps(wf)], check=True, timeout=30)
    executor = LocalExecutor(LocalExecutorConfig(data_dir=data))
    ref = WorkflowRef("forgeflow", "ff-34-survive")
    assert finished(executor, ref)["status"]["phase"] == "Succeeded"
    assert executor.logs(ref, "a") == "done\n"


def test_stop_strategy_lets_running_pods_finish(executor: LocalExecutor, tmp_path: Path) -> None:
    release = tmp_path / "release"
    tasks = {"a": script_waiting_for(release), "b": "true"}
    ref = executor.submit(build_workflow("ff-35-stop", tasks, needs={"b": ["a"]}))
    wait_until(lambda: nodes_by_display(executor.get(ref) or {}).get("a", {}).get("phase") == "Running")
    executor.store.update(ref.namespace, ref.name, lambda raw: raw["spec"].update(shutdown="Stop"))
    time.sleep(0.5)
    release.touch()
    obj = finished(executor, ref)
    nodes = nodes_by_display(obj)
    assert nodes["a"]["phase"] == "Succeeded" and "b" not in nodes
    assert obj["status"]["phase"] == "Failed" and obj["status"]["message"] == "Stopped with strategy 'Stop'"


def test_sigterm_to_the_runner_terminates_the_run(executor: LocalExecutor) -> None:
    ref = executor.submit(build_workflow("ff-36-sig", {"long": "sleep 60"}))
    wait_until(lambda: nodes_by_display(executor.get(ref) or {}).get("long", {}).get("phase") == "Running")
    runner = executor.store.get_raw(ref.namespace, ref.name)["localStore"]["runner"]  # type: ignore[index]
    os.kill(int(runner.split(":")[0]), signal.SIGTERM)
    obj = finished(executor, ref, timeout=10)
    assert obj["status"]["message"] == "Stopped with strategy 'Terminate'"


def test_delete_while_running_kills_the_pods(executor: LocalExecutor, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    ref = executor.submit(build_workflow("ff-37-del", {"long": f"echo $$ > {pid_file}; exec sleep 60"}))
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip().isdigit())
    pid = int(pid_file.read_text())
    assert executor.delete(ref)
    assert executor.get(ref) is None
    wait_until(lambda: process_identity(pid) is None, timeout=10)
    wait_until(lambda: not executor.store.workflow_dir(ref.namespace, ref.name).exists(), timeout=10)


def test_thread_mode_runs_in_this_process(tmp_path: Path) -> None:
    executor = LocalExecutor(LocalExecutorConfig(data_dir=tmp_path / "data", detach=False, max_parallel=1))
    ref = executor.submit(build_workflow("ff-38-thread", {"a": "echo a", "b": "echo b"}))
    obj = finished(executor, ref)
    assert obj["status"]["phase"] == "Succeeded"
    runner = executor.store.get_raw(ref.namespace, ref.name)["localStore"]["runner"]  # type: ignore[index]
    assert runner.startswith(f"{os.getpid()}:")


def test_config_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="podman or docker"):
        LocalExecutorConfig(data_dir=tmp_path, container_runtime="lxc")
    with pytest.raises(ValueError, match="max_parallel"):
        LocalExecutorConfig(data_dir=tmp_path, max_parallel=0)
