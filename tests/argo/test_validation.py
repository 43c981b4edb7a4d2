"""Unit tests of the strict Argo manifest validator: structure, leaf types, semantics."""

import copy
from typing import Any

import pytest
from hera.workflows import models as hera_models
from pydantic import ValidationError

from service.argo import (
    API_VERSION,
    InvalidManifest,
    manifest_errors,
    template_errors,
    validate_manifest,
    validate_templates,
)
from service.argo.semantics import find_cycle, parse_depends

IMAGE = "registry.fedoraproject.org/fedora:41"


def container(name: str = "work", **extra: Any) -> dict[str, Any]:
    """A container template."""
    return {"name": name, "container": {"image": IMAGE, "command": ["true"]}, **extra}


def task(name: str, template: str = "work", **extra: Any) -> dict[str, Any]:
    """A DAG task running ``template``."""
    return {"name": name, "template": template, **extra}


def dag(*tasks: dict[str, Any], name: str = "main") -> dict[str, Any]:
    """A DAG template."""
    return {"name": name, "dag": {"tasks": list(tasks)}}


def workflow(*templates: dict[str, Any], kind: str = "Workflow", **spec: Any) -> dict[str, Any]:
    """A manifest of ``kind`` with ``templates`` (default: one container named "main")."""
    spec.setdefault("entrypoint", "main")
    spec["templates"] = list(templates) or [container("main")]
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"generateName": "build-"},
        "spec": spec,
    }


def errors_at(errors: list[str], path: str) -> list[str]:
    """The errors reported at exactly ``path``."""
    return [error for error in errors if error.startswith(f"{path}: ")]


# --- structure ---------------------------------------------------------------------------


def test_minimal_workflow_is_valid() -> None:
    manifest = workflow()
    assert manifest_errors(manifest) == []
    assert validate_manifest(manifest) is None


@pytest.mark.parametrize(
    "manifest",
    [
        pytest.param(workflow(kind="WorkflowTemplate"), id="WorkflowTemplate"),
        pytest.param(workflow(kind="ClusterWorkflowTemplate"), id="ClusterWorkflowTemplate"),
        pytest.param(
            {
                "apiVersion": API_VERSION,
                "kind": "CronWorkflow",
                "metadata": {"name": "nightly"},
                "spec": {
                    "schedules": ["0 3 * * *"],
                    "workflowSpec": {"entrypoint": "main", "templates": [container("main")]},
                },
            },
            id="CronWorkflow",
        ),
    ],
)
def test_other_kinds_are_valid(manifest: dict[str, Any]) -> None:
    assert manifest_errors(manifest) == []


@pytest.mark.parametrize("kind", ["WorkflowTemplate", "ClusterWorkflowTemplate"])
def test_workflow_templates_need_no_entrypoint(kind: str) -> None:
    manifest = workflow(kind=kind)
    del manifest["spec"]["entrypoint"]
    assert manifest_errors(manifest) == []


def test_unknown_field_names_its_path() -> None:
    manifest = workflow(container("main"), container("b"), container("c"))
    manifest["spec"]["templates"][2]["container"]["imagee"] = "typo"
    assert manifest_errors(manifest) == ["spec.templates[2].container.imagee: unknown field"]


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ((), "extra"),
        (("metadata",), "metadata.extra"),
        (("spec",), "spec.extra"),
        (("spec", "templates", 0), "spec.templates[0].extra"),
        (("spec", "templates", 0, "container"), "spec.templates[0].container.extra"),
    ],
)
def test_unknown_fields_are_rejected_everywhere(where: tuple[Any, ...], path: str) -> None:
    manifest = workflow()
    target: Any = manifest
    for key in where:
        target = target[key]
    target["extra"] = 1
    assert errors_at(manifest_errors(manifest), path) == [f"{path}: unknown field"]


