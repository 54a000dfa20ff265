"""A journal entry, read back in the reader's language.

Entries are kept as a ``code`` and its ``params`` (see ``JournalEntry.record``); this
module turns them into words, through the catalogues, with dates and amounts formatted
by Babel: the generic actions (sign-in, linking, payments, the account) here, each kind's
own from its ``ServiceKind`` (``journal_actions``, ``journal_detail``). Entries written
before codes existed have no code and are shown with the French text they were written
with, marked as French.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from portal.formatting import money, short_day
from portal.refusals import reason_text
from portal.services import kinds

#: What was done, by code. A ``<code>_refused`` or ``<code>_not_done`` reads as its
#: base code, the outcome column saying how it went.
GENERIC_ACTIONS = {
    "sign_in": _l("Connexion avec FranceConnect"),
    "sign_out": _l("Déconnexion"),
    "link": _l("Compte relié"),
    "link_again": _l("Compte relié"),
    "link_demo": _l("Compte relié"),
    "link_refused": _l("Tentative de liaison refusée"),
    "link_not_done": _l("Tentative de liaison non aboutie"),
    "unlink": _l("Compte délié"),
    "pay_invoice": _l("Paiement d'une facture"),
    "payment_paid": _l("Facture payée"),
    "payment_refused": _l("Paiement refusé"),
    "payment_abandoned": _l("Paiement abandonné"),
    "export_data": _l("Téléchargement de mes données"),
    "create_calendar_feed": _l("Création du lien d'agenda"),
    "revoke_calendar_feed": _l("Suppression du lien d'agenda"),
    "reminders_on": _l("Rappels activés"),
    "reminders_changed": _l("Choix des rappels modifié"),
    "reminders_address_confirmed": _l("Adresse des rappels confirmée"),
    "reminders_off": _l("Rappels désactivés"),
    "reminders_unsubscribed": _l("Rappels désactivés depuis un message"),
    "mandate_opened": _l("Mandat ouvert au guichet"),
    "mandate_revoked": _l("Révocation d'un mandat"),
    "mandate_scope_revoked": _l("Révocation d'un service d'un mandat"),
    "mandate_revoked_at_desk": _l("Fin d'un mandat, demandée au guichet"),
}

SUFFIXES = ("_refused", "_not_done")


def actions() -> dict[str, Any]:
    """Every action label: the generic ones, and each installed kind's
    (``ServiceKind.journal_actions``)."""
    merged: dict[str, Any] = dict(GENERIC_ACTIONS)
    for kind in kinds.kinds():
        merged.update(kind.journal_actions)
    return merged


def _kind_detail(base: str, params: dict[str, Any]) -> Markup | None:
    for kind in kinds.kinds():
        if base in kind.journal_actions and kind.journal_detail is not None:
            return kind.journal_detail(base, params)
    return None


@dataclass(frozen=True)
class JournalLine:
    action: str
    detail: Markup


def _base(code: str, known: dict[str, Any]) -> str:
    if code in known:
        return code
    for suffix in SUFFIXES:
        if code.endswith(suffix) and code[: -len(suffix)] in known:
            return code[: -len(suffix)]
    return code


def iso_day(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def days_list(values: Any) -> str:
    days = [d for d in (iso_day(v) for v in values or ()) if d is not None]
    return ", ".join(short_day(d) for d in days)


def french(text: str) -> Markup:
    """Text written in French (a title, an old entry): marked so on a page in English."""
    if str(get_locale() or "fr") != "fr":
        return Markup('<span lang="fr">{}</span>').format(text)
    return escape(text)


def join(*parts: Markup | str) -> Markup:
    return Markup(" – ").join(p for p in parts if p)


def _detail(code: str, params: dict[str, Any], known: dict[str, Any]) -> Markup:
    base = _base(code, known)
    reason = reason_text(params.get("reason_code"), params.get("reason") or "")
    title = french(params["title"]) if params.get("title") else ""
    if code.startswith("payment_"):
        invoice = french(params["invoice"]) if params.get("invoice") else _("une facture")
        amount = money(params["amount_cents"]) if params.get("amount_cents") else ""
        return join(invoice, amount, reason if code == "payment_refused" else "")
    if code.endswith("_not_done"):
        extra = reason if code == "link_not_done" else ""
        return join(escape(_("rien n'a été fait")), title, extra)
    if code.endswith("_refused") and base != "link":
        return join(title, reason)
    if code == "link_refused":
        return reason
    if code == "link_again":
        return escape(_("relié à nouveau"))
    if code == "link_demo":
        return escape(_("compte de démonstration"))
    if code == "mandate_opened":
        until = iso_day(params.get("until"))
        return join(
            french(str(params.get("desk", ""))),
            escape(_("jusqu'au %(day)s", day=short_day(until))) if until else "",
        )
    if code in ("mandate_revoked", "mandate_scope_revoked"):
        return _mandate_detail(params)
    if code == "mandate_revoked_at_desk":
        reference = escape(_("mandat %(reference)s", reference=params.get("reference", "")))
        return join(reference, french(params["desk"]) if params.get("desk") else "")
    detail = _kind_detail(base, params)
    if detail is not None:
        return detail
    # A kind no longer installed: what its entry names, without its own words.
    return join(title, reason)


def _mandate_detail(params: dict[str, Any]) -> Markup:
    """The desk the mandate was given to, and the one service revoked, if one."""
    from portal.mandates import scope_title

    desk = french(params["desk"]) if params.get("desk") else ""
    scope = params.get("scope") if isinstance(params.get("scope"), str) else ""
    return join(desk, french(scope_title(scope)) if scope else "")


def journal_line(entry: Any, known: dict[str, Any] | None = None) -> JournalLine:
    """What the activity page shows of ``entry``: what was done, and its details.
    ``known``: the action labels (``actions()``), when a page already has them."""
    known = actions() if known is None else known
    code = entry.code or ""
    if not code:  # written before codes: its own (French) words
        label = known.get(entry.action)
        return JournalLine(str(label) if label else "", french(entry.detail or ""))
    base = _base(code, known)
    # A code no installed kind knows (a kind removed since) has no label, never a raw
    # code; its detail still names what it was about.
    label = known.get(code) or known.get(base)
    return JournalLine(str(label) if label else "", _detail(code, entry.params or {}, known))
