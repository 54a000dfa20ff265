"""Agents sign in with ProConnect, with a second factor, and only when provisioned."""

from __future__ import annotations

import logging
import time

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from portal.agents import bp, pc_client
from portal.agents.access import agent_reference, record_access_request, roles_of
from portal.agents.session import (
    agent_cookie,
    agent_login_required,
    agent_session_ends_at,
    agent_session_timer,
    change_cookie,
    end_agent_session,
    load_current_agent,
    save_agent_cookie,
    start_agent_session,
)
from portal.auth.oidc import OIDCError, new_state_or_nonce
from portal.auth.session import hour_label, see_other
from portal.config import current_settings
from portal.errors import render_error
from portal.extensions import db, limiter
from portal.journeys import journey
from portal.models import Agent
from portal.models._types import utcnow

log = logging.getLogger(__name__)

#: ProConnect codes live 60 s; the agent may take longer on the provider's pages.
PENDING_MAX_AGE_S = 15 * 60
CALLBACK_PARAMS = ("code", "error", "iss", "state")

bp.before_request(load_current_agent)
bp.after_request(save_agent_cookie)


def _signin_limit() -> str:
    return current_settings().signin_rate_limit


def _unverified() -> str:
    return _(
        "Votre demande de connexion n'a pas pu être vérifiée : elle a expiré ou a été "
        "commencée dans un autre onglet. Veuillez recommencer."
    )


def _message(exc: OIDCError | None = None, error: str = "") -> str:
    if error == "access_denied":
        return _("Vous avez annulé la connexion avec ProConnect.")
    if exc is not None and exc.kind == "unreachable":
        return _(
            "ProConnect ne répond pas pour le moment. Vous n'êtes pas connecté(e). "
            "Veuillez réessayer dans quelques minutes."
        )
    if exc is not None and exc.kind == "invalid":
        return _(
            "La réponse de ProConnect n'a pas pu être vérifiée. Par sécurité, vous n'êtes "
            "pas connecté(e). Veuillez réessayer."
        )
    return _("La connexion avec ProConnect n'a pas pu aboutir. Veuillez réessayer.")


def _fail(message: str) -> Response:
    flash(message, "error")
    return see_other(url_for("agents.login"))


def _refused(template_args: dict[str, object]) -> tuple[str, int]:
    """403: the agent is told why, in plain words, and what to do; no session is made."""
    titles = {
        "mfa": _("Une double authentification est nécessaire"),
        "unknown": _("Votre accès n'est pas encore ouvert"),
        "inactive": _("Votre accès a été désactivé"),
    }
    title = titles[str(template_args["reason"])]
    return render_template("agents/refused.html", title=title, **template_args), 403


@bp.get("/connexion")
@journey("agents", "sign-in-page")
def login() -> str | Response:
    if g.get("agent") is not None:
        return redirect(url_for("agents.home"))
    return render_template("agents/login.html")


@bp.get("/")
@agent_login_required
@journey("agents", "home")
def home() -> str:
    settings = current_settings()
    return render_template(
        "agents/home.html",
        agent=g.agent,
        roles=[held for held in roles_of(g.agent) if held.desk is None or held.desk.active],
        idle_minutes=settings.agent_session_idle_minutes,
        absolute_hours=settings.agent_session_absolute_hours,
    )


@bp.get("/proconnect/login")
@limiter.limit(_signin_limit)
@journey("agents", "start")
def pc_login() -> Response:
    state, nonce = new_state_or_nonce(), new_state_or_nonce()
    try:
        url = pc_client().authorization_url(state=state, nonce=nonce)
    except OIDCError as exc:
        log.warning("agent sign-in start failed: %s", exc)
        return _fail(_message(exc))
    change_cookie(pending={"state": state, "nonce": nonce, "at": int(time.time())})
    return redirect(url, code=302)


