"""Conformance of the validator with the real argo-workflows v4.1 examples.

Every Workflow, WorkflowTemplate, ClusterWorkflowTemplate and CronWorkflow document of
``../shared/fixtures/argo/examples`` must pass, and copies of them with an unknown field or a
wrongly typed value must fail with an error naming the path. Other kinds (ConfigMap,
PersistentVolumeClaim, ResourceQuota, WorkflowEventBinding) are skipped.

Without the fixtures the tests skip, except in CI (``CI=true``), where they fail.
"""

import copy
import os
from typing import Any

import pytest
import yaml

from service.argo import SUPPORTED_KINDS, manifest_errors
from service.argo.models import argo_models
from service.argo.validation import _manifest_structure_errors, _structure_errors
from tests.support.shared import shared_fixtures

FIXTURES = shared_fixtures()
EXAMPLES = FIXTURES / "argo" / "examples"

# Two upstream examples Kubernetes itself would refuse: a YAML indentation slip leaves them
# without metadata.name / generateName (in fun-with-gifs it became a label whose value ends
# with "-"). Everything else in them is valid; test_known_invalid_examples proves it.
KNOWN_INVALID = {
    "fun-with-gifs.yaml": [
        "metadata: name or generateName is required",
        "metadata.labels.generateName: label value 'fun-with-gifs-' must consist of letters,"
        " digits, '-', '_' or '.', starting and ending with a letter or digit",
    ],
    "k8s-jobs.yaml": ["metadata: name or generateName is required"],
}


def _require_examples() -> None:
    """Skip (fail in CI) when the shared fixtures are not beside the repository."""
    if EXAMPLES.is_dir():
        return
    reason = f"Argo examples not found at {EXAMPLES} (the ../shared/fixtures folder)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _load_documents() -> list[tuple[str, dict[str, Any]]]:
    """(id, document) for each Argo document of the examples; id is the file (and index)."""
    if not EXAMPLES.is_dir():
        return []
    documents = []
    for path in sorted(EXAMPLES.rglob("*.y*ml")):
        loaded = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        name = path.relative_to(EXAMPLES).as_posix()
        for index, doc in enumerate(loaded):
            if isinstance(doc, dict) and doc.get("kind") in SUPPORTED_KINDS:
                documents.append((name if len(loaded) == 1 else f"{name}[{index}]", doc))
    return documents


DOCUMENTS = _load_documents()


def _params(documents: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """pytest params named by file; one placeholder that skips when there are none."""
    if not documents:
        return [pytest.param("", None, id="no-examples")]
    return [pytest.param(name, doc, id=name) for name, doc in documents]


def _workflow_spec(doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The document's workflow spec (a CronWorkflow's is spec.workflowSpec) and its path."""
    if doc["kind"] == "CronWorkflow":
        return doc["spec"]["workflowSpec"], "spec.workflowSpec"
    return doc["spec"], "spec"


def _with_templates(documents: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """The documents that define templates of their own."""
    return _params([(n, d) for n, d in documents if _workflow_spec(d)[0].get("templates")])


def _first_container(doc: dict[str, Any]) -> int | None:
    """The index of the first container template of the document, if any."""
    templates = _workflow_spec(doc)[0].get("templates") or []
    return next((i for i, t in enumerate(templates) if "container" in t), None)


def _with_containers(documents: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """The documents with a container template."""
    return _params([(n, d) for n, d in documents if _first_container(d) is not None])


def test_corpus_is_complete() -> None:
    _require_examples()
    kinds = {doc["kind"] for _, doc in DOCUMENTS}
    assert kinds == set(SUPPORTED_KINDS)
    assert len(DOCUMENTS) >= 200


@pytest.mark.parametrize(("name", "doc"), _params(DOCUMENTS))
def test_example_is_valid(name: str, doc: dict[str, Any]) -> None:
    _require_examples()
    assert manifest_errors(doc) == KNOWN_INVALID.get(name, [])


@pytest.mark.parametrize("name", sorted(KNOWN_INVALID))
def test_known_invalid_examples(name: str) -> None:
    """Once given a name (and the stray label removed) these examples are valid too."""
    _require_examples()
    [doc] = [copy.deepcopy(doc) for n, doc in DOCUMENTS if n == name]
    doc["metadata"]["labels"].pop("generateName", None)
    doc["metadata"]["generateName"] = "example-"
    assert manifest_errors(doc) == []


@pytest.mark.parametrize(("name", "doc"), _params(DOCUMENTS))
def test_unknown_field_in_spec_is_rejected(name: str, doc: dict[str, Any]) -> None:
    _require_examples()
    doc = copy.deepcopy(doc)
    doc["spec"]["forgeflowTypo"] = True
    assert "spec.forgeflowTypo: unknown field" in manifest_errors(doc)


@pytest.mark.parametrize(("name", "doc"), _with_templates(DOCUMENTS))
def test_unknown_field_in_first_template_is_rejected(name: str, doc: dict[str, Any]) -> None:
    _require_examples()
    doc = copy.deepcopy(doc)
    spec, path = _workflow_spec(doc)
    spec["templates"][0]["forgeflowTypo"] = True
    assert f"{path}.templates[0].forgeflowTypo: unknown field" in manifest_errors(doc)


@pytest.mark.parametrize(("name", "doc"), _params(DOCUMENTS))
def test_templates_of_the_wrong_type_are_rejected(name: str, doc: dict[str, Any]) -> None:
    _require_examples()
    doc = copy.deepcopy(doc)
    spec, path = _workflow_spec(doc)
    spec["templates"] = "not a list"
    assert f"{path}.templates: expected a list, got string" in manifest_errors(doc)


@pytest.mark.parametrize(("name", "doc"), _with_containers(DOCUMENTS))
def test_container_args_of_the_wrong_type_are_rejected(name: str, doc: dict[str, Any]) -> None:
    _require_examples()
    doc = copy.deepcopy(doc)
    spec, path = _workflow_spec(doc)
    index = _first_container(doc)
    spec["templates"][index]["container"]["args"] = 5
    expected = f"{path}.templates[{index}].container.args: expected a list, got integer"
    assert expected in manifest_errors(doc)


@pytest.mark.parametrize(("name", "doc"), _with_templates(DOCUMENTS))
def test_templates_checked_one_by_one_find_what_the_whole_model_finds(name: str, doc: dict[str, Any]) -> None:
    _require_examples()
    doc = copy.deepcopy(doc)
    spec, _ = _workflow_spec(doc)
    spec["forgeflowTypo"] = True
    spec["templates"][0]["name"] = 5
    spec["templates"][-1]["forgeflowTypo"] = 1
    whole = _structure_errors(argo_models()[doc["kind"]], doc)
    assert len(whole) >= 2
    assert sorted(_manifest_structure_errors(doc["kind"], doc)) == sorted(whole)
