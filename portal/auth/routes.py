"""Sign-in with FranceConnect, sign-out of the portal and of FranceConnect."""

from __future__ import annotations

import logging
import time
from datetime import date

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from portal.auth import bp, fc_client
from portal.auth.oidc import OIDCError, new_state_or_nonce
from portal.auth.session import (
    end_session,
    hour_label,
    login_required,
    page_to_return_to,
    resume_after_sign_in,
    safe_next,
    same_site_path,
    see_other,
    session_ends_at,
    start_session,
)
from portal.config import current_settings
from portal.demo import link_demo_accounts
from portal.errors import render_error
from portal.extensions import db, limiter
from portal.integrations import registry
from portal.journeys import journey
from portal.models import Citizen, JournalEntry
from portal.models._types import utcnow

log = logging.getLogger(__name__)

#: A sign-in left unfinished longer than this is refused (FranceConnect codes live 30 s;
#: the person may however take their time on the provider's pages).
PENDING_MAX_AGE_S = 15 * 60


def _signin_limit() -> str:
    return current_settings().signin_rate_limit


#: The callback's parameters that must come once at most.
CALLBACK_PARAMS = ("code", "error", "iss", "state")


def _unverified_message() -> str:
    return _(
        "Votre demande de connexion n'a pas pu être vérifiée : elle a expiré ou a été "
        "commencée dans un autre onglet. Veuillez recommencer."
    )


def _fail(message: str) -> Response:
    flash(message, "error")
    return see_other(url_for("auth.login"))


def provider_error_message(error: str) -> str:
    if error == "access_denied":
        return _(
            "Vous avez annulé la connexion avec FranceConnect. "
            "Vous pouvez réessayer quand vous le souhaitez."
        )
    if error in {"temporarily_unavailable", "server_error"}:
        return _(
            "FranceConnect est momentanément indisponible. "
            "Veuillez réessayer dans quelques minutes."
        )
    return _(
        "La connexion avec FranceConnect n'a pas pu aboutir. Veuillez réessayer. "
        "Si le problème continue, contactez le service d'aide."
    )


def oidc_error_message(exc: OIDCError) -> str:
    if exc.kind == "unreachable":
        return _(
            "FranceConnect ne répond pas pour le moment. Vous n'êtes pas connecté(e). "
            "Veuillez réessayer dans quelques minutes."
        )
    if exc.kind == "provider":
        return provider_error_message("")
    return _(
        "La réponse de FranceConnect n'a pas pu être vérifiée. Par sécurité, vous n'êtes "
        "pas connecté(e). Veuillez réessayer."
    )


@bp.get("/login")
@journey("auth", "sign-in-page")
def login() -> str | Response:
    if g.get("citizen") is not None:
        return redirect(safe_next(request.args.get("next")) or url_for("dashboard.home"))
    return render_template("auth/login.html", next=safe_next(request.args.get("next")))


@bp.get("/franceconnect/login")
@limiter.limit(_signin_limit)
@journey("auth", "start")
def fc_login() -> Response:
    state, nonce = new_state_or_nonce(), new_state_or_nonce()
    try:
        url = fc_client().authorization_url(state=state, nonce=nonce)
    except OIDCError as exc:
        log.warning("sign-in start failed: %s", exc)
        return _fail(oidc_error_message(exc))
    session["fc_pending"] = {
        "state": state,
        "nonce": nonce,
        "next": safe_next(request.args.get("next")),
        "at": int(time.time()),
    }
    return redirect(url, code=302)


@bp.get("/franceconnect/callback")
@limiter.limit(_signin_limit)
@journey("auth", "callback")
def fc_callback() -> Response | tuple[str, int]:
    from portal.mandates import visit

    if visit.is_desk_callback():
        # A resident signing in on a desk's screen to give a mandate: no session here.
        return visit.desk_callback()
    pending = session.pop("fc_pending", None)
    args = request.args
    # One value each, or which one was checked and which one used is anybody's guess
    # (a proxy, a framework and this code need not pick the same): refused outright.
    duplicated = sorted(name for name in CALLBACK_PARAMS if len(args.getlist(name)) > 1)
    if duplicated:
        log.warning("sign-in callback refused: duplicated %s", ", ".join(duplicated))
        return render_error(400, _unverified_message())
    if (
        not isinstance(pending, dict)
        or not args.get("state")
        or args["state"] != pending.get("state")
    ):
        log.warning("sign-in callback refused: missing or mismatched state")
        return _fail(_unverified_message())
    if time.time() - float(pending.get("at", 0)) > PENDING_MAX_AGE_S:
        return _fail(_("Votre demande de connexion a expiré. Veuillez recommencer."))
    client = fc_client()
    if "iss" in args:
        try:
            expected = client.metadata().issuer
        except OIDCError as exc:
            return _fail(oidc_error_message(exc))
        if args["iss"] != expected:
            log.warning("sign-in callback refused: iss mismatch")
            return _fail(oidc_error_message(OIDCError("invalid", "iss")))
    if "error" in args:
        error = args.get("error", "")[:64]
        log.info("sign-in returned error %r", error)
        return _fail(provider_error_message(error))
    code = args.get("code")
    if not code:
        return _fail(provider_error_message(""))
    try:
        result = client.complete(code, nonce=str(pending.get("nonce")))
    except OIDCError as exc:
        log.warning("sign-in refused: %s", exc)
        return _fail(oidc_error_message(exc))

    citizen = upsert_citizen(result.id_claims["sub"], result.userinfo)
    demo_links = current_app.extensions.get("demo_links")
    if demo_links:
        link_demo_accounts(citizen, demo_links, set(registry().instances))
    start_session(citizen, result.id_token)
    JournalEntry.record(citizen.id, "sign_in")
    db.session.commit()
    log.info("citizen %s signed in", citizen.id)
    resumed = resume_after_sign_in()
    asked = pending.get("next")
    # A POST-only address would end in a 405: only a page that can be opened.
    target = same_site_path(asked) if isinstance(asked, str) else None
    return see_other(target or resumed or url_for("dashboard.home"))