@pytest.mark.parametrize("field", ["active_deadline_seconds", "service_account_name"])
def test_python_field_names_are_unknown_fields(field: str) -> None:
    manifest = workflow()
    manifest["spec"][field] = "x"
    assert manifest_errors(manifest) == [f"spec.{field}: unknown field"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (("templates", "oops"), "spec.templates: expected a list, got string"),
        (("parallelism", "2"), "spec.parallelism: expected an integer, got string"),
        (("hostNetwork", "true"), "spec.hostNetwork: expected a boolean, got string"),
        (("activeDeadlineSeconds", "300"), "spec.activeDeadlineSeconds: expected an integer, got string"),
        (("arguments", []), "spec.arguments: expected an object, got list"),
    ],
)
def test_wrong_types_are_rejected(change: tuple[str, Any], error: str) -> None:
    manifest = workflow()
    manifest["spec"][change[0]] = change[1]
    assert error in manifest_errors(manifest)


def test_wrong_type_deep_inside_a_template() -> None:
    manifest = workflow()
    manifest["spec"]["templates"][0]["container"]["args"] = 5
    assert manifest_errors(manifest) == ["spec.templates[0].container.args: expected a list, got integer"]


def test_required_field_missing() -> None:
    manifest = workflow(arguments={"parameters": [{"value": "x"}]})
    assert manifest_errors(manifest) == ["spec.arguments.parameters[0].name: required field missing"]


def test_label_keys_with_dots_are_quoted_in_paths() -> None:
    manifest = workflow()
    manifest["metadata"]["labels"] = {"app.kubernetes.io/name": 5}
    assert manifest_errors(manifest) == [
        'metadata.labels["app.kubernetes.io/name"]: expected a string, got integer'
    ]


def test_invalid_manifest_carries_every_error() -> None:
    manifest = workflow()
    manifest["spec"]["bogus"] = 1
    manifest["spec"]["entrypoint"] = "nope"
    with pytest.raises(InvalidManifest) as caught:
        validate_manifest(manifest)
    assert caught.value.errors == ["spec.bogus: unknown field", "spec.entrypoint: no template named 'nope'"]
    assert "spec.bogus: unknown field" in str(caught.value)
    assert "2 errors" in str(caught.value)


@pytest.mark.parametrize(
    ("manifest", "error"),
    [
        ([], "(root): expected an object, got list"),
        ({"apiVersion": API_VERSION, "kind": "Pod"}, "kind: expected one of"),
        ({**workflow(), "apiVersion": "argoproj.io/v1"}, "apiVersion: expected 'argoproj.io/v1alpha1'"),
    ],
)
def test_unsupported_documents(manifest: Any, error: str) -> None:
    assert any(found.startswith(error) for found in manifest_errors(manifest))


def test_hera_models_are_left_untouched() -> None:
    manifest = workflow(podResources={"requests": {"cpu": 1}})
    assert manifest_errors(manifest) == []
    with pytest.raises(ValidationError):
        hera_models.WorkflowSpec.model_validate(manifest["spec"], extra="forbid")


# --- leaf types Argo reads more loosely than the JSON schema says ------------------------


@pytest.mark.parametrize("value", [300, "300", "{{inputs.parameters.timeout}}"])
def test_template_active_deadline_is_int_or_string(value: Any) -> None:
    assert manifest_errors(workflow(container("main", activeDeadlineSeconds=value))) == []


@pytest.mark.parametrize("value", [2, "2"])
def test_retry_limit_and_backoff_factor_are_int_or_string(value: Any) -> None:
    retry = {"limit": value, "backoff": {"duration": "5s", "factor": value}}
    assert manifest_errors(workflow(container("main", retryStrategy=retry))) == []


@pytest.mark.parametrize("value", [8080, "http"])
def test_probe_port_is_int_or_string(value: Any) -> None:
    template = container("main")
    template["container"]["livenessProbe"] = {"httpGet": {"path": "/", "port": value}}
    assert manifest_errors(workflow(template)) == []


@pytest.mark.parametrize("value", [True, 1.5, [1]])
def test_int_or_string_rejects_other_types(value: Any) -> None:
    errors = manifest_errors(workflow(container("main", retryStrategy={"limit": value})))
    assert errors_at(errors, "spec.templates[0].retryStrategy.limit")


def test_workflow_level_active_deadline_is_an_integer() -> None:
    """Unlike the template's, spec.activeDeadlineSeconds is an int64 in Argo."""
    assert manifest_errors(workflow(activeDeadlineSeconds=300)) == []


