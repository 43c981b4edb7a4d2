"""The matched jobs as DAG units: one :class:`TaskPlan` per job or matrix cell, resolved.

Matrix values are substituted here (``${{ matrix.X }}`` in image, env, step names and scripts,
arguments); a value missing from a cell reads as "". Arguments and the repository's grants
(Secrets, the raw Argo fence: :mod:`grants`) are the only places the event or the service
config can make a good job file fail, so this module raises :class:`JobFileError` for them,
pointing at the job file's line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from service.events import Event
from service.jobs.errors import ConfigProblem, JobFileError, dotted
from service.jobs.expressions import ExpressionError, event_context, interpolate, substitute_simple
from service.jobs.flow import plan_flow
from service.jobs.grants import check_fence, check_secrets
from service.jobs.handoff_plan import cache_plan, need_inputs, output_env
from service.jobs.handoff_plan import handoff as make_handoff
from service.jobs.images import image_problem
from service.jobs.matcher import Decision
from service.jobs.matrix import Cell, cell_label, expand
from service.jobs.model import JobFile, JobSpec
from service.jobs.options import Resources, Retries
from service.jobs.plan_types import (
    NO_HANDOFF,
    GroupPlan,
    NeedInput,
    PlanOptions,
    RawArgo,
    RefusedJob,
    RetryPlan,
    TaskPlan,
)
from service.jobs.yaml_source import Path

NO_LIMIT = 1_000_000


def task_name(job: str, taken: set[str]) -> str:
    """A DNS-safe DAG task name for a job, unique within the run."""
    base = re.sub(r"[^a-z0-9-]+", "-", job.lower()).strip("-")[:50] or "job"
    name = base
    counter = 2
    while name in taken:
        name = f"{base}-{counter}"
        counter += 1
    taken.add(name)
    return name


def step_title(script: str) -> str:
    """An unnamed step is called by its first line, like ``pip install -e .``."""
    first = next((line.strip() for line in script.splitlines() if line.strip()), "step")
    return first if len(first) <= 60 else first[:57] + "..."


def cell_task_name(cell: Mapping[str, str], taken: set[str]) -> str:
    """A cell's task name inside its job's nested DAG: its values, like ``3-12-fedora-41``."""
    return task_name("-".join(cell.values()) or "cell", taken)


MAX_CONTEXT = 255


def cell_context(job: str, cell: Mapping[str, str]) -> str:
    """``forgeflow/tests (python=3.12, os=fedora-41)``; long ones shortened, still unique."""
    context = f"forgeflow/{job} ({cell_label(cell)})"
    if len(context) <= MAX_CONTEXT:
        return context
    digest = hashlib.sha256(context.encode()).hexdigest()[:8]
    return context[: MAX_CONTEXT - 14] + f"... {digest})"


def _retry_plan(retries: Retries | None) -> RetryPlan | None:
    if retries is None:
        return None
    return RetryPlan(retries.limit, retries.policy, retries.backoff, retries.factor, retries.max_backoff)


def _amounts(resources: Resources | None) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    def pairs(amounts: Any) -> tuple[tuple[str, str], ...]:
        if amounts is None:
            return ()
        return tuple((k, v) for k, v in (("cpu", amounts.cpu), ("memory", amounts.memory)) if v is not None)

    if resources is None:
        return (), ()
    return pairs(resources.requests), pairs(resources.limits)


@dataclass(frozen=True)
class _Link:
    """What a job's units need to know of the others: needs in the run and their tasks."""

    present: tuple[str, ...]
    tasks: Mapping[str, str]
    depends: str
    artifacts: tuple[NeedInput, ...]


@dataclass
class Units:
    tasks: tuple[TaskPlan, ...] = ()
    groups: tuple[GroupPlan, ...] = ()
    argo: tuple[RawArgo, ...] = ()
    refused: tuple[RefusedJob, ...] = ()


