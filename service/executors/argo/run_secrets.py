"""A run's own Secrets on Kubernetes: made in the Workflow's namespace, owned by the Workflow.

The owner reference (the Workflow's uid) makes Kubernetes' garbage collector delete each Secret
with its Workflow (Argo's TTL, or anyone deleting it). A Secret that exists already (a retried
submit) gets its data and owner again. Values are sent as ``stringData`` and never logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.executors.argo.errors import is_status, translate
from service.executors.base import ExecutorError, Manifest, RunSecret

MANAGED_BY = {"app.kubernetes.io/managed-by": "forgeflow"}
RUN_LABEL = "forgeflow.dev/run"


def owner_reference(workflow: Manifest) -> dict[str, Any]:
    meta = workflow.get("metadata") or {}
    if not meta.get("uid"):
        raise ExecutorError(f"workflow {meta.get('name')!r} has no uid to own its secrets")
    return {
        "apiVersion": str(workflow.get("apiVersion") or "argoproj.io/v1alpha1"),
        "kind": "Workflow",
        "name": str(meta.get("name")),
        "uid": str(meta["uid"]),
        "blockOwnerDeletion": False,
    }


def secret_body(workflow: Manifest, secret: RunSecret) -> dict[str, Any]:
    meta = workflow.get("metadata") or {}
    labels = dict(MANAGED_BY)
    run = (meta.get("labels") or {}).get(RUN_LABEL)
    if run:
        labels[RUN_LABEL] = str(run)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret.name,
            "namespace": meta.get("namespace"),
            "labels": labels,
            "ownerReferences": [owner_reference(workflow)],
        },
        "type": "Opaque",
        "stringData": dict(secret.data),
    }


def make_run_secrets(core: Any, workflow: Manifest, secrets: Sequence[RunSecret], timeout: float) -> None:
    """Create (or refresh) each of ``secrets`` in ``workflow``'s namespace, owned by it."""
    namespace = str((workflow.get("metadata") or {}).get("namespace") or "")
    for secret in secrets:
        body = secret_body(workflow, secret)
        try:
            core.create_namespaced_secret(namespace, body, _request_timeout=timeout)
        except Exception as exc:
            if not is_status(exc, 409):
                raise translate(exc, f"create secret {namespace}/{secret.name}") from None
            patch = {
                "metadata": {"ownerReferences": body["metadata"]["ownerReferences"]},
                "stringData": body["stringData"],
            }
            try:
                core.patch_namespaced_secret(
                    secret.name,
                    namespace,
                    patch,
                    _content_type="application/merge-patch+json",
                    _request_timeout=timeout,
                )
            except Exception as again:
                raise translate(again, f"update secret {namespace}/{secret.name}") from None
