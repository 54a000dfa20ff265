"""The kinds of reminders a resident may choose, and how long before each may come.

Each kind of service declares what of its to-do list may be reminded
(``ServiceKind.reminders``); invoices are reminded as one kind, whichever service bills
(``portal.payments``); mandates nearing their end are the reminders' own. The lead times
offered are a few choices per kind rather than a free number, the issue's defaults
first (a loan 3 days and 1 day before, a booking cut-off 2 days before, an invoice
7 days before, a mandate 30 days before…). Nothing here names a kind of service.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from portal.payments.todo import INVOICE_REMINDER
from portal.services import kinds as service_kinds
from portal.services.todo import ReminderKind

#: Mandates end on their own rows, not as to-do items of a service.
MANDATE_KIND = "mandate_ending"
MANDATE_REMINDER = ReminderKind(
    MANDATE_KIND, (), _l("Fin d'un mandat donné à un guichet"), ((30,), (7,))
)


def reminder_kinds() -> list[ReminderKind]:
    """Every kind a resident may choose, in the settings page's order: the services'
    (in dashboard order), invoices, then mandates."""
    found: list[ReminderKind] = []
    for kind in service_kinds.kinds():
        found.extend(kind.reminders)
        if kind.bills and INVOICE_REMINDER not in found:
            found.append(INVOICE_REMINDER)
    if INVOICE_REMINDER not in found:
        found.append(INVOICE_REMINDER)
    found.append(MANDATE_REMINDER)
    return found


def by_name() -> dict[str, ReminderKind]:
    return {kind.name: kind for kind in reminder_kinds()}


def by_item_kind() -> dict[str, ReminderKind]:
    return {item: kind for kind in reminder_kinds() for item in kind.item_kinds}


def default_leads() -> dict[str, list[int]]:
    """Every kind, at its default lead times: what turning reminders on chooses."""
    return {kind.name: list(kind.default) for kind in reminder_kinds()}


def clean_leads(leads: object) -> dict[str, list[int]]:
    """Only known kinds and offered lead times (a row written by an older version, or
    edited by hand, never makes the job fail)."""
    if not isinstance(leads, dict):
        return {}
    known = by_name()
    clean = {}
    for name, days in leads.items():
        kind = known.get(name)
        if kind is not None and isinstance(days, list) and tuple(days) in kind.choices:
            clean[name] = list(days)
    return clean


def lead_due(days_left: int, leads: list[int]) -> int | None:
    """Which lead time a deadline ``days_left`` days away is reminded under now: the
    smallest one not below ``days_left``, so a reminder missed (reminders turned on late,
    a back-end down that day) is caught up under the same key; None when it is not yet
    time, or the deadline has passed."""
    if days_left < 0:
        return None
    eligible = [lead for lead in leads if lead >= days_left]
    return min(eligible) if eligible else None
