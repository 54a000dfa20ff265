"""The library's to-do items: loans to return, holds to collect."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from connectors.base import CallContext, LinkRef
from portal.services.core import Reader, Service, combine
from portal.services.todo import ReminderKind, TodoItem, todo_item

#: Same date: a loan to return comes first, a hold to collect after an invoice.
LOAN_ORDER = 0
HOLD_ORDER = 3


@dataclass(frozen=True)
class LibraryTodo:
    loans: Sequence[Any]
    holds: Sequence[Any]


#: What a resident may ask to be reminded of (``portal.reminders``), and when.
REMINDERS = (
    ReminderKind(
        "library_return",
        ("loan",),
        _l("Documents à rendre à la bibliothèque"),
        ((3, 1), (1,), (3,), (7, 3, 1)),
        link_label=_l("Prolonger le prêt"),
    ),
)


def read_library(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[LibraryTodo, datetime, bool]:
    loans = conn.loans(ctx, ref)
    holds = conn.holds(ctx, ref)
    return LibraryTodo(loans.data, holds.data), *combine(loans, holds)


def todo_reader(today: date, now: datetime) -> Reader[LibraryTodo]:
    return read_library


def todo_items(svc: Service, data: LibraryTodo, today: date) -> list[TodoItem]:
    items = [
        todo_item(
            svc,
            "loan",
            loan.id,
            on=loan.due_date,
            summary=_("Rendre « %(title)s »", title=loan.title),
            anchor="loans",
            overdue=loan.due_date < today,
            order=LOAN_ORDER,
        )
        for loan in data.loans
    ]
    items.extend(
        todo_item(
            svc,
            "hold",
            hold.id,
            on=hold.waiting_until,
            summary=_("Retirer « %(title)s »", title=hold.title),
            note=_("À retirer à %(place)s", place=hold.pickup_place),
            anchor="holds",
            overdue=hold.waiting_until < today,
            order=HOLD_ORDER,
        )
        for hold in data.holds
        if hold.status == "ready" and hold.waiting_until is not None
    )
    return items
