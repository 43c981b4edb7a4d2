"""Where a GitHub App is installed, as its ``installation``/``installation_repositories``
webhooks said: kept in the database so any process finds a repository's installation without
asking GitHub (which it still does, once, for a repository no webhook named).
"""

from __future__ import annotations

import logging

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.events import Event
from service.store.db import Database
from service.store.models import GithubInstallation, GithubInstallationRepo

log = logging.getLogger(__name__)

GONE = ("deleted",)
SUSPENDED = {"suspend": True, "unsuspend": False}


def _give(session: Session, instance: str, name: str, installation_id: int) -> None:
    """Record that ``installation_id`` speaks for the repository ``name`` (lower case)."""
    row = session.scalars(
        select(GithubInstallationRepo).where(
            GithubInstallationRepo.instance == instance, GithubInstallationRepo.repo == name
        )
    ).first()
    if row is None:
        session.add(GithubInstallationRepo(instance=instance, repo=name, installation_id=installation_id))
    else:
        row.installation_id = installation_id


def _names(text: str) -> list[str]:
    return [name.lower() for name in text.split(",") if name]


class InstallationStore:
    """The ``github_installations`` and ``github_installation_repos`` tables of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, event: Event, instance: str) -> str:
        """Apply an ``installation`` or ``installation_repositories`` event; what it did."""
        installation_id = int(event.extra["installation"])
        added, removed = _names(event.extra.get("added", "")), _names(event.extra.get("removed", ""))
        with self.db.session() as session:
            row = session.scalars(
                select(GithubInstallation).where(
                    GithubInstallation.instance == instance,
                    GithubInstallation.installation_id == installation_id,
                )
            ).first()
            if event.action in GONE:
                session.execute(
                    delete(GithubInstallationRepo).where(
                        GithubInstallationRepo.instance == instance,
                        GithubInstallationRepo.installation_id == installation_id,
                    )
                )
                if row is not None:
                    session.delete(row)
                return f"installation {installation_id} ({event.repository.name}) removed"
            if row is None:
                row = GithubInstallation(instance=instance, installation_id=installation_id)
                session.add(row)
            row.account = event.extra.get("account", row.account or "")
            row.app_id = event.extra.get("app_id", row.app_id or "")
            row.repository_selection = event.extra.get("selection", row.repository_selection or "")
            row.suspended = SUSPENDED.get(event.action, bool(event.extra.get("suspended")))
            if removed:
                session.execute(
                    delete(GithubInstallationRepo).where(
                        GithubInstallationRepo.instance == instance, GithubInstallationRepo.repo.in_(removed)
                    )
                )
            for name in added:
                _give(session, instance, name, installation_id)
        what = f"installation {installation_id} ({event.repository.name}) {event.action}"
        counts = [
            f"{len(added)} repositories added" if added else "",
            f"{len(removed)} removed" if removed else "",
        ]
        return "; ".join([what, *[c for c in counts if c]])

    def find(self, instance: str, full_name: str) -> int | None:
        """The installation that covers ``full_name``: one it was given by name, else an
        installation on its owner's account for all repositories. None when unknown or suspended."""
        name = full_name.lower()
        owner = name.split("/", 1)[0]
        with self.db.session() as session:
            given = session.scalars(
                select(GithubInstallationRepo.installation_id).where(
                    GithubInstallationRepo.instance == instance, GithubInstallationRepo.repo == name
                )
            ).first()
            rows = session.scalars(
                select(GithubInstallation).where(GithubInstallation.instance == instance)
            ).all()
        installs = {row.installation_id: row for row in rows}
        if given is not None:
            known = installs.get(given)
            return int(given) if known is None or not known.suspended else None
        for row in rows:
            if row.account.lower() == owner and row.repository_selection == "all" and not row.suspended:
                return int(row.installation_id)
        return None

    def remember(self, instance: str, full_name: str, installation_id: int) -> None:
        """What GitHub answered for a repository no webhook had named."""
        name = full_name.lower()
        try:
            with self.db.session() as session:
                _give(session, instance, name, installation_id)
        except Exception as exc:  # another process wrote it first: that is the same answer
            log.info("installation of %s not stored: %s", full_name, exc)