@dataclass
class _Builder:
    event: Event
    job_file: JobFile
    options: PlanOptions
    problems: list[ConfigProblem] = field(default_factory=list)
    _event_vars: dict[str, Any] | None = None

    def problem(self, path: Path, message: str) -> None:
        file, line, column = self.job_file.where(path)
        self.problems.append(ConfigProblem(file, line, column, dotted(path), message))

    @property
    def event_vars(self) -> dict[str, Any]:
        if self._event_vars is None:
            self._event_vars = event_context(self.event)
        return self._event_vars

    def refusal(self, name: str, job: JobSpec) -> str | None:
        """Why the job does not run (its Secrets), or None; what the policy never allows is
        a problem at its line (see :mod:`grants`)."""
        check_fence(name, job, self.options, self.problem)
        return check_secrets(name, job, self.event, self.options, self.problem)

    def unit(
        self,
        name: str,
        job: JobSpec,
        task: str,
        context: str,
        cell: Cell,
        deps: tuple[str, ...],
        link: _Link | None = None,
    ) -> TaskPlan:
        keys = set(job.matrix.axes) | {k for e in job.matrix.include for k in e} if job.matrix else set()
        values = {key: cell.get(key, "") for key in keys}
        base: Path = ("jobs", name)

        def sub(text: str, path: Path) -> str:
            try:
                return substitute_simple(text, "matrix", values)
            except ExpressionError as exc:
                self.problem((*base, *path), str(exc))
                return text

        defaults = self.job_file.defaults
        timeout = job.timeout or defaults.timeout or self.options.default_timeout_seconds
        common = TaskPlan(
            task=task,
            job=name,
            context=context,
            timeout_seconds=timeout,
            dependencies=deps,
            matrix=tuple(cell.items()),
            group=task.rsplit(".", 1)[0] if "." in task else "",
            arguments=self.arguments(name, job, values),
        )
        if job.workflow_template is not None:
            ref = job.workflow_template
            return replace(common, template_ref=(ref.name, ref.template, ref.cluster_scope))
        if job.argo is not None:
            return replace(common, argo_entry=job.argo.entrypoint)
        image = sub(job.image or defaults.image or self.options.default_image, ("image",))
        if "{{" in image:
            self.problem((*base, "image"), f"the image {image!r} contains '{{{{'")
        elif problem := image_problem(image):
            self.problem((*base, "image"), problem)
        env = {**defaults.env, **job.env}
        steps = []
        for i, step in enumerate(job.steps):
            script = sub(step.run, ("steps", i))
            title = sub(step.name, ("steps", i, "name")) if step.name else step_title(script)
            steps.append((title, script))
        requests, limits = _amounts(job.resources or defaults.resources)
        pairs = [(k, sub(v, ("env", k))) for k, v in env.items()]
        handoff = NO_HANDOFF
        if link is not None:
            pairs, reading, inputs, problems = output_env(pairs, link.present, link.tasks)
            for problem in problems:
                self.problem((*base, "env"), problem)
            key = sub(job.cache.key, ("cache", "key")) if job.cache else ""
            handoff = make_handoff(
                spec=job,
                depends=link.depends,
                inputs=[*link.artifacts, *inputs],
                reading=reading,
                cache=cache_plan(self.event, key, job),
            )
            if job.matrix is not None:  # the matrix job's task (its group) waits and continues
                handoff = replace(handoff, depends="", continue_on_error=False)
        return replace(
            common,
            handoff=handoff,
            image=image,
            steps=tuple(steps),
            env=tuple(sorted(pairs)),
            retries=_retry_plan(job.retries or defaults.retries),
            requests=requests,
            limits=limits,
            secrets=job.secrets,
            artifacts=tuple((a.name, a.path) for a in job.artifacts),
        )

    def arguments(self, name: str, job: JobSpec, values: dict[str, str]) -> tuple[tuple[str, str], ...]:
        result = []
        for key, raw in job.arguments.items():
            path: Path = ("jobs", name, "arguments", key)
            try:
                text = interpolate(
                    substitute_simple(raw, "matrix", values), {"event": self.event_vars, "matrix": values}
                )
            except ExpressionError as exc:
                self.problem(path, str(exc))
                continue
            if "{{" in text:
                self.problem(
                    path, f"the value {text!r} contains '{{{{', which Argo would read as an expression"
                )
                continue
            result.append((key, text))
        return tuple(result)