@pytest.mark.parametrize("value", [1, 0.5, "500m", "1Gi", "2e3", "{{inputs.parameters.cpu}}"])
def test_quantities_are_numbers_or_strings(value: Any) -> None:
    template = container("main")
    template["container"]["resources"] = {"limits": {"cpu": value}, "requests": {"memory": "1Gi"}}
    assert manifest_errors(workflow(template)) == []


@pytest.mark.parametrize("value", ["1 core", True, None, ["1"]])
def test_bad_quantities_are_rejected(value: Any) -> None:
    template = container("main")
    template["container"]["resources"] = {"limits": {"cpu": value}}
    errors = manifest_errors(workflow(template))
    assert errors_at(errors, "spec.templates[0].container.resources.limits.cpu")


@pytest.mark.parametrize("value", ["x", 1, 1.5, True])
def test_parameter_values_accept_scalars(value: Any) -> None:
    parameter = {"name": "p", "value": value, "default": value, "enum": [value]}
    assert manifest_errors(workflow(arguments={"parameters": [parameter]})) == []


def test_parameter_values_reject_objects() -> None:
    errors = manifest_errors(workflow(arguments={"parameters": [{"name": "p", "value": {}}]}))
    assert errors_at(errors, "spec.arguments.parameters[0].value")


def test_timestamps_may_be_strings() -> None:
    manifest = workflow()
    manifest["metadata"]["creationTimestamp"] = "2025-01-01T00:00:00Z"
    assert manifest_errors(manifest) == []


# --- fields of argo-workflows v4.1 that hera 7.1 lacks -----------------------------------

V41_FIELDS = {
    "podResources": {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}},
    "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "gpu-claim"}],
}


def test_v41_spec_and_template_fields_are_accepted() -> None:
    sidecar = {"container": {"name": "plugin", "image": IMAGE}}
    plugin = {"metadata": {"name": "hello"}, "spec": {"sidecar": sidecar}}
    manifest = workflow(
        container("main", pendingTimeout="5m", **V41_FIELDS),
        {"name": "hello", "plugin": {"hello": {"greeting": ["any", {"shape": 1}]}}},
        executorPlugins=[plugin],
        **V41_FIELDS,
    )
    assert manifest_errors(manifest) == []


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("podResources", {"limitz": {}}, "spec.podResources.limitz"),
        ("resourceClaims", [{"name": "gpu", "claimName": "x"}], "spec.resourceClaims[0].claimName"),
        ("resourceClaims", [{"resourceClaimName": "x"}], "spec.resourceClaims[0].name"),
        (
            "executorPlugins",
            [{"metadata": {}, "spec": {"sidecar": {"container": {"imagee": "x"}}}}],
            "spec.executorPlugins[0].spec.sidecar.container.imagee",
        ),
    ],
)
def test_v41_fields_are_still_strict_inside(field: str, value: Any, path: str) -> None:
    assert errors_at(manifest_errors(workflow(**{field: value})), path)


@pytest.mark.parametrize("plugin", [{}, {"a": {}, "b": {}}, "hello", []])
def test_plugin_template_has_exactly_one_key(plugin: Any) -> None:
    manifest = workflow({"name": "main", "plugin": plugin})
    assert errors_at(manifest_errors(manifest), "spec.templates[0].plugin")


def test_v41_container_restart_rules_and_env_from_file() -> None:
    template = container("main")
    template["container"]["restartPolicyRules"] = [
        {"action": "Restart", "exitCodes": {"operator": "In", "values": [42]}}
    ]
    template["container"]["env"] = [
        {"name": "TOKEN", "valueFrom": {"fileKeyRef": {"volumeName": "v", "path": "p", "key": "k"}}}
    ]
    assert manifest_errors(workflow(template)) == []


# --- semantics: metadata -----------------------------------------------------------------


