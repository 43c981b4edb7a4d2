"""The parts of the running service a request uses: the context and who-may-see-what."""

from __future__ import annotations

from flask import current_app

from service.context import Context
from service.web.auth import Access


def context() -> Context:
    ctx: Context = current_app.extensions["forgeflow"]
    return ctx


def access() -> Access:
    checker: Access = current_app.extensions["forgeflow.access"]
    return checker
