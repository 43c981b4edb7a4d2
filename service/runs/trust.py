"""Who may run what: write access, trusted authors, and approvals of fork pull requests.

A pull request from a fork by an author without write access is *untrusted*: nothing runs until
someone with write access comments ``/forgeflow ok-to-test`` (an approval of that head commit;
a later commit needs a new one), its job file is read from the target branch, never from the
fork, and its jobs get no Kubernetes Secrets. The service config can list trusted users and
organisations (``trusted_users``/``trusted_orgs``, also per repository policy).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from service.context import Context
from service.events import Event, Repository
from service.forges.base import Forge
from service.store.models import Approval


@dataclass(frozen=True)
class Trust:
    """What a run may do. ``code_trusted``: its job file comes from the event's commit and it
    may use secrets; ``approved``: it may run now (else it waits for ``ok-to-test``)."""

    code_trusted: bool
    approved: bool

    def job_file_ref(self, event: Event) -> str:
        """Where the job file is read: the event's commit, or an untrusted request's target."""
        if self.code_trusted or event.pull_request is None or not event.pull_request.target_branch:
            return event.sha
        return event.pull_request.target_branch


TRUSTED = Trust(code_trusted=True, approved=True)


def listed_as_trusted(ctx: Context, repo: Repository, user: str, source: Repository | None = None) -> bool:
    """In the service config's trusted users, or (by the source repository's owner, or by
    organisation membership where the forge can tell) its trusted organisations."""
    settings = ctx.settings
    policy = settings.policy_for(repo.full_name)
    users = {u.lower() for u in (*settings.trusted_users, *policy.trusted_users)}
    if user.lower() in users:
        return True
    orgs = {o.lower() for o in (*settings.trusted_orgs, *policy.trusted_orgs)}
    return bool(orgs) and source is not None and source.namespace.lower() in orgs


def may_write(ctx: Context, forge: Forge, repo: Repository, user: str) -> bool:
    """Whether ``user`` may run commands on ``repo``: listed as trusted, or write access."""
    if not user:
        return False
    return listed_as_trusted(ctx, repo, user) or ctx.forges.permissions.has_write_access(forge, repo, user)


def approved_at(ctx: Context, event: Event, sha: str) -> bool:
    pr = event.pull_request
    if pr is None:
        return False
    with ctx.db.session() as session:
        found = session.scalars(
            select(Approval.id).where(
                Approval.forge == event.forge,
                Approval.repo == event.repository.full_name,
                Approval.pr_number == pr.number,
                Approval.sha == sha,
            )
        ).first()
    return found is not None


def author_trusted(ctx: Context, forge: Forge, event: Event) -> bool:
    """A pull request's code is trusted unless it comes from a fork of an untrusted author."""
    pr = event.pull_request
    if pr is None or not pr.fork:
        return True
    author = pr.author or event.sender
    return listed_as_trusted(ctx, event.repository, author, pr.source_repo) or may_write(
        ctx, forge, event.repository, author
    )


def event_trust(ctx: Context, forge: Forge, event: Event) -> Trust:
    """The trust of a pull request (or push, tag...) event at its commit."""
    if author_trusted(ctx, forge, event):
        return TRUSTED
    return Trust(code_trusted=False, approved=approved_at(ctx, event, event.sha))