def upsert_citizen(sub: str, info: dict[str, object]) -> Citizen:
    """Find by ``sub`` only, and refresh what FranceConnect says about the person."""
    citizen = db.session.execute(db.select(Citizen).filter_by(sub=sub)).scalar_one_or_none()
    if citizen is None:
        citizen = Citizen(sub=sub)
        db.session.add(citizen)
    citizen.given_name = _text(info.get("given_name"))
    citizen.family_name = _text(info.get("family_name"))
    citizen.usage_name = _text(info.get("preferred_username"))
    citizen.email = _text(info.get("email"), 320)
    citizen.birthdate = _parse_date(info.get("birthdate"))
    citizen.last_sign_in_at = utcnow()
    db.session.flush()
    return citizen


def _text(value: object, limit: int = 255) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _parse_date(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


@bp.post("/logout")
@journey("auth", "sign-out")
def logout() -> Response:
    auth = end_session()
    if auth is not None:
        JournalEntry.record(auth.citizen_id, "sign_out")
    db.session.commit()
    return end_franceconnect_session(auth.id_token if auth is not None else "")


def franceconnect_logout_url(id_token: str, why: str = "") -> tuple[str | None, str]:
    """FranceConnect's logout address for ``id_token`` and the state it carries back to
    the logged-out page; None when it cannot be had (logged, with ``why``)."""
    state = new_state_or_nonce()
    try:
        url = fc_client().end_session_url(
            id_token_hint=id_token,
            state=state,
            post_logout_uri=current_settings().post_logout_redirect_uri,
        )
    except OIDCError as exc:
        log.warning("FranceConnect logout unavailable%s: %s", why, exc)
        url = None
    return url, state


def end_franceconnect_session(id_token: str) -> Response:
    """After the portal's session has ended: send the browser to FranceConnect's logout,
    which comes back to ``logged_out``; straight there when that is not possible."""
    if not id_token:
        return see_other(url_for("auth.logged_out"))
    url, state = franceconnect_logout_url(id_token)
    if url is None:
        session.pop("fc_logout_state", None)
        session["fc_logout_incomplete"] = True
        return see_other(url_for("auth.logged_out"))
    session["fc_logout_state"] = state
    return see_other(url)


@bp.post("/session/extend")
@login_required
@journey("auth", "stay-signed-in")
def stay_signed_in() -> str | Response:
    """The resident asks for more time (WCAG 2.2.1): the session counts as used now."""
    auth = g.auth_session
    auth.last_seen_at = utcnow()
    db.session.commit()
    if request.headers.get("HX-Request"):
        return render_template("_partials/_session_timer.html")
    flash(
        _(
            "Vous restez connecté(e). Votre session se termine à %(time)s faute d'activité.",
            time=hour_label(session_ends_at(auth)),
        ),
        "success",
    )
    return see_other(page_to_return_to())


@bp.get("/franceconnect/logged-out")
@journey("auth", "signed-out")
def logged_out() -> str | Response:
    from portal.mandates import visit

    desk_recap = visit.after_logout()
    if desk_recap is not None:
        return desk_recap
    expected = session.pop("fc_logout_state", None)
    incomplete = session.pop("fc_logout_incomplete", False)
    # Set by the account deletion, which ends the FranceConnect session the same way.
    deleted = session.pop("account_deleted", False)
    returned = request.args.get("state")
    confirmed = bool(expected) and returned == expected
    if returned is not None and not confirmed:
        log.warning("logout return with an unexpected state")
    return render_template(
        "account/deleted.html" if deleted else "auth/logged_out.html",
        fc_confirmed=confirmed,
        fc_unconfirmed=incomplete or (returned is not None and not confirmed),
    )
