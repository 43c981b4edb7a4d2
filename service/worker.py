"""What the worker does with a stored delivery: hand its event to ``commands/`` or ``runs/``, and
record the outcome on the delivery.

Comment commands, the forge's "Re-run" and the run pages' actions go to :mod:`service.commands`;
a GitHub App's installation events are kept in the database (:mod:`service.forges.installations`);
every other event starts a run (:func:`service.runs.start.handle_event`). Both are idempotent,
so a delivery the broker hands over twice, or a worker killed half-way, never makes a second
run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from service.clock import now
from service.commands.actions import handle_action
from service.commands.handle import handle_commands
from service.context import Context
from service.events import Event, EventKind
from service.forges.base import ForgeError
from service.forges.installations import InstallationStore
from service.logs import log_context
from service.metrics import TIME_TO_FIRST_STATUS
from service.runs.start import Result, handle_event, run_id_for_delivery
from service.runs.stopping import fail_run
from service.store.leases import DeliveryLeases
from service.store.models import Delivery, DeliveryState

log = logging.getLogger(__name__)

Handler = Callable[[Context, Event, str, str, "int | None"], Result]


def record_installation(
    ctx: Context, event: Event, instance: str, trigger_key: str, delivery_pk: int | None = None
) -> Result:
    """A GitHub App was installed, changed or removed: keep where it is installed."""
    return Result(InstallationStore(ctx.db).record(event, instance))


HANDLERS: dict[EventKind, Handler] = {
    EventKind.COMMENT: handle_commands,
    EventKind.RERUN: handle_commands,
    EventKind.ACTION: handle_action,
    EventKind.INSTALLATION: record_installation,
}


def note_installation(ctx: Context, event: Event, instance: str) -> None:
    """A GitHub App's delivery names the installation that covers its repository: the forge
    need not ask GitHub for it."""
    installation = event.extra.get("installation", "")
    if not installation.isdigit() or event.kind is EventKind.INSTALLATION:
        return
    try:
        forge = ctx.forges.get(event.forge, instance)
    except ForgeError:
        return
    note = getattr(forge, "note_installation", None)
    if callable(note):
        note(event.repository, int(installation))


def process_delivery(ctx: Context, delivery_pk: int) -> Result:
    """Handle one stored delivery, once: under its lease (:mod:`service.store.leases`), kept
    fresh while it runs, so a second copy of the message, or the sweep, leaves it alone."""
    leases = DeliveryLeases(ctx.db, ctx.db.leases)
    taken = leases.take(delivery_pk)
    if not taken.held:
        return Result(taken.reason)
    with leases.keep(delivery_pk):
        event = Event.from_json(taken.event_json)
        instance, received = taken.instance, taken.received_at
        note_installation(ctx, event, instance)
        handler = HANDLERS.get(event.kind, handle_event)
        with log_context(delivery=delivery_pk):
            result = handler(ctx, event, instance, f"delivery:{delivery_pk}", delivery_pk)
        if result.run_id is not None and received is not None:
            # a run's statuses are posted before the handler returns (queued, or the config error)
            TIME_TO_FIRST_STATUS.observe(max((now() - received).total_seconds(), 0.0))
        leases.done(delivery_pk, DeliveryState.DONE, result.outcome)
    log.info("delivery %s: %s", delivery_pk, result.outcome)
    return result


def retry_later(ctx: Context, delivery_pk: int, seconds: float) -> None:
    """The delivery's task will be retried in ``seconds``: the sweep leaves it alone until
    then, and takes it over if the retry never comes (the worker holding it died)."""
    DeliveryLeases(ctx.db, ctx.db.leases).hold_for(delivery_pk, seconds)


def fail_delivery(ctx: Context, delivery_pk: int, reason: str) -> int | None:
    """After the last retry: the delivery failed and its run's jobs say so; the run's id."""
    with ctx.db.session() as session:
        delivery = session.get(Delivery, delivery_pk)
        if delivery is not None:
            delivery.state = DeliveryState.FAILED
            delivery.outcome = reason
            delivery.processed_at = now()
            delivery.lease_until = None
    run_id = run_id_for_delivery(ctx, delivery_pk)
    if run_id is not None:
        fail_run(ctx, run_id, reason)
    return run_id
