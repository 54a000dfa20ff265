"""Opening a mandate at the desk, on the desk's screen, adviser and resident together.

1. The adviser chooses the services, the duration and the channel (``visit_new``): a
   ``DeskVisit`` is written, which lives 5 minutes a step.
2. The resident signs in with FranceConnect (the residents' client, ``eidas1``). The
   callback is the residents' one (the only address registered at FranceConnect); it
   hands over here when the state is the desk's (``is_desk_callback``). No resident
   session is made, and the FranceConnect session is ended at once: the next person
   at the desk computer finds nobody signed in.
3. The recap, in plain words, with the legal text: the resident confirms.
4. The adviser confirms with a fresh sign-in at ProConnect (``prompt=login``), whose
   ``auth_time`` must be newer than the request; the mandate is opened then, once: the
   visit's id is unique on ``mandate``, so a replayed confirmation finds it taken.

The agent's cookie carries the pending states (the desk's FranceConnect state and
nonce, the logout state, the step-up): never the residents' session.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import secrets
import time
from datetime import timedelta

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import to_user_timezone
from sqlalchemy.exc import IntegrityError
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from portal import mandates
from portal.agents import access, bp, pc_client
from portal.agents.session import (
    agent_cookie,
    agent_login_required,
    change_cookie,
    load_current_agent,
    save_agent_cookie,
)
from portal.auth import fc_client
from portal.auth.oidc import OIDCError, new_state_or_nonce
from portal.auth.routes import franceconnect_logout_url
from portal.auth.session import see_other
from portal.demo import link_demo_accounts
from portal.errors import render_error
from portal.extensions import db
from portal.integrations import registry
from portal.journeys import journey
from portal.mandates import legal
from portal.models import Desk, DeskVisit, JournalEntry, Mandate
from portal.models._types import utcnow

log = logging.getLogger(__name__)

#: Each step of a visit must follow the previous one within this.
VISIT_STEP = timedelta(minutes=5)
#: The adviser's fresh sign-in must be this recent (ProConnect's ``auth_time``).
STEP_UP_MAX_AGE_S = 5 * 60


def _my_visit(visit_id: str) -> DeskVisit:
    """The signed-in agent's own visit, still in time; 404 for anyone else's."""
    visit = db.session.get(DeskVisit, visit_id) if len(visit_id) <= 64 else None
    if visit is None or visit.agent_id != g.agent.id:
        abort(404)
    desk = visit.desk
    held = access.desk_role(g.agent, desk)
    if held is None or not desk.active:
        abort(404)
    g.desk = desk
    return visit


def _expired(visit: DeskVisit) -> bool:
    return utcnow() - visit.step_at > VISIT_STEP and visit.mandate_id is None


def _start_again(visit: DeskVisit) -> Response:
    desk_id = visit.desk_id
    db.session.delete(visit)
    db.session.commit()
    flash(
        _(
            "La demande de mandat a expiré : chaque étape doit être faite dans les "
            "5 minutes. Rien n'a été enregistré. Veuillez recommencer."
        ),
        "error",
    )
    return see_other(url_for("agents.visit_new", desk_id=desk_id))


def desk_page(desk_id: int) -> str:
    """The desk's home when it exists, the agents' home otherwise."""
    try:
        return url_for("agents.desk_home", desk_id=desk_id)
    except BuildError:
        return url_for("agents.home")


# -- 1. the adviser's choices ---------------------------------------------------------


@bp.route("/desk/<desk_id>/mandates/new", methods=["GET", "POST"])
@access.agent_required(role="adviser", desk_param="desk_id")
@journey("mandates", "choose")
def visit_new(desk_id: str) -> str | Response | tuple[str, int]:
    desk: Desk = g.desk
    groups = mandates.scope_choices()
    chosen: set[str] = set()
    duration, channel = "", "desk"
    errors: dict[str, str] = {}
    renew = mandates.find_by_reference(request.args.get("renew", "")[:32])
    if renew is not None and renew.desk_id == desk.id:
        chosen = {row.scope for row in renew.scopes}
        duration, channel = renew.duration, renew.channel
    if request.method == "POST":
        valid = mandates.valid_scopes()
        asked = request.form.getlist("scope")
        chosen = {scope for scope in asked if scope in valid}
        duration = request.form.get("duration", "")
        channel = request.form.get("channel", "")
        if len(asked) > len(valid) or any(scope not in valid for scope in asked):
            errors["scope"] = _("Un des services choisis n'existe pas. Veuillez choisir à nouveau.")
        elif not chosen:
            errors["scope"] = _("Choisissez au moins un service.")
        for scope in list(chosen):
            if mandates.is_payment_scope(scope) and mandates.instance_of(scope) not in chosen:
                chosen.add(mandates.instance_of(scope))
        if duration not in mandates.DURATIONS:
            errors["duration"] = _("Choisissez une durée.")
        if channel not in mandates.CHANNELS:
            errors["channel"] = _("Choisissez comment vous aidez la personne.")
        if not errors:
            visit = DeskVisit(
                id=secrets.token_urlsafe(32),
                desk_id=desk.id,
                agent_id=g.agent.id,
                scopes=sorted(chosen),
                duration=duration,
                channel=channel,
                step_at=utcnow(),
            )
            db.session.add(visit)
            db.session.commit()
            return see_other(url_for("agents.visit_handover", visit_id=visit.id))
    status = 400 if errors else 200
    return (
        render_template(
            "mandates/visit_new.html",
            desk=desk,
            groups=groups,
            chosen=chosen,
            duration=duration,
            channel=channel,
            errors=errors,
            durations=mandates.DURATION_LABELS,
            channels=mandates.CHANNEL_LABELS,
            desk_page=desk_page(desk.id),
        ),
        status,
    )


# -- 2. the resident signs in, and is signed out of FranceConnect at once -------------


@bp.get("/visit/<visit_id>")
@agent_login_required
@journey("mandates", "handover")
def visit_handover(visit_id: str) -> str | Response:
    visit = _my_visit(visit_id)
    if visit.mandate_id is not None:
        return see_other(_receipt_url(db.session.get_one(Mandate, visit.mandate_id)))
    if visit.citizen_id is not None:
        return see_other(url_for("agents.visit_recap", visit_id=visit.id))
    if _expired(visit):
        return _start_again(visit)
    return render_template(
        "mandates/visit_handover.html",
        visit=visit,
        desk=visit.desk,
        scopes=[mandates.scope_title(scope) for scope in visit.scopes],
        ends_in_minutes=VISIT_STEP.seconds // 60,
    )


@bp.get("/visit/<visit_id>/franceconnect")
@agent_login_required
@journey("mandates", "resident-sign-in")
def visit_fc_login(visit_id: str) -> Response:
    visit = _my_visit(visit_id)
    if _expired(visit):
        return _start_again(visit)
    if visit.citizen_id is not None:
        return see_other(url_for("agents.visit_recap", visit_id=visit.id))
    state, nonce = new_state_or_nonce(), new_state_or_nonce()
    try:
        url = fc_client().authorization_url(state=state, nonce=nonce)
    except OIDCError as exc:
        log.warning("desk sign-in start failed: %s", exc)
        flash(_fc_message(exc), "error")
        return see_other(url_for("agents.visit_handover", visit_id=visit.id))
    change_cookie(
        desk_fc={"state": state, "nonce": nonce, "visit": visit.id, "at": int(time.time())}
    )
    return redirect(url, code=302)


def _fc_message(exc: OIDCError | None = None, error: str = "") -> str:
    if error == "access_denied":
        return _("La personne a annulé la connexion avec FranceConnect. Rien n'a été enregistré.")
    if exc is not None and exc.kind == "unreachable":
        return _(
            "FranceConnect ne répond pas pour le moment. Rien n'a été enregistré. "
            "Veuillez réessayer dans quelques minutes."
        )
    return _(
        "La connexion avec FranceConnect n'a pas pu aboutir. Rien n'a été enregistré. "
        "Veuillez réessayer."
    )


def is_desk_callback() -> bool:
    """Whether this FranceConnect callback answers a desk's sign-in (its state is the one
    the agent's cookie holds), rather than a resident's own."""
    pending = agent_cookie().get("desk_fc")
    state = request.args.get("state")
    return isinstance(pending, dict) and bool(state) and pending.get("state") == state


def desk_callback() -> Response:
    """The resident signed in at the desk: note who, then end their FranceConnect session."""
    response = _desk_callback()
    if isinstance(response, tuple):
        body, status = response
        response = Response(body, status=status, mimetype="text/html")
    return save_agent_cookie(response)


def _desk_callback() -> Response | tuple[str, int]:
    from portal.auth.routes import CALLBACK_PARAMS, upsert_citizen

    pending = agent_cookie().get("desk_fc")
    change_cookie(desk_fc=None)
    load_current_agent()
    args = request.args
    if any(len(args.getlist(name)) > 1 for name in CALLBACK_PARAMS):
        return render_error(400)
    if g.get("agent") is None or not isinstance(pending, dict):
        flash(_("Votre session a expiré. Veuillez vous reconnecter."), "info")
        return see_other(url_for("agents.login"))
    visit = db.session.get(DeskVisit, str(pending.get("visit", "")))
    if visit is None or visit.agent_id != g.agent.id:
        return render_error(404)
    if visit.citizen_id is not None or visit.mandate_id is not None:
        # A replayed callback: the visit already has its resident.
        return see_other(url_for("agents.visit_recap", visit_id=visit.id))
    if _expired(visit):
        return _start_again(visit)
    back = url_for("agents.visit_handover", visit_id=visit.id)
    client = fc_client()
    if "iss" in args:
        try:
            expected = client.metadata().issuer
        except OIDCError as exc:
            flash(_fc_message(exc), "error")
            return see_other(back)
        if args["iss"] != expected:
            flash(_fc_message(), "error")
            return see_other(back)
    if "error" in args:
        flash(_fc_message(error=args.get("error", "")), "error")
        return see_other(back)
    code = args.get("code")
    if not code:
        flash(_fc_message(), "error")
        return see_other(back)
    try:
        result = client.complete(code, nonce=str(pending.get("nonce")))
    except OIDCError as exc:
        log.warning("desk sign-in refused: %s", exc)
        flash(_fc_message(exc), "error")
        return see_other(back)
    citizen = upsert_citizen(result.id_claims["sub"], result.userinfo)
    demo_links = current_app.extensions.get("demo_links")
    if demo_links:  # development only, as at a resident's own sign-in
        link_demo_accounts(citizen, demo_links, set(registry().instances))
    visit.citizen_id = citizen.id
    visit.step_at = utcnow()
    visit.legal_version = legal.CURRENT
    db.session.commit()
    log.info("desk visit: resident %s signed in at desk %s", citizen.id, visit.desk_id)
    return _end_franceconnect(visit, result.id_token)


def _end_franceconnect(visit: DeskVisit, id_token: str) -> Response:
    """Send the browser through FranceConnect's logout, which comes back to the
    residents' logged-out address; that hands over to the recap (``after_logout``)."""
    url, state = franceconnect_logout_url(id_token, " at the desk")
    if url is None:
        change_cookie(desk_logout={"visit": visit.id, "state": "", "incomplete": True})
        return see_other(url_for("agents.visit_recap", visit_id=visit.id))
    change_cookie(desk_logout={"visit": visit.id, "state": state})
    return see_other(url)


