"""Whom the service config trusts, and who may act on a repository's runs. Pure.

The one rule for comment commands (:mod:`service.commands`, through :mod:`service.runs.trust`)
and the run pages' buttons (:mod:`service.web.auth`): a user listed in ``trusted_users`` (any
case, also per repository policy), or one with write access on the forge (asked through a
function: the worker asks through ogr, the web tier over plain HTTP).
"""

from __future__ import annotations

from collections.abc import Callable

from service.events import Repository
from service.settings import Settings

HasWrite = Callable[[Repository, str], bool]  # (repository, user) → may push


def listed_as_trusted(
    settings: Settings, repo: Repository, user: str, source: Repository | None = None
) -> bool:
    """In the service config's trusted users (any case), or the source repository's owner is
    one of its trusted organisations."""
    policy = settings.policy_for(repo.full_name)
    users = {u.lower() for u in (*settings.trusted_users, *policy.trusted_users)}
    if user.lower() in users:
        return True
    orgs = {o.lower() for o in (*settings.trusted_orgs, *policy.trusted_orgs)}
    return bool(orgs) and source is not None and source.namespace.lower() in orgs


def may_write(settings: Settings, has_write: HasWrite, repo: Repository, user: str) -> bool:
    """Whether ``user`` may run commands on ``repo``: listed as trusted, or write access."""
    if not user:
        return False
    return listed_as_trusted(settings, repo, user) or has_write(repo, user)
