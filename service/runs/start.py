"""What the worker does with a stored delivery: job file → jobs → statuses → Workflow → submit.

:func:`process_delivery` is idempotent: it can run again after a crash or a redelivery by the
broker and never creates a second run or posts a state twice. The run and its jobs are written
(with the compiled manifest) before anything is submitted, and the Workflow name is fixed by
the run id, so a repeated submit is Argo's 409 = already submitted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from service.argo.validation import InvalidManifest, validate_manifest
from service.compiler import compile_workflow
from service.context import Context
from service.events import Event, EventKind
from service.executors.base import WorkflowRef
from service.forges.base import Forge
from service.jobs.durations import parse_duration
from service.jobs.loader import JobFileError, load_job_file
from service.jobs.matcher import ChangedFiles, Decision, match_jobs
from service.jobs.model import JobFile
from service.jobs.plan import PlanOptions, plan_workflow
from service.reporting.reporter import report_run, run_url
from service.runs.node_states import now
from service.runs.sources import forge_changed_files, forge_templates, job_limits
from service.runs.stopping import concurrency_blocker, stop_pull_request_runs, stop_superseded_runs
from service.runs.trust import TRUSTED, Trust, event_trust
from service.store.models import Delivery, DeliveryState, Job, JobState, Run, RunPhase

log = logging.getLogger(__name__)
CONFIG_CONTEXT = "forgeflow/config"


@dataclass(frozen=True)
class Result:
    outcome: str
    run_id: int | None = None


def process_delivery(ctx: Context, delivery_pk: int) -> Result:
    """Handle one stored delivery, once."""
    with ctx.db.session() as session:
        delivery = session.get(Delivery, delivery_pk)
        if delivery is None:
            return Result(f"no delivery {delivery_pk}")
        if delivery.state in (DeliveryState.DONE, DeliveryState.FAILED):
            return Result(f"already processed: {delivery.outcome}")
        delivery.attempts += 1
        event = Event.from_json(delivery.event_json)
        instance = delivery.instance
    result = handle_event(
        ctx, event, instance, trigger_key=f"delivery:{delivery_pk}", delivery_pk=delivery_pk
    )
    with ctx.db.session() as session:
        delivery = session.get(Delivery, delivery_pk)
        if delivery is not None:
            delivery.state = DeliveryState.DONE
            delivery.outcome = result.outcome
            delivery.processed_at = now()
    log.info("delivery %s: %s", delivery_pk, result.outcome)
    return result


def handle_event(
    ctx: Context, event: Event, instance: str, trigger_key: str, delivery_pk: int | None = None
) -> Result:
    """Run what ``event`` triggers; ``trigger_key`` makes the run unique."""
    existing = _run_by_key(ctx, trigger_key)
    if existing is not None:
        return resume_run(ctx, existing)
    forge = ctx.forges.get(event.forge, instance)
    if event.kind in (EventKind.COMMENT, EventKind.RERUN):
        from service.commands.handle import handle_commands

        return handle_commands(ctx, forge, event, instance, delivery_pk)
    if event.kind is EventKind.PULL_REQUEST and event.action in ("closed", "merged"):
        # its runs stop; jobs that ask for `types: [closed]` still run below
        stop_pull_request_runs(ctx, event, f"pull request {event.action}")
    if not event.sha:
        event = _with_sha(event, forge.resolve_ref(event.repository, event.ref))
    trust = event_trust(ctx, forge, event)
    return run_jobs(ctx, forge, event, instance, trigger_key, delivery_pk, trust, None)


Selector = Callable[[Event, JobFile, ChangedFiles], list[Decision]]


def run_jobs(
    ctx: Context,
    forge: Forge,
    event: Event,
    instance: str,
    trigger_key: str,
    delivery_pk: int | None,
    trust: Trust,
    select_jobs: Selector | None,
) -> Result:
    """Read the job file (where ``trust`` says), pick the jobs (``select_jobs``, default: the
    event's triggers), record the run and start it (or leave it waiting for approval)."""
    ref = trust.job_file_ref(event)
    text = forge.read_file(event.repository, ctx.settings.job_file, ref)
    if text is None:
        return Result(f"no {ctx.settings.job_file} at {ref[:12]}")
    source = event if ref == event.sha else _with_sha(event, ref)  # templates come from there too
    try:
        templates = forge_templates(forge, source, ctx.settings)
        job_file = load_job_file(text, ctx.settings.job_file, job_limits(ctx.settings), templates)
        decisions = (select_jobs or match_jobs)(event, job_file, forge_changed_files(forge, event))
        if any(d.matched for d in decisions):  # what only the event or the policy reveal
            plan_workflow(0, event, job_file, decisions, plan_options(ctx, event, 0, trust))
    except JobFileError as exc:
        run_id = _record_config_error(ctx, event, instance, trigger_key, delivery_pk, exc)
        report_run(ctx.db, ctx.forges, ctx.settings.public_url, run_id)
        return Result(f"broken {ctx.settings.job_file}: {exc.summary}", run_id)
    if not any(d.matched for d in decisions):
        return Result("no job matched: " + "; ".join(f"{d.job}: {d.reason}" for d in decisions))
    run_id = _create_run(ctx, event, instance, trigger_key, delivery_pk, job_file, decisions, trust)
    stop_superseded_runs(ctx, event, run_id)
    return resume_run(ctx, run_id)


def resume_run(ctx: Context, run_id: int) -> Result:
    """Post pending statuses and submit the run's Workflow, unless that already happened."""
    report_run(ctx.db, ctx.forges, ctx.settings.public_url, run_id)
    with ctx.db.session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        if run.phase != RunPhase.CREATED:
            return Result(f"run {run_id} already {run.phase}", run_id)
        manifest = json.loads(run.manifest_json)
    blocker = concurrency_blocker(ctx, run_id)
    if blocker is not None:  # the watcher or the sweep submits it when its group is free
        return Result(f"run {run_id} is {blocker}", run_id)
    ref = ctx.executor.submit(manifest)
    with ctx.db.session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        if run.phase == RunPhase.CREATED:
            run.phase = RunPhase.SUBMITTED
            run.namespace, run.workflow_name = ref.namespace, ref.name
    return Result(f"run {run_id} submitted as {ref.namespace}/{ref.name}", run_id)


def _with_sha(event: Event, sha: str) -> Event:
    data = event.to_dict()
    data["sha"] = sha
    return Event.from_dict(data)


def run_id_for_delivery(ctx: Context, delivery_pk: int) -> int | None:
    return _run_by_key(ctx, f"delivery:{delivery_pk}")


def _run_by_key(ctx: Context, trigger_key: str) -> int | None:
    with ctx.db.session() as session:
        return session.scalars(select(Run.id).where(Run.trigger_key == trigger_key)).first()


def _new_run(event: Event, instance: str, trigger_key: str, delivery_pk: int | None, executor: str) -> Run:
    return Run(
        trigger_key=trigger_key,
        delivery_pk=delivery_pk,
        forge=event.forge,
        instance=instance,
        repo=event.repository.full_name,
        sha=event.sha,
        ref=event.ref,
        event_kind=event.kind.value,
        pr_number=event.pull_request.number if event.pull_request else None,
        event_json=event.to_json(),
        executor=executor,
    )


def _record_config_error(
    ctx: Context,
    event: Event,
    instance: str,
    trigger_key: str,
    delivery_pk: int | None,
    exc: JobFileError,
) -> int:
    with ctx.db.session() as session:
        run = _new_run(event, instance, trigger_key, delivery_pk, ctx.settings.executor)
        run.phase = RunPhase.CONFIG_ERROR
        run.message = str(exc)
        run.finished_at = now()
        run.jobs.append(
            Job(
                name="config",
                task="config",
                context=CONFIG_CONTEXT,
                state=JobState.FAILURE,
                description=exc.summary,
                finished_at=now(),
            )
        )
        session.add(run)
        session.flush()
        return run.id


def plan_options(ctx: Context, event: Event, run_id: int, trust: Trust = TRUSTED) -> PlanOptions:
    settings = ctx.settings
    policy = settings.policy_for(event.repository.full_name)
    return PlanOptions(
        namespace=policy.namespace or settings.namespace,
        service_account=policy.service_account or settings.service_account,
        default_image=settings.default_image,
        default_timeout_seconds=int(parse_duration(settings.default_timeout)),
        ttl_seconds=settings.workflow_ttl_seconds,
        run_url=run_url(settings.public_url, run_id),
        allow_secrets=policy.allow_secrets,
        trusted=trust.code_trusted,
    )


def _create_run(
    ctx: Context,
    event: Event,
    instance: str,
    trigger_key: str,
    delivery_pk: int | None,
    job_file: JobFile,
    decisions: list[Decision],
    trust: Trust = TRUSTED,
) -> int:
    """Record the run, its jobs (pending) and its compiled manifest in one transaction. An
    unapproved run waits, its jobs pending with a description saying how to approve it."""
    with ctx.db.session() as session:
        run = _new_run(event, instance, trigger_key, delivery_pk, ctx.settings.executor)
        session.add(run)
        session.flush()
        plan = plan_workflow(run.id, event, job_file, decisions, plan_options(ctx, event, run.id, trust))
        manifest = compile_workflow(plan)
        waiting = not trust.approved
        if waiting:
            run.phase = RunPhase.WAITING
            run.message = waiting_message(ctx)
        description = waiting_description(ctx) if waiting else "queued"
        for task in plan.tasks:
            run.jobs.append(Job(name=task.job, task=task.task, context=task.context, description=description))
        for refused in plan.refused:  # final at once: never in the Workflow
            run.jobs.append(
                Job(
                    name=refused.job,
                    task=refused.task,
                    context=refused.context,
                    state=JobState.ERROR,
                    description=refused.reason,
                    finished_at=now(),
                )
            )
        run.concurrency_group, run.cancel_in_progress = plan.concurrency_group, plan.cancel_in_progress
        if not plan.tasks:  # every matched job was refused: nothing to submit
            run.phase, run.message, run.finished_at = RunPhase.ERROR, plan.refused[0].reason, now()
        try:
            if plan.tasks:
                validate_manifest(manifest)
        except InvalidManifest as exc:
            log.error("run %s compiled into an invalid Workflow: %s", run.id, exc)
            run.phase = RunPhase.ERROR
            run.message = f"invalid Workflow: {exc}"
            run.finished_at = now()
            for job in run.jobs:
                job.state = JobState.ERROR
                job.description = "forgeflow built an invalid Workflow; see the run page"
        run.manifest_json = json.dumps(manifest, sort_keys=True)
        run.namespace = plan.namespace
        run.workflow_name = plan.name
        return run.id


def waiting_description(ctx: Context) -> str:
    return f"waiting for approval: a maintainer can comment {ctx.settings.comment_prefix} ok-to-test"


def waiting_message(ctx: Context) -> str:
    return (
        "This pull request comes from a fork by someone without write access: it runs once a "
        f"maintainer comments {ctx.settings.comment_prefix} ok-to-test (for each new commit)."
    )


def fail_run(ctx: Context, run_id: int, reason: str) -> None:
    """Give up on a run: every job that is not final ends as ``error`` with the reason."""
    with ctx.db.session() as session:
        run = session.get(Run, run_id)
        if run is None:
            return
        if run.phase not in RunPhase.FINAL:
            run.phase = RunPhase.ERROR
            run.message = reason
            run.finished_at = now()
        for job in run.jobs:
            if job.state not in JobState.FINAL:
                job.state = JobState.ERROR
                job.description = reason[:200]
                job.finished_at = now()


def fail_delivery(ctx: Context, delivery_pk: int, reason: str) -> None:
    """After the last retry: the delivery failed and its run's jobs say so."""
    with ctx.db.session() as session:
        delivery = session.get(Delivery, delivery_pk)
        if delivery is not None:
            delivery.state = DeliveryState.FAILED
            delivery.outcome = reason
            delivery.processed_at = now()
    run_id = _run_by_key(ctx, f"delivery:{delivery_pk}")
    if run_id is not None:
        fail_run(ctx, run_id, reason)


def workflow_ref(run: Run) -> WorkflowRef:
    return WorkflowRef(run.namespace, run.workflow_name)
