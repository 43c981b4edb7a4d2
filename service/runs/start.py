"""Starting runs: an event's jobs → a recorded run → "queued" statuses → the Workflow submitted.

Idempotent: :func:`handle_event` and :func:`start_run` can run again after a crash or a
redelivery by the broker and never create a second run or post a state twice. The run and its
jobs are written (with the compiled manifest) before anything is submitted, and the Workflow
name is fixed by the run id, so a repeated submit is Argo's 409 = already submitted.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import bindparam, select, update

from service.context import Context
from service.events import Event, EventKind
from service.executors.base import ExecutorError, RunSecret
from service.forges.base import Forge
from service.jobs.loader import JobFileError
from service.jobs.matcher import missing_requested
from service.jobs.plan import checkout_secret_name
from service.logs import set_run
from service.reporting.reporter import give_back, job_logs, report_held, report_run
from service.runs.approvals import approved_at
from service.runs.recipe import Selector, plan_event
from service.runs.record import Recorded, record_config_error, record_run, record_skipped, run_by_key
from service.runs.schedules import record_schedules
from service.runs.sources import ForgeFiles
from service.runs.stopping import (
    concurrency_blocker,
    stop_commit_runs,
    stop_pull_request_runs,
    stop_superseded_runs,
)
from service.runs.trust import HasWrite, Trust, event_trust
from service.store.models import RUNS, Run, RunPhase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    outcome: str
    run_id: int | None = None


def write_access(ctx: Context, forge: Forge) -> HasWrite:
    """The forge's answer to "may this user push here", kept briefly."""
    return lambda repo, user: ctx.forges.permissions.has_write_access(forge, repo, user)


def handle_event(
    ctx: Context, event: Event, instance: str, trigger_key: str, delivery_pk: int | None = None
) -> Result:
    """Run what a push, tag, pull request, release or manual event triggers."""
    existing = run_by_key(ctx, trigger_key)
    if existing is not None:
        return resume_run(ctx, existing)
    forge = ctx.forges.get(event.forge, instance)
    if event.kind is EventKind.PULL_REQUEST and event.action in ("closed", "merged"):
        # its runs stop; jobs that ask for `types: [closed]` still run below
        stop_pull_request_runs(ctx, event, f"pull request {event.action}")
    if event.kind is EventKind.MERGE_GROUP and event.action == "destroyed":
        reason = event.extra.get("reason", "")
        stopped = stop_commit_runs(ctx, event, f"merge group {reason or 'destroyed'}")
        return Result(f"merge group at {event.short_sha} {reason or 'destroyed'}: stopped runs {stopped}")
    if not event.sha:
        event = with_sha(event, forge.resolve_ref(event.repository, event.ref))
    approved = lambda sha: approved_at(ctx, event, sha)  # noqa: E731
    trust = event_trust(ctx.settings, event, write_access(ctx, forge), approved)
    return _start_new_run(ctx, forge, event, instance, trigger_key, delivery_pk, trust)


def start_run(
    ctx: Context,
    forge: Forge,
    event: Event,
    instance: str,
    trigger_key: str,
    delivery_pk: int | None,
    trust: Trust,
    select_jobs: Selector | None = None,
) -> Result:
    """Plan the event's jobs (``select_jobs``, default: the event's triggers) through the one
    recipe, record the run and start it (or leave it waiting for approval)."""
    existing = run_by_key(ctx, trigger_key)
    if existing is not None:
        return resume_run(ctx, existing)
    return _start_new_run(ctx, forge, event, instance, trigger_key, delivery_pk, trust, select_jobs)


def _start_new_run(
    ctx: Context,
    forge: Forge,
    event: Event,
    instance: str,
    trigger_key: str,
    delivery_pk: int | None,
    trust: Trust,
    select_jobs: Selector | None = None,
) -> Result:
    """:func:`start_run` once the caller knows no run has ``trigger_key`` yet (a run made
    meanwhile by another worker makes this one's insert fail: the task is retried and finds it)."""
    try:
        planned = plan_event(ForgeFiles(forge, event.repository), ctx.settings, event, trust, select_jobs)
    except JobFileError as exc:
        run_id = record_config_error(ctx, event, instance, trigger_key, delivery_pk, exc)
        report_run(ctx.db, ctx.forges, ctx.settings.public_url, run_id, job_logs(ctx))
        return Result(f"broken {ctx.settings.job_file}: {exc.summary}", run_id)
    if event.kind is EventKind.PUSH:  # the branch's schedules are what its job file says now
        record_schedules(ctx.db, event, instance, planned.job_file if planned else None)
    if planned is None:
        return Result(f"no {ctx.settings.job_file} at {trust.job_file_ref(event)[:12]}")
    if not planned.reports and not summary_awaited(ctx, event):
        said = [d for d in planned.decisions if not d.reason.startswith("not requested")]  # the asked ones
        why = [*missing_requested(event, planned.job_file), *(f"{d.job}: {d.reason}" for d in said)]
        return Result("no job matched: " + "; ".join(why))
    if planned.plan is None:  # only required jobs that were skipped: they pass at once
        run_id = record_skipped(ctx, event, instance, trigger_key, delivery_pk, planned.skipped)
        return resume_run(ctx, run_id)
    recorded = record_run(
        ctx, event, instance, trigger_key, delivery_pk, planned.plan, trust, planned.skipped
    )
    try:
        stopped = stop_superseded_runs(ctx, event, recorded.run_id, recorded.row)
    except BaseException:
        try:
            _give_back(ctx, recorded)  # whoever resumes the run reports it
        except Exception as exc:  # the leases lapse by themselves
            log.warning("run %s: could not give back its report leases: %s", recorded.run_id, exc)
        raise
    if recorded.run_id in stopped:  # a late delivery: its run ended at once, read it back
        _give_back(ctx, recorded)
        return resume_run(ctx, recorded.run_id)
    return resume_run(ctx, recorded.run_id, recorded)


