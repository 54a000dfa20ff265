"""An adviser acting for a resident, within a mandate: the assisted session.

The adviser opens the resident's space from the desk (``assist_start``): the agents'
cookie then names an ``AssistedSession``. On every page outside the agents' area,
``load`` (called by ``portal.auth.session.load_current_citizen`` before anything else)
checks, at each request: the agent's own session, their role on the desk, the assisted
session (ended, or 15 minutes without an action), and the mandate's live scopes. When
all hold, the request's resident is the mandate's and its actor is the adviser, with
the scopes (``Actor.adviser``): services outside them are absent (``portal.services
.core`` asks the actor), and only the pages a resident uses for their services are
open (``ALLOWED``); the account's own pages (data, deletion, mandates, sign-out) are not.

Ending the visit (``assist_end``), or leaving it idle, closes it; a visit-only mandate
ends with its visit.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from portal import mandates
from portal.actor import Actor
from portal.agents import access, bp
from portal.agents.session import (
    agent_cookie,
    agent_login_required,
    change_cookie,
    load_current_agent,
    save_agent_cookie,
)
from portal.auth.session import see_other
from portal.errors import render_error
from portal.extensions import db
from portal.journeys import journey
from portal.mandates.visit import desk_page
from portal.models import AssistedSession, Mandate
from portal.models._types import utcnow

log = logging.getLogger(__name__)

#: 15 minutes without an action close the assisted session.
ASSISTED_IDLE = timedelta(minutes=15)
LAST_SEEN_GRANULARITY = timedelta(seconds=20)

#: What an adviser may open for a resident: the pages of services, by endpoint or by
#: blueprint (each kind's own views are added at start-up, ``init_assisted``).
ALLOWED_ENDPOINTS = {
    "dashboard.home",
    "dashboard.cards",
    "dashboard.card",
    "dashboard.todo",
    "services.service",
    "linking.index",
    "linking.link",
    "payments.pay",
    "payments.go",
    "payments.returned",
    "payments.invoice_pdf",
    "static",
}
ALLOWED_BLUEPRINTS = {"main", "status", "errors"}
ALLOWED_KIND_BLUEPRINTS: set[str] = set()


def init_assisted() -> None:
    from portal.services import kinds

    for kind in kinds.kinds():
        if kind.blueprint is not None:
            ALLOWED_KIND_BLUEPRINTS.add(kind.blueprint.name)


def _allowed(endpoint: str | None) -> bool:
    if endpoint is None:
        return True  # a 404: the error page, nothing of the resident's
    if endpoint in ALLOWED_ENDPOINTS:
        return True
    blueprint = endpoint.rpartition(".")[0]
    return blueprint in ALLOWED_BLUEPRINTS or blueprint in ALLOWED_KIND_BLUEPRINTS


def _close(row: AssistedSession, reason: str) -> None:
    """End the assisted session (once) and, for a visit-only mandate, the mandate."""
    if row.ended_at is None:
        row.ended_at = utcnow()
        mandate = row.mandate
        mandates.desk_journal(
            row.desk_id,
            "visit_ended",
            agent=row.agent,
            mandate=mandate,
            params={"reason": reason, "channel": row.channel, "actions": row.actions},
        )
        if mandate.duration == "visit":
            mandates.revoke(mandate, None, by_kind="visit_ended", by_id=str(row.agent_id))
    change_cookie(assisted=None)


def load() -> Response | tuple[str, int] | bool:
    """Before a resident's page: False when no assisted session is asked for; True when
    one holds (``g.citizen``, ``g.actor``, ``g.assisted`` set); a response when it has
    ended (the adviser goes back to the desk, told why) or the page is not open to it."""
    assisted_id = agent_cookie().get("assisted")
    if not isinstance(assisted_id, str):
        return False
    row = db.session.get(AssistedSession, assisted_id)
    load_current_agent()
    agent = g.get("agent")
    if row is None or agent is None or row.agent_id != agent.id:
        change_cookie(assisted=None)
        if row is not None and row.ended_at is None:
            _close(row, "agent_signed_out")
        db.session.commit()
        flash(_("La session d'aide est terminée : votre session d'agent a pris fin."), "info")
        return save_agent_cookie(redirect(url_for("agents.login")))
    now = utcnow()
    mandate: Mandate = row.mandate
    scopes = mandates.live_scopes(mandate, now)
    held = access.desk_role(agent, mandate.desk)
    reason = ""
    if row.ended_at is not None:
        reason = "ended"
    elif not scopes:
        reason = "mandate_over"
    elif now - row.last_seen_at > ASSISTED_IDLE:
        reason = "idle"
    elif held is None or not mandate.desk.active:
        reason = "no_role"
    if reason:
        _close(row, reason)
        db.session.commit()
        messages = {
            "idle": _(
                "La session d'aide a été fermée après 15 minutes sans action. "
                "Rien d'autre n'a été fait pour la personne."
            ),
            "mandate_over": _(
                "Le mandat a pris fin ou a été révoqué : vous ne pouvez plus agir pour "
                "cette personne. Rien n'a été fait."
            ),
        }
        flash(messages.get(reason, _("La session d'aide est terminée.")), "info")
        return save_agent_cookie(see_other(desk_page(mandate.desk_id)))
    citizen = mandate.citizen
    g.citizen = citizen
    g.auth_session = None
    g.assisted = row
    g.assisted_mandate = mandate
    g.actor = Actor.adviser(
        agent.id,
        citizen.id,
        mandate_id=mandate.id,
        channel=row.channel,
        scopes=frozenset(scopes),
    )
    if not _allowed(request.endpoint):
        return render_error(
            403,
            _(
                "Cette page n'est pas ouverte quand vous agissez pour une personne. "
                "Seuls les services du mandat le sont."
            ),
        )
    if now - row.last_seen_at > LAST_SEEN_GRANULARITY:
        row.last_seen_at = now
        if request.method not in ("GET", "HEAD"):
            row.actions += 1
        db.session.commit()
    elif request.method not in ("GET", "HEAD"):
        row.actions += 1
        db.session.commit()
    return True


def assisted_banner() -> dict[str, object] | None:
    """What the banner on every page says while an adviser acts for a resident."""
    row = g.get("assisted")
    mandate = g.get("assisted_mandate")
    if row is None or mandate is None:
        return None
    return {
        "resident": mandate.citizen.display_name,
        "until": mandate.ends_at,
        "visit_only": mandate.duration == "visit",
        "channel": mandates.CHANNEL_LABELS.get(row.channel, ""),
        "end": url_for("agents.assist_end"),
    }


def assisted_timer(row: AssistedSession | None = None) -> dict[str, object] | None:
    """When the assisted session closes without an action (WCAG 2.2.1), said at the foot
    of the resident's pages with a way to keep it open; within the agent's own session."""
    from portal.agents.session import agent_session_ends_at
    from portal.auth.session import hour_label

    row = row or g.get("assisted")
    agent_session = g.get("agent_session")
    if row is None or agent_session is None:
        return None
    ends = min(row.last_seen_at + ASSISTED_IDLE, agent_session_ends_at(agent_session))
    return {
        "label": hour_label(ends),
        "remaining_s": max(0, int((ends - utcnow()).total_seconds())),
        "action": url_for("agents.assist_extend"),
    }


@bp.post("/assisted/extend")
@agent_login_required
@journey("mandates", "keep-visit-open")
def assist_extend() -> str | Response:
    """« Rester connecté(e) » on a resident's page: the assisted session counts as used."""
    assisted_id = agent_cookie().get("assisted")
    row = db.session.get(AssistedSession, assisted_id) if isinstance(assisted_id, str) else None
    if row is None or row.agent_id != g.agent.id or row.ended_at is not None:
        return see_other(url_for("agents.home"))
    row.last_seen_at = utcnow()
    g.agent_session.last_seen_at = utcnow()
    db.session.commit()
    if request.headers.get("HX-Request"):
        return render_template(
            "_partials/_session_timer.html", session_timer=lambda: assisted_timer(row)
        )
    return see_other(url_for("dashboard.home"))


