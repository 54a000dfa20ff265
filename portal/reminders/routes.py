"""The reminders' pages: the resident's settings, and unsubscribing from a message.

Settings are the resident's alone: an adviser acting under a mandate gets 403 here, as
on the resident's other account pages (the assisted session's list of pages refuses
them first; the check here says so again, whatever that list becomes). Unsubscribing
needs no sign-in: the signed token in the link says whose reminders to stop.
"""

from __future__ import annotations

import logging

from flask import flash, g, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from portal.actor import Actor, current_actor
from portal.auth.session import login_required, see_other
from portal.config import current_settings
from portal.errors import render_error
from portal.extensions import csrf, db
from portal.journeys import journey
from portal.models import Citizen, JournalEntry
from portal.reminders import bp
from portal.reminders.forms import (
    AddressForm,
    DisableForm,
    EnableForm,
    UnsubscribeForm,
    leads_form,
)
from portal.reminders.kinds import clean_leads, reminder_kinds
from portal.reminders.notifiers import EmailNotifier, Message
from portal.reminders.preferences import (
    ask_address,
    change_leads,
    confirm_address,
    settings_of,
    turn_off,
    turn_on,
)
from portal.reminders.tokens import (
    confirm_token,
    confirmed_address,
    unsubscribe_citizen,
)

log = logging.getLogger(__name__)

#: Endpoints the signed-in resident alone may open (never an adviser for them).
RESIDENT_ENDPOINTS = frozenset(
    f"reminders.{name}" for name in ("settings", "enable", "leads", "address", "disable")
)


@bp.before_request
def refuse_advisers() -> tuple[str, int] | None:
    actor = g.get("actor")
    if request.endpoint in RESIDENT_ENDPOINTS and isinstance(actor, Actor) and actor.assisted:
        return render_error(
            403,
            _(
                "Les rappels se règlent par la personne elle-même, depuis son compte : "
                "cette page n'est pas ouverte quand vous agissez pour elle."
            ),
        )
    return None


def _record(citizen_id: int, action: str, actor: Actor | None = None) -> None:
    JournalEntry.record(citizen_id, action, actor=actor or current_actor())


def _settings_page(
    form: FlaskForm | None = None,
    address_form: AddressForm | None = None,
    leads_error: str = "",
) -> str:
    prefs = settings_of(g.citizen.id)
    kinds = reminder_kinds()
    if form is None:
        form = leads_form()
        chosen = clean_leads(prefs.leads) if prefs is not None else {}
        for kind in kinds:
            sub = form[kind.name]
            sub.wanted.data = kind.name in chosen
            sub.lead.data = ",".join(map(str, chosen.get(kind.name, kind.default)))
    return render_template(
        "reminders/settings.html",
        prefs=prefs,
        kinds=kinds,
        enable_form=EnableForm(),
        disable_form=DisableForm(),
        leads_form=form,
        address_form=address_form or AddressForm(formdata=None),
        leads_error=leads_error,
    )


@bp.get("/")
@login_required
@journey("account", "reminders")
def settings() -> str:
    return _settings_page()


@bp.post("/enable")
@login_required
@journey("account", "reminders-on")
def enable() -> Response:
    if EnableForm().validate_on_submit():
        turn_on(g.citizen)
        _record(g.citizen.id, "reminders_on")
        db.session.commit()
        flash(
            _(
                "Les rappels sont activés. Vous recevrez au plus un message par jour, "
                "avant vos échéances."
            ),
            "success",
        )
    return see_other(url_for("reminders.settings"))