@bp.get("/proconnect/callback")
@limiter.limit(_signin_limit)
@journey("agents", "callback")
def pc_callback() -> Response | tuple[str, int]:
    pending = agent_cookie().get("pending")
    change_cookie(pending=None)
    args = request.args
    if any(len(args.getlist(name)) > 1 for name in CALLBACK_PARAMS):
        log.warning("agent sign-in callback refused: a duplicated parameter")
        return render_error(400, _unverified())
    if (
        not isinstance(pending, dict)
        or not args.get("state")
        or args["state"] != pending.get("state")
    ):
        log.warning("agent sign-in callback refused: missing or mismatched state")
        return _fail(_unverified())
    if time.time() - float(pending.get("at", 0)) > PENDING_MAX_AGE_S:
        return _fail(_("Votre demande de connexion a expiré. Veuillez recommencer."))
    client = pc_client()
    if "iss" in args:
        try:
            expected = client.metadata().issuer
        except OIDCError as exc:
            return _fail(_message(exc))
        if args["iss"] != expected:
            return _fail(_message(OIDCError("invalid", "iss")))
    if "error" in args:
        log.info("agent sign-in returned error %r", args.get("error", "")[:64])
        return _fail(_message(error=args.get("error", "")))
    code = args.get("code")
    if not code:
        return _fail(_message())
    try:
        result = client.complete(code, nonce=str(pending.get("nonce")))
    except OIDCError as exc:
        if exc.kind == "mfa_required":
            log.info("agent sign-in refused: no second factor (%s)", exc)
            return _refused({"reason": "mfa"})
        log.warning("agent sign-in refused: %s", exc)
        return _fail(_message(exc))

    sub = str(result.id_claims["sub"])
    idp_id = _text(result.userinfo.get("idp_id"))
    if not idp_id:
        log.warning("agent sign-in refused: userinfo without idp_id")
        return _fail(_message(OIDCError("invalid", "idp_id")))
    if pending.get("step_up"):
        # A fresh sign-in confirming a mandate (``portal.mandates.visit``), by the agent
        # already signed in here: their session goes on as it was.
        if g.get("agent") is None:
            return _fail(_("Votre session a expiré. Veuillez vous reconnecter."))
        from portal.mandates.visit import finish_step_up

        return finish_step_up(pending, result.id_claims, idp_id)
    agent = db.session.execute(
        db.select(Agent).filter_by(idp_id=idp_id, sub=sub)
    ).scalar_one_or_none()
    if agent is None:
        reference = record_access_request(
            idp_id,
            sub,
            _text(result.userinfo.get("given_name")),
            _text(result.userinfo.get("usual_name")),
        )
        try:
            db.session.commit()
        except IntegrityError:  # the same agent refused twice at once: one row is enough
            db.session.rollback()
        log.warning("unprovisioned agent refused: reference %s", reference)
        return _refused({"reason": "unknown", "reference": reference, "idp_id": idp_id, "sub": sub})
    if not agent.active:
        log.info("deactivated agent %s refused", agent.id)
        return _refused({"reason": "inactive", "reference": agent_reference(idp_id, sub)})
    info = result.userinfo
    agent.given_name = _text(info.get("given_name"))
    agent.usual_name = _text(info.get("usual_name"))
    agent.email = _text(info.get("email"), 320)
    agent.siret = _text(info.get("siret"), 14)
    agent.organization_label = _text(info.get("organization_label"))
    agent.last_seen_at = utcnow()
    # The inactivity warning (``flask agents expire``) stays until its next run, so
    # that the home page can tell the agent why their access was about to close.
    start_agent_session(agent, result.id_token)
    db.session.commit()
    log.info("agent %s signed in (acr %s)", agent.id, result.id_claims.get("acr"))
    return see_other(url_for("agents.home"))


def _text(value: object, limit: int = 255) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


@bp.post("/logout")
@journey("agents", "sign-out")
def logout() -> Response:
    """End the agent's session here first, then at ProConnect, which comes back."""
    from portal.mandates.assisted import close_current

    close_current("agent_signed_out")  # no resident's space stays open behind them
    row = end_agent_session()
    db.session.commit()
    if row is None or not row.id_token:
        return see_other(url_for("agents.logged_out"))
    state = new_state_or_nonce()
    try:
        url = pc_client().end_session_url(
            id_token_hint=row.id_token,
            state=state,
            post_logout_uri=current_settings().agent_post_logout_redirect_uri,
        )
    except OIDCError as exc:
        log.warning("ProConnect logout unavailable: %s", exc)
        url = None
    if url is None:
        change_cookie(logout_incomplete=True)
        return see_other(url_for("agents.logged_out"))
    change_cookie(logout_state=state)
    return see_other(url)


@bp.get("/proconnect/logged-out")
@journey("agents", "signed-out")
def logged_out() -> str:
    expected = agent_cookie().get("logout_state")
    incomplete = bool(agent_cookie().get("logout_incomplete"))
    change_cookie(logout_state=None, logout_incomplete=None)
    returned = request.args.get("state")
    confirmed = bool(expected) and returned == expected
    if returned is not None and not confirmed:
        log.warning("agent logout return with an unexpected state")
    return render_template("agents/logged_out.html", confirmed=confirmed and not incomplete)


@bp.context_processor
def _agents_session_timer() -> dict[str, object]:
    """On the agents' pages the session said at the foot is the agent's, not a resident's."""
    return {"session_timer": agent_session_timer, "citizen": None}


@bp.post("/session/extend")
@agent_login_required
@journey("agents", "stay-signed-in")
def stay_signed_in() -> str | Response:
    """The agent asks for more time (WCAG 2.2.1): the session counts as used now, within
    its absolute limit."""
    row = g.agent_session
    row.last_seen_at = utcnow()
    db.session.commit()
    if request.headers.get("HX-Request"):
        return render_template("_partials/_session_timer.html")
    flash(
        _(
            "Vous restez connecté(e). Votre session se termine à %(time)s faute d'activité.",
            time=hour_label(agent_session_ends_at(row)),
        ),
        "success",
    )
    return see_other(url_for("agents.home"))
