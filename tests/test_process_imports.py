"""Each process imports what it uses (issue 19: ≤ 100 MiB PSS per process at rest).

A fresh interpreter builds one process's parts the way its command does, then lists what is in
``sys.modules``. The web tier never imports hera, a Kubernetes client, ogr or the forges' client
libraries, Celery, the job language or the compiler; the watcher (GitHub configured, the argo
executor) imports no hera models, no job language, no compiler, no Flask or web server, no ogr
or forge client library (it posts GitHub statuses with forgeflow's own REST client) and, on a
database at the newest revision, no Alembic. An import added at
the top of a module these processes load fails here, with the module that pulled it in named.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# what each process builds, as its command does (``forgeflow web`` / ``forgeflow watcher``)
BUILD = {
    "web": (
        "from service.context import build_context\n"
        "from service.web.app import create_app\n"
        "import service.web.server\n"
        "create_app(build_context(load_settings()))\n"
    ),
    "watcher": (
        "from service.cli.backend import build_watcher\n"
        "watcher = build_watcher(load_settings())\n"
        "watcher.ctx.forges.get('github')\n"
    ),
}
PROBE = """
import builtins, json, sys
from service.settings import load_settings
first = {}  # module -> the service module whose import brought it in
_import = builtins.__import__
def traced(name, globals=None, locals=None, fromlist=(), level=0):
    before = set(sys.modules)
    result = _import(name, globals, locals, fromlist, level)
    importer = (globals or {}).get("__name__", "")
    if importer.startswith("service"):
        for module in set(sys.modules) - before:
            first.setdefault(module, importer)
    return result
builtins.__import__ = traced
%s
print(json.dumps(first))
"""
FORBIDDEN = {
    "web": [
        "hera", "kubernetes", "ogr", "github", "gitlab", "pagure", "celery",
        "service.jobs", "service.compiler", "service.argo.models", "service.executors.factory",
        "service.executors.argo.executor", "service.runs", "service.watcher", "service.worker",
    ],
    "watcher": [
        "hera", "flask", "service.web.app", "service.jobs.model", "service.jobs.loader", "service.jobs.plan",
        "service.compiler", "service.argo.models", "service.argo.validation", "service.runs.recipe",
        "service.runs.start", "service.worker", "service.commands",
        "werkzeug", "ogr", "github", "gitlab", "pyforgejo", "httpx", "alembic", "mako",
    ],
}  # fmt: skip


def imported(process: str, tmp_path: Path, kubeconfig: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGEFLOW_")}
    env.update(
        FORGEFLOW_DATA_DIR=str(tmp_path / "data"),
        FORGEFLOW_LOG_LEVEL="ERROR",
        FORGEFLOW_GITHUB_TOKEN="t",
        FORGEFLOW_GITHUB_WEBHOOK_SECRET="s",
        FORGEFLOW_EXECUTOR="argo",
        FORGEFLOW_KUBECONFIG=str(kubeconfig),
        FORGEFLOW_NAMESPACE="ci",
    )
    migrate = [sys.executable, "-m", "service.cli", "migrate"]  # as a deployment's first start did
    subprocess.run(migrate, env=env, capture_output=True, timeout=120, check=True)
    result = subprocess.run(
        [sys.executable, "-c", PROBE % BUILD[process]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    modules: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return modules


@pytest.mark.parametrize("process", ["web", "watcher"])
def test_a_process_imports_only_what_it_uses(process: str, tmp_path: Path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    modules = imported(process, tmp_path, kubeconfig)
    assert "service.reporting.links" in modules  # the probe saw the process's own imports
    wrong = {
        module: by
        for module, by in modules.items()
        if any(module == f or module.startswith(f"{f}.") for f in FORBIDDEN[process])
    }
    assert not wrong, f"the {process} imports {sorted(wrong)[:10]}, first pulled in by: " + ", ".join(
        sorted({f"{m.split('.')[0]} <- {by}" for m, by in wrong.items()})[:10]
    )
