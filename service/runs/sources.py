"""What the pure job model needs from the outside, asked through the forge seam.

- :func:`forge_templates`: ``uses: NAME`` templates, from the repository's
  ``.forgeflow/templates/NAME.yaml`` at the event's commit first, then the service config;
- :func:`forge_changed_files`: the files a push or pull request changed, for ``paths`` filters,
  asked lazily (only when a job has a path filter) and at most once;
- :func:`run_is_trusted`, :func:`job_limits`: service-side inputs of the plan and the loader.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from service.events import Event, EventKind
from service.forges.base import Forge, ForgeError, TransientForgeError
from service.jobs.matcher import ChangedFiles
from service.jobs.templates import TemplateDocument, TemplateSource, first_of, settings_source, template_path
from service.jobs.yaml_source import Limits
from service.settings import Settings

log = logging.getLogger(__name__)
ZERO_SHA = "0" * 40


def job_limits(settings: Settings) -> Limits:
    return Limits(
        max_bytes=settings.max_job_file_bytes,
        max_jobs=settings.max_jobs,
        max_matrix_cells=settings.max_matrix_cells,
    )


def forge_templates(forge: Forge, event: Event, settings: Settings) -> TemplateSource:
    """Templates from the repository at the event's commit, then from the service config."""

    def from_repository(name: str) -> TemplateDocument | None:
        path = template_path(name)
        text = forge.read_file(event.repository, path, event.sha)
        return TemplateDocument(path, text=text) if text is not None else None

    return first_of(from_repository, settings_source(settings.templates))


def push_base(event: Event) -> str:
    """What a push is compared with: the commit before it, or for a new branch (or a push
    whose payload has no "before") the repository's default branch."""
    if event.before and event.before != ZERO_SHA and not event.created:
        return event.before
    if event.repository.default_branch and event.branch != event.repository.default_branch:
        return event.repository.default_branch
    return ""


def forge_changed_files(forge: Forge, event: Event) -> ChangedFiles:
    """A provider of the changed files (None when nobody can say): from the payload when it
    lists them completely, else from the forge (``pull_request_files``, ``changed_files``).
    Transient forge errors propagate (the task is retried); others mean "unknown"."""

    def provide() -> Sequence[str] | None:
        if event.changed_files is not None:
            return event.changed_files
        try:
            if event.kind is EventKind.PULL_REQUEST and event.pull_request is not None:
                return forge.pull_request_files(event.repository, event.pull_request.number)
            if event.kind is EventKind.PUSH:
                base = push_base(event)
                return forge.changed_files(event.repository, base, event.sha) if base else None
        except TransientForgeError:
            raise
        except ForgeError as exc:
            log.info("changed files of %s unknown: %s", event.describe(), exc)
        return None

    return provide


def run_is_trusted(settings: Settings, event: Event) -> bool:
    """A run is untrusted when its code comes from a fork whose author the service config does
    not list as trusted: such runs never get Kubernetes Secrets."""
    pr = event.pull_request
    if pr is None or not pr.fork:
        return True
    policy = settings.policy_for(event.repository.full_name)
    return pr.author in (*settings.trusted_users, *policy.trusted_users)
