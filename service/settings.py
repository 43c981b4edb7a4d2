"""forgeflow's settings: read once, at the edge, into one typed object passed explicitly.

Sources, later ones winning: the defaults below, the YAML file named by ``FORGEFLOW_CONFIG``,
then ``FORGEFLOW_*`` environment variables (``FORGEFLOW_PUBLIC_URL`` sets ``public_url``).
``config/forgeflow.yaml`` documents every key. This module is the only reader of the
environment; nothing here runs at import time.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_PREFIX = "FORGEFLOW_"
FORGE_KINDS = ("github", "gitlab", "forgejo", "pagure")
DEFAULT_API_URLS = {
    "github": "https://api.github.com",
    "gitlab": "https://gitlab.com",
    "forgejo": "https://codeberg.org",
    "pagure": "https://src.fedoraproject.org",
}


class SettingsError(Exception):
    """Settings that cannot be used; the message says which key and why."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ForgeInstance(_Model):
    """One forge forgeflow talks to: its kind, where its API is, and its credentials."""

    kind: Literal["github", "gitlab", "forgejo", "pagure"]
    name: str = ""  # defaults to the web host, e.g. "github.com"
    api_url: str = ""  # GitHub: API root (https://api.github.com, https://ghe/api/v3)
    url: str = ""  # web root that payloads point at; derived from api_url when empty
    token: str = Field(default="", repr=False)
    webhook_secret: str = Field(default="", repr=False)
    # sign-in to the run pages with this forge (OAuth2 application; Pagure signs in by API token)
    oauth_client_id: str = ""
    oauth_client_secret: str = Field(default="", repr=False)
    # GitHub App mode (issue 14): on when app_id is set; the key as PEM text or a file
    app_id: str = ""
    app_private_key: str = Field(default="", repr=False)
    app_private_key_file: str = ""
    check_runs: bool = True  # App mode reports check runs (false: commit statuses)

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, value: str) -> str:
        value = str(value).strip()
        if value and not value.isdigit():
            raise ValueError("a GitHub App id is a number (the App's settings page shows it)")
        return value

    @model_validator(mode="after")
    def _app_key(self) -> ForgeInstance:
        if self.app_id and self.kind != "github":
            raise ValueError("app_id is for GitHub instances")
        if self.app_id and not (self.app_private_key.strip() or self.app_private_key_file):
            raise ValueError("a GitHub App needs its private key: app_private_key or app_private_key_file")
        if self.app_id and not self.app_private_key.strip() and not Path(self.app_private_key_file).is_file():
            raise ValueError(f"app_private_key_file {self.app_private_key_file!r} is not a readable file")
        if self.app_private_key.strip() and "PRIVATE KEY" not in self.app_private_key:
            raise ValueError("app_private_key is the App's PEM private key (-----BEGIN RSA PRIVATE KEY-----)")
        return self

    @property
    def app_mode(self) -> bool:
        """A GitHub App: installation tokens instead of one personal token."""
        return bool(self.app_id)

    def app_key(self) -> str:
        """The App's private key (PEM): the text given, or the file's content."""
        if self.app_private_key.strip():
            return self.app_private_key
        try:
            return Path(self.app_private_key_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"github_app_private_key_file={self.app_private_key_file}: {exc}") from exc

    # private repositories' checkouts (issue 13): a read-only token (e.g. a GitLab deploy token
    # with read_repository) and its user name; default: `token` and the forge's usual user name
    checkout_token: str = Field(default="", repr=False)
    checkout_username: str = ""

    def model_post_init(self, __context: Any) -> None:
        api_url = (self.api_url or DEFAULT_API_URLS[self.kind]).rstrip("/")
        object.__setattr__(self, "api_url", api_url)
        if not self.url:
            object.__setattr__(self, "url", web_root(self.kind, api_url))
        if not self.name:
            object.__setattr__(self, "name", urlsplit(self.url).netloc or self.url)

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc.lower()


def web_root(kind: str, api_url: str) -> str:
    """The web root a forge's payloads name, from its API root."""
    parts = urlsplit(api_url)
    root = f"{parts.scheme}://{parts.netloc}"
    if kind == "github" and parts.netloc == "api.github.com":
        return "https://github.com"
    return root


