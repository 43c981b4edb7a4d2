"""What people ask for on a run page (or ``POST /api/runs/{id}/actions``), carried out by the
worker: re-run a run (all its jobs, or the failed ones), cancel it, approve a waiting fork run.

The web tier checks that the person may (the comment commands' rule: listed as trusted or write
access), then stores the request as a delivery of an ``action`` event and the relay queues it,
exactly as a webhook: so it is durable, queued once, and carried out here through the same
paths as ``/forgeflow retest``, ``cancel`` and ``ok-to-test``. A re-run is a new run whose
trigger is the request's delivery, so a request carried out twice starts one run.

The event names the run (``extra["run"]``), the action (``action``) and who asked (``sender``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from service.commands.selection import CommandRefused, named_jobs
from service.context import Context
from service.events import Event
from service.runs.approvals import approve
from service.runs.start import Result, resume_run, start_run, write_access
from service.runs.stopping import stop_runs
from service.runs.trust import command_trust
from service.store.models import JobState, Run, RunPhase

log = logging.getLogger(__name__)
CONFIG_JOB = "config"


def handle_action(
    ctx: Context, event: Event, instance: str, trigger_key: str, delivery_pk: int | None = None
) -> Result:
    """Carry out one page action (``event.kind`` is ``action``)."""
    try:
        run_id = int(event.extra.get("run", ""))
    except ValueError:
        return Result("an action without a run")
    with ctx.db.session() as session:
        run = session.get(Run, run_id)
        if run is None:
            return Result(f"no run {run_id}")
        original = Event.from_json(run.event_json)
        jobs = [(job.name, job.state) for job in run.jobs]
        phase = run.phase
    handler = ACTIONS.get(event.action)
    if handler is None:
        return Result(f"unknown action {event.action!r}")
    return handler(
        ActionRequest(ctx, event, original, instance, trigger_key, delivery_pk, run_id, phase, jobs)
    )


class ActionRequest:
    def __init__(
        self,
        ctx: Context,
        event: Event,
        original: Event,
        instance: str,
        trigger_key: str,
        delivery_pk: int | None,
        run_id: int,
        phase: str,
        jobs: list[tuple[str, str]],
    ) -> None:
        self.ctx, self.event, self.original, self.instance = ctx, event, original, instance
        self.trigger_key, self.delivery_pk, self.run_id = trigger_key, delivery_pk, run_id
        self.phase, self.jobs = phase, jobs

    @property
    def user(self) -> str:
        return self.event.sender


def _rerun(request: ActionRequest, *, failed_only: bool) -> Result:
    ctx = request.ctx
    names = sorted(
        {
            name
            for name, state in request.jobs
            if name != CONFIG_JOB and (not failed_only or state in (JobState.FAILURE, JobState.ERROR))
        }
    )
    if failed_only and not names:
        return Result(f"nothing failed in run {request.run_id}")
    forge = ctx.forges.get(request.original.forge, request.instance)
    trust = command_trust(ctx.settings, request.original, write_access(ctx, forge))
    event = replace(
        request.original,
        extra={**request.original.extra, "rerun_of": str(request.run_id), "rerun_by": request.user},
    )
    selector = named_jobs(ctx.settings.comment_prefix, tuple(names), "test", request.user) if names else None
    try:
        result = start_run(
            ctx, forge, event, request.instance, request.trigger_key, request.delivery_pk, trust, selector
        )
    except CommandRefused as exc:
        return Result(exc.message)
    return Result(f"re-run of run {request.run_id} by {request.user}: {result.outcome}", result.run_id)


def _cancel(request: ActionRequest) -> Result:
    stopped = stop_runs(request.ctx, [request.run_id], f"cancelled by {request.user}")
    if not stopped:
        return Result(f"run {request.run_id} had ended already", request.run_id)
    return Result(f"run {request.run_id} cancelled by {request.user}", request.run_id)


def _approve(request: ActionRequest) -> Result:
    pr = request.original.pull_request
    if request.phase != RunPhase.WAITING or pr is None:
        return Result(f"run {request.run_id} is not waiting for approval", request.run_id)
    started = approve(request.ctx, request.original, request.instance, pr.number, request.user)
    for run_id in started:
        resume_run(request.ctx, run_id)
    return Result(
        f"{request.original.short_sha} approved by {request.user}; started runs {started}", request.run_id
    )


ACTIONS: dict[str, Callable[[ActionRequest], Result]] = {
    "rerun": lambda request: _rerun(request, failed_only=False),
    "rerun-failed": lambda request: _rerun(request, failed_only=True),
    "cancel": _cancel,
    "approve": _approve,
}
