"""openshift/ and the Dockerfile, read as the cluster and the image build would read them.

Every manifest validates against the Kubernetes schemas of ``kubernetes-validate`` (strictly:
no unknown fields), the Route (an OpenShift type those schemas lack) against its essentials,
the kustomization lists every file, each process has its own account whose Role grants exactly
what it uses (the web none, and no token), Workflows run in a namespace of their own, each
Deployment gets only the settings its process uses, and those are settings forgeflow knows.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from service.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
OPENSHIFT = ROOT / "openshift"
KUBERNETES_VERSIONS = ("1.27", kubernetes_validate.utils.latest_version())  # OpenShift 4.14 .. now
NAMESPACE = "forgeflow"  # forgeflow itself
RUNS = "forgeflow-runs"  # its Workflows

ALLOWED = {  # Role → what it may do in the Workflow namespace
    "forgeflow-worker": {
        ("argoproj.io", "workflows"): {"create", "get", "patch", "delete"},
        ("", "secrets"): {"create", "patch"},
    },
    "forgeflow-watcher": {
        ("argoproj.io", "workflows"): {"get", "list", "watch", "patch"},
        ("", "pods/log"): {"get"},
    },
    "forgeflow-workflow": {
        ("argoproj.io", "workflowtaskresults"): {"create", "patch"},
        # Argo's artifact GC pod, run as the Workflow's account (Argo's "artifactgc" Role)
        ("argoproj.io", "workflowartifactgctasks"): {"list", "watch"},
        ("argoproj.io", "workflowartifactgctasks/status"): {"patch"},
    },
}
ACCOUNTS = {  # Role → the account bound to it, and where that account lives
    "forgeflow-worker": ("forgeflow-worker", NAMESPACE),
    "forgeflow-watcher": ("forgeflow-watcher", NAMESPACE),
    "forgeflow-workflow": ("forgeflow-workflow", RUNS),
}
FORGES = ("GITHUB", "GITLAB", "FORGEJO", "PAGURE")
COMMON = {"FORGEFLOW_PUBLIC_URL", "FORGEFLOW_DATA_DIR", "FORGEFLOW_LOG_LEVEL", "FORGEFLOW_LOG_FORMAT"}
COMMON |= {"FORGEFLOW_DATABASE_URL", "FORGEFLOW_BROKER_URL"}  # the web's /readyz asks the broker too
API_URLS = {f"FORGEFLOW_{f}_API_URL" for f in FORGES}
TOKENS = {f"FORGEFLOW_{f}_TOKEN" for f in FORGES} | {
    "FORGEFLOW_GITHUB_APP_ID",
    "FORGEFLOW_GITHUB_APP_PRIVATE_KEY",
}
EXECUTION = {
    "FORGEFLOW_EXECUTOR",
    "FORGEFLOW_NAMESPACE",
    "FORGEFLOW_REPOSITORIES",
    "FORGEFLOW_SERVICE_NAMESPACE",
}
ENVIRONMENT = {  # what each process reads, and nothing else
    "forgeflow-web": COMMON
    | API_URLS
    | TOKENS  # POST /api/runs resolves the ref through the forge
    | {f"FORGEFLOW_{f}_WEBHOOK_SECRET" for f in FORGES}
    | {"FORGEFLOW_HOST", "FORGEFLOW_PORT", "FORGEFLOW_API_TOKEN", "FORGEFLOW_PUBLIC_RUNS"}
    | {"FORGEFLOW_ARGO_SERVER_URL"},  # artifact links on the run pages
    "forgeflow-worker": COMMON
    | API_URLS
    | TOKENS
    | EXECUTION
    | {"FORGEFLOW_HEALTH_PORT", "FORGEFLOW_SERVICE_ACCOUNT", "FORGEFLOW_WORKFLOW_TTL_SECONDS"}
    | {"FORGEFLOW_POD_RUN_AS_USER", "FORGEFLOW_WORKER_CONCURRENCY"},
    "forgeflow-watcher": COMMON
    | API_URLS
    | TOKENS
    | EXECUTION
    | {"FORGEFLOW_HEALTH_PORT", "FORGEFLOW_WATCH_TIMEOUT_SECONDS", "FORGEFLOW_RESYNC_SECONDS"}
    | {"FORGEFLOW_SWEEP_SECONDS"},
}

ROUTE_SCHEMA = {  # route.openshift.io/v1 Route: the fields used, and no others
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "route.openshift.io/v1"},
        "kind": {"const": "Route"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}},
        },
        "spec": {
            "type": "object",
            "required": ["to"],
            "additionalProperties": False,
            "properties": {
                "host": {"type": "string"},
                "path": {"type": "string"},
                "to": {
                    "type": "object",
                    "required": ["kind", "name"],
                    "additionalProperties": False,
                    "properties": {
                        "kind": {"const": "Service"},
                        "name": {"type": "string"},
                        "weight": {"type": "integer", "minimum": 0, "maximum": 256},
                    },
                },
                "port": {
                    "type": "object",
                    "required": ["targetPort"],
                    "additionalProperties": False,
                    "properties": {"targetPort": {"type": ["string", "integer"]}},
                },
                "tls": {
                    "type": "object",
                    "required": ["termination"],
                    "additionalProperties": False,
                    "properties": {
                        "termination": {"enum": ["edge", "passthrough", "reencrypt"]},
                        "insecureEdgeTerminationPolicy": {"enum": ["Allow", "None", "Redirect", ""]},
                    },
                },
                "wildcardPolicy": {"enum": ["None", "Subdomain"]},
            },
        },
    },
}


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def kustomization() -> dict[str, Any]:
    (doc,) = load(OPENSHIFT / "kustomization.yaml")
    return doc


def resources() -> list[dict[str, Any]]:
    return [doc for name in kustomization()["resources"] for doc in load(OPENSHIFT / name)]


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in resources() if doc["kind"] == kind}


def rules(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, f"unexpected rule fields: {rule}"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def test_the_kustomization_lists_every_manifest():
    listed = kustomization()["resources"]
    present = sorted(p.name for p in OPENSHIFT.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == present
    assert len(set(listed)) == len(listed)
    assert "namespace" not in kustomization()  # it would move the Workflow namespace's Roles
    for doc in resources():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] in (NAMESPACE, RUNS), doc["metadata"]["name"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(version: str):
    checked = 0
    for doc in resources():
        if doc["kind"] == "Route":
            jsonschema.validate(doc, ROUTE_SCHEMA)
        else:
            kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 12


def test_a_broken_manifest_would_fail_the_validation():
    web = by_kind("Deployment")["forgeflow-web"]
    web["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSIONS[-1], strict=True)
    web["spec"]["template"]["spec"]["containers"][0].pop("imagePullPolicy")
    web["spec"]["replicass"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSIONS[-1], strict=True)
    route = by_kind("Route")["forgeflow"]
    route["spec"]["tls"]["termination"] = "sometimes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(route, ROUTE_SCHEMA)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is not installed")
def test_kustomize_renders_the_base_without_the_secret_example():
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(OPENSHIFT)], check=True, capture_output=True, text=True
    ).stdout
    docs = [doc for doc in yaml.safe_load_all(rendered) if doc]
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert "Secret/forgeflow" not in kinds  # local-config: never overwrites the real Secret
    assert len(kinds) == len(resources()) - 1
    for doc in docs:
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == RUNS
            assert doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        elif doc["kind"] in ("Role", "RoleBinding"):
            assert doc["metadata"]["namespace"] == RUNS  # rights only where Workflows run
        elif doc["kind"] == "ServiceAccount":
            assert doc["metadata"]["namespace"] == ACCOUNTS.get(doc["metadata"]["name"], ("", NAMESPACE))[1]
        else:
            assert doc["metadata"]["namespace"] == NAMESPACE
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "forgeflow"
        if doc["kind"] == "Deployment":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            assert container["image"].endswith("/forgeflow/forgeflow:latest")
        if doc["kind"] != "Route":
            kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)


def test_each_process_has_its_own_account_with_only_what_it_uses():
    roles = by_kind("Role")
    assert set(roles) == set(ALLOWED)
    for name, allowed in ALLOWED.items():
        assert rules(roles[name]) == allowed, name
        assert roles[name]["metadata"]["namespace"] == RUNS
    assert not by_kind("ClusterRole") and not by_kind("ClusterRoleBinding")
    bindings = by_kind("RoleBinding")
    assert set(bindings) == set(ACCOUNTS)
    for name, (account, where) in ACCOUNTS.items():
        binding = bindings[name]
        assert binding["metadata"]["namespace"] == RUNS
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": where}]
    accounts = by_kind("ServiceAccount")
    assert set(accounts) == {"forgeflow-web", "forgeflow-worker", "forgeflow-watcher", "forgeflow-workflow"}
    assert accounts["forgeflow-web"]["automountServiceAccountToken"] is False  # no token at all
    assert not any(b["subjects"][0]["name"] == "forgeflow-web" for b in bindings.values())
    # what the Workflow pods run as can do nothing but report task results (Argo's executor)
    # and, for Argo's artifact GC pod, the GC tasks of its own Workflows
    assert {resource for _, resource in ALLOWED["forgeflow-workflow"]} == {
        "workflowtaskresults",
        "workflowartifactgctasks",
        "workflowartifactgctasks/status",
    }
    assert set().union(*ALLOWED["forgeflow-workflow"].values()) <= {"create", "patch", "list", "watch"}


def test_workflows_run_in_a_namespace_of_their_own():
    config = by_kind("ConfigMap")["forgeflow"]["data"]
    assert config["FORGEFLOW_NAMESPACE"] == RUNS
    for deployment in by_kind("Deployment").values():
        assert deployment["metadata"]["namespace"] == NAMESPACE != config["FORGEFLOW_NAMESPACE"]
    secret = by_kind("Secret")["forgeflow"]["stringData"]
    environ = {**config, **secret, "FORGEFLOW_SERVICE_NAMESPACE": NAMESPACE}
    assert load_settings(environ=environ).namespace == RUNS
    with pytest.raises(SettingsError) as refused:  # the service refuses to start beside its runs
        load_settings(environ={**environ, "FORGEFLOW_NAMESPACE": NAMESPACE})
    assert f"namespace is '{NAMESPACE}'" in str(refused.value) and "service_namespace" in str(refused.value)
    accepted = {
        **environ,
        "FORGEFLOW_NAMESPACE": NAMESPACE,
        "FORGEFLOW_ALLOW_WORKFLOWS_IN_SERVICE_NAMESPACE": "1",
    }
    assert load_settings(environ=accepted).namespace == NAMESPACE


def environment(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert "envFrom" not in container  # every setting is named: no Deployment gets them all
    return {entry["name"]: entry.get("valueFrom", {}) for entry in container["env"]}


def test_each_deployment_gets_only_the_settings_its_process_uses():
    config = by_kind("ConfigMap")["forgeflow"]["data"]
    secret = by_kind("Secret")["forgeflow"]["stringData"]
    for name, deployment in by_kind("Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = environment(container)
        assert set(env) == ENVIRONMENT[name], name
        for key, source in env.items():
            assert key.removeprefix("FORGEFLOW_").lower() in Settings.model_fields
            if "configMapKeyRef" in source:
                assert source["configMapKeyRef"] == {"name": "forgeflow", "key": key} and key in config
            elif "secretKeyRef" in source:
                assert source["secretKeyRef"]["name"] == "forgeflow" and source["secretKeyRef"]["key"] == key
                assert key in secret
            else:
                assert key == "FORGEFLOW_SERVICE_NAMESPACE"
                assert source == {"fieldRef": {"fieldPath": "metadata.namespace"}}  # the downward API


def test_web_worker_and_watcher_run_one_image_as_forgeflow():
    deployments = by_kind("Deployment")
    assert set(deployments) == {"forgeflow-web", "forgeflow-worker", "forgeflow-watcher"}
    images = set()
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        images.add(container["image"])
        assert container["args"] == [name.removeprefix("forgeflow-")]
        assert pod["serviceAccountName"] == name  # one account per process
        assert pod.get("automountServiceAccountToken", True) is (name != "forgeflow-web")
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"requests", "limits"} <= set(container["resources"])
        labels = deployment["spec"]["selector"]["matchLabels"]
        assert labels == deployment["spec"]["template"]["metadata"]["labels"]
    assert images == {"forgeflow"}  # kustomize's `images:` sets where it comes from
    web_pod = deployments["forgeflow-web"]["spec"]["template"]["spec"]
    web = web_pod["containers"][0]
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert web["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}  # no database in it
    assert web["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert web_pod["automountServiceAccountToken"] is False  # the web tier has no Kubernetes token
    for name in ("forgeflow-worker", "forgeflow-watcher"):
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
        assert container["ports"] == [{"name": "health", "containerPort": 9102, "protocol": "TCP"}]
    (service,) = by_kind("Service").values()
    assert service["spec"]["selector"] == deployments["forgeflow-web"]["spec"]["selector"]["matchLabels"]
    assert by_kind("Route")["forgeflow"]["spec"]["to"]["name"] == service["metadata"]["name"]


def test_the_configmap_and_secret_are_settings_forgeflow_knows():
    config = by_kind("ConfigMap")["forgeflow"]["data"]
    secret = by_kind("Secret")["forgeflow"]
    assert secret["metadata"]["annotations"]["config.kubernetes.io/local-config"] == "true"
    environ = {**config, **secret["stringData"]}
    for key in environ:
        assert (
            key.startswith("FORGEFLOW_") and key.removeprefix("FORGEFLOW_").lower() in Settings.model_fields
        )
    settings = load_settings(environ=environ)
    assert settings.executor == "argo"
    assert settings.namespace == RUNS
    assert settings.service_account in by_kind("ServiceAccount")
    assert settings.database_url.startswith("postgresql+psycopg2://")
    assert settings.broker_url.startswith("redis://")
    assert settings.port == 8080 and settings.host == "0.0.0.0"  # noqa: S104
    assert {"FORGEFLOW_GITHUB_WEBHOOK_SECRET", "FORGEFLOW_GITHUB_TOKEN"} <= set(secret["stringData"])
    assert not set(config) & set(secret["stringData"])


def test_the_dockerfile_builds_one_non_root_image_of_what_exists():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    final = text[text.rindex("\nFROM ") :]
    user = re.search(r"^USER (\S+)$", final, re.MULTILINE)
    assert user and user.group(1).isdigit() and user.group(1) != "0"
    assert '\nENTRYPOINT ["forgeflow"]' in final and '\nCMD ["web"]' in final
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which does not exist"
    assert "pytest" not in final and "-c requirements.lock" in text  # runtime dependencies only