# --- tenancy: what a repository's runs may reach (issue 13) --------------------------------
EventKindName = Literal["push", "tag", "pull_request", "comment", "release", "manual"]
EVENT_KINDS: tuple[EventKindName, ...] = ("push", "tag", "pull_request", "comment", "release", "manual")
# What raw `argo:` templates may not do unless a repository's policy names it in `argo_allow`.
ARGO_EXCEPTIONS = (
    "resource",  # resource templates: create/patch/delete Kubernetes objects
    "volumes",  # volumes other than emptyDir and granted Secrets (PVCs, configMaps, projected...)
    "hostPath",
    "podSpecPatch",
    "hostNamespaces",  # hostNetwork, hostPID, hostIPC
    "privileged",
    "allowPrivilegeEscalation",
    "capabilities",  # capabilities.add beyond NET_BIND_SERVICE
    "runAsRoot",  # runAsUser/runAsGroup 0, runAsNonRoot false
    "securityProfiles",  # seccomp/AppArmor Unconfined, SELinux options, procMount, sysctls
    "serviceAccount",  # serviceAccountName, executor, automountServiceAccountToken: true
    "controllerObjects",  # memoize caches and synchronization (ConfigMaps the controller writes/reads)
    "plugin",  # executor plugin templates
    "hostPort",  # containers' ports bound on the node
    "artifactLocations",  # artifacts at a location of their own, or keys outside the run's own
    "scheduling",  # nodeSelector, affinity, tolerations, priority(ClassName), schedulerName
)
CHECKOUT_SECRET_SUFFIX = "-checkout"  # noqa: S105 (a run's own Secret: <workflow name>-checkout)
_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class SecretGrant(_Model):
    """A Kubernetes Secret (in the Workflow's namespace) a repository's jobs may use, and for
    which events; a plain string in the config is a grant for every event kind."""

    name: str
    events: tuple[EventKindName, ...] = EVENT_KINDS

    @field_validator("name")
    @classmethod
    def _secret_name(cls, value: str) -> str:
        if not _SECRET_NAME.match(value):
            raise ValueError(f"{value!r} is not a Kubernetes Secret name")
        if value.startswith("forgeflow-") and value.endswith(CHECKOUT_SECRET_SUFFIX):
            raise ValueError(f"{value!r} is the name of a run's own checkout Secret, never granted")
        return value