def after_logout() -> Response | None:
    """On the residents' logged-out page: when it closes a desk sign-in, go on to the
    recap (None otherwise, the page is the resident's own)."""
    pending = agent_cookie().get("desk_logout")
    if not isinstance(pending, dict):
        return None
    returned = request.args.get("state")
    if not pending.get("state") or returned != pending.get("state"):
        return None
    change_cookie(desk_logout=None)
    response = see_other(url_for("agents.visit_recap", visit_id=str(pending.get("visit"))))
    return save_agent_cookie(response)


# -- 3. the recap, confirmed by the resident, then by the adviser ---------------------


def recap_terms(visit: DeskVisit) -> dict[str, object]:
    now = utcnow()
    return {
        "scopes": [mandates.scope_title(scope) for scope in visit.scopes],
        "payments": any(mandates.is_payment_scope(scope) for scope in visit.scopes),
        "duration": mandates.DURATION_LABELS[visit.duration],
        "until": mandates.ends_at_for(visit.duration, now),
        "visit_only": visit.duration == "visit",
        "channel": mandates.CHANNEL_LABELS.get(visit.channel, ""),
        "legal_template": legal.template_for(visit.legal_version or legal.CURRENT),
        "legal_version": visit.legal_version or legal.CURRENT,
    }


@bp.get("/visit/<visit_id>/recap")
@agent_login_required
@journey("mandates", "recap")
def visit_recap(visit_id: str) -> str | Response:
    visit = _my_visit(visit_id)
    if visit.mandate_id is not None:
        return see_other(_receipt_url(db.session.get_one(Mandate, visit.mandate_id)))
    if visit.citizen_id is None:
        return see_other(url_for("agents.visit_handover", visit_id=visit.id))
    if _expired(visit):
        return _start_again(visit)
    incomplete = bool((agent_cookie().get("desk_logout") or {}).get("incomplete"))
    if incomplete:
        change_cookie(desk_logout=None)
    return render_template(
        "mandates/visit_recap.html",
        visit=visit,
        desk=visit.desk,
        resident=visit.citizen,
        terms=recap_terms(visit),
        fc_logout_incomplete=incomplete,
    )


