"""Signed-in sessions: created at sign-in, checked on every request, ended at sign-out.

The browser cookie (Flask's signed session) carries only a random session id; the
``AuthSession`` row says who it belongs to and since when. Idle and absolute timeouts
are enforced here, on the server, not by trusting cookie expiry.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import TypeVar
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask, current_app, flash, g, redirect, request, session, url_for
from flask_babel import format_time, get_locale, to_user_timezone
from flask_babel import gettext as _
from sqlalchemy.orm import joinedload
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from portal.actor import Actor
from portal.config import current_settings
from portal.extensions import db
from portal.models import AuthSession, Citizen
from portal.models._types import utcnow

F = TypeVar("F", bound=Callable[..., object])

#: Writing ``last_seen_at`` on every request would turn reads into writes.
LAST_SEEN_GRANULARITY = timedelta(seconds=60)

#: Requests that show nothing of anyone's: no session is loaded for them, so they touch
#: neither the database nor its pool (a page's static files come with its cookie, and a
#: load balancer asks for health several times a second). ``/readyz`` checks the
#: database itself, and nothing else.
SESSIONLESS_ENDPOINTS = frozenset({"static", "status.healthz", "status.readyz"})


def start_session(citizen: Citizen, id_token: str) -> AuthSession:
    """Start a fresh session: nothing from before sign-in survives (no fixation), except
    the language the person chose and what to resume (checked again when it is used)."""
    lang = session.get("lang")
    resume = session.get(RESUME_KEY)
    session.clear()
    if lang:
        session["lang"] = lang
    if isinstance(resume, dict):
        session[RESUME_KEY] = resume
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
    """The session row and its resident, in one query (every signed-in request)."""
    sid = session.get("sid")
    if not isinstance(sid, str):
        return None
    return db.session.execute(
        sa.select(AuthSession)
        .options(joinedload(AuthSession.citizen, innerjoin=True))
        .where(AuthSession.id == sid)
    ).scalar_one_or_none()


def load_current_citizen() -> Response | tuple[str, int] | None:
    """Load the signed-in resident, and with them the request's actor (``portal.actor``):
    the one place it is set. No one signed in leaves it unset (the system).

    An adviser acting under a mandate (``portal.mandates.assisted``) comes first: the
    resident is then the mandate's, the actor the adviser, and a resident's own session
    in the same browser is not used."""
    g.citizen = None
    g.auth_session = None
    g.actor = None
    if request.blueprint == "agents" or request.endpoint in SESSIONLESS_ENDPOINTS:
        # The agents' area has its own session (``portal.agents.session``): using it
        # neither shows nor extends a resident's session open in the same browser.
        return None
    from portal.mandates import assisted

    outcome = assisted.load()
    if outcome is True:
        return None
    if outcome is not False:
        return outcome
    if "sid" not in session:
        return None
    auth = _load_auth_session()
    if auth is None:
        session.pop("sid", None)
        return None
    settings = current_settings()
    now = utcnow()
    idle = now - auth.last_seen_at > timedelta(minutes=settings.session_idle_minutes)
    too_old = now - auth.created_at > timedelta(hours=settings.session_absolute_hours)
    if idle or too_old:
        end_session()
        db.session.commit()
        g.session_expired = True
        flash(_("Votre session a expiré. Veuillez vous reconnecter."), "info")
        return None
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
    g.actor = Actor.citizen(citizen.id)
    return None


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
            return signed_out_response()
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


# -- coming back after the session ended -----------------------------------------------

#: What the sign-in should give back: the page to return to, whether an action was
#: lost, and the non-secret values typed in a form (kept in the signed cookie only).
RESUME_KEY = "resume"

#: Form fields that may be kept across a sign-in, by endpoint. Never a secret (PIN,
#: invoice code, password, proof of birth date): only what identifies an account.
KEEPABLE_FIELDS: dict[str, tuple[str, ...]] = {}

#: A kept value longer than this is not a value a resident typed in our forms.
KEPT_VALUE_MAX = 64


def same_site_path(url: str | None) -> str | None:
    """The path (and query) of ``url`` if it is a page of this site that can be opened
    with a GET; None otherwise (another site, a POST-only address, garbage)."""
    if not url:
        return None
    parts = urlsplit(url)
    foreign = parts.scheme not in ("http", "https") or parts.netloc != request.host
    if (parts.scheme or parts.netloc) and foreign:
        return None
    path = parts.path or "/"
    target = safe_next(path + (f"?{parts.query}" if parts.query else ""))
    if target is None:
        return None
    adapter = current_app.url_map.bind(request.host)
    try:
        endpoint, _args = adapter.match(path, method="GET")
    except HTTPException:  # not found, GET not allowed, or a redirect (slash added)
        return None
    if endpoint in ("static", "auth.login") or endpoint.startswith("auth."):
        return None
    return target


def page_to_return_to() -> str:
    """Where the resident was: the page htmx says it is on, the page the form was sent
    from, or (for a plain GET) the address asked for; home when none of them will do."""
    if request.method in ("GET", "HEAD") and not request.headers.get("HX-Request"):
        candidates: list[str | None] = [request.full_path.rstrip("?")]
    else:
        candidates = [request.headers.get("HX-Current-URL"), request.referrer]
    for candidate in candidates:
        target = same_site_path(candidate)
        if target is not None:
            return target
    return url_for("dashboard.home")


def kept_form_values() -> dict[str, str]:
    fields = KEEPABLE_FIELDS.get(request.endpoint or "", ())
    values: dict[str, str] = {}
    for name in fields:
        value = request.form.get(name)
        if isinstance(value, str) and value and len(value) <= KEPT_VALUE_MAX:
            values[name] = value
    return values


def remember_for_after_sign_in(target: str, *, lost_action: bool, keep_values: bool) -> None:
    resume: dict[str, object] = {"next": target, "lost_action": lost_action}
    values = kept_form_values() if lost_action and keep_values else {}
    if values:
        resume["form"] = {"path": request.path, "values": values}
    session[RESUME_KEY] = resume


def resume_after_sign_in() -> str | None:
    """Once signed in again: say that the action was not done; return the page to go
    back to. The form values stay until their form takes them."""
    resume = session.get(RESUME_KEY)
    if not isinstance(resume, dict):
        return None
    if resume.get("lost_action"):
        flash(
            _(
                "Votre session avait expiré : votre dernière action n'a pas été faite, "
                "vous pouvez recommencer."
            ),
            "info",
        )
    if "form" in resume:
        session[RESUME_KEY] = {"form": resume["form"]}
    else:
        session.pop(RESUME_KEY, None)
    next_page = resume.get("next")
    return safe_next(next_page) if isinstance(next_page, str) else None


def take_kept_values() -> dict[str, str]:
    """The values kept for the form at this address, once."""
    resume = session.get(RESUME_KEY)
    if not isinstance(resume, dict) or not isinstance(resume.get("form"), dict):
        return {}
    form = resume["form"]
    if form.get("path") != request.path:
        return {}
    resume = dict(resume)
    resume.pop("form")
    if resume:
        session[RESUME_KEY] = resume
    else:
        session.pop(RESUME_KEY, None)
    fields = KEEPABLE_FIELDS.get(request.endpoint or "", ())
    values = form.get("values")
    if not isinstance(values, dict):
        return {}
    return {k: v for k, v in values.items() if k in fields and isinstance(v, str)}


def keep_form_values(values: dict[str, str]) -> None:
    """Keep typed values for the same form at this address (after a refused token)."""
    if values:
        session[RESUME_KEY] = {"form": {"path": request.path, "values": values}}


def _expiry_already_told() -> bool:
    """An earlier request (a card loading, say) found the session expired and said so."""
    expired = _("Votre session a expiré. Veuillez vous reconnecter.")
    return any(message == expired for _kind, message in session.get("_flashes", []))


def signed_out_response(*, keep_values: bool = True) -> Response:
    """The answer to a request that needs a session and has none (expired, or ended in
    another tab). htmx gets no page to inject: it is told to send the browser to the
    sign-in page. A form sent without JavaScript is not lost in a 405 after sign-in: the
    resident comes back to the page it was sent from, told that nothing was done."""
    target = page_to_return_to()
    lost_action = request.method not in ("GET", "HEAD")
    if lost_action or request.headers.get("HX-Request"):
        if not g.get("session_expired") and not _expiry_already_told():
            flash(_("Vous n'êtes plus connecté(e). Veuillez vous reconnecter."), "info")
        remember_for_after_sign_in(target, lost_action=lost_action, keep_values=keep_values)
    login = url_for("auth.login", next=target)
    if request.headers.get("HX-Request"):
        # 200, not 401: the browser would log a failed request, and htmx follows
        # HX-Redirect whatever the status. Nothing is swapped in the old page.
        response = Response(status=200)
        response.headers["HX-Redirect"] = login
        response.headers["Cache-Control"] = "no-store"
        return response
    return redirect(login, code=303 if lost_action else 302)


def session_ends_at(auth: AuthSession) -> datetime:
    """When the session ends if nothing more is done: idle or absolute timeout, whichever
    comes first. ``last_seen_at`` is written at most once a minute, so this may be up to a
    minute early, never late."""
    settings = current_settings()
    idle_end = auth.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
    absolute_end = auth.created_at + timedelta(hours=settings.session_absolute_hours)
    return min(idle_end, absolute_end)


def hour_label(moment: datetime) -> str:
    """« 10 h 30 » in French, 10:30 in English, in the territory's time zone."""
    local = to_user_timezone(moment)
    if str(get_locale()) == "fr":
        return f"{local.hour}\u00a0h\u00a0{local.minute:02d}"
    return format_time(local, "HH:mm")


def session_timer() -> dict[str, object] | None:
    """What the page says about the end of the session (WCAG 2.2.1), None when signed out;
    for an adviser acting for a resident, the end of the assisted session."""
    if g.get("assisted") is not None:
        from portal.mandates.assisted import assisted_timer

        return assisted_timer()
    auth = g.get("auth_session")
    if auth is None:
        return None
    ends = session_ends_at(auth)
    remaining = max(0, int((ends - utcnow()).total_seconds()))
    return {
        "label": hour_label(ends),
        "remaining_s": remaining,
        "action": url_for("auth.stay_signed_in"),
    }


def init_sessions(app: Flask) -> None:
    app.before_request(load_current_citizen)

    @app.context_processor
    def citizen_context() -> dict[str, object]:
        from portal.mandates.assisted import assisted_banner

        return {
            "citizen": g.get("citizen"),
            "session_timer": session_timer,
            "assisted": assisted_banner(),
        }


def see_other(location: str) -> Response:
    """303: after a POST the browser must GET the next page, never re-send the form."""
    return redirect(location, code=303)
