"""Who may run what: trusted authors, write access, and the trust a run is planned with.

A pull request from a fork by an author without write access is *untrusted*: nothing runs until
someone with write access comments ``/forgeflow ok-to-test`` (an approval of that head commit;
a later commit needs a new one), its job file is read from the target branch, never from the
fork, and its jobs get no Kubernetes Secrets. The service config can list trusted users and
organisations (``trusted_users``/``trusted_orgs``, also per repository policy).

This is the one trust check, used by the worker, the comment commands and ``forgeflow
render``/``exec`` alike. It is pure: what only a forge or the database can say (does this user
have write access, was this commit approved) comes in as functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from service.events import Event
from service.settings import Settings
from service.trusted import HasWrite, listed_as_trusted, may_write

__all__ = ["HasWrite", "listed_as_trusted", "may_write"]

ApprovedAt = Callable[[str], bool]  # commit sha → approved with ok-to-test


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
APPROVED_UNTRUSTED_CODE = Trust(code_trusted=False, approved=True)


def author_trusted(settings: Settings, event: Event, has_write: HasWrite) -> bool:
    """A pull request's code is trusted unless it comes from a fork of an untrusted author."""
    pr = event.pull_request
    if pr is None or not pr.fork:
        return True
    author = pr.author or event.sender
    return listed_as_trusted(settings, event.repository, author, pr.source_repo) or may_write(
        settings, has_write, event.repository, author
    )


def event_trust(settings: Settings, event: Event, has_write: HasWrite, approved_at: ApprovedAt) -> Trust:
    """The trust of a pull request (or push, tag...) event at its commit."""
    if author_trusted(settings, event, has_write):
        return TRUSTED
    return Trust(code_trusted=False, approved=approved_at(event.sha))


def command_trust(settings: Settings, event: Event, has_write: HasWrite) -> Trust:
    """Commands run as their author allows, but an untrusted fork's code stays untrusted: its
    job file comes from the target branch and its jobs get no secrets."""
    return TRUSTED if author_trusted(settings, event, has_write) else APPROVED_UNTRUSTED_CODE