@bp.post("/visit/<visit_id>/resident-confirms")
@agent_login_required
@journey("mandates", "resident-confirms")
def visit_resident_confirm(visit_id: str) -> Response:
    visit = _my_visit(visit_id)
    if visit.mandate_id is None and visit.citizen_id is not None:
        if _expired(visit):
            return _start_again(visit)
        if visit.resident_confirmed_at is None:
            visit.resident_confirmed_at = utcnow()
            visit.step_at = utcnow()
            db.session.commit()
    return see_other(url_for("agents.visit_recap", visit_id=visit.id) + "#adviser")


@bp.post("/visit/<visit_id>/adviser-confirms")
@agent_login_required
@journey("mandates", "adviser-confirms")
def visit_adviser_confirm(visit_id: str) -> Response:
    """The adviser signs in again at ProConnect; the mandate opens when they come back."""
    visit = _my_visit(visit_id)
    if visit.mandate_id is not None:
        return see_other(_receipt_url(db.session.get_one(Mandate, visit.mandate_id)))
    if visit.citizen_id is None or visit.resident_confirmed_at is None:
        flash(_("La personne doit d'abord confirmer le mandat."), "error")
        return see_other(url_for("agents.visit_recap", visit_id=visit.id))
    if _expired(visit):
        return _start_again(visit)
    state, nonce = new_state_or_nonce(), new_state_or_nonce()
    try:
        url = pc_client().authorization_url(state=state, nonce=nonce, prompt="login")
    except OIDCError as exc:
        log.warning("step-up start failed: %s", exc)
        flash(
            _(
                "ProConnect ne répond pas pour le moment : le mandat n'est pas ouvert. "
                "Veuillez réessayer dans quelques minutes."
            ),
            "error",
        )
        return see_other(url_for("agents.visit_recap", visit_id=visit.id))
    change_cookie(
        pending={"state": state, "nonce": nonce, "at": int(time.time()), "step_up": visit.id}
    )
    return redirect(url, code=302)


