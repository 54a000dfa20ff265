"""Headers, Content Security Policy, cookie and session policy, in one place."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

from portal.config import Settings
from portal.hardening import init_hardening


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: Settings) -> str:
    """Strict: no inline script or style anywhere, nothing from another origin.

    ``form-action`` names the identity provider because browsers apply it to the
    redirect that follows the sign-out form, which ends at FranceConnect (residents)
    or ProConnect (agents).
    """
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self'",
        "connect-src": "'self'",
        "font-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "frame-ancestors": "'none'",
        "form-action": " ".join(
            dict.fromkeys(["'self'", origin(settings.fc_issuer), origin(settings.agent_issuer)])
        ),
    }
    if settings.is_production:
        directives["upgrade-insecure-requests"] = ""
    return "; ".join(f"{k} {v}".strip() for k, v in directives.items())


def init_security(app: Flask) -> None:
    settings: Settings = app.extensions["portal_settings"]
    app.config.update(
        SESSION_COOKIE_NAME="__Host-session" if settings.is_production else "session",
        SESSION_COOKIE_SECURE=settings.is_production,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PREFERRED_URL_SCHEME="https" if settings.is_production else "http",
    )
    # Inside ProxyFix, so the host it checks is the one Flask will route on.
    init_hardening(app)
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.trusted_proxies,
            x_proto=settings.trusted_proxies,
            x_host=settings.trusted_proxies,
        )
    csp = content_security_policy(settings)

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if settings.is_production:
            headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        if response.mimetype == "text/html":
            # Pages may show personal data: never store them in shared caches.
            headers.setdefault("Cache-Control", "no-store")
        return response