def test_name_or_generate_name_is_required() -> None:
    manifest = workflow()
    manifest["metadata"] = {"labels": {"team": "ci"}}
    assert manifest_errors(manifest) == ["metadata: name or generateName is required"]


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("Workflow", "Build_1"),
        ("Workflow", "build-"),
        ("Workflow", "a" * 64),
        ("CronWorkflow", "a" * 53),
    ],
)
def test_bad_object_names(kind: str, name: str) -> None:
    errors = manifest_errors({**workflow(), "kind": kind, "metadata": {"name": name}})
    assert errors_at(errors, "metadata.name")


@pytest.mark.parametrize("name", ["build", "run-42.push", "a" * 63])
def test_good_object_names(name: str) -> None:
    assert manifest_errors({**workflow(), "metadata": {"name": name}}) == []


def test_generate_name_may_end_with_a_dash() -> None:
    assert manifest_errors({**workflow(), "metadata": {"generateName": "run-42-"}}) == []
    errors = manifest_errors({**workflow(), "metadata": {"generateName": "Run-"}})
    assert errors_at(errors, "metadata.generateName")


@pytest.mark.parametrize(
    ("labels", "path"),
    [
        ({"team": "x" * 64}, "metadata.labels.team"),
        ({"team": "ci-"}, "metadata.labels.team"),
        ({"team": "a b"}, "metadata.labels.team"),
        ({"bad key": "v"}, 'metadata.labels["bad key"]'),
        ({"Example.com/team": "v"}, 'metadata.labels["Example.com/team"]'),
        ({"team": "{{workflow.name}}"}, "metadata.labels.team"),
    ],
)
def test_bad_labels(labels: dict[str, str], path: str) -> None:
    manifest = workflow()
    manifest["metadata"]["labels"] = labels
    assert errors_at(manifest_errors(manifest), path)


def test_good_labels() -> None:
    manifest = workflow(workflowMetadata={"labels": {"run": "{{workflow.parameters.run}}"}})
    manifest["metadata"]["labels"] = {"forgeflow.io/run": "42", "empty": "", "v": "1.2_3-a"}
    assert manifest_errors(manifest) == []


# --- semantics: entrypoint and templates -------------------------------------------------


def test_missing_entrypoint() -> None:
    manifest = workflow()
    del manifest["spec"]["entrypoint"]
    assert manifest_errors(manifest) == ["spec.entrypoint: required (the name of the template to start with)"]


def test_entrypoint_must_name_a_template() -> None:
    errors = manifest_errors(workflow(entrypoint="mian"))
    assert errors == ["spec.entrypoint: no template named 'mian'"]


def test_workflow_template_ref_needs_no_entrypoint_or_templates() -> None:
    manifest = workflow(workflowTemplateRef={"name": "release"})
    del manifest["spec"]["entrypoint"]
    manifest["spec"]["templates"] = []
    assert manifest_errors(manifest) == []
    manifest["spec"]["templates"] = [container("main")]
    assert manifest_errors(manifest) == ["spec.templates: must be empty when workflowTemplateRef is set"]


def test_duplicate_template_names() -> None:
    errors = manifest_errors(workflow(container("main"), container("main")))
    assert errors == ["spec.templates[1].name: duplicate template name 'main' (also at spec.templates[0])"]


@pytest.mark.parametrize("name", ["my_step", "-a", "a" * 129])
def test_invalid_template_names(name: str) -> None:
    errors = manifest_errors(workflow(container("main"), container(name)))
    assert errors_at(errors, "spec.templates[1].name")


def test_template_name_is_required() -> None:
    template = container("main")
    del template["name"]
    errors = manifest_errors(workflow(template, entrypoint=None))
    assert "spec.templates[0].name: required" in errors


def test_two_template_types() -> None:
    template = container("main", script={"image": IMAGE, "source": "echo hi"})
    assert manifest_errors(workflow(template)) == [
        "spec.templates[0]: several template types (container, script); set exactly one"
    ]


def test_no_template_type() -> None:
    errors = manifest_errors(workflow({"name": "main"}))
    assert errors_at(errors, "spec.templates[0]") == [
        "spec.templates[0]: no template type; set exactly one of container, containerSet,"
        " script, resource, dag, steps, suspend, data, http, plugin"
    ]