def finish_step_up(
    pending: dict[str, object], id_claims: dict[str, object], idp_id: str
) -> Response:
    """Back from ProConnect with a fresh sign-in: the same agent, recently enough, then
    the mandate opens (once)."""
    visit = db.session.get(DeskVisit, str(pending.get("step_up", "")))
    if visit is None or visit.agent_id != g.agent.id:
        return see_other(url_for("agents.home"))
    recap = url_for("agents.visit_recap", visit_id=visit.id)
    if idp_id != g.agent.idp_id or str(id_claims.get("sub")) != g.agent.sub:
        log.warning("step-up by another agent refused (visit of agent %s)", g.agent.id)
        flash(
            _(
                "La confirmation doit être faite par la personne qui a commencé le mandat, "
                "avec son propre compte ProConnect. Le mandat n'est pas ouvert."
            ),
            "error",
        )
        return see_other(recap)
    auth_time = id_claims.get("auth_time")
    started = float(str(pending.get("at", 0)))
    if not isinstance(auth_time, int | float) or auth_time < started - 5:
        flash(
            _(
                "ProConnect n'a pas demandé de vous identifier à nouveau : le mandat n'est "
                "pas ouvert. Veuillez réessayer."
            ),
            "error",
        )
        return see_other(recap)
    if visit.mandate_id is not None:
        return see_other(_receipt_url(db.session.get_one(Mandate, visit.mandate_id)))
    if visit.citizen_id is None or visit.resident_confirmed_at is None:
        return see_other(recap)
    if _expired(visit):
        return _start_again(visit)
    return _open(visit)


