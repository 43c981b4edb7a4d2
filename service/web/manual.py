"""``POST /api/runs``: start a manual run (``on: manual`` jobs) of a repository at a ref.

Body: ``{"forge": "github", "repo": "octo/hello", "ref": "main", "jobs": ["deploy"],
"inputs": {"target": "prod"}}`` (``inputs`` optional: the worker checks them against the
``on.manual.inputs`` of the jobs it starts, at that commit; ``jobs``
optional: all ``on: manual`` jobs; ``instance`` optional: which configured instance of the
forge; ``sender`` optional: who asked, for the run page). Authorised by
``Authorization: Bearer <api_token>``; without a configured ``api_token`` manual runs are
disabled. The ref is resolved here (a wrong one is a 422 at once); then the run travels as
a webhook delivery does: stored as a ``manual`` delivery, queued by the relay, processed by the
worker, so it is durable and deduplicated the same way.
"""

from __future__ import annotations

import hmac
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

bp = Blueprint("manual", __name__)
FORGES = ("github", "gitlab", "forgejo", "pagure", "local")
REPO = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
REF = re.compile(r"^[^\s~^:?*\[\\]{1,255}$")
JOB = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
SHA = re.compile(r"^[0-9a-f]{40}$")
MAX_JOBS = 100
MAX_INPUTS = 50


def _ctx() -> Context:
    ctx: Context = current_app.extensions["forgeflow"]
    return ctx


def answer(status: int, **body: Any) -> tuple[Any, int]:
    return jsonify(body), status


def authorised(token: str) -> bool:
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def parse_body(data: Any) -> tuple[dict[str, Any] | None, str]:
    """The request's fields, checked, or None and what is wrong."""
    if not isinstance(data, dict):
        return None, "send a JSON object: {forge, repo, ref, jobs?}"
    forge, repo, ref = data.get("forge"), data.get("repo"), data.get("ref")
    jobs = data.get("jobs") or []
    if forge not in FORGES:
        return None, f"forge must be one of {', '.join(FORGES)}"
    if not isinstance(repo, str) or not REPO.match(repo):
        return None, "repo must be namespace/name"
    if not isinstance(ref, str) or not REF.match(ref):
        return None, "ref must be a branch, a tag (refs/tags/NAME) or a commit"
    if (
        not isinstance(jobs, list)
        or len(jobs) > MAX_JOBS
        or not all(isinstance(j, str) and JOB.match(j) for j in jobs)
    ):
        return None, "jobs must be a list of job names"
    instance, sender = data.get("instance") or "", data.get("sender") or "api"
    if not isinstance(instance, str) or not isinstance(sender, str) or len(sender) > 100:
        return None, "instance and sender are strings"
    inputs = data.get("inputs") or {}
    if (
        not isinstance(inputs, dict)
        or len(inputs) > MAX_INPUTS
        or not all(isinstance(k, str) and isinstance(v, str | bool | int | float) for k, v in inputs.items())
    ):
        return None, "inputs must be an object of names to strings or booleans"
    return {
        "inputs": inputs,
        "forge": forge,
        "repo": repo,
        "ref": ref,
        "jobs": jobs,
        "instance": instance,
        "sender": sender,
    }, ""


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
    token = ctx.settings.api_token
    if not token:
        return answer(403, error="manual runs are disabled: no api_token is configured")
    if not authorised(token):
        response = jsonify(error="a valid 'Authorization: Bearer <api token>' header is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="forgeflow"'
        return response, 401
    fields, problem = parse_body(request.get_json(silent=True))
    if fields is None:
        return answer(400, error=problem)
    kind = fields["forge"]
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
    ctx.delivery_writer.store(
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
    return answer(202, accepted=delivery_id, event=event.describe(), sha=sha)
