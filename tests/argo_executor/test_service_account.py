"""Where a Workflow runs and as whom comes from the service config, never from the job file:
the whole pipeline (job file read from a repository, matched, compiled, submitted)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from service.context import Context
from service.events import Event, EventKind, PullRequest, Repository
from service.executors.base import Manifest, RunSecret, WorkflowRef
from service.forges.registry import ForgeRegistry
from service.runs.start import handle_event
from service.settings import Settings
from service.store.db import Database
from tests.support.gitrepo import GitRepo

POLICY = {"match": "octo/*", "namespace": "ci-octo", "service_account": "octo-runner"}
TRYING = """\
version: 1
jobs:
  build:
    env: {serviceAccountName: cluster-admin, namespace: kube-system}
    steps: [{run: "true"}]
"""


class Capture:
    name = "capture"

    def __init__(self) -> None:
        self.manifests: list[Manifest] = []

    def submit(self, manifest: Manifest, secrets: Sequence[RunSecret] = ()) -> WorkflowRef:
        self.manifests.append(manifest)
        return WorkflowRef.of(manifest)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


@pytest.fixture
def ctx(make_settings: Callable[..., Settings]) -> Iterator[Context]:
    settings = make_settings(executor="argo", namespace="forgeflow", repositories=[POLICY])
    db = Database(settings.database)
    db.migrate()
    capture = Capture()
    context = Context(settings, db, ForgeRegistry(settings, db), executor_factory=lambda _: capture)
    yield context
    context.close()


def pull_request(ctx: Context, owner: str, job_file: str) -> tuple[Manifest | None, str]:
    repo = GitRepo(Path(ctx.settings.repos_dir) / owner, "hello")  # bare: <repos>/<owner>/hello.git
    sha = repo.commit({".forgeflow.yaml": job_file})
    repository = Repository(namespace=owner, name="hello.git", clone_url=repo.url)
    event = Event(
        forge="local",
        kind=EventKind.PULL_REQUEST,
        repository=repository,
        sha=sha,
        action="opened",
        pull_request=PullRequest(number=1, head_sha=sha, target_branch="main", source_repo=repository),
    )
    outcome = handle_event(ctx, event, "local", trigger_key=f"{owner}-{sha}").outcome
    capture = ctx.executor
    assert isinstance(capture, Capture)
    return (capture.manifests[-1] if capture.manifests else None), outcome


@pytest.mark.parametrize(
    ("owner", "namespace", "account"),
    [("octo", "ci-octo", "octo-runner"), ("someone", "forgeflow", "forgeflow-workflow")],
)
def test_namespace_and_service_account_follow_the_repository_policy(
    ctx: Context, owner: str, namespace: str, account: str
):
    manifest, outcome = pull_request(ctx, owner, TRYING)
    assert manifest is not None, outcome
    assert manifest["metadata"]["namespace"] == namespace
    assert manifest["spec"]["serviceAccountName"] == account
    assert "submitted" in outcome


@pytest.mark.parametrize(
    "key", ["serviceAccountName: admin", "namespace: kube-system", "service_account: admin"]
)
def test_a_job_file_cannot_choose_them(ctx: Context, key: str):
    job_file = f"version: 1\njobs:\n  build:\n    {key}\n    steps: [{{run: 'true'}}]\n"
    manifest, outcome = pull_request(ctx, "octo", job_file)
    assert manifest is None
    assert "broken .forgeflow.yaml" in outcome and "unknown key" in outcome