def build_units(
    event: Event,
    job_file: JobFile,
    chosen: list[str],
    options: PlanOptions,
    decisions: Sequence[Decision] | None = None,
) -> Units:
    """The DAG units of the ``chosen`` jobs (in file order); raises :class:`JobFileError`.

    ``decisions`` (all jobs' matcher decisions) say why a job that is not chosen did not run,
    for the jobs that need it; without them every job not chosen is just "not in the run"."""
    builder = _Builder(event, job_file, options)
    taken: set[str] = set()
    main = {job: task_name(job, taken) for job in chosen}
    refused_why: dict[str, str] = {}
    for job in chosen:
        reason = builder.refusal(job, job_file.jobs[job])
        if reason:
            refused_why[job] = reason
    changed = True
    while changed:  # a job that needs a job that does not run does not run either
        changed = False
        for job in chosen:
            blocked = [n for n in job_file.jobs[job].need_names if n in refused_why]
            if job not in refused_why and blocked:
                refused_why[job] = f"not run: needs {blocked[0]}, which does not run"
                changed = True
    if decisions is None:
        decisions = [Decision(j, j in chosen, "not in the run") for j in job_file.jobs]
    flow = plan_flow(job_file, decisions, refused_why, main)
    units = Units()
    tasks, groups, argo, refused = [], [], [], []
    for job in chosen:
        spec = job_file.jobs[job]
        present = flow.needs.get(job, ())
        deps = tuple(main[n] for n in present)
        cells: list[Cell] = expand(spec.matrix, NO_LIMIT) if spec.matrix else [{}]
        inner: set[str] = set()
        placed = []
        for cell in cells:
            if spec.matrix is None:
                placed.append((main[job], f"forgeflow/{job}", cell))
            else:
                path = f"{main[job]}.{cell_task_name(cell, inner)}"
                placed.append((path, cell_context(job, cell), cell))
        if job in refused_why or job in flow.skipped:
            reason, state = (
                (refused_why[job], "error") if job in refused_why else (flow.skipped[job], "success")
            )
            refused += [RefusedJob(job, path, context, reason, state) for path, context, _ in placed]
            continue
        link = _Link(
            present, main, flow.depends.get(job, ""), tuple(need_inputs(job_file, spec, present, main))
        )
        unit_deps = () if spec.matrix else deps
        tasks += [
            builder.unit(job, spec, path, context, cell, unit_deps, link) for path, context, cell in placed
        ]
        if spec.matrix is not None:
            cell_tasks = tuple(path for path, _, _ in placed)
            group_handoff = make_handoff(spec=spec, depends=link.depends, inputs=[], reading=[], cache=None)
            group_inputs = {i.name: i for t in tasks if t.group == main[job] for i in t.handoff.inputs}
            group_handoff = replace(
                group_handoff, inputs=tuple(group_inputs.values()), outputs=(), services=()
            )
            groups.append(
                GroupPlan(main[job], job, spec.fail_fast, spec.max_parallel, deps, cell_tasks, group_handoff)
            )
        if spec.argo is not None:
            argo.append(RawArgo(job, main[job], spec.argo.templates))
    if builder.problems:
        raise JobFileError(builder.problems)
    units.tasks, units.groups, units.argo, units.refused = (
        tuple(tasks),
        tuple(groups),
        tuple(argo),
        tuple(refused),
    )
    return units
