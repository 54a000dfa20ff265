"""A journal entry, read back in the reader's language.

Entries are kept as a ``code`` and its ``params`` (see ``JournalEntry.record``); this
module is the one place that turns them into words, through the catalogues, with dates
and amounts formatted by Babel. Entries written before codes existed have no code and
are shown with the French text they were written with, marked as French.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from portal.formatting import day, money, short_day
from portal.refusals import reason_text

#: What was done, by code. A ``<code>_refused`` or ``<code>_not_done`` reads as its
#: base code, the outcome column saying how it went.
ACTIONS = {
    "sign_in": _l("Connexion avec FranceConnect"),
    "sign_out": _l("Déconnexion"),
    "link": _l("Compte relié"),
    "link_again": _l("Compte relié"),
    "link_demo": _l("Compte relié"),
    "link_refused": _l("Tentative de liaison refusée"),
    "link_not_done": _l("Tentative de liaison non aboutie"),
    "unlink": _l("Compte délié"),
    "renew_loan": _l("Prolongation d'un prêt"),
    "cancel_hold": _l("Annulation d'une réservation de document"),
    "book_meals": _l("Réservation ou annulation de repas"),
    "pay_invoice": _l("Paiement d'une facture"),
    "payment_paid": _l("Facture payée"),
    "payment_refused": _l("Paiement refusé"),
    "payment_abandoned": _l("Paiement abandonné"),
    "renew_application": _l("Renouvellement de la demande de logement"),
    "export_data": _l("Téléchargement de mes données"),
    "create_calendar_feed": _l("Création du lien d'agenda"),
    "revoke_calendar_feed": _l("Suppression du lien d'agenda"),
}

SUFFIXES = ("_refused", "_not_done")


@dataclass(frozen=True)
class JournalLine:
    action: str
    detail: Markup


def _base(code: str) -> str:
    if code in ACTIONS:
        return code
    for suffix in SUFFIXES:
        if code.endswith(suffix) and code[: -len(suffix)] in ACTIONS:
            return code[: -len(suffix)]
    return code


def _iso_day(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _days(values: Any) -> str:
    days = [d for d in (_iso_day(v) for v in values or ()) if d is not None]
    return ", ".join(short_day(d) for d in days)


def _french(text: str) -> Markup:
    """Text written in French (a title, an old entry): marked so on a page in English."""
    if str(get_locale() or "fr") != "fr":
        return Markup('<span lang="fr">{}</span>').format(text)
    return escape(text)


def _join(*parts: Markup | str) -> Markup:
    return Markup(" – ").join(p for p in parts if p)


def _detail(code: str, params: dict[str, Any]) -> Markup:
    base = _base(code)
    reason = reason_text(params.get("reason_code"), params.get("reason") or "")
    title = _french(params["title"]) if params.get("title") else ""
    if code.startswith("payment_"):
        invoice = _french(params["invoice"]) if params.get("invoice") else _("une facture")
        amount = money(params["amount_cents"]) if params.get("amount_cents") else ""
        return _join(invoice, amount, reason if code == "payment_refused" else "")
    if code.endswith("_not_done"):
        extra = reason if code == "link_not_done" else ""
        return _join(escape(_("rien n'a été fait")), title, extra)
    if code.endswith("_refused") and base != "link":
        return _join(title, reason)
    if code == "link_refused":
        return reason
    if code == "link_again":
        return escape(_("relié à nouveau"))
    if code == "link_demo":
        return escape(_("compte de démonstration"))
    if base == "renew_loan":
        new_due = _iso_day(params.get("new_due_date"))
        return _join(title, escape(_("retour le %(date)s", date=day(new_due))) if new_due else "")
    if base == "cancel_hold":
        return _join(title)
    if base == "book_meals":
        parts: list[Markup | str] = [_french(params["child"])] if params.get("child") else []
        for key, label in (
            ("booked", _("réservé : %(days)s")),
            ("cancelled", _("annulé : %(days)s")),
            ("refused", _("refusé : %(days)s")),
        ):
            if params.get(key):
                parts.append(escape(label % {"days": _days(params[key])}))
        return _join(*parts)
    if base == "renew_application":
        until = _iso_day(params.get("new_expires_on"))
        return escape(_("renouvelée jusqu'au %(date)s", date=day(until))) if until else Markup("")
    return Markup("")


def journal_line(entry: Any) -> JournalLine:
    """What the activity page shows of ``entry``: what was done, and its details."""
    code = entry.code or ""
    if not code:  # written before codes: its own (French) words
        label = ACTIONS.get(entry.action)
        return JournalLine(str(label) if label else "", _french(entry.detail or ""))
    base = _base(code)
    label = ACTIONS.get(code) or ACTIONS.get(base)
    return JournalLine(str(label) if label else "", _detail(code, entry.params or {}))