def _open(visit: DeskVisit) -> Response:
    desk = visit.desk
    citizen_id = visit.citizen_id
    assert citizen_id is not None
    try:
        mandate = mandates.open_mandate(
            visit_id=visit.id,
            desk=desk,
            agent=g.agent,
            citizen_id=citizen_id,
            scopes=visit.scopes,
            duration=visit.duration,
            channel=visit.channel,
            legal_version=visit.legal_version or legal.CURRENT,
        )
        visit.mandate_id = mandate.id
        mandates.desk_journal(
            desk.id,
            "mandate_opened",
            agent=g.agent,
            mandate=mandate,
            params={"scopes": visit.scopes, "duration": visit.duration},
        )
        JournalEntry.record(
            citizen_id,
            "mandate_opened",
            connector_instance="",
            code="mandate_opened",
            params={
                "desk": desk.name,
                "reference": mandate.reference,
                "until": to_user_timezone(mandate.ends_at).date().isoformat(),
            },
        )
        db.session.commit()
    except IntegrityError:
        # The same visit confirmed twice at once: one mandate, the other finds it.
        db.session.rollback()
        existing = db.session.execute(
            db.select(Mandate).filter_by(visit_id=visit.id)
        ).scalar_one_or_none()
        if existing is None:
            raise
        return see_other(_receipt_url(existing))
    log.info("mandate %s opened at desk %s", mandate.id, desk.id)
    _notify(mandate)
    flash(_("Le mandat est ouvert. Remettez le récépissé à la personne."), "success")
    return see_other(_receipt_url(mandate))


def _notify(mandate: Mandate) -> None:
    """The resident is told (``portal.mandates.resident``); never fails the opening."""
    if importlib.util.find_spec("portal.mandates.resident") is None:
        return
    try:
        module = importlib.import_module("portal.mandates.resident")
        getattr(module, "notify_mandate_opened", lambda _mandate: None)(mandate)
    except Exception:  # a notice must never undo a mandate the resident has
        log.exception("notice of mandate %s failed", mandate.id)


def _receipt_url(mandate: Mandate) -> str:
    try:
        return url_for(
            "agents.mandate_receipt", desk_id=mandate.desk_id, reference=mandate.reference
        )
    except BuildError:
        return desk_page(mandate.desk_id)


@bp.post("/visit/<visit_id>/cancel")
@agent_login_required
@journey("mandates", "cancel")
def visit_cancel(visit_id: str) -> Response:
    visit = _my_visit(visit_id)
    desk_id = visit.desk_id
    if visit.mandate_id is None:
        db.session.delete(visit)
        db.session.commit()
        flash(_("Le mandat n'a pas été ouvert. Rien n'a été enregistré."), "info")
    return see_other(desk_page(desk_id))
