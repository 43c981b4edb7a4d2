"""The Flask application factory: webhooks, run pages, sign-in, the JSON API, health, metrics.

The webhook route is a WSGI layer in front of Flask (:mod:`service.web.webhooks`). Everything
else is a blueprint: ``health`` (``/livez``, ``/readyz``, ``/metrics``), ``api`` (the JSON API
and its OpenAPI document), ``pages`` (runs, lists), ``actions`` (re-run, cancel, approve),
``login`` (sign-in, ``/account``), ``manual`` (``POST /api/runs``), ``artifacts``.

Every request learns who makes it first (:mod:`service.web.auth`); bad input is a 400 that says
why, a database that does not answer a 503, and nothing else a page does is allowed to become a
500 without being logged.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import Flask, g, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from service.context import Context
from service.metrics import WEB_ERRORS
from service.settings import session_secret
from service.web.api_models import BadQuery, validation_reason
from service.web.auth import Access, BadCredentials, foreign_host, viewer_of_request
from service.web.forge_access import AccessUnknown
from service.web.read_deadlines import ReadDeadlines

log = logging.getLogger(__name__)
DEADLINES = "forgeflow.read_deadlines"  # app.extensions key: the app's ReadDeadlines
NO_VIEWER = ("/livez", "/readyz", "/healthz", "/metrics", "/static/")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self';"
        " frame-ancestors 'none'; form-action 'self' https: http:; base-uri 'none'"
    ),
}


class JsonProvider(DefaultJSONProvider):
    """Flask's JSON, but a request body nested too deeply for the parser's recursion is bad JSON
    (a ValueError: ``get_json`` answers 400, or None when silent), not a 500."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("the JSON is nested too deeply") from exc


def create_app(ctx: Context, access: Access | None = None) -> Flask:
    """The web tier: it stores deliveries (the relay queues them) and serves pages and the API."""
    app = Flask(
        "service.web",
        template_folder="templates",
        static_folder="static",
        root_path=__file__.rsplit("/", 1)[0],
    )
    app.json = JsonProvider(app)
    settings = ctx.settings
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SECRET_KEY=session_secret(settings),
        SESSION_COOKIE_NAME="forgeflow_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as the session
        SEND_FILE_MAX_AGE_DEFAULT=3600,
        JSON_SORT_KEYS=False,
    )
    app.extensions["forgeflow"] = ctx
    app.extensions["forgeflow.access"] = access or Access(ctx)
    # how long a request's bytes may take (slow clients); the servers arm it, the routes use it
    deadlines = ReadDeadlines(settings.request_read_timeout_seconds, settings.request_min_bytes_per_second)
    app.extensions[DEADLINES] = deadlines

    from service.web.actions import bp as actions_bp
    from service.web.api import bp as api_bp
    from service.web.artifacts import bp as artifacts_bp
    from service.web.health import bp as health_bp
    from service.web.login import bp as login_bp
    from service.web.manual import bp as manual_bp
    from service.web.pages import bp as pages_bp
    from service.web.webhooks import WebhookRoute

    for blueprint in (health_bp, api_bp, manual_bp, pages_bp, actions_bp, login_bp, artifacts_bp):
        app.register_blueprint(blueprint)

    @app.before_request
    def who() -> Any:
        if request.path.startswith(NO_VIEWER):
            return None
        foreign = foreign_host(settings, request.headers.get("Host", ""))
        if foreign:  # DNS rebinding: another site's page at 127.0.0.1 would act as the admin
            return error(
                403,
                f"forgeflow is open to this machine only and {foreign!r} is not its name; "
                f"open {settings.public_url}",
            )
        try:
            g.viewer = viewer_of_request(ctx)
        except BadCredentials as exc:
            response = jsonify(error=str(exc))
            response.headers["WWW-Authenticate"] = 'Bearer realm="forgeflow", error="invalid_token"'
            return response, 401
        return None

    @app.after_request
    def headers(response: Any) -> Any:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if exc.response is not None:  # abort(a whole response): the page to show instead
            return exc.response
        if exc.code == 413 and exc.description == RequestEntityTooLarge.description:
            return error(413, f"body is larger than {settings.max_body_bytes} bytes")
        return error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(BadQuery)
    def bad_query(exc: BadQuery) -> Any:
        return error(400, exc.reason)

    @app.errorhandler(ValidationError)
    def invalid(exc: ValidationError) -> Any:  # input a route forgot to check: still a 400
        return error(400, validation_reason(exc))

    @app.errorhandler(AccessUnknown)
    def access_unknown(exc: AccessUnknown) -> Any:
        log.warning("cannot tell who may see %s: %s", request.path, exc)
        return error(503, "the forge cannot say right now who may see this; try again soon", retry=True)

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeout)
    def database_down(exc: Exception) -> Any:
        log.warning("database unavailable for %s: %s", request.path, type(exc).__name__)
        return error(503, "the database is not answering; try again soon", retry=True)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.exception("%s %s failed", request.method, request.path)
        return error(500, "forgeflow failed to answer this request; the error is in its log")

    app.wsgi_app = WebhookRoute(ctx, app.wsgi_app, deadlines)  # type: ignore[method-assign]
    return app


def wants_html() -> bool:
    if request.path.startswith("/api/") or request.path in ("/livez", "/readyz", "/healthz"):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def error(status: int, reason: str, *, retry: bool = False) -> Any:
    """An error answer: JSON for the API, a page for people."""
    if status >= 500:
        WEB_ERRORS.labels(str(status)).inc()
    if wants_html():
        response = app_response(render_template("error.html", status=status, reason=reason), status)
    else:
        response = app_response(jsonify(error=reason), status)
    if retry:
        response.headers["Retry-After"] = "5"
    return response


def app_response(body: Any, status: int) -> Any:
    from flask import make_response

    response = make_response(body, status)
    return response


def read_deadlines(app: Flask) -> ReadDeadlines:
    """The read deadlines of an app made by :func:`create_app` (for the server glue)."""
    deadlines: ReadDeadlines = app.extensions[DEADLINES]
    return deadlines
