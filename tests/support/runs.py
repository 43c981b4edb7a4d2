"""Runs written straight into the database, for tests of what the pages and the API show."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from service.context import Context
from service.events import Event, EventKind, PullRequest, Repository
from service.store.models import Job, Run

FINAL_PHASES = ("succeeded", "failed", "error")
FINAL_STATES = ("success", "failure", "error")
MANIFEST_NEEDS = {
    "spec": {
        "entrypoint": "main",
        "templates": [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {"name": "build", "template": "build"},
                        {"name": "test", "template": "test", "dependencies": ["build"]},
                        {"name": "style", "template": "style"},
                    ]
                },
            }
        ],
    }
}


def event(
    repo: str = "octo/hello",
    sha: str = "a" * 40,
    *,
    kind: EventKind = EventKind.PUSH,
    pr: int | None = None,
    web: str = "https://github.com",
    sender: str = "alice",
    private: bool = False,
    forge: str = "github",
) -> Event:
    namespace, name = repo.rsplit("/", 1)
    repository = Repository(namespace, name, f"{web}/{repo}.git", f"{web}/{repo}", "main", private)
    pull = PullRequest(pr, f"change {pr}", sender, "feature", "main", head_sha=sha) if pr else None
    return Event(
        forge=forge,
        kind=kind,
        repository=repository,
        sha=sha,
        instance=web,
        action="opened" if pr else "",
        ref="" if pr else "refs/heads/main",
        branch="" if pr else "main",
        sender=sender,
        pull_request=pull,
    )


def add_run(
    ctx: Context,
    the_event: Event | None = None,
    *,
    instance: str = "github.com",
    phase: str = "succeeded",
    jobs: tuple[tuple[str, str, str], ...] = (("build", "build", "success"),),
    manifest: dict[str, Any] | None = None,
    created: datetime | None = None,
    workflow: str = "",
    executor: str = "local",
    namespace: str = "forgeflow",
) -> int:
    """A run with its jobs ``(name, task, state)``; its id."""
    ev = the_event or event()
    created = created or datetime(2026, 1, 1, 12, 0, 0)
    with ctx.db.session() as session:
        run = Run(
            trigger_key=f"test:{uuid.uuid4().hex}",
            forge=ev.forge,
            instance=instance,
            repo=ev.repository.full_name,
            sha=ev.sha,
            ref=ev.ref,
            event_kind=ev.kind.value,
            pr_number=ev.pull_request.number if ev.pull_request else None,
            event_json=ev.to_json(),
            executor=executor,
            namespace=namespace,
            workflow_name=workflow,
            manifest_json=json.dumps(manifest) if manifest else "",
            phase=phase,
            created_at=created,
            finished_at=created + timedelta(seconds=75) if phase in FINAL_PHASES else None,
        )
        for name, task, state in jobs:
            run.jobs.append(
                Job(
                    name=name,
                    task=task,
                    context=f"forgeflow/{name}",
                    state=state,
                    description="passed in 1s" if state == "success" else state,
                    started_at=created,
                    finished_at=created + timedelta(seconds=30) if state in FINAL_STATES else None,
                )
            )
        session.add(run)
        session.flush()
        return run.id