def _desk_mandate(desk_id: int, reference: str) -> Mandate:
    mandate = db.session.execute(
        db.select(Mandate).filter_by(desk_id=desk_id, reference=reference[:16])
    ).scalar_one_or_none()
    if mandate is None:
        abort(404)
    return mandate


@bp.post("/desk/<desk_id>/mandates/<reference>/act")
@access.agent_required(role="adviser", desk_param="desk_id")
@journey("mandates", "act")
def assist_start(desk_id: str, reference: str) -> Response | tuple[str, int]:
    """Open the resident's space under this desk's mandate, at the desk or on the phone."""
    mandate = _desk_mandate(g.desk.id, reference)
    channel = request.form.get("channel", "desk")
    if channel not in mandates.CHANNELS:
        return render_error(400, _("Choisissez comment vous aidez la personne."))
    if not mandates.live_scopes(mandate):
        flash(_("Ce mandat a pris fin ou a été révoqué : vous ne pouvez plus l'utiliser."), "error")
        return see_other(desk_page(g.desk.id))
    previous = agent_cookie().get("assisted")
    old = db.session.get(AssistedSession, previous) if isinstance(previous, str) else None
    if old is not None and old.agent_id == g.agent.id:
        _close(old, "another_started")
    row = AssistedSession(
        id=secrets.token_urlsafe(32),
        mandate_id=mandate.id,
        agent_id=g.agent.id,
        desk_id=g.desk.id,
        channel=channel,
    )
    db.session.add(row)
    mandates.desk_journal(
        g.desk.id,
        "phone_session" if channel == "phone" else "visit_started",
        agent=g.agent,
        mandate=mandate,
        params={"channel": channel},
    )
    db.session.commit()
    change_cookie(assisted=row.id)
    log.info("assisted session under mandate %s by agent %s", mandate.id, g.agent.id)
    return see_other(url_for("dashboard.home"))


def close_current(reason: str) -> AssistedSession | None:
    """Close the assisted session the agent's cookie names, if it is theirs (the agent
    signing out, say); the caller commits."""
    assisted_id = agent_cookie().get("assisted")
    row = db.session.get(AssistedSession, assisted_id) if isinstance(assisted_id, str) else None
    change_cookie(assisted=None)
    agent = g.get("agent")
    if row is None or agent is None or row.agent_id != agent.id:
        return None
    _close(row, reason)
    return row


@bp.post("/assisted/end")
@agent_login_required
@journey("mandates", "end-visit")
def assist_end() -> Response:
    """« Terminer »: the assisted session ends; the adviser is back at the desk."""
    row = close_current("ended_by_adviser")
    if row is None:
        return see_other(url_for("agents.home"))
    db.session.commit()
    flash(_("La session d'aide est terminée. Rien ne reste ouvert pour la personne."), "success")
    return see_other(desk_page(row.desk_id))
