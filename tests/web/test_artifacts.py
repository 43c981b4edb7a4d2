"""A job's artifacts on the run page (issue 16: "downloadable from the run page, bounded, with a
retention setting").

Local executor: the sweep removes the kept artifacts of runs older than
``artifact_retention_days`` (only those), a few runs at a time, and the page says they expired
instead of linking to files that are gone. Argo: with ``argo_server_url`` each artifact of a
finished job links to Argo Server's artifact endpoint for the task's node; without, the page
names the object's key; after the Workflow's TTL, the page says they expired.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.clock import now
from service.context import Context, build_context
from service.executors.factory import build_executor
from service.runs.sweep import STEPS, expire_local_artifacts
from service.settings import SettingsError
from service.store.models import Run
from service.store.retention import expire_artifacts
from service.web.app import create_app
from tests.support.runs import add_run

# a Workflow and node whose id Argo itself computed (its dag-diamond example)
WORKFLOW, TASK, NODE_ID = "dag-diamond-xfww2", "A", "dag-diamond-xfww2-1488588956"


def manifest(task: str = TASK, *, retries: bool = False, ttl: int = 86400) -> dict[str, Any]:
    template: dict[str, Any] = {
        "name": task,
        "metadata": {"labels": {"forgeflow.dev/task": task}},
        "outputs": {
            "artifacts": [
                {"name": "dist", "path": "/workspace/source/dist", "optional": True},
                {"name": "cache", "path": "/workspace/source/.forgeflow/cache-save", "s3": {"key": "k"}},
            ]
        },
        "container": {"image": "fedora"},
    }
    if retries:
        template["retryStrategy"] = {"limit": 2}
    main = {"name": "main", "dag": {"tasks": [{"name": task, "template": task}]}}
    ttl_strategy = {"secondsAfterCompletion": ttl}
    return {"spec": {"entrypoint": "main", "ttlStrategy": ttl_strategy, "templates": [main, template]}}


def artifact_lines(page: str) -> str:
    found = re.search(r'<p class="artifacts">(.*?)</p>', page, re.S)
    return found.group(1) if found else ""


# -- local executor: retention -------------------------------------------------------------------


@pytest.fixture
def local(make_settings) -> Iterator[Context]:
    ctx = build_context(make_settings(artifact_retention_days=30), executor_factory=build_executor)
    try:
        yield ctx
    finally:
        ctx.close()


def keep_artifacts(
    ctx: Context, workflow: str, days_old: float, *, phase: str = "succeeded"
) -> tuple[int, Path]:
    """A local run with a kept artifact file and a log; its id and workflow folder."""
    run_id = add_run(
        ctx,
        workflow=workflow,
        manifest=manifest("build"),
        created=now() - timedelta(days=days_old),
        phase=phase,
    )
    folder = ctx.settings.data_dir / "workflows" / "forgeflow" / workflow
    (folder / "artifacts" / "build" / "dist" / "dist").mkdir(parents=True)
    (folder / "artifacts" / "build" / "dist" / "dist" / "app.whl").write_text("wheel")
    (folder / "logs").mkdir()
    (folder / "logs" / "build.log").write_text("log")
    return run_id, folder


def test_retention_removes_exactly_the_expired_local_artifacts_and_the_page_says_so(local: Context):
    old, old_folder = keep_artifacts(local, "wf-old", 40)
    new, new_folder = keep_artifacts(local, "wf-new", 10)
    running, running_folder = keep_artifacts(local, "wf-running", 40, phase="running")
    argo = add_run(local, workflow="wf-argo", executor="argo", created=now() - timedelta(days=40))

    assert expire_local_artifacts(local) == [old]
    assert not (old_folder / "artifacts").exists()
    assert (old_folder / "logs" / "build.log").read_text() == "log"  # only the artifacts go
    assert (new_folder / "artifacts" / "build" / "dist" / "dist" / "app.whl").exists()
    assert (running_folder / "artifacts").exists()  # an unfinished run keeps them
    assert expire_local_artifacts(local) == []  # marked: never looked at again
    with local.db.session() as session:
        expired = {r.id: r.artifacts_expired_at for r in session.scalars(select(Run))}
    assert expired[old] is not None and expired[new] is expired[running] is expired[argo] is None

    client = create_app(local).test_client()
    old_page = client.get(f"/runs/{old}").get_data(as_text=True)
    assert "dist" in artifact_lines(old_page) and "expired: removed on" in artifact_lines(old_page)
    assert "kept 30 days" in artifact_lines(old_page)
    assert f"/runs/{old}/artifacts/" not in old_page  # no dead links
    assert client.get(f"/runs/{old}/artifacts/build/dist/dist/app.whl").status_code == 410
    new_page = client.get(f"/runs/{new}").get_data(as_text=True)
    link = f"/runs/{new}/artifacts/build/dist/dist/app.whl"
    assert f'href="{link}"' in new_page and "expired" not in artifact_lines(new_page)
    with client.get(link) as download:
        assert download.get_data(as_text=True) == "wheel"


def test_a_download_over_the_limit_says_which_limit(make_settings):
    ctx = build_context(make_settings(artifact_download_max_bytes=3), executor_factory=build_executor)
    try:
        run_id, _ = keep_artifacts(ctx, "wf-big", 1)  # a 5-byte wheel
        answer = create_app(ctx).test_client().get(f"/runs/{run_id}/artifacts/build/dist/dist/app.whl")
        assert answer.status_code == 413
        assert "download limit (3 bytes, artifact_download_max_bytes)" in answer.get_data(as_text=True)
    finally:
        ctx.close()


def test_a_backlog_of_expired_artifacts_goes_a_few_runs_per_sweep(local: Context):
    ids, folders = zip(*(keep_artifacts(local, f"wf-{i}", 100 + i) for i in range(5)), strict=True)
    assert len(expire_artifacts(local.db, 30, lambda ns, name: None, size=2)) == 2  # oldest first
    assert len(expire_artifacts(local.db, 30, lambda ns, name: None, size=2)) == 2
    assert ("removing expired artifacts", expire_local_artifacts) in STEPS  # the periodic sweep's
    assert expire_local_artifacts(local) == [ids[0]]  # the one left, with the real executor
    assert not (folders[0] / "artifacts").exists()
    assert all((f / "artifacts").exists() for f in folders[1:])  # marked by the fake remover above


def test_a_run_whose_files_cannot_go_is_tried_again_and_blocks_no_other(local: Context):
    first, _ = keep_artifacts(local, "wf-stuck", 50)
    second, _ = keep_artifacts(local, "wf-fine", 45)

    def remove(namespace: str, name: str) -> None:
        if name == "wf-stuck":
            raise OSError("permission denied")

    assert expire_artifacts(local.db, 30, remove) == [second]
    assert expire_artifacts(local.db, 30, lambda ns, name: None) == [first]  # the next sweep


def test_zero_days_keep_the_artifacts_as_long_as_the_run(make_settings):
    ctx = build_context(make_settings(artifact_retention_days=0), executor_factory=build_executor)
    try:
        _, folder = keep_artifacts(ctx, "wf-ancient", 1000)
        assert expire_local_artifacts(ctx) == []
        assert (folder / "artifacts").exists()
    finally:
        ctx.close()


# -- argo: links to Argo Server ------------------------------------------------------------------


def argo_web(make_settings, **overrides: Any) -> Context:
    return build_context(make_settings(executor="argo", **overrides))


def argo_run(ctx: Context, *, state: str = "success", hours_ago: float = 1, **manifest_options: Any) -> int:
    return add_run(
        ctx,
        workflow=WORKFLOW,
        namespace="ci",
        executor="argo",
        manifest=manifest(**manifest_options),
        jobs=((TASK, TASK, state),),
        created=now() - timedelta(hours=hours_ago),
        phase="succeeded" if state == "success" else "running",
    )


def test_argo_artifacts_link_to_argo_server_when_it_is_named(make_settings):
    ctx = argo_web(make_settings, argo_server_url="https://argo.example.com/")
    try:
        client = create_app(ctx).test_client()
        lines = artifact_lines(client.get(f"/runs/{argo_run(ctx)}").get_data(as_text=True))
        url = f"https://argo.example.com/artifact-files/ci/workflows/{WORKFLOW}/{NODE_ID}/outputs/dist"
        assert re.findall(r'href="([^"]+)"', lines) == [url]  # the cache is no job artifact
        assert "artifact repository" not in lines
        running = artifact_lines(client.get(f"/runs/{argo_run(ctx, state='running')}").get_data(as_text=True))
        assert "href" not in running and "once the job has finished" in running
        old = artifact_lines(client.get(f"/runs/{argo_run(ctx, hours_ago=30)}").get_data(as_text=True))
        assert "href" not in old and "expired: deleted with the workflow 1 day after the run ended" in old
    finally:
        ctx.close()


def test_without_argo_server_the_page_names_the_key_instead_of_a_link(make_settings):
    ctx = argo_web(make_settings)
    try:
        client = create_app(ctx).test_client()
        lines = artifact_lines(client.get(f"/runs/{argo_run(ctx)}").get_data(as_text=True))
        assert "href" not in lines and "artifact-files" not in lines
        # Argo's default key format, {{workflow.name}}/{{pod.name}} (pod names v2), then <name>.tgz
        assert f"in the artifact repository: {WORKFLOW}/{WORKFLOW}-A-1488588956/dist.tgz" in lines
        retried = artifact_lines(client.get(f"/runs/{argo_run(ctx, retries=True)}").get_data(as_text=True))
        assert "(its first attempt)" in retried and "-A-1488588956/" not in retried  # the (0) node's pod
    finally:
        ctx.close()


def test_argo_server_url_must_be_an_http_url(make_settings):
    assert make_settings(argo_server_url="").argo_server_url == ""
    assert make_settings(argo_server_url="http://argo:2746/").argo_server_url == "http://argo:2746"
    for bad in ("argo.example.com", "ftp://argo.example.com", "https://argo.example.com/?x=1"):
        with pytest.raises(SettingsError, match="argo_server_url"):
            make_settings(argo_server_url=bad)
    with pytest.raises(SettingsError, match="artifact_retention_days"):
        make_settings(artifact_retention_days=-1)
