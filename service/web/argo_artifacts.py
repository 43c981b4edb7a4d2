"""A job's artifacts when it ran on Argo, as the run page shows them. Pure.

They live in the cluster's artifact repository until Argo deletes them with the Workflow: each
job artifact carries ``artifactGC: OnWorkflowDeletion`` and the Workflow's ``ttlStrategy``
(``workflow_ttl_seconds``, read from the run's stored manifest) deletes it after it ends. The
web tier holds no credentials for the cluster or the bucket, so:

- with ``argo_server_url``, each artifact of a job that ran links to Argo Server's
  ``/artifact-files/{namespace}/workflows/{workflow}/{node id}/outputs/{artifact}`` (the link
  Argo's own UI uses; the browser signs in to Argo Server, which checks the person's rights).
  The node is the DAG task's (``<workflow>.<task>``; a retried task's node carries its last
  attempt's outputs), its id computed as Argo does (:func:`service.argo.names.node_id`);
- without, the page names the object's key under Argo's default key format
  (``{{workflow.name}}/{{pod.name}}``, then ``<artifact>.tgz``), for whoever can read the bucket.

Once the Workflow's TTL has passed, the page says the artifacts expired instead of linking.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import quote

from service.argo.names import node_id
from service.executors.argo.logs import pod_name
from service.web.present import human_duration

TASK_LABEL = "forgeflow.dev/task"
Manifest = dict[str, Any]


class Listed(NamedTuple):
    """One line of a job's artifacts: a name (or file), a link or None, and a note."""

    label: str
    link: str | None = None
    note: str = ""


def job_template(manifest: Manifest, task: str) -> Manifest | None:
    """The template that ran the DAG task ``task`` (forgeflow labels each job's template)."""
    for template in (manifest.get("spec") or {}).get("templates") or []:
        labels = (template.get("metadata") or {}).get("labels") or {}
        if labels.get(TASK_LABEL) == task:
            return dict(template)
    return None


def job_artifacts(template: Manifest | None) -> list[str]:
    """The names of the job's ``artifacts`` (not its cache, a key-only ``s3`` artifact)."""
    outputs = (template or {}).get("outputs") or {}
    return [str(a.get("name")) for a in outputs.get("artifacts") or [] if "s3" not in a]


def workflow_expiry(manifest: Manifest, finished_at: datetime | None) -> tuple[datetime, int] | None:
    """When Argo deletes the finished Workflow (and with it the artifacts), and its TTL."""
    ttl = ((manifest.get("spec") or {}).get("ttlStrategy") or {}).get("secondsAfterCompletion")
    if finished_at is None or not isinstance(ttl, int) or isinstance(ttl, bool):
        return None
    return finished_at + timedelta(seconds=ttl), ttl


def _span(seconds: int) -> str:
    """A TTL in words: ``86400`` -> ``1 day``, ``7200`` -> ``2 hours``."""
    for unit, size in (("day", 86400), ("hour", 3600)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return human_duration(seconds)


def download_url(server: str, namespace: str, workflow: str, task: str, artifact: str) -> str:
    """Argo Server's URL of an output artifact of the DAG task ``task``."""
    node = node_id(workflow, f"{workflow}.{task}")
    parts = (namespace, "workflows", workflow, node, "outputs", artifact)
    return f"{server}/artifact-files/" + "/".join(quote(p, safe="") for p in parts)


def repository_key(workflow: str, template: Manifest, task: str, artifact: str) -> str:
    """The artifact's key under Argo's default key format (pod names ``v2``); a retried task's
    first attempt."""
    node = f"{workflow}.{task}" + ("(0)" if template.get("retryStrategy") else "")
    pod = pod_name(workflow, {"name": node, "templateName": template.get("name")}, "v2")
    return f"{workflow}/{pod}/{artifact}.tgz"


def page_state(
    executor: str, manifest_json: str, finished_at: datetime | None, server: str, moment: datetime
) -> str:
    """What of a run's artifact lines its page's ETag must follow besides the rows: on argo,
    the Argo Server they link to and whether the Workflow's TTL has passed."""
    if executor != "argo" or not manifest_json:
        return ""
    expiry = workflow_expiry(json.loads(manifest_json), finished_at)
    return f"{server}|{expiry is not None and moment >= expiry[0]}"


def listed(
    manifest: Manifest,
    *,
    namespace: str,
    workflow: str,
    task: str,
    ran: bool,
    final: bool,
    finished_at: datetime | None,
    server: str,
    moment: datetime,
) -> list[Listed]:
    """The lines for a job's artifacts: ``ran`` (it started and was not skipped) and ``final``
    are the job's, ``finished_at`` the run's, ``server`` the ``argo_server_url``."""
    template = job_template(manifest, task)
    names = job_artifacts(template)
    if template is None or not names or not workflow:
        return []
    if not final:
        return [Listed(name, None, "once the job has finished") for name in names]
    if not ran:
        return [Listed(name, None, "not made: the job did not run") for name in names]
    expiry = workflow_expiry(manifest, finished_at)
    if expiry is not None and moment >= expiry[0]:
        note = f"expired: deleted with the workflow {_span(expiry[1])} after the run ended"
        return [Listed(name, None, note) for name in names]
    if server:
        return [Listed(name, download_url(server, namespace, workflow, task, name)) for name in names]
    retried = " (its first attempt)" if template.get("retryStrategy") else ""
    keys = {name: repository_key(workflow, template, task, name) for name in names}
    return [Listed(name, None, f"in the artifact repository: {keys[name]}{retried}") for name in names]
