"""What an anonymous client can send that must never cost a 500.

- A ``Host`` header Flask cannot route on (a label over 63 characters, an invalid IDNA
  name, junk after the port): Flask then has no URL adapter, and every page, the error
  page included, fails on its first ``url_for``. ``HostGuard`` answers 400 with a plain
  page before Flask sees the request.
- A body larger than the portal ever needs: ``MAX_CONTENT_LENGTH`` (413), checked before
  a view runs, whether or not it reads the body. A view that takes a document raises its
  own limit on the request (``request.max_content_length``, set in its blueprint's
  ``url_value_preprocessor``, which runs before this check).
- JSON nested deeply enough to exhaust Python's recursion: ``json_body`` treats it as a
  body that cannot be read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, abort, request
from werkzeug.sansio.utils import get_current_url
from werkzeug.wsgi import get_host

#: Largest request body accepted (a form, a payment notification): 256 KiB.
MAX_CONTENT_LENGTH = 256 * 1024

PLAIN_400 = (
    b'<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
    b"<title>Demande incorrecte</title></head><body><main><h1>Demande incorrecte</h1>"
    b"<p>Votre demande n'a pas pu \xc3\xaatre comprise.</p>"
    b'<p lang="en">Your request could not be understood.</p></main></body></html>\n'
)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def host_is_usable(app: Flask, environ: dict[str, Any]) -> bool:
    """Whether Flask can build URLs for this request, as it will try to."""
    try:
        host = get_host(environ)
        get_current_url(
            environ.get("wsgi.url_scheme", "http"), host, environ.get("SCRIPT_NAME", "")
        )
        adapter = app.url_map.bind_to_environ(environ, server_name=app.config["SERVER_NAME"])
        adapter.build("static", {"filename": "x"})
    except Exception:
        return False
    return True


class HostGuard:
    """WSGI middleware: a request whose host cannot be routed gets a plain 400."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if host_is_usable(self.app, environ):
            return self.wsgi_app(environ, start_response)
        start_response(
            "400 Bad Request",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(PLAIN_400))),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
                ("Content-Security-Policy", "default-src 'none'"),
                ("Connection", "close"),
            ],
        )
        return [PLAIN_400]


def json_body() -> Any:
    """The request's JSON, or None when there is none or it cannot be read (malformed,
    or nested too deeply to parse)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


def init_hardening(app: Flask) -> None:
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default: no limit
        app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    app.wsgi_app = HostGuard(app, app.wsgi_app)  # type: ignore[method-assign]

    @app.before_request
    def refuse_large_bodies() -> None:
        limit = request.max_content_length
        length = request.content_length
        if limit is not None and length is not None and length > limit:
            abort(413)
