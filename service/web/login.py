"""Signing in with a forge, signing out, and personal API tokens (``/account``).

GitHub, GitLab and Forgejo/Gitea sign people in with OAuth2 (Authlib's Flask client): the
forge says who they are, nothing more is asked of it (scopes that read the user only). Pagure
has no OAuth2: people paste a Pagure API token, which forgeflow checks with Pagure's ``whoami``
once and does not keep. What people may read and do is asked of the forge with the service's
token (:mod:`service.web.forge_access`), so sign-in needs no access to anyone's repositories.

The session is a signed cookie (``session_secret``) naming the forge instance and the login; it
ends after 12 hours or at sign-out. The OAuth callback of an instance is
``<public_url>/login/<instance name>/callback``.
"""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy import delete, select
from wtforms import ValidationError as CsrfInvalid

from service.context import Context
from service.settings import ForgeInstance
from service.store.models import ApiToken
from service.web.auth import SESSION_USER, current_viewer, new_api_token, sign_in_methods

bp = Blueprint("login", __name__)

# OAuth2 endpoints and what each forge's "who am I" calls the login, per forge kind
OAUTH: dict[str, dict[str, str]] = {
    "github": {
        "authorize": "{url}/login/oauth/authorize",
        "token": "{url}/login/oauth/access_token",
        "api": "{api_url}/",
        "user": "user",
        "login": "login",
        "scope": "read:user",
    },
    "gitlab": {
        "authorize": "{url}/oauth/authorize",
        "token": "{url}/oauth/token",
        "api": "{api_url}/api/v4/",
        "user": "user",
        "login": "username",
        "scope": "read_user",
    },
    "forgejo": {
        "authorize": "{url}/login/oauth/authorize",
        "token": "{url}/login/oauth/access_token",
        "api": "{api_url}/api/v1/",
        "user": "user",
        "login": "login",
        "scope": "read:user",
    },
}


