"""Acting on a run from its page or the API: re-run (all / failed), cancel, approve.

Allowed to whoever the comment commands allow (:meth:`service.web.auth.Access.can_act`). The
page's forms carry a CSRF token (Flask-WTF) and the browser's ``Origin`` must be forgeflow's
own; the API's requests carry a bearer token instead, which a browser never sends by itself.
The web tier does not run anything: it stores the request as a delivery of an ``action`` event
and the relay hands it to the worker (:mod:`service.commands.actions`), as for a webhook. A
``request_id`` (the form's, or the API caller's) makes a double submit one request.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from flask import Blueprint, abort, jsonify, redirect, request, url_for
from flask_wtf.csrf import CSRFError, validate_csrf
from pydantic import ValidationError
from wtforms import ValidationError as CsrfInvalid

from service.events import Event, EventKind
from service.relay import local_wakeup
from service.store.deliveries import NewDelivery
from service.store.models import DeliveryState, Run
from service.web import current
from service.web.api_models import ActionRequest, BadQuery, parse_run_id, validation_reason
from service.web.auth import Viewer, current_viewer
from service.web.run_views import allowed_actions, get_run, run_key

bp = Blueprint("actions", __name__)


def request_action(run: Run, viewer: Viewer, action: str, request_id: str) -> str:
    """Store the request for the worker; its delivery id. Aborts 403/409 when not allowed now."""
    access = current.access()
    if not access.can_act(viewer, run_key(run)):
        abort(403, "you may not act on this run (write access or the service's trust list is needed)")
    possible = allowed_actions(run, True)
    if action not in possible:
        abort(409, f"{action} is not possible now: the run is {run.phase}")
    original = Event.from_json(run.event_json)
    user = viewer.login if viewer.role == "user" else ("local" if viewer.via == "open" else "admin")
    event = Event(
        forge=run.forge,
        kind=EventKind.ACTION,
        repository=original.repository,
        sha=run.sha,
        instance=original.instance,
        action=action,
        ref=run.ref,
        sender=user,
        pull_request=original.pull_request,
        extra={"run": str(run.id)},
    )
    delivery_id = f"action-{run.id}-{request_id}"
    current.context().delivery_writer.store(
        NewDelivery(
            forge=run.forge,
            instance=run.instance,
            delivery_id=delivery_id,
            event_type="action",
            event_json=event.to_json(),
            body=json.dumps({"run": run.id, "action": action, "by": user}).encode(),
            headers_json="{}",
            state=DeliveryState.RECEIVED,
        )
    )  # a repeated request id is stored once (the delivery id is unique)
    local_wakeup.set()
    return delivery_id


def _run(run_id_text: str) -> Run:
    run = get_run(current.context(), parse_run_id(run_id_text))
    viewer = current_viewer()
    if run is None or not current.access().can_read(viewer, run_key(run)):
        abort(404, "no such run (or you may not see it)")
    return run


@bp.post("/runs/<run_id>/actions")
def page_action(run_id: str) -> Any:
    """A button on the run page (a form POST with a CSRF token)."""
    try:
        validate_csrf(request.form.get("csrf_token", ""))
    except (CsrfInvalid, CSRFError):
        abort(400, "the form expired or did not come from forgeflow; reload the page and try again")
    origin = request.headers.get("Origin")
    if origin and origin not in (request.host_url.rstrip("/"), current.context().settings.public_url):
        abort(403, "this form must be sent from forgeflow's own pages")
    run = _run(run_id)
    try:
        body = ActionRequest.model_validate(
            {"action": request.form.get("action", ""), "request_id": request.form.get("request_id") or None}
        )
    except ValidationError as exc:
        raise BadQuery(validation_reason(exc)) from exc
    delivery_id = request_action(run, current_viewer(), body.action, body.request_id or secrets.token_hex(8))
    return redirect(url_for("pages.run_page", run_id=run.id, requested=delivery_id), code=303)


@bp.post("/api/runs/<run_id>/actions")
def api_action(run_id: str) -> Any:
    viewer = current_viewer()
    if viewer.via not in ("api_token", "token"):
        response = jsonify(error="send 'Authorization: Bearer <token>' (a personal token from /account)")
        response.headers["WWW-Authenticate"] = 'Bearer realm="forgeflow"'
        return response, 401
    run = _run(run_id)
    try:
        body = ActionRequest.model_validate(request.get_json(silent=True))
    except ValidationError as exc:
        raise BadQuery(validation_reason(exc)) from exc
    delivery_id = request_action(run, viewer, body.action, body.request_id or secrets.token_hex(8))
    return jsonify(accepted=delivery_id, action=body.action, run=run.id), 202
