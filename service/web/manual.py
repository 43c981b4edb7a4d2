"""``POST /api/runs``: start a manual run (``on: manual`` jobs) of a repository at a ref.

Body: ``{"forge": "github", "repo": "octo/hello", "ref": "main", "jobs": ["deploy"],
"inputs": {"target": "prod"}}`` (``inputs`` optional: the worker checks them against the
``on.manual.inputs`` of the jobs it starts, at that commit; ``jobs``
optional: all ``on: manual`` jobs; ``instance`` optional: which configured instance of the
forge; ``sender`` optional: who asked, for the run page; ``wait`` optional: up to 30 seconds to
wait for the worker's decision, answered as ``decided``: which jobs run, or why none does).
Authorised by ``Authorization: Bearer <api_token>`` (the service's token), or a user's personal
token when that user may act on the repository (the sender is then that user); with neither an
``api_token`` nor a way to sign in, manual runs are disabled. The ref is resolved here (a wrong
one is a 422 at once); then the run travels as a webhook delivery does: stored as a ``manual``
delivery, queued by the relay, processed by the worker, so it is durable and deduplicated the
same way.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from service.context import Context
from service.events import Event, EventKind, Repository
from service.forges.base import ForgeError, TransientForgeError
from service.relay import local_wakeup
from service.store.deliveries import NewDelivery
from service.store.models import DeliveryState, Run
from service.web.auth import RepoKey, current_viewer, sign_in_methods
from service.web.manual_models import parse_manual_run
from service.web.outcome import wait_for_outcome

bp = Blueprint("manual", __name__)
SHA = re.compile(r"^[0-9a-f]{40}$")


def _ctx() -> Context:
    ctx: Context = current_app.extensions["forgeflow"]
    return ctx


def answer(status: int, **body: Any) -> tuple[Any, int]:
    return jsonify(body), status


def parse_body(data: Any) -> tuple[dict[str, Any] | None, str]:
    """The request's fields, checked (:class:`ManualRunRequest`), or None and what is wrong."""
    parsed, problem = parse_manual_run(data)
    return (parsed.model_dump() if parsed is not None else None), problem


def known_repository(ctx: Context, forge: str, instance: str, full_name: str) -> Repository:
    """The repository as its latest event described it, or as the forge's URLs spell it."""
    with ctx.db.session() as session:
        stored = session.scalars(
            select(Run.event_json)
            .where(Run.forge == forge, Run.instance == instance, Run.repo == full_name)
            .order_by(Run.id.desc())
            .limit(1)
        ).first()
    if stored:
        return Event.from_json(stored).repository
    namespace, name = full_name.rsplit("/", 1)
    if forge == "local":
        repo = Repository(namespace, name, "")
        return Repository(namespace, name, str(ctx.forges.local.git_dir(repo)), default_branch="main")
    web = ctx.forges.instance(forge, instance).url.rstrip("/")
    return Repository(namespace, name, f"{web}/{full_name}.git", f"{web}/{full_name}")


def manual_event(fields: dict[str, Any], repository: Repository, sha: str, web_root: str) -> Event:
    ref: str = fields["ref"]
    branch = tag = ""
    if ref.startswith("refs/tags/"):
        tag = ref[len("refs/tags/") :]
    elif ref.startswith("refs/heads/"):
        branch = ref[len("refs/heads/") :]
    elif not SHA.match(ref):
        branch, ref = ref, f"refs/heads/{ref}"
    return Event(
        forge=fields["forge"],
        kind=EventKind.MANUAL,
        repository=repository,
        sha=sha,
        instance=web_root,
        action="manual",
        ref=ref if not SHA.match(ref) else "",
        branch=branch,
        tag=tag,
        sender=fields["sender"],
        extra={"jobs": ",".join(fields["jobs"])} if fields["jobs"] else {},
    )


@bp.post("/api/runs")
def start_run() -> tuple[Any, int]:
    ctx = _ctx()
    viewer = current_viewer()
    if viewer.via not in ("api_token", "token"):  # the JSON API acts for bearers of a token only
        if not ctx.settings.api_token and not sign_in_methods(ctx.settings):
            return answer(403, error="manual runs are disabled: no api_token is configured")
        response = jsonify(error="a valid 'Authorization: Bearer <api token>' header is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="forgeflow"'
        return response, 401
    fields, problem = parse_body(request.get_json(silent=True))
    if fields is None:
        return answer(400, error=problem)
    kind = fields["forge"]
    if viewer.role != "admin":
        key = RepoKey(kind, fields["instance"] or viewer.instance, fields["repo"])
        if not current_app.extensions["forgeflow.access"].can_act(viewer, key):
            return answer(403, error=f"{viewer.login} may not start runs of {fields['repo']}")
        fields["sender"] = viewer.login
    try:
        instance = "local" if kind == "local" else ctx.forges.instance(kind, fields["instance"]).name
        web_root = "" if kind == "local" else ctx.forges.instance(kind, instance).url
        repository = known_repository(ctx, kind, instance, fields["repo"])
        ref = fields["ref"]
        sha = ref if SHA.match(ref) else ctx.forges.get(kind, instance).resolve_ref(repository, ref)
    except TransientForgeError as exc:
        return answer(503, error=f"the forge did not answer: {exc}")
    except ForgeError as exc:
        return answer(422, error=str(exc))
    event = manual_event(fields, repository, sha, web_root)
    if fields["inputs"]:  # typed and checked by the worker, against the job file at that commit
        event = replace(event, extra={**event.extra, "inputs": json.dumps(fields["inputs"], sort_keys=True)})
    delivery_id = f"manual-{uuid.uuid4().hex}"
    delivery_pk = ctx.delivery_writer.store(
        NewDelivery(
            forge=kind,
            instance=instance,
            delivery_id=delivery_id,
            event_type="manual",
            event_json=event.to_json(),
            body=json.dumps(fields).encode(),
            headers_json="{}",
            state=DeliveryState.RECEIVED,
        ),
    )
    local_wakeup.set()
    decided = None
    if fields["wait"] and delivery_pk is not None:  # the caller wants to hear what runs
        decided = wait_for_outcome(ctx.db, delivery_pk, fields["wait"], ctx.settings.public_url)
    extra = {"decided": decided} if fields["wait"] else {}
    return answer(202, accepted=delivery_id, event=event.describe(), sha=sha, **extra)
