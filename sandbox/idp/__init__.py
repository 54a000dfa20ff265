"""Sandbox identity providers: one shaped like FranceConnect v2 (residents), one like
ProConnect (public agents, ``sandbox.idp.proconnect``)."""

from __future__ import annotations

from flask import Flask

from sandbox.admin import register_reset_hook
from sandbox.idp import admin, proconnect, routes
from sandbox.idp.state import IdpState


def init_app(app: Flask) -> None:
    """Create the provider's state (and signing key) and register its blueprints."""
    state = IdpState(str(app.config["SANDBOX_SIGNING_ALG"]))
    app.extensions["sandbox_idp"] = state
    register_reset_hook(app, state.reset)
    app.register_blueprint(routes.bp)
    app.register_blueprint(admin.bp)
    proconnect.init_app(app)