@bp.post("/leads")
@login_required
@journey("account", "reminders-change")
def leads() -> str | Response | tuple[str, int]:
    prefs = settings_of(g.citizen.id)
    if prefs is None or not prefs.enabled:
        return see_other(url_for("reminders.settings"))
    form = leads_form()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            error = _("Le formulaire a expiré. Envoyez-le à nouveau.")
        else:
            error = _("Choisissez, pour chaque rappel, l'un des délais proposés.")
        return _settings_page(form, leads_error=error), 422
    chosen = {
        kind.name: [int(d) for d in form[kind.name].lead.data.split(",")]
        for kind in reminder_kinds()
        if form[kind.name].wanted.data
    }
    if not chosen:
        error = _("Choisissez au moins un rappel, ou désactivez les rappels plus bas.")
        return _settings_page(form, leads_error=error), 422
    change_leads(prefs, chosen)
    _record(g.citizen.id, "reminders_changed")
    db.session.commit()
    flash(_("Vos choix de rappels sont enregistrés."), "success")
    return see_other(url_for("reminders.settings"))


@bp.post("/address")
@login_required
@journey("account", "reminders-address")
def address() -> str | Response | tuple[str, int]:
    prefs = settings_of(g.citizen.id)
    if prefs is None or not prefs.enabled:
        return see_other(url_for("reminders.settings"))
    form = AddressForm()
    if not form.validate_on_submit():
        return _settings_page(address_form=form), 422
    email = form.email.data.strip()
    ask_address(prefs, email)
    db.session.commit()
    link = current_settings().base_url + url_for(
        "reminders.confirm", token=confirm_token(g.citizen.id, email)
    )
    text = render_template("reminders/confirm_email.txt", link=link)
    sent = EmailNotifier().send(
        Message(to=email, subject=_("Confirmez l'adresse de vos rappels"), text=text)
    )
    if sent:
        flash(
            _(
                "Un lien de confirmation a été envoyé à %(email)s. Il reste valable 24 heures.",
                email=email,
            ),
            "success",
        )
    else:
        flash(
            _("Le message de confirmation n'a pas pu être envoyé. Réessayez plus tard."),
            "error",
        )
    return see_other(url_for("reminders.settings"))


@bp.get("/confirm/<token>")
@journey("account", "reminders-confirm")
def confirm(token: str) -> str | tuple[str, int]:
    """The link sent to a new address: following it is the proof the resident reads
    that mailbox. No sign-in needed (the mailbox may be on another device)."""
    found = confirmed_address(token)
    prefs = settings_of(found[0]) if found is not None else None
    if found is None or prefs is None or not confirm_address(prefs, found[1]):
        return render_error(
            404,
            _(
                "Ce lien de confirmation n'est pas valable : il a expiré, ou une autre "
                "adresse a été demandée depuis. Demandez un nouveau lien depuis vos rappels."
            ),
        )
    _record(prefs.citizen_id, "reminders_address_confirmed", Actor.citizen(prefs.citizen_id))
    db.session.commit()
    return render_template("reminders/confirmed.html")


@bp.post("/disable")
@login_required
@journey("account", "reminders-off")
def disable() -> Response:
    if DisableForm().validate_on_submit() and turn_off(g.citizen.id):
        _record(g.citizen.id, "reminders_off")
        db.session.commit()
        flash(_("Les rappels sont désactivés : vous n'en recevrez plus."), "success")
    return see_other(url_for("reminders.settings"))


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt
@journey("account", "reminders-unsubscribe")
def unsubscribe(token: str) -> str | tuple[str, int]:
    """GET: a page with one button (a link scanner that opens the link changes nothing).
    POST: off, from that button or from the mail client's one-click unsubscribe (RFC
    8058), which carries no form token: this route alone is exempt, the signed token in
    the URL is the credential. Idempotent: a second POST says the same."""
    citizen_id = unsubscribe_citizen(token)
    citizen = db.session.get(Citizen, citizen_id) if citizen_id is not None else None
    if citizen is None:
        return render_error(
            404,
            _(
                "Ce lien de désinscription n'est pas valable. Vérifiez qu'il est complet, "
                "ou réglez vos rappels depuis votre compte."
            ),
        )
    if request.method == "GET":
        return render_template("reminders/unsubscribe.html", form=UnsubscribeForm(), token=token)
    if turn_off(citizen.id):
        _record(citizen.id, "reminders_unsubscribed", Actor.citizen(citizen.id, channel="email"))
        db.session.commit()
    return render_template("reminders/unsubscribed.html")
