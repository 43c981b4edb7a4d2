"""The ``argo`` executor: Workflow custom objects on Kubernetes through the official client.

``CustomObjectsApi`` creates, reads, lists, watches and patches ``argoproj.io/v1alpha1``
Workflows; ``CoreV1Api`` reads the pods' logs. Each Workflow goes to the namespace its manifest
names (the planner puts the service config's namespace for the repository there). Every list
and watch is per namespace (a namespaced Role suffices; see :mod:`argo_watch` for how the
namespaces' streams become one). Errors are sorted as :mod:`argo_errors` says.

Configuration (:meth:`ArgoExecutor.from_settings`): ``FORGEFLOW_KUBECONFIG`` when set, else the
in-cluster service account, else ``$KUBECONFIG`` / ``~/.kube/config``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from kubernetes import config as _kube_config
from kubernetes.client import ApiClient, Configuration, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from service.executors.argo.errors import is_status, translate
from service.executors.argo.logs import MAIN_CONTAINER, DatabaseLogArchive, LogArchive, task_log
from service.executors.argo.run_secrets import make_run_secrets
from service.executors.argo.watch import GROUP, PAGE_SIZE, PLURAL, VERSION, list_all, watch_all
from service.executors.base import ExecutorError, Manifest, RunSecret, WatchEvent, WorkflowRef
from service.executors.log_times import strip
from service.settings import Settings

__all__ = ["ArgoExecutor", "load_configuration", "watched_namespaces"]

log = logging.getLogger(__name__)
FINAL_PHASES = frozenset({"Succeeded", "Failed", "Error"})
STOP_MESSAGE_ANNOTATION = "forgeflow.dev/stop-message"
RUN_LABEL = "forgeflow.dev/run"
REQUEST_TIMEOUT = 30.0
_CREATE_PATH = f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}"
kube_config: Any = _kube_config  # untyped functions


def load_configuration(kubeconfig: str = "") -> Configuration:
    """The client configuration: ``kubeconfig`` if given, else in-cluster, else the default
    kubeconfig ($KUBECONFIG or ~/.kube/config)."""
    configuration = Configuration()
    try:
        if kubeconfig:
            kube_config.load_kube_config(
                config_file=kubeconfig, client_configuration=configuration, persist_config=False
            )
        else:
            try:
                kube_config.load_incluster_config(client_configuration=configuration)
            except kube_config.ConfigException:
                kube_config.load_kube_config(client_configuration=configuration, persist_config=False)
    except (kube_config.ConfigException, OSError) as exc:
        where = kubeconfig or "in-cluster, $KUBECONFIG or ~/.kube/config"
        raise ExecutorError(f"no usable Kubernetes configuration ({where}): {exc}") from exc
    # The proxy the environment gives for the API server, pinned now: a kubeconfig's token
    # refresh hook sets the host again before every request, and the client then reads the
    # proxy variables from the whole process environment again (a large part of its CPU).
    configuration.proxy = configuration.proxy
    return configuration


def watched_namespaces(settings: Settings) -> tuple[str, ...]:
    """The namespaces forgeflow's Workflows live in: the default and every repository's."""
    names = [settings.namespace, *(p.namespace for p in settings.repositories if p.namespace)]
    return tuple(dict.fromkeys(n for n in names if n))


class ArgoExecutor:
    """The :class:`~service.executors.base.Executor` for Argo Workflows on Kubernetes."""

    name = "argo"

    def __init__(
        self,
        api_client: ApiClient,
        namespaces: Iterable[str],
        *,
        default_namespace: str = "",
        archive: LogArchive | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        owns_client: bool = False,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.namespaces = tuple(dict.fromkeys(namespaces))
        if not self.namespaces:
            raise ValueError("the argo executor needs at least one namespace")
        self.default_namespace = default_namespace or self.namespaces[0]
        self.api_client: Any = api_client
        self.custom: Any = CustomObjectsApi(api_client)
        self.core: Any = CoreV1Api(api_client)
        self.archive = archive
        self.request_timeout = request_timeout
        self.page_size = page_size  # Workflows per list request
        self._owns_client = owns_client

    @classmethod
    def from_settings(cls, settings: Settings) -> ArgoExecutor:
        client = ApiClient(load_configuration(settings.kubeconfig))
        return cls(
            client,
            watched_namespaces(settings),
            default_namespace=settings.namespace,
            archive=DatabaseLogArchive(settings.database),
            owns_client=True,
        )

    # -- the Executor protocol ---------------------------------------------------------------
    def submit(self, manifest: Manifest, secrets: Sequence[RunSecret] = ()) -> WorkflowRef:
        """Create the Workflow; one that exists already (409) counts as submitted.

        With ``secrets`` (a private repository's checkout credentials) the Workflow is created
        suspended, the Secrets are created owned by it (Kubernetes deletes them with it), and
        only then is it resumed: no pod starts without them, and no Secret exists without its
        owner. If making them fails the Workflow is deleted again, so nothing is left behind;
        a retried submit finds a suspended Workflow of its run and finishes the job."""
        body = self._checked(manifest)
        ref = WorkflowRef.of(body)
        if secrets:
            body = {**body, "spec": {**(body.get("spec") or {}), "suspend": True}}
        try:
            created = self._create(ref.namespace, body)
        except Exception as exc:
            if not is_status(exc, 409) or not ref.name:
                raise translate(exc, f"create workflow {ref.namespace}/{ref.name}") from exc
            existing = self._check_same_run(ref, body)
            log.info("workflow %s/%s exists already: submitted before", ref.namespace, ref.name)
            if secrets and existing is not None and (existing.get("spec") or {}).get("suspend"):
                self._release(existing, secrets)
            return ref
        if secrets:
            self._release(created, secrets)
        return WorkflowRef.of(created)

    def get(self, ref: WorkflowRef) -> Manifest | None:
        try:
            obj: Manifest = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, ref.namespace, PLURAL, ref.name, _request_timeout=self.request_timeout
            )
        except Exception as exc:
            if is_status(exc, 404):
                return None
            raise translate(exc, f"get workflow {ref.namespace}/{ref.name}") from exc
        return obj

    def list(self, label_selector: str) -> tuple[list[Manifest], str]:
        return list_all(self.custom, self.namespaces, label_selector, self.request_timeout, self.page_size)

    def watch(self, label_selector: str, resource_version: str, timeout_seconds: int) -> Iterator[WatchEvent]:
        return watch_all(self.custom, self.namespaces, label_selector, resource_version, timeout_seconds)

    def stop(self, ref: WorkflowRef, message: str) -> None:
        """``spec.shutdown: Terminate`` (a merge patch), with the reason as an annotation."""
        current = self.get(ref)
        if current is None or (current.get("status") or {}).get("phase") in FINAL_PHASES:
            return
        patch = {
            "metadata": {"annotations": {STOP_MESSAGE_ANNOTATION: message[:1000]}},
            "spec": {"shutdown": "Terminate"},
        }
        self._patch(ref, patch, "stop", missing_ok=True)

    def annotate(self, ref: WorkflowRef, annotations: dict[str, str]) -> None:
        self._patch(ref, {"metadata": {"annotations": dict(annotations)}}, "annotate", missing_ok=False)

    def logs(self, ref: WorkflowRef, task: str) -> str | None:
        """The archived log of a finished job, else its pods' live ``main`` logs."""
        if self.archive is not None:
            archived = self.archive.get(ref.namespace, ref.name, task)
            if archived is not None:
                return strip(archived)
        live = self._live_log(ref, task)
        return strip(live) if live is not None else None

    # -- argo extras -------------------------------------------------------------------------
    def archive_log(
        self, ref: WorkflowRef, task: str, workflow: Manifest | None = None, *, grow_only: bool = False
    ) -> bool:
        """Keep a finished job's log for after pod GC; False when no pod had one. ``workflow``:
        the Workflow as just seen (saves reading it again). ``grow_only``: a running job's log
        copied for the run pages, kept only when longer than what is stored (a late copy never
        replaces the finished job's whole log)."""
        if self.archive is None:
            return False
        text = self._live_log(ref, task, workflow)
        if text is None:
            return False
        self.archive.put(ref.namespace, ref.name, task, text, grow_only=grow_only)
        return True

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()
        if self._owns_client:
            self.api_client.close()

    # -- helpers -----------------------------------------------------------------------------
    def _live_log(self, ref: WorkflowRef, task: str, workflow: Manifest | None = None) -> str | None:
        workflow = workflow if workflow is not None else self.get(ref)
        if workflow is None:
            return None
        return task_log(workflow, task, lambda pod: self._pod_log(ref.namespace, pod))

    def _pod_log(self, namespace: str, pod: str) -> str | None:
        if not pod:
            return None
        try:
            text: Any = self.core.read_namespaced_pod_log(
                pod,
                namespace,
                container=MAIN_CONTAINER,
                timestamps=True,  # each line with its time: the run pages show and time steps
                _request_timeout=self.request_timeout,
            )
        except Exception as exc:
            if is_status(exc, 404, 400):  # no such pod (GC'd, other naming) / not started yet
                return None
            raise translate(exc, f"read log of pod {namespace}/{pod}") from exc
        return text if isinstance(text, str) else str(text)

    def _patch(self, ref: WorkflowRef, patch: Manifest, what: str, *, missing_ok: bool) -> None:
        try:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, ref.namespace, PLURAL, ref.name, patch, _request_timeout=self.request_timeout
            )
        except Exception as exc:
            if missing_ok and is_status(exc, 404):
                return
            raise translate(exc, f"{what} workflow {ref.namespace}/{ref.name}") from exc

    def _create(self, namespace: str, body: Manifest) -> Manifest:
        """``create_namespaced_custom_object``'s request through the client's ``ApiClient`` (its
        URL, headers, credentials and REST client), with the body sent as it is: a manifest is
        plain JSON already, and the generated method's argument validation and its walk of the
        whole body to sanitize it cost more CPU than the request itself. Errors are the same
        ``ApiException`` errors (raised as the client raises them for an unread response)."""
        method, url, headers, _, post_params = self.api_client.param_serialize(
            method="POST",
            resource_path=_CREATE_PATH,
            path_params={"namespace": namespace},
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(
            method, url, headers, body, post_params, _request_timeout=self.request_timeout
        )
        data = response.read()
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        created: Manifest = json.loads(data)
        return created

    def _checked(self, manifest: Manifest) -> Manifest:
        if not isinstance(manifest, dict) or manifest.get("kind") != "Workflow":
            raise ExecutorError("not a Workflow manifest")
        if manifest.get("apiVersion") != f"{GROUP}/{VERSION}":
            raise ExecutorError(f"unsupported apiVersion {manifest.get('apiVersion')!r}")
        meta = manifest.get("metadata")
        if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
            raise ExecutorError("the Workflow has neither metadata.name nor generateName")
        namespace = meta.get("namespace") or self.default_namespace
        return {**manifest, "metadata": {**meta, "namespace": namespace}}

    def _check_same_run(self, ref: WorkflowRef, body: Manifest) -> Manifest | None:
        """A 409 is "already submitted" only if the existing Workflow is this run's; it."""
        existing = self.get(ref)
        if existing is None:
            return None  # deleted since (TTL): it was ours and ran
        wanted = ((body.get("metadata") or {}).get("labels") or {}).get(RUN_LABEL)
        found = ((existing.get("metadata") or {}).get("labels") or {}).get(RUN_LABEL)
        if wanted != found:
            raise ExecutorError(
                f"workflow {ref.namespace}/{ref.name} exists and belongs to another run ({found!r})"
            )
        return existing

    def _release(self, workflow: Manifest, secrets: Sequence[RunSecret]) -> None:
        """Create the suspended ``workflow``'s own Secrets, then resume it; on failure delete
        it (its Secrets go with it)."""
        ref = WorkflowRef.of(workflow)
        try:
            make_run_secrets(self.core, workflow, secrets, self.request_timeout)
            self._patch(ref, {"spec": {"suspend": None}}, "resume", missing_ok=False)
        except Exception as exc:
            try:
                self.custom.delete_namespaced_custom_object(
                    GROUP, VERSION, ref.namespace, PLURAL, ref.name, _request_timeout=self.request_timeout
                )
            except Exception as cleanup:
                if not is_status(cleanup, 404):
                    log.warning(
                        "could not delete %s/%s after a failed submit: %s", ref.namespace, ref.name, cleanup
                    )
            if isinstance(exc, ExecutorError):
                raise
            raise translate(exc, f"create the secrets of workflow {ref.namespace}/{ref.name}") from exc
