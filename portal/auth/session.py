"""Signed-in sessions: created at sign-in, checked on every request, ended at sign-out.

The browser cookie (Flask's signed session) carries only a random session id; the
``AuthSession`` row says who it belongs to and since when. Idle and absolute timeouts
are enforced here, on the server, not by trusting cookie expiry.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import TypeVar
from urllib.parse import urlsplit

from flask import Flask, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from portal.config import current_settings
from portal.extensions import db
from portal.models import AuthSession, Citizen
from portal.models._types import utcnow

F = TypeVar("F", bound=Callable[..., object])

#: Writing ``last_seen_at`` on every request would turn reads into writes.
LAST_SEEN_GRANULARITY = timedelta(seconds=60)


def start_session(citizen: Citizen, id_token: str) -> AuthSession:
    """Start a fresh session: nothing from before sign-in survives (no fixation), except
    the language the person chose."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    auth = AuthSession(id=secrets.token_urlsafe(32), citizen_id=citizen.id, id_token=id_token)
    db.session.add(auth)
    session["sid"] = auth.id
    return auth


def end_session() -> AuthSession | None:
    """Forget the session on both sides; return the ended row (for its id token)."""
    auth = _load_auth_session()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    if auth is not None:
        db.session.delete(auth)
    return auth


def _load_auth_session() -> AuthSession | None:
    sid = session.get("sid")
    if not isinstance(sid, str):
        return None
    return db.session.get(AuthSession, sid)


def load_current_citizen() -> None:
    g.citizen = None
    g.auth_session = None
    if "sid" not in session:
        return
    auth = _load_auth_session()
    if auth is None:
        session.pop("sid", None)
        return
    settings = current_settings()
    now = utcnow()
    idle = now - auth.last_seen_at > timedelta(minutes=settings.session_idle_minutes)
    too_old = now - auth.created_at > timedelta(hours=settings.session_absolute_hours)
    if idle or too_old:
        end_session()
        db.session.commit()
        flash(_("Votre session a expiré. Veuillez vous reconnecter."), "info")
        return
    # The resident is loaded before anything changes: loading it after would flush the
    # change (autoflush), leave the session with nothing "dirty", skip the commit, and so
    # hold the write open for the whole request, then lose it.
    citizen = auth.citizen
    changed = False
    if now - auth.last_seen_at > LAST_SEEN_GRANULARITY:
        auth.last_seen_at = now
        changed = True
    lang = session.get("lang")
    if lang and citizen.preferred_locale != lang:
        citizen.preferred_locale = lang
        changed = True
    if changed:
        db.session.commit()
    g.citizen = citizen
    g.auth_session = auth


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: an open redirect would let a phishing link borrow our name."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: object, **kwargs: object) -> object:
        if g.get("citizen") is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def init_sessions(app: Flask) -> None:
    app.before_request(load_current_citizen)

    @app.context_processor
    def citizen_context() -> dict[str, object]:
        return {"citizen": g.get("citizen")}


def see_other(location: str) -> Response:
    """303: after a POST the browser must GET the next page, never re-send the form."""
    return redirect(location, code=303)
