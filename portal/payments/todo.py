"""The to-do items of a billing service: its invoices left to pay."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.formatting import money
from portal.payments import ledger
from portal.services.core import Service
from portal.services.todo import ReminderKind, TodoItem, todo_item

#: Same date: an invoice comes right after a loan to return.
INVOICE_ORDER = 1
#: Invoices of every kind that bills, reminded as one (``portal.reminders``).
INVOICE_REMINDER = ReminderKind(
    "invoice_due", ("invoice",), _l("Factures à payer"), ((7,), (3,), (14, 7))
)


def invoice_items(svc: Service, invoices: Sequence[Any], today: date) -> list[TodoItem]:
    """What is left to pay: not paid as the back-end says or as it confirmed to the
    portal, and no payment waiting for its confirmation (it must not be paid twice)."""
    left_to_pay = [
        line.invoice for line in ledger.invoice_lines(svc.link, invoices) if line.status == "to_pay"
    ]
    return [
        todo_item(
            svc,
            "invoice",
            invoice.id,
            on=invoice.due_date,
            summary=_(
                "Payer « %(label)s » (%(amount)s)",
                label=invoice.label,
                amount=money(invoice.amount_cents),
            ),
            anchor="invoices-title",
            overdue=invoice.due_date < today,
            through_portal=True,
            order=INVOICE_ORDER,
        )
        for invoice in left_to_pay
    ]