def _give_back(ctx: Context, recorded: Recorded) -> None:
    if recorded.held is not None:
        give_back(ctx.db, ctx.settings.public_url, recorded.held)


def summary_awaited(ctx: Context, event: Event) -> bool:
    """A pull request or merge group whose branch protection may wait for ``forgeflow/summary``
    gets it even when no job runs (it passes)."""
    open_request = event.kind is EventKind.PULL_REQUEST and event.action not in ("closed", "merged")
    waits = open_request or event.kind is EventKind.MERGE_GROUP
    return waits and ctx.settings.summary_for(event.repository.full_name)


_TO_SUBMIT = select(RUNS.c.phase, RUNS.c.manifest_json, RUNS.c.concurrency_group).where(
    RUNS.c.id == bindparam("run_pk")
)
_SUBMITTED = (
    update(RUNS)
    .where(RUNS.c.id == bindparam("run_pk"), RUNS.c.phase == RunPhase.CREATED)
    .values(phase=RunPhase.SUBMITTED)
)  # and the namespace and name given


def resume_run(ctx: Context, run_id: int, recorded: Recorded | None = None) -> Result:
    """Post pending statuses and submit the run's Workflow, unless that already happened.
    ``recorded``: the run as this worker just recorded it (not read back; its jobs' report
    leases held since they were written)."""
    set_run(run_id)  # this thread's log lines name the run from here on
    if recorded is not None and recorded.held is not None:  # leased as they were written
        report_held(ctx.db, ctx.forges, ctx.settings.public_url, recorded.held, job_logs(ctx))
    else:
        report_run(ctx.db, ctx.forges, ctx.settings.public_url, run_id, job_logs(ctx))
    if recorded is None:
        with ctx.db.transaction() as connection:
            row = connection.execute(_TO_SUBMIT, {"run_pk": run_id}).one()
        phase, manifest, group = row.phase, json.loads(row.manifest_json), row.concurrency_group
    else:
        phase, manifest, group = recorded.phase, recorded.manifest, recorded.concurrency_group
    if phase != RunPhase.CREATED:
        return Result(f"run {run_id} already {phase}", run_id)
    blocker = concurrency_blocker(ctx, run_id) if group else None
    if blocker is not None:  # the watcher or the sweep submits it when its group is free
        return Result(f"run {run_id} is {blocker}", run_id)
    ref = ctx.executor.submit(manifest, run_secrets(ctx, run_id, manifest))
    with ctx.db.transaction() as connection:
        connection.execute(
            _SUBMITTED, {"run_pk": run_id, "namespace": ref.namespace, "workflow_name": ref.name}
        )
    return Result(f"run {run_id} submitted as {ref.namespace}/{ref.name}", run_id)


def run_secrets(ctx: Context, run_id: int, manifest: dict[str, Any]) -> list[RunSecret]:
    """The run's own Secrets: the checkout's credentials of a private repository, fresh from
    the forge (short-lived where the forge can make them), never stored by forgeflow."""
    checkout = checkout_reference(manifest)
    if checkout is None:
        return []
    secret, clone_url = checkout
    with ctx.db.session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        forge_kind, instance, event = run.forge, run.instance, Event.from_json(run.event_json)
    forge = ctx.forges.get(forge_kind, instance)
    credential = forge.checkout_credential(event.repository, clone_url)
    if credential is None:
        host = urlsplit(clone_url).netloc or clone_url
        raise ExecutorError(
            f"no credentials to check out private {event.repository.full_name} from {host} "
            f"(set the {forge_kind} forge's token or checkout_token)"
        )
    log.info("run %s: checkout credentials from the %s", run_id, credential.source or "forge")
    return [RunSecret(secret, credential.as_secret_data())]


def checkout_reference(manifest: dict[str, Any]) -> tuple[str, str] | None:
    """(Secret name, clone URL) of the run's authenticated git checkout, if it has one: only
    the Secret named after the Workflow counts (a job file's templates never get it, see
    ``service.settings.SecretGrant``)."""
    wanted = checkout_secret_name(str((manifest.get("metadata") or {}).get("name") or ""))
    for template in (manifest.get("spec") or {}).get("templates") or []:
        for artifact in (template.get("inputs") or {}).get("artifacts") or []:
            git = artifact.get("git") or {}
            ref = git.get("passwordSecret")
            if isinstance(ref, dict) and ref.get("name") == wanted:
                return wanted, str(git.get("repo") or "")
    return None


def with_sha(event: Event, sha: str) -> Event:
    data = event.to_dict()
    data["sha"] = sha
    return Event.from_dict(data)


def run_id_for_delivery(ctx: Context, delivery_pk: int) -> int | None:
    return run_by_key(ctx, f"delivery:{delivery_pk}")
