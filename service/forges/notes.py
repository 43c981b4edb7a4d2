"""Notes forgeflow posts once per pull/merge request, remembered in the database.

A reporter may post the same status twice (a retry, a redelivery, two workers), so a note
that explains a problem must not be repeated each time. :class:`NoteLedger` claims a note by
inserting a row under a unique key before posting it: whoever inserts first posts; everyone
else sees the row and skips. If posting fails, the claim is released so a later report
tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from service.store.db import Database
from service.store.models import ForgeNote

log = logging.getLogger(__name__)


class NoteLedger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, forge: str, instance: str, repo: str, number: int, topic: str) -> bool:
        """True for the one caller that may post this note; False once it was claimed."""
        try:
            with self.db.session() as session:
                session.add(ForgeNote(forge=forge, instance=instance, repo=repo, number=number, topic=topic))
        except IntegrityError:
            return False
        return True

    def release(self, forge: str, instance: str, repo: str, number: int, topic: str) -> None:
        with self.db.session() as session:
            session.execute(
                delete(ForgeNote).where(
                    ForgeNote.forge == forge,
                    ForgeNote.instance == instance,
                    ForgeNote.repo == repo,
                    ForgeNote.number == number,
                    ForgeNote.topic == topic,
                )
            )

    def post_once(
        self, forge: str, instance: str, repo: str, number: int, topic: str, post: Callable[[], None]
    ) -> bool:
        """Run ``post`` unless this note was posted before; True when it ran now."""
        if not self.claim(forge, instance, repo, number, topic):
            log.debug("note %s on %s#%s was posted before", topic, repo, number)
            return False
        try:
            post()
        except BaseException:
            self.release(forge, instance, repo, number, topic)
            raise
        return True
