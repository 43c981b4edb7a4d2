"""Who is asking, and what they may see and do.

A request is made by one of:

- the **admin**: ``Authorization: Bearer <api_token>`` (the service's token, ``FORGEFLOW_API_TOKEN``),
  or everyone when forgeflow runs open (``local_open_access``: no sign-in configured and it
  listens on a loopback address only, as ``make run`` does);
- a **user** of a forge: signed in on the pages (a signed session cookie holding who they are on
  which forge instance), or ``Authorization: Bearer <personal token>`` made on ``/account``;
- **anonymous**.

A user sees the runs of repositories they can read on their forge (asked through
:mod:`service.web.forge_access`, kept briefly); anyone sees the runs of public repositories
while ``public_runs`` is on. Acting on a run (re-run, cancel, approve) is for whoever the comment
commands allow (the same rule, :func:`service.trusted.may_write`): a user listed as trusted
in the service config, or with write access.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from flask import g, request, session
from sqlalchemy import select, update

from service.clock import now as utcnow
from service.context import Context
from service.events import Repository
from service.settings import ForgeInstance, Settings
from service.store.models import ApiToken
from service.trusted import may_write
from service.web.forge_access import AccessUnknown, ForgeAccess, Permission, RepoKey

TOKEN_PREFIX = "ffp_"  # noqa: S105 (a prefix, not a secret)
SESSION_USER = "user"


@dataclass(frozen=True)
class Viewer:
    role: str  # anonymous | user | admin
    forge: str = ""
    instance: str = ""
    login: str = ""
    via: str = ""  # session | token | api_token | open

    @property
    def signed_in(self) -> bool:
        return self.role != "anonymous"

    @property
    def name(self) -> str:
        if self.role == "user":
            return f"{self.login} ({self.instance})"
        return "everyone (open access)" if self.via == "open" else self.role


ANONYMOUS = Viewer("anonymous")


class BadCredentials(Exception):
    """An ``Authorization`` header that names no valid token (never read as anonymous)."""


def sign_in_methods(settings: Settings) -> list[ForgeInstance]:
    """Forge instances people can sign in with: OAuth applications, and Pagure (by API token)."""
    return [i for i in settings.forge_instances() if i.oauth_client_id or i.kind == "pagure"]


def loopback_only(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_access(settings: Settings) -> bool:
    """Everyone may see and act (make run): allowed, nobody can sign in, and loopback only."""
    return settings.local_open_access and not sign_in_methods(settings) and loopback_only(settings.host)


def foreign_host(settings: Settings, host_header: str) -> str:
    """In open access, the host a request names when it is not this machine's (else "").

    Open access trusts whoever reaches the loopback address, so a page of another site whose
    name an attacker points at 127.0.0.1 (DNS rebinding) must not drive it: such a browser
    sends that site's name as ``Host``. Only loopback names and addresses, ``host`` and the
    host of ``public_url`` are this machine's.
    """
    if not open_access(settings):
        return ""
    name = (urlsplit(f"//{host_header}").hostname or "") if host_header.isascii() else host_header
    own = {"localhost", settings.host.lower().strip("[]"), (urlsplit(settings.public_url).hostname or "")}
    if name and (name in own or loopback_only(name)):
        return ""
    return host_header[:100] or "(none)"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_token(ctx: Context, viewer: Viewer, name: str) -> str:
    """Make a personal API token for a signed-in user; the token is shown once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with ctx.db.session() as db:
        db.add(
            ApiToken(
                digest=token_digest(token),
                forge=viewer.forge,
                instance=viewer.instance,
                login=viewer.login,
                name=name[:100],
                expires_at=utcnow() + timedelta(days=ctx.settings.api_token_days),
            )
        )
    return token


def viewer_of_request(ctx: Context) -> Viewer:
    """Who made this request (raises :class:`BadCredentials` for a wrong bearer token)."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise BadCredentials("use 'Authorization: Bearer <token>'")
        admin = ctx.settings.api_token
        if admin and hmac.compare_digest(value.encode(), admin.encode()):
            return Viewer("admin", via="api_token")
        return _personal_token(ctx, value)
    user = session.get(SESSION_USER)
    if isinstance(user, dict) and all(isinstance(user.get(k), str) for k in ("forge", "instance", "login")):
        return Viewer("user", user["forge"], user["instance"], user["login"], via="session")
    if open_access(ctx.settings):
        return Viewer("admin", login="local", via="open")
    return ANONYMOUS


def _personal_token(ctx: Context, token: str) -> Viewer:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        raise BadCredentials("the token is not valid")
    moment = utcnow()
    with ctx.db.session() as db:
        row = db.scalars(select(ApiToken).where(ApiToken.digest == token_digest(token))).first()
        if row is None or row.expires_at < moment:
            raise BadCredentials("the token is not valid (or it expired)")
        if row.last_used_at is None or moment - row.last_used_at > timedelta(minutes=5):
            db.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=moment))
        return Viewer("user", row.forge, row.instance, row.login, via="token")


class Access:
    """What a viewer may read and do, answered through the forge (cached)."""

    def __init__(self, ctx: Context, forges: ForgeAccess | None = None) -> None:
        self.ctx = ctx
        self.forges = forges or ForgeAccess(ctx.settings)

    def can_read(self, viewer: Viewer, key: RepoKey) -> bool:
        """Raises :class:`AccessUnknown` when the forge cannot say."""
        if viewer.role == "admin":
            return True
        if self.ctx.settings.public_runs and self.forges.is_public(key):
            return True
        return self._is_theirs(viewer, key) and self.forges.permission(key, viewer.login) >= Permission.READ

    def can_act(self, viewer: Viewer, key: RepoKey) -> bool:
        if viewer.role == "admin":
            return True
        if not self._is_theirs(viewer, key):
            return False
        namespace, _, name = key.repo.rpartition("/")
        has_write = lambda _repo, user: self.forges.permission(key, user) >= Permission.WRITE  # noqa: E731
        return may_write(self.ctx.settings, has_write, Repository(namespace, name, ""), viewer.login)

    @staticmethod
    def _is_theirs(viewer: Viewer, key: RepoKey) -> bool:
        """Users act on their own forge instance only (alice on GitHub is not alice on GitLab)."""
        return viewer.role == "user" and viewer.forge == key.forge and viewer.instance == key.instance


def current_viewer() -> Viewer:
    viewer: Viewer = g.get("viewer", ANONYMOUS)
    return viewer


__all__ = [
    "ANONYMOUS",
    "Access",
    "AccessUnknown",
    "BadCredentials",
    "RepoKey",
    "Viewer",
    "current_viewer",
    "new_api_token",
    "open_access",
    "sign_in_methods",
    "viewer_of_request",
]
