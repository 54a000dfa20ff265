"""The library's words: its journal actions and their details, its refusal reasons."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from portal.formatting import day
from portal.journal_text import french, iso_day, join

JOURNAL_ACTIONS = {
    "renew_loan": _l("Prolongation d'un prêt"),
    "cancel_hold": _l("Annulation d'une réservation de document"),
}

REASONS = {
    # loans
    "loan_overdue": _l("Ce prêt est en retard : rapportez le document pour l'emprunter à nouveau."),
    "renewal_limit": _l("Ce prêt a déjà été prolongé autant de fois que possible."),
    "on_hold": _l("Ce document est réservé par un autre lecteur."),
    "card_expired": _l("Votre carte a expiré : renouvelez-la à l'accueil de la bibliothèque."),
    "not_renewable": _l("La bibliothèque n'a pas accepté de prolonger ce prêt."),
    # holds
    "not_cancellable": _l("Cette réservation ne peut plus être annulée."),
}


def journal_detail(code: str, params: Mapping[str, Any]) -> Markup:
    title = french(params["title"]) if params.get("title") else ""
    if code == "renew_loan":
        new_due = iso_day(params.get("new_due_date"))
        return join(title, escape(_("retour le %(date)s", date=day(new_due))) if new_due else "")
    return join(title)
