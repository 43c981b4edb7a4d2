"""The Flask application factory: webhooks, run pages and the JSON API."""

from __future__ import annotations

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from service.context import Context


def create_app(ctx: Context) -> Flask:
    """The web tier: it stores deliveries; the relay (service/outbox.py) queues them."""
    app = Flask("service.web", template_folder="templates", root_path=__file__.rsplit("/", 1)[0])
    app.config["MAX_CONTENT_LENGTH"] = ctx.settings.max_body_bytes
    app.extensions["forgeflow"] = ctx

    from service.web.artifacts import bp as artifacts_bp
    from service.web.manual import bp as manual_bp
    from service.web.runs import bp as runs_bp
    from service.web.webhooks import WebhookRoute

    app.register_blueprint(runs_bp)
    app.register_blueprint(manual_bp)
    app.register_blueprint(artifacts_bp)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        if exc.code == 413:
            return jsonify(error=f"body is larger than {ctx.settings.max_body_bytes} bytes"), 413
        return jsonify(error=exc.description or exc.name), exc.code or 500

    app.wsgi_app = WebhookRoute(ctx, app.wsgi_app)  # type: ignore[method-assign]
    return app
