"""``forgeflow render`` prints exactly the Workflow the worker submits for the same event: one
recipe (service/runs/recipe.py), the same repository policy (namespace, service account,
secrets), the same trust decision."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from handlers.base import Delivery, Parsed
from handlers.local import HANDLER
from service.cli.main import main
from service.context import Context, build_context
from service.events import Event
from service.executors.base import Manifest, RunSecret, WorkflowRef
from service.forges.local_hook import push_payload
from service.runs.start import handle_event
from service.settings import load_settings
from tests.support.gitrepo import GitRepo

POLICY = {
    "match": "octo/*",
    "namespace": "ci-octo",
    "service_account": "octo-runner",
    "allow_secrets": False,
}
JOB_FILE = """\
version: 1
defaults: {timeout: 10m}
jobs:
  lint:
    steps: [{name: ruff, run: ruff check .}]
  tests:
    needs: [lint]
    matrix: {python: ["3.11", "3.12"]}
    image: "quay.io/example/python:${{ matrix.python }}"
    env: {PYTEST_ADDOPTS: "-q"}
    steps: [pytest]
  docs:
    uses: sphinx
    with: {builder: html}
"""
TEMPLATE = """\
inputs: {builder: {default: html}}
steps: [{run: "sphinx-build -b ${{ inputs.builder }} docs docs/_build"}]
"""


class Capture:
    """An executor that keeps what it is asked to submit."""

    name = "capture"

    def __init__(self) -> None:
        self.manifests: list[Manifest] = []

    def submit(self, manifest: Manifest, secrets: Sequence[RunSecret] = ()) -> WorkflowRef:
        self.manifests.append(manifest)
        return WorkflowRef.of(manifest)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The service config both use: one file, as an operator writes it."""
    path = tmp_path / "forgeflow.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "public_url": "https://forgeflow.example",
                "executor": "argo",
                "namespace": "forgeflow-runs",
                "repositories": [POLICY],
                "log_level": "WARNING",
            }
        )
    )
    return path


@pytest.fixture
def ctx(config: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    """The worker's context, and for ``forgeflow render`` the same config file in the environment."""
    for key in [k for k in os.environ if k.startswith("FORGEFLOW_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FORGEFLOW_CONFIG", str(config))
    capture = Capture()
    context = build_context(load_settings())
    context.executor_factory = lambda _: capture
    yield context
    context.close()


def test_render_prints_the_workflow_the_worker_submits(ctx: Context, tmp_path: Path, capsys):
    repo = GitRepo(ctx.settings.repos_dir / "octo", "hello")  # the local forge's octo/hello.git
    sha = repo.commit({".forgeflow.yaml": JOB_FILE, ".forgeflow/templates/sphinx.yaml": TEMPLATE})
    body = json.dumps(push_payload("octo", "hello.git", repo.bare, "0" * 40, sha, "refs/heads/main")).encode()
    event = pushed(body)

    outcome = handle_event(ctx, event, "local", "delivery:1", None).outcome
    assert "submitted" in outcome, outcome
    [submitted] = ctx.executor.manifests  # type: ignore[attr-defined]
    run_id = int(submitted["metadata"]["labels"]["forgeflow.dev/run"])
    assert "submitted" in outcome

    event_file = tmp_path / "push.json"
    event_file.write_bytes(body)
    args = ["render", "--event", str(event_file), "--forge", "local", "--repo", str(repo.work)]
    assert main([*args, "--run-id", str(run_id)]) == 0
    rendered = yaml.safe_load(capsys.readouterr().out)

    assert rendered == submitted
    assert rendered["metadata"]["namespace"] == "ci-octo"
    assert rendered["spec"]["serviceAccountName"] == "octo-runner"

    # another run id changes exactly what names the run, nothing else
    assert main([*args, "--run-id", "99"]) == 0
    other = yaml.safe_load(capsys.readouterr().out)
    assert other != submitted
    assert _without_run_id(other, 99) == _without_run_id(submitted, run_id)


def test_a_secret_the_policy_forbids_is_refused_by_both_alike(ctx: Context, tmp_path: Path, capsys):
    repo = GitRepo(ctx.settings.repos_dir / "octo", "vault")
    job_file = "version: 1\njobs:\n  publish:\n    secrets: [pypi-token]\n    steps: [make publish]\n"
    sha = repo.commit({".forgeflow.yaml": job_file})
    body = json.dumps(push_payload("octo", "vault.git", repo.bare, "0" * 40, sha, "refs/heads/main")).encode()
    event = pushed(body)

    outcome = handle_event(ctx, event, "local", "delivery:2", None).outcome
    assert ctx.executor.manifests == []  # type: ignore[attr-defined]
    assert "does not allow Kubernetes Secrets" in outcome

    event_file = tmp_path / "push.json"
    event_file.write_bytes(body)
    assert main(["render", "--event", str(event_file), "--forge", "local", "--repo", str(repo.work)]) == 1
    assert "does not allow Kubernetes Secrets for octo/vault.git" in capsys.readouterr().err


def pushed(body: bytes) -> Event:
    """The Event the local forge's push delivery ``body`` means."""
    parsed = HANDLER.parse(Delivery(body, {}))
    assert isinstance(parsed, Parsed)
    return parsed.event


def _without_run_id(manifest: Manifest, run_id: int) -> str:
    """The manifest's text with its run id (in the name, run label, link and env) blanked."""
    text = json.dumps(manifest, sort_keys=True)
    return (
        text.replace(f"forgeflow-{run_id}-", "forgeflow-RUN-")
        .replace(f'"forgeflow.dev/run": "{run_id}"', '"forgeflow.dev/run": "RUN"')
        .replace(f"/runs/{run_id}", "/runs/RUN")
        .replace(f'"FORGEFLOW_RUN_ID", "value": "{run_id}"', '"FORGEFLOW_RUN_ID", "value": "RUN"')
    )