class RepositoryPolicy(_Model):
    """Service-side rules for repositories matching ``match`` (a glob over ``namespace/name``).

    The job file of a repository never chooses these; the service config does.
    """

    match: str = "*"
    namespace: str | None = None  # Kubernetes namespace for its Workflows
    service_account: str | None = None  # spec.serviceAccountName of its Workflows
    allow_secrets: bool = True  # false: none of its jobs gets a Secret, whatever `secrets` grants
    trusted_users: tuple[str, ...] = ()
    trusted_orgs: tuple[str, ...] = ()
    required_jobs: tuple[str, ...] = ()  # as if the job file said `required: true` (issue 14)
    summary_status: bool | None = None  # forgeflow/summary for this repository (None: the default)
    secrets: tuple[SecretGrant, ...] = ()  # the Secrets its jobs may use (default: none)
    argo_allow: tuple[Literal[ARGO_EXCEPTIONS], ...] = ()  # type: ignore[valid-type]
    # WorkflowTemplates its jobs may run (`workflowTemplate:`), as globs over their names: the
    # namespaced ones the operator installed in its Workflows' namespace (default: any of them),
    # and ClusterWorkflowTemplates, which serve every namespace (default: none).
    workflow_templates: tuple[str, ...] = ("*",)
    cluster_workflow_templates: tuple[str, ...] = ()
    pod_security: Literal["restricted", "baseline"] = "restricted"  # baseline: pods may run as root

    @field_validator("secrets", mode="before")
    @classmethod
    def _grants(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value


class Settings(_Model):
    """Everything configurable, with the embedded defaults of ``forgeflow serve``."""

    data_dir: Path = Path(".forgeflow")
    database_url: str = ""  # default: sqlite:///<data_dir>/forgeflow.sqlite
    broker_url: str = ""  # default: sqla+sqlite:///<data_dir>/broker.sqlite
    public_url: str = "http://127.0.0.1:8080"
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    max_body_bytes: int = 25 * 1024 * 1024
    api_token: str = Field(default="", repr=False)  # bearer token for POST /api/runs

    executor: Literal["local", "argo"] = "local"
    namespace: str = "forgeflow"
    kubeconfig: str = ""  # empty: in-cluster config, else $KUBECONFIG / ~/.kube/config
    service_account: str = "forgeflow-workflow"
    workflow_ttl_seconds: int = 86400
    # tenancy (issue 13): where forgeflow itself runs, and how Workflow pods run
    service_namespace: str = ""  # from the pod (downward API); Workflows never run there
    allow_workflows_in_service_namespace: bool = False  # the operator accepts the risk
    pod_run_as_user: int = Field(default=1000, ge=0)  # 0: leave it to the platform (OpenShift)
    local_container_runtime: Literal["", "podman", "docker"] = ""
    local_max_parallel: int = 4
    # jobs that build on each other (issue 16): artifacts, caches
    artifact_repository: str = Field(default="", pattern=r"^$|^[a-z0-9][-a-z0-9.]*/[-._a-zA-Z0-9]+$")
    local_cache_max_bytes: int = Field(default=2 * 1024**3, ge=0)  # per repository; 0: no limit
    artifact_download_max_bytes: int = Field(default=512 * 1024**2, ge=0)  # run page downloads
    # artifacts on the run page: how long the local executor keeps them (0: as long as the run);
    # on argo they go with the Workflow, and Argo Server (when named) serves them
    artifact_retention_days: float = Field(default=30, ge=0)
    argo_server_url: str = ""  # e.g. https://argo.example.com; "": no download links on argo

    job_file: str = ".forgeflow.yaml"
    default_image: str = "registry.fedoraproject.org/fedora:41"
    default_timeout: str = "30m"
    max_job_file_bytes: int = 256 * 1024
    max_jobs: int = 200
    max_matrix_cells: int = 256

    comment_prefix: str = "/forgeflow"
    trusted_users: tuple[str, ...] = ()
    trusted_orgs: tuple[str, ...] = ()
    repositories: tuple[RepositoryPolicy, ...] = ()
    templates: dict[str, Any] = Field(default_factory=dict)  # organisation-wide job templates

    forges: tuple[ForgeInstance, ...] = ()
    github_webhook_secret: str = Field(default="", repr=False)
    github_token: str = Field(default="", repr=False)
    github_api_url: str = "https://api.github.com"
    gitlab_webhook_secret: str = Field(default="", repr=False)
    gitlab_token: str = Field(default="", repr=False)
    gitlab_api_url: str = "https://gitlab.com"
    forgejo_webhook_secret: str = Field(default="", repr=False)
    forgejo_token: str = Field(default="", repr=False)
    forgejo_api_url: str = "https://codeberg.org"
    pagure_webhook_secret: str = Field(default="", repr=False)
    pagure_token: str = Field(default="", repr=False)
    pagure_api_url: str = "https://src.fedoraproject.org"
    local_webhook_secret: str = Field(default="", repr=False)  # default: generated in data_dir
    # GitHub App mode (issue 14): App mode is on when an App id is set
    github_app_id: str = ""
    github_app_private_key: str = Field(default="", repr=False)  # PEM text
    github_app_private_key_file: str = ""
    github_check_runs: bool = True  # App mode reports check runs (false: commit statuses)
    summary_status: bool = False  # one more status, forgeflow/summary: green when every job is

    worker_concurrency: int = 4
    watch_timeout_seconds: int = 60
    resync_seconds: int = 300
    sweep_seconds: int = 15
    # a dead worker's deliveries and a dead reporter's posts are taken over this long after it
    # stopped renewing its leases (service/store/leases.py); renewed every quarter of it
    lease_seconds: float = Field(default=20, ge=1, le=3600)
    watcher_report_threads: int = Field(default=4, ge=0, le=64)
    task_max_retries: int = 8

    # -- run pages, sign-in and the JSON API --------------------------------------------------
    session_secret: str = Field(default="", repr=False)  # signs login cookies; default: generated
    public_runs: bool = True  # runs of public repositories are shown without signing in
    local_open_access: bool = True  # no sign-in configured and listening on loopback: open to all
    access_cache_seconds: int = Field(default=60, ge=0, le=3600)
    forge_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    api_token_days: int = Field(default=90, ge=1, le=3650)
    github_oauth_client_id: str = ""
    github_oauth_client_secret: str = Field(default="", repr=False)
    gitlab_oauth_client_id: str = ""
    gitlab_oauth_client_secret: str = Field(default="", repr=False)
    forgejo_oauth_client_id: str = ""
    forgejo_oauth_client_secret: str = Field(default="", repr=False)

    # -- operations ---------------------------------------------------------------------------
    health_port: int = Field(default=9102, ge=0, le=65535)  # worker, watcher: /livez, /metrics
    log_format: Literal["text", "json"] = "text"
    live_log_seconds: int = Field(default=5, ge=0, le=300)  # argo: running jobs' logs copied this often

    # hostile input and faults (issue 18): every wait has a bound
    request_read_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    request_min_bytes_per_second: int = Field(default=256 * 1024, ge=1024)
    replay_window_seconds: int = Field(default=3600, ge=0)
    database_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    database_statement_timeout_seconds: float = Field(default=30.0, gt=0, le=86400)
    retention_delivery_body_days: float = Field(default=7, ge=0)
    retention_run_days: float = Field(default=90, ge=0)
    retention_log_days: float = Field(default=90, ge=0)

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("argo_server_url")
    @classmethod
    def _argo_server_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (
            parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment
        ):
            raise ValueError("must be empty or an http(s) URL such as https://argo.example.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _github_app(self) -> Settings:
        if self.github_app_id:  # the same checks as an explicit instance's, named by the flat keys
            try:
                ForgeInstance.model_validate(
                    {
                        "kind": "github",
                        "app_id": self.github_app_id,
                        "app_private_key": self.github_app_private_key,
                        "app_private_key_file": self.github_app_private_key_file,
                    }
                )
            except ValidationError as exc:
                message = exc.errors()[0]["msg"].removeprefix("Value error, ")
                raise ValueError(f"github_app_id: {message}") from None
        return self

    @model_validator(mode="after")
    def _not_beside_the_service(self) -> Settings:
        """Workflows never run in forgeflow's own namespace, where its Secret (database URL,
        forge tokens, webhook secrets) lives, unless the operator says so."""
        if self.executor != "argo" or not self.service_namespace:
            return self
        if self.allow_workflows_in_service_namespace:
            return self
        for key, namespace in self.workflow_namespaces():
            if namespace == self.service_namespace:
                raise ValueError(
                    f"{key} is {namespace!r}, the namespace forgeflow itself runs in "
                    f"(service_namespace {self.service_namespace!r}, read from the pod): Workflows "
                    "there could read forgeflow's own Secret. Run Workflows in another namespace "
                    "(e.g. forgeflow-runs) or set allow_workflows_in_service_namespace: true"
                )
        return self

    # -- derived values -------------------------------------------------------------------

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'forgeflow.sqlite').resolve()}"

    @property
    def broker(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite').resolve()}"

    @property
    def repos_dir(self) -> Path:
        """Bare repositories of the embedded ``local`` forge."""
        return self.data_dir / "repos"

    def forge_instances(self) -> tuple[ForgeInstance, ...]:
        """Configured forge instances: the ``forges`` list, plus one per kind from the flat keys."""
        instances = list(self.forges)
        for kind in FORGE_KINDS:
            secret = getattr(self, f"{kind}_webhook_secret")
            token = getattr(self, f"{kind}_token")
            api_url = getattr(self, f"{kind}_api_url")
            explicit = any(i.kind == kind for i in self.forges)
            app: dict[str, Any] = {}
            if kind == "github" and self.github_app_id:
                app = {
                    "app_id": self.github_app_id,
                    "app_private_key": self.github_app_private_key,
                    "app_private_key_file": self.github_app_private_key_file,
                    "check_runs": self.github_check_runs,
                }
            if (secret or token or app) and not explicit:
                fields = {"kind": kind, "api_url": api_url, "token": token, "webhook_secret": secret, **app}
                if kind != "pagure":
                    fields["oauth_client_id"] = getattr(self, f"{kind}_oauth_client_id")
                    fields["oauth_client_secret"] = getattr(self, f"{kind}_oauth_client_secret")
                instances.append(ForgeInstance.model_validate(fields))
        return tuple(instances)

    def summary_for(self, repo_full_name: str) -> bool:
        """Whether runs of this repository get the ``forgeflow/summary`` status."""
        policy = self.policy_for(repo_full_name).summary_status
        return self.summary_status if policy is None else policy

    def policy_for(self, repo_full_name: str) -> RepositoryPolicy:
        """The first repository policy whose ``match`` glob covers the repository."""
        return self.policy_entry(repo_full_name)[1]

    def policy_entry(self, repo_full_name: str) -> tuple[int | None, RepositoryPolicy]:
        """The index in ``repositories`` of the first policy covering the repository (None:
        no entry matches, the defaults apply) and that policy."""
        from fnmatch import fnmatchcase

        for index, policy in enumerate(self.repositories):
            if fnmatchcase(repo_full_name.lower(), policy.match.lower()):
                return index, policy
        return None, RepositoryPolicy()

    def workflow_namespaces(self) -> list[tuple[str, str]]:
        """Every namespace Workflows may run in, with the setting that names it."""
        found = [("namespace", self.namespace)]
        found += [
            (f"repositories[{i}].namespace", p.namespace)
            for i, p in enumerate(self.repositories)
            if p.namespace
        ]
        return found


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    known = Settings.model_fields
    overrides: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        field = key[len(ENV_PREFIX) :].lower()
        if field not in known:
            continue
        annotation = str(known[field].annotation)
        if "tuple" in annotation or "dict" in annotation:
            overrides[field] = _parse_structured(key, value)
        else:
            overrides[field] = value
    return overrides


def _parse_structured(key: str, value: str) -> Any:
    """List/map variables: YAML/JSON (``[a, b]``) or a comma-separated list."""
    stripped = value.strip()
    if stripped.startswith(("[", "{")):
        try:
            return yaml.safe_load(stripped)
        except yaml.YAMLError as exc:
            raise SettingsError(f"{key}: not valid YAML/JSON: {exc}") from exc
    return [item.strip() for item in stripped.split(",") if item.strip()]


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build the settings from the environment (default ``os.environ``) and the config file."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    config_path = env.get(ENV_PREFIX + "CONFIG", "")
    if config_path:
        values.update(_read_config_file(Path(config_path)))
    values.update(_env_overrides(env))
    if overrides:
        values.update(overrides)
    if "public_url" not in values and ("host" in values or "port" in values):
        # a service moved to another address says so in its links and hooks, unless told otherwise
        host = str(values.get("host") or "127.0.0.1")
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        host = f"[{host}]" if ":" in host else host
        values["public_url"] = f"http://{host}:{values.get('port') or 8080}"
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise SettingsError(f"invalid settings: {problems}") from exc


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"FORGEFLOW_CONFIG={path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"FORGEFLOW_CONFIG={path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"FORGEFLOW_CONFIG={path}: expected a mapping of settings")
    return data


def local_webhook_secret(settings: Settings) -> str:
    """The local forge's hook secret: configured, or generated once and kept in the data dir."""
    if settings.local_webhook_secret:
        return settings.local_webhook_secret
    return generated_secret(settings, "local-webhook-secret")


def session_secret(settings: Settings) -> str:
    """The key that signs the run pages' cookies: configured (several web replicas must share
    one), or generated once and kept in the data dir."""
    if settings.session_secret:
        return settings.session_secret
    return generated_secret(settings, "session-secret")


def generated_secret(settings: Settings, name: str) -> str:
    """A random secret generated once and kept in the data dir as ``name``."""
    path = settings.data_dir / name
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    tmp = settings.data_dir / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    tmp.write_text(secrets.token_hex(24), encoding="utf-8")
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)  # atomic and exclusive: concurrent first starts agree on one secret
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text(encoding="utf-8").strip()
