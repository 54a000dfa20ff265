"""Sandbox: fake external systems for development, demos and tests.

A separate Flask application, never imported by the portal. Each fake back-end is a
package registering its blueprints here; the FranceConnect-like identity provider lives
in ``sandbox.idp``, the library, canteen, housing, Koha and payment stand-ins in
``sandbox.backends``; what the portal sends (e-mail, SMS) in ``sandbox.messages``.
Run it with ``flask --app sandbox run --port 5001``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response

from sandbox import admin, backends, idp, messages, sites
from sandbox.config import default_config


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the sandbox app; ``config`` overrides the defaults and the environment."""
    app = Flask(__name__)
    app.config.from_mapping(default_config())
    if config:
        app.config.update(config)

    app.register_blueprint(admin.bp)
    app.register_blueprint(sites.bp)
    idp.init_app(app)
    backends.init_app(app)
    messages.init_app(app)
    app.after_request(_security_headers)
    return app


def _security_headers(response: Response) -> Response:
    """Keep the sandbox's own pages from being framed or sniffed.

    No ``form-action`` directive: the identity chooser's form ends in a redirect to the
    portal, which browsers would otherwise block.
    """
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.mimetype == "text/html":
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
            "frame-ancestors 'none'",
        )
    return response
