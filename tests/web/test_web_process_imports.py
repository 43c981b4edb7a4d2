"""The web process stays light: serving pages, the API, sign-in, metrics and webhooks never
imports hera, kubernetes, ogr or celery (the argo executor's runs are read from the database)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, sys
from service.settings import load_settings
from service.context import build_context
from service.web.app import create_app
from tests.support.runs import MANIFEST_NEEDS, add_run

settings = load_settings(environ={}, overrides={
    "data_dir": sys.argv[1], "executor": "argo", "api_token": "t",
    "github_token": "x", "github_oauth_client_id": "c", "github_api_url": "http://127.0.0.1:9",
    "forge_timeout_seconds": 0.5, "argo_server_url": "https://argo.example",
})
ctx = build_context(settings)
run_id = add_run(ctx, workflow="wf", executor="argo", manifest=MANIFEST_NEEDS, instance="127.0.0.1:9")
kept = {"name": "build", "metadata": {"labels": {"forgeflow.dev/task": "build"}},
        "outputs": {"artifacts": [{"name": "dist", "path": "/workspace/source/dist"}]}}
templates = [*MANIFEST_NEEDS["spec"]["templates"], kept]
with_artifacts = {"spec": {**MANIFEST_NEEDS["spec"], "templates": templates}}
from service.clock import now
linked = add_run(ctx, workflow="wf2", executor="argo", manifest=with_artifacts, instance="127.0.0.1:9",
                 created=now())
client = create_app(ctx).test_client()
admin = {"Authorization": "Bearer t"}
statuses = [
    client.get(path, headers=admin).status_code
    for path in ("/runs", f"/runs/{run_id}", f"/api/runs/{run_id}", f"/api/runs/{run_id}/jobs/build/log",
                 "/api/openapi.json", "/metrics", "/readyz", "/login", f"/runs/{run_id}/jobs/build")
]
statuses.append(client.get(f"/api/runs/{run_id}").status_code)  # anonymous: the forge is asked
statuses.append(client.post("/api/webhooks/github", data=b"{}").status_code)
page = client.get(f"/runs/{linked}", headers=admin).get_data(as_text=True)
statuses.append("https://argo.example/artifact-files/forgeflow/workflows/wf2/" in page)  # Argo Server
print(json.dumps({"statuses": statuses, "modules": sorted(sys.modules)}))
"""


def test_the_web_process_never_imports_the_heavy_clients(tmp_path: Path):
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "data")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["statuses"][:9] == [200, 200, 200, 200, 200, 200, 200, 200, 200]
    assert answer["statuses"][9] == 503  # the forge does not answer: no yes, no 500
    assert answer["statuses"][10] == 401
    assert answer["statuses"][11] is True  # an argo run's artifacts link to Argo Server, computed here
    heavy = {"hera", "kubernetes", "ogr", "celery", "github", "gitlab"}
    loaded = {name.split(".")[0] for name in answer["modules"]}
    assert not heavy & loaded, sorted(heavy & loaded)