def _ctx() -> Context:
    ctx: Context = current_app.extensions["forgeflow"]
    return ctx


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another host).

    Browsers drop tabs and line breaks from a URL and read ``\\`` as ``/``, so ``/\\evil.example``
    and ``/<TAB>/evil.example`` are ``//evil.example``, another host: a target with any control
    character, space or backslash is refused outright, and so is one that still names a scheme or
    host. Too long a target is refused too, not cut (a cut one is a different path).
    """
    if not target or len(target) > 2000 or not target.startswith("/") or target.startswith("//"):
        return url_for("pages.runs_page")
    if "\\" in target or any(ch.isspace() or unicodedata.category(ch) in _UNSAFE for ch in target):
        return url_for("pages.runs_page")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("pages.runs_page")
    return target


# control characters, format characters (zero-width, bidi), unassigned, surrogates, separators
_UNSAFE = frozenset({"Cc", "Cf", "Cn", "Cs", "Co", "Zl", "Zp", "Zs"})


def render_login(status: int = 200, next_url: str = "", problem: str = "") -> Any:
    methods = sign_in_methods(_ctx().settings)
    return (
        render_template("login.html", methods=methods, next_url=safe_next(next_url or None), problem=problem),
        status,
    )


def _instance(name: str) -> ForgeInstance:
    for instance in sign_in_methods(_ctx().settings):
        if instance.name == name:
            return instance
    abort(404, f"no way to sign in with {name[:100]!r} is configured")


def _oauth_client(instance: ForgeInstance) -> Any:
    from authlib.integrations.flask_client import OAuth

    oauth: OAuth | None = current_app.extensions.get("forgeflow.oauth")
    if oauth is None:
        oauth = current_app.extensions["forgeflow.oauth"] = OAuth(current_app)
    client = oauth.create_client(instance.name)
    if client is None:
        endpoints = {
            k: v.format(url=instance.url, api_url=instance.api_url) for k, v in OAUTH[instance.kind].items()
        }
        client = oauth.register(
            instance.name,
            client_id=instance.oauth_client_id,
            client_secret=instance.oauth_client_secret,
            authorize_url=endpoints["authorize"],
            access_token_url=endpoints["token"],
            api_base_url=endpoints["api"],
            client_kwargs={
                "scope": endpoints["scope"],
                "default_timeout": _ctx().settings.forge_timeout_seconds,
            },
        )
    return client


def _check_csrf() -> None:
    try:
        validate_csrf(request.form.get("csrf_token", ""))
    except (CsrfInvalid, CSRFError):
        abort(400, "the form expired or did not come from forgeflow; reload the page and try again")


def _signed_in(instance: ForgeInstance, login: str) -> Any:
    target = safe_next(session.pop("next", None))
    session.clear()  # a new session for the new identity (no fixation)
    session.permanent = True
    session[SESSION_USER] = {"forge": instance.kind, "instance": instance.name, "login": login}
    return redirect(target, code=303)


@bp.get("/login")
def login() -> Any:
    return render_login(next_url=request.args.get("next", ""))


@bp.get("/login/<name>")
def start(name: str) -> Any:
    instance = _instance(name)
    if instance.kind not in OAUTH:
        return render_login(next_url=request.args.get("next", ""))
    session["next"] = safe_next(request.args.get("next"))
    redirect_uri = f"{_ctx().settings.public_url}/login/{instance.name}/callback"
    return _oauth_client(instance).authorize_redirect(redirect_uri)


@bp.get("/login/<name>/callback")
def callback(name: str) -> Any:
    from authlib.integrations.base_client.errors import OAuthError
    from requests import RequestException

    instance = _instance(name)
    if instance.kind not in OAUTH:
        abort(404)
    client = _oauth_client(instance)
    try:
        token = client.authorize_access_token()
        user = client.get(OAUTH[instance.kind]["user"], token=token).json()
    except (OAuthError, RequestException, ValueError) as exc:
        return render_login(400, problem=f"Signing in with {instance.name} failed: {_short(exc)}")
    login = user.get(OAUTH[instance.kind]["login"]) if isinstance(user, dict) else None
    if not isinstance(login, str) or not login:
        return render_login(400, problem=f"{instance.name} did not say who you are")
    return _signed_in(instance, login)


@bp.post("/login/<name>/token")
def pagure_token(name: str) -> Any:
    """Pagure: sign in with an API token (checked once, not kept)."""
    _check_csrf()
    instance = _instance(name)
    if instance.kind != "pagure":
        abort(404)
    token = request.form.get("token", "").strip()
    if not token or len(token) > 200 or not token.isascii() or not token.isprintable() or " " in token:
        return render_login(400, problem="Paste a Pagure API token.")
    forges = current_app.extensions["forgeflow.access"].forges
    login = forges.whoami_pagure(instance, token)
    if login is None:
        return render_login(401, problem=f"{instance.name} did not accept that token.")
    session["next"] = safe_next(request.form.get("next"))
    return _signed_in(instance, login)


@bp.post("/logout")
def logout() -> Any:
    _check_csrf()
    session.clear()
    return redirect(url_for("pages.runs_page"), code=303)


@bp.route("/account", methods=["GET", "POST"])
def account() -> Any:
    """A signed-in user's personal API tokens: make one (shown once), list them, revoke one."""
    viewer = current_viewer()
    if viewer.role != "user" or viewer.via != "session":
        return render_login(401, next_url="/account")
    ctx = _ctx()
    made = ""
    if request.method == "POST":
        _check_csrf()
        if request.form.get("revoke", "").isdigit():
            with ctx.db.session() as db:
                db.execute(
                    delete(ApiToken).where(
                        ApiToken.id == int(request.form["revoke"]),
                        ApiToken.login == viewer.login,
                        ApiToken.instance == viewer.instance,
                    )
                )
        else:
            made = new_api_token(ctx, viewer, request.form.get("name", "").strip() or "token")
    with ctx.db.session() as db:
        tokens = list(
            db.scalars(
                select(ApiToken)
                .where(ApiToken.login == viewer.login, ApiToken.instance == viewer.instance)
                .order_by(ApiToken.id.desc())
            )
        )
    response = current_app.make_response(render_template("account.html", tokens=tokens, made=made))
    response.headers["Cache-Control"] = "no-store"
    return response


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]
