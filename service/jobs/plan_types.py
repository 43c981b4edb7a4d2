"""The plan's types: what the compiler gets, everything resolved (see :mod:`plan`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

LABEL_PREFIX = "forgeflow.dev"
MANAGED_BY = ("app.kubernetes.io/managed-by", "forgeflow")
RUN_LABEL = f"{LABEL_PREFIX}/run"  # the run id of a Workflow (the watcher reads it)
Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PlanOptions:
    """Service-side choices: where and how workflows run."""

    namespace: str
    service_account: str
    default_image: str
    default_timeout_seconds: int
    ttl_seconds: int
    allow_secrets: bool = True  # the service config lets this repository's jobs use Secrets
    trusted: bool = True  # the run's job file and code are trusted (not an untrusted fork's)
    artifact_repository: str = ""  # "configmap/key" of an Argo artifact repository; "": the controller's
    # What the repository's policy grants (see service.jobs.grants): each granted Secret with
    # the event kinds it is granted for, where the config grants them (for messages), the
    # exceptions to the raw Argo fence, and how pods run.
    secrets: tuple[tuple[str, tuple[str, ...]], ...] = ()
    grant_hint: str = "`repositories` in the service config"
    argo_allow: frozenset[str] = frozenset()
    workflow_templates: tuple[str, ...] = ("*",)  # globs: WorkflowTemplates jobs may run
    cluster_workflow_templates: tuple[str, ...] = ()  # globs: ClusterWorkflowTemplates
    pod_security: Literal["restricted", "baseline"] = "restricted"
    run_as_user: int = 1000  # 0: the platform chooses (OpenShift's restricted SCC)
    checkout_secret: bool = False  # the checkout uses the run's own credentials Secret


@dataclass(frozen=True)
class RetryPlan:
    limit: int
    policy: str
    backoff_seconds: int
    factor: int
    max_backoff_seconds: int

    def worst_case_seconds(self, timeout: int) -> int:
        """Every attempt timing out, plus every backoff."""
        waits = 0
        for attempt in range(self.limit):
            waits += min(self.backoff_seconds * self.factor**attempt, self.max_backoff_seconds)
        return timeout * (self.limit + 1) + waits


@dataclass(frozen=True)
class CachePlan:
    """A job's cache: the key as written (matrix values filled in; ``hashFiles`` is computed in
    the pod), its paths and restore keys, the slots it reads (in order) and the one it writes
    (empty: never, e.g. for pull requests). A slot is an artifact key in the artifact repository."""

    key: str
    paths: tuple[str, ...]
    restore_keys: tuple[str, ...]
    reads: tuple[str, ...]
    writes: str


@dataclass(frozen=True)
class ServicePlan:
    name: str
    image: str
    env: Pairs = ()
    ports: tuple[int, ...] = ()
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class NeedInput:
    """Something a job takes from a need: an artifact (unpacked at ``path``) or an output
    parameter (``path`` empty), named ``name`` in the job's template."""

    name: str
    task: str  # the need's main-DAG task
    source: str  # the need's artifact or output name
    path: str = ""


@dataclass(frozen=True)
class Handoff:
    """What a job hands on and brings along (all empty for jobs that use none of it)."""

    depends: str = ""  # an Argo ``depends`` expression, used instead of ``dependencies``
    condition: str = ""  # the job's ``if:`` when it uses status functions
    continue_on_error: bool = False
    outputs: tuple[str, ...] = ()
    inputs: tuple[NeedInput, ...] = ()
    output_env: Pairs = ()  # env values that read needs' outputs, as Argo parameter references
    cache: CachePlan | None = None
    services: tuple[ServicePlan, ...] = ()

    @property
    def artifact_inputs(self) -> tuple[NeedInput, ...]:
        return tuple(i for i in self.inputs if i.path)

    @property
    def parameter_inputs(self) -> tuple[NeedInput, ...]:
        return tuple(i for i in self.inputs if not i.path)

    @property
    def driver_steps(self) -> bool:
        """Whether the job gets forgeflow's own steps (services, cache, outputs)."""
        return bool(self.services or self.cache or self.outputs)


NO_HANDOFF = Handoff()


@dataclass(frozen=True)
class TaskPlan:
    """One job or matrix cell: one DAG task, one pod (or Argo template), one commit status.

    ``task`` is its path: ``lint``, or ``tests.3-12-fedora-41`` for a cell of the matrix job
    ``tests`` (a task of the nested DAG ``tests``); the Job row and status mapping use it.
    """

    task: str
    job: str
    context: str
    image: str = ""
    steps: tuple[tuple[str, str], ...] = ()  # (name, script)
    env: Pairs = ()
    timeout_seconds: int = 0
    dependencies: tuple[str, ...] = ()  # main-DAG tasks; a cell's are its group's
    retries: RetryPlan | None = None
    requests: Pairs = ()
    limits: Pairs = ()
    secrets: tuple[str, ...] = ()
    artifacts: Pairs = ()  # (name, path inside the checkout)
    template_ref: tuple[str, str, bool] | None = None  # (WorkflowTemplate, template, cluster scope)
    argo_entry: str = ""  # raw Argo: the entry template, as the job file names it
    arguments: Pairs = ()
    matrix: Pairs = ()
    group: str = ""  # the matrix job's nested DAG (its main-DAG task) this cell belongs to
    handoff: Handoff = NO_HANDOFF

    @property
    def kind(self) -> Literal["steps", "argo", "workflowTemplate"]:
        if self.template_ref is not None:
            return "workflowTemplate"
        return "argo" if self.argo_entry else "steps"

    @property
    def name(self) -> str:
        """The task's name inside its DAG."""
        return self.task.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class GroupPlan:
    """A matrix job: a nested DAG of its cells, with its own failFast and parallelism."""

    task: str
    job: str
    fail_fast: bool
    max_parallel: int | None
    dependencies: tuple[str, ...]
    cells: tuple[str, ...]
    handoff: Handoff = NO_HANDOFF  # depends, continue-on-error and what the cells take from needs


@dataclass(frozen=True)
class RawArgo:
    """A job's own Argo templates (names as written; the compiler prefixes them)."""

    job: str
    task: str
    templates: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class RefusedJob:
    """A matched job that does not run, and says why in its commit status (``error``)."""

    job: str
    task: str
    context: str
    reason: str
    state: str = "error"  # "success" for a job skipped because a need did not run


@dataclass(frozen=True)
class WorkflowPlan:
    name: str
    namespace: str
    service_account: str
    ttl_seconds: int
    clone_url: str
    sha: str
    labels: Pairs
    annotations: Pairs
    event_env: Pairs
    tasks: tuple[TaskPlan, ...]
    groups: tuple[GroupPlan, ...] = ()
    argo: tuple[RawArgo, ...] = ()
    refused: tuple[RefusedJob, ...] = field(default=())
    concurrency_group: str = ""
    cancel_in_progress: bool = False
    artifact_repository: str = ""  # an artifactRepositoryRef "configmap/key", or the controller's
    pod_security: Literal["restricted", "baseline"] = "restricted"
    run_as_user: int = 1000
    checkout_secret: str = ""  # the run's own Secret the git checkout authenticates with

    def main_tasks(self) -> list[str]:
        """The main DAG's tasks in order: each job's task, or its matrix group."""
        seen: list[str] = []
        for task in self.tasks:
            name = task.group or task.task
            if name not in seen:
                seen.append(name)
        return seen
