"""Agents' sessions: a signed cookie of their own, and a row in ``agent_session``.

The residents' session lives in Flask's session cookie; the agents' lives in another
cookie, read and written only by the agents' views. Signing a resident in or out
clears Flask's session and leaves an agent's untouched, and the other way round. The
cookie carries a random session id (plus, during a sign-in or sign-out, its state and
nonce); idle and absolute timeouts are enforced on the server.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import flash, g, redirect, request, url_for
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.wrappers import Response

from portal.config import current_settings
from portal.extensions import db
from portal.models import Agent, AgentSession
from portal.models._types import utcnow

F = TypeVar("F", bound=Callable[..., object])

LAST_SEEN_GRANULARITY = timedelta(seconds=60)
_SALT = "compte-territorial.agent-session"


def cookie_name() -> str:
    return "__Host-agent-session" if current_settings().is_production else "agent_session"


def _serializer() -> URLSafeSerializer:
    # Signed with PORTAL_SECRET_KEY; verified with it or a previous key (rotation).
    return URLSafeSerializer(current_settings().secret_keys_oldest_first, salt=_SALT)


def agent_cookie() -> dict[str, Any]:
    """What the agents' cookie holds for this request (read once, then kept on ``g``)."""
    if "agent_cookie" not in g:
        data: Any = {}
        raw = request.cookies.get(cookie_name())
        if raw:
            try:
                data = _serializer().loads(raw)
            except BadSignature:
                data = {}
        g.agent_cookie = data if isinstance(data, dict) else {}
        g.agent_cookie_changed = False
    return g.agent_cookie


def change_cookie(**values: Any) -> None:
    """Set (or, with None, remove) values in the agents' cookie."""
    data = agent_cookie()
    for name, value in values.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    g.agent_cookie_changed = True


def save_agent_cookie(response: Response) -> Response:
    if not g.get("agent_cookie_changed"):
        return response
    production = current_settings().is_production
    data = g.agent_cookie
    if data:
        response.set_cookie(
            cookie_name(),
            _serializer().dumps(data),
            path="/",
            secure=production,
            httponly=True,
            samesite="Lax",
        )
    else:
        response.delete_cookie(
            cookie_name(), path="/", secure=production, httponly=True, samesite="Lax"
        )
    return response


def start_agent_session(agent: Agent, id_token: str) -> AgentSession:
    """A fresh session id: nothing from before the sign-in survives (no fixation)."""
    previous = _load_row()
    if previous is not None:
        db.session.delete(previous)
    row = AgentSession(id=secrets.token_urlsafe(32), agent_id=agent.id, id_token=id_token)
    db.session.add(row)
    g.agent_cookie = {"sid": row.id}
    g.agent_cookie_changed = True
    return row


def end_agent_session() -> AgentSession | None:
    row = _load_row()
    change_cookie(sid=None)
    if row is not None:
        db.session.delete(row)
    return row


def _load_row() -> AgentSession | None:
    sid = agent_cookie().get("sid")
    if not isinstance(sid, str):
        return None
    return db.session.get(AgentSession, sid)


def load_current_agent() -> None:
    """Before every agents' view. The residents' session is not used here at all."""
    g.agent = None
    g.agent_session = None
    if "sid" not in agent_cookie():
        return
    row = _load_row()
    if row is None:
        change_cookie(sid=None)
        return
    settings = current_settings()
    now = utcnow()
    idle = now - row.last_seen_at > timedelta(minutes=settings.agent_session_idle_minutes)
    too_old = now - row.created_at > timedelta(hours=settings.agent_session_absolute_hours)
    agent = row.agent
    if idle or too_old or not agent.active:
        end_agent_session()
        db.session.commit()
        g.agent_session_expired = idle or too_old
        return
    if now - row.last_seen_at > LAST_SEEN_GRANULARITY:
        row.last_seen_at = now
        agent.last_seen_at = now
        db.session.commit()
    g.agent = agent
    g.agent_session = row


def agent_login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: object, **kwargs: object) -> object:
        if g.get("agent") is None:
            if g.get("agent_session_expired"):
                flash(_("Votre session a expiré. Veuillez vous reconnecter."), "info")
            return redirect(url_for("agents.login"))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def agent_session_ends_at(row: AgentSession) -> Any:
    """When the agent's session ends if unused: idle timeout, capped by the absolute one."""
    settings = current_settings()
    idle = row.last_seen_at + timedelta(minutes=settings.agent_session_idle_minutes)
    absolute = row.created_at + timedelta(hours=settings.agent_session_absolute_hours)
    return min(idle, absolute)


def agent_session_timer() -> dict[str, object] | None:
    """What an agents' page says of the end of the agent's session (WCAG 2.2.1), with the
    address that gives more time; None when no agent is signed in."""
    from portal.auth.session import hour_label

    row = g.get("agent_session")
    if row is None:
        return None
    ends = agent_session_ends_at(row)
    return {
        "label": hour_label(ends),
        "remaining_s": max(0, int((ends - utcnow()).total_seconds())),
        "action": url_for("agents.stay_signed_in"),
    }