def test_on_exit_and_hooks_name_templates() -> None:
    hooks = {"exit": {"template": "gone"}, "running": {"template": "main"}}
    errors = manifest_errors(workflow(onExit="cleanup", hooks=hooks))
    assert errors == [
        "spec.onExit: no template named 'cleanup'",
        "spec.hooks.exit.template: no template named 'gone'",
        "spec.hooks.running.expression: required for a hook other than 'exit'",
    ]


# --- semantics: DAGs and steps -----------------------------------------------------------


def test_valid_dag() -> None:
    tasks = [
        task("a"),
        task("b", dependencies=["a"]),
        {"name": "c", "templateRef": {"name": "library", "template": "lint"}},
        {"name": "d", "inline": {"container": {"image": IMAGE}}},
    ]
    other = [task("a"), task("b"), task("c", depends="a && (b.Succeeded || b.Failed) && !b.Skipped")]
    manifest = workflow(dag(*tasks), dag(*other, name="other"), container())
    assert manifest_errors(manifest) == []


def test_unknown_dependency() -> None:
    errors = manifest_errors(workflow(dag(task("a"), task("b", dependencies=["x"])), container()))
    assert errors == ["spec.templates[0].dag.tasks[1].dependencies[0]: no task named 'x' in this DAG"]


def test_unknown_task_in_depends() -> None:
    errors = manifest_errors(workflow(dag(task("a"), task("b", depends="a && x.Failed")), container()))
    assert errors == ["spec.templates[0].dag.tasks[1].depends: no task named 'x' in this DAG"]


def test_unknown_task_result_in_depends() -> None:
    errors = manifest_errors(workflow(dag(task("a"), task("b", depends="a.Passed")), container()))
    assert errors == ["spec.templates[0].dag.tasks[1].depends: a.Passed: unknown task result 'Passed'"]


@pytest.mark.parametrize(
    ("tasks", "cycle"),
    [
        ([task("a", dependencies=["a"])], "a -> a"),
        ([task("a", dependencies=["b"]), task("b", dependencies=["a"])], "a -> b -> a"),
        (
            [task("a"), task("b", depends="a && d"), task("c", depends="b"), task("d", depends="c")],
            "b -> d -> c -> b",
        ),
    ],
)
def test_dependency_cycles(tasks: list[dict[str, Any]], cycle: str) -> None:
    errors = manifest_errors(workflow(dag(*tasks), container()))
    assert errors == [f"spec.templates[0].dag.tasks: dependency cycle: {cycle}"]


def test_diamond_is_no_cycle() -> None:
    tasks = [task("a"), task("b", depends="a"), task("c", depends="a"), task("d", depends="b && c")]
    assert manifest_errors(workflow(dag(*tasks), container())) == []


def test_duplicate_task_names() -> None:
    errors = manifest_errors(workflow(dag(task("a"), task("a")), container()))
    assert errors == [
        "spec.templates[0].dag.tasks[1].name: duplicate task name 'a'"
        " (also at spec.templates[0].dag.tasks[0])"
    ]


def test_task_must_name_an_existing_template() -> None:
    errors = manifest_errors(workflow(dag(task("a", template="nope")), container()))
    assert errors == ["spec.templates[0].dag.tasks[0].template: no template named 'nope'"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "set one of template, templateRef or inline"),
        ({"template": "work", "inline": {"suspend": {}}}, "set only one of template, templateRef"),
    ],
)
def test_task_runs_exactly_one_thing(fields: dict[str, Any], message: str) -> None:
    errors = manifest_errors(workflow(dag({"name": "a", **fields}), container()))
    assert any(error.startswith(f"spec.templates[0].dag.tasks[0]: {message}") for error in errors)


def test_inline_templates_are_checked_too() -> None:
    inline = {"container": {"image": IMAGE}, "suspend": {}}
    errors = manifest_errors(workflow(dag({"name": "a", "inline": inline}), container()))
    assert errors == [
        "spec.templates[0].dag.tasks[0].inline: several template types (container, suspend); set exactly one"
    ]


def test_dag_rules_on_dependency_style_and_names() -> None:
    tasks = [task("a"), task("1b", dependencies=["a"]), task("c", depends="a")]
    errors = manifest_errors(workflow(dag(*tasks), container()))
    assert errors == [
        "spec.templates[0].dag.tasks[1]: cannot use both 'depends' and 'dependencies' in one DAG",
        "spec.templates[0].dag.tasks[1].name: '1b' cannot start with a digit in a DAG with dependencies",
    ]


def test_dag_needs_tasks_and_known_targets() -> None:
    assert manifest_errors(workflow(dag())) == ["spec.templates[0].dag.tasks: a DAG needs at least one task"]
    template = dag(task("a"))
    template["dag"]["target"] = "a b"
    errors = manifest_errors(workflow(template, container()))
    assert errors == ["spec.templates[0].dag.target: no task named 'b' in this DAG"]


def test_steps_reference_existing_templates() -> None:
    steps = {"name": "main", "steps": [[task("a")], [task("b", template="nope"), task("a")]]}
    errors = manifest_errors(workflow(steps, container()))
    assert errors == [
        "spec.templates[0].steps[1][0].template: no template named 'nope'",
        "spec.templates[0].steps[1][1].name: duplicate step name 'a' (also at spec.templates[0].steps[0][0])",
    ]


def test_expressions_are_not_validated() -> None:
    steps = {"name": "main", "steps": [[task("a", template="{{inputs.parameters.which}}")]]}
    assert manifest_errors(workflow(steps, container())) == []


def test_cron_workflow_needs_a_schedule() -> None:
    manifest = workflow(kind="CronWorkflow")
    manifest["spec"] = {"schedules": [], "workflowSpec": manifest["spec"]}
    assert manifest_errors(manifest) == ["spec.schedules: at least one schedule is required"]


def test_semantic_paths_of_a_cron_workflow_are_below_workflow_spec() -> None:
    manifest = workflow(kind="CronWorkflow", entrypoint="nope")
    manifest["spec"] = {"schedules": ["@daily"], "workflowSpec": manifest["spec"]}
    assert manifest_errors(manifest) == ["spec.workflowSpec.entrypoint: no template named 'nope'"]


def test_a_thousand_task_dag_validates() -> None:
    tasks = [task(f"job-{i}", dependencies=[f"job-{i - 1}"] if i else []) for i in range(1000)]
    manifest = workflow(dag(*tasks), container())
    assert manifest_errors(manifest) == []
    manifest["spec"]["templates"][0]["dag"]["tasks"][0]["dependencies"] = ["job-999"]
    [error] = manifest_errors(manifest)
    assert error.startswith("spec.templates[0].dag.tasks: dependency cycle: job-0 -> job-999")


def test_find_cycle_and_parse_depends() -> None:
    assert find_cycle({"a": ["b"], "b": []}) is None
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["b"]}) == ["b", "c", "b"]
    assert parse_depends("(a.Succeeded || b-2) && !c.AnySucceeded") == [
        ("a", "Succeeded"),
        ("b-2", None),
        ("c", "AnySucceeded"),
    ]


# --- validate_templates ------------------------------------------------------------------


def test_validate_templates_accepts_a_raw_list() -> None:
    templates = [dag(task("a", template="work")), container("work")]
    assert validate_templates(templates) is None
    assert template_errors(templates) == []


def test_validate_templates_reports_paths_relative_to_the_list() -> None:
    templates = [dag(task("a", template="missing")), container("work")]
    templates[1]["container"]["imagee"] = "x"
    with pytest.raises(InvalidManifest) as caught:
        validate_templates(templates)
    assert caught.value.errors == [
        "[1].container.imagee: unknown field",
        "[0].dag.tasks[0].template: no template named 'missing'",
    ]


@pytest.mark.parametrize(
    ("templates", "error"),
    [
        ({"name": "x"}, "(root): expected a list of templates, got object"),
        ([container(), "x"], "[1]: expected an object, got string"),
        ([container(), container()], "[1].name: duplicate template name 'work' (also at [0])"),
    ],
)
def test_validate_templates_rejects(templates: Any, error: str) -> None:
    assert error in template_errors(copy.deepcopy(templates))
