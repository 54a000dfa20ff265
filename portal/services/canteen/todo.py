"""The school canteen's to-do items: the next booking deadline per child, and the
invoices to pay (said by the shared payments capability)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from connectors.base import CallContext, Child, LinkRef, MealDay, ReadResult
from portal.formatting import clock, short_day
from portal.payments.todo import invoice_items
from portal.services.answers import dom_id
from portal.services.core import Reader, Service, combine
from portal.services.todo import PARIS, ReminderKind, TodoItem, todo_item

#: Same date: a booking deadline comes after a loan and an invoice.
MEAL_DEADLINE_ORDER = 2


@dataclass(frozen=True)
class CanteenTodo:
    invoices: Sequence[Any]
    #: Per child, the next day whose booking can still change.
    next_days: Sequence[tuple[Child, MealDay | None]]


#: What a resident may ask to be reminded of (``portal.reminders``), and when.
REMINDERS = (
    ReminderKind(
        "canteen_cutoff",
        ("meal_deadline",),
        _l("Dernier délai pour réserver ou annuler un repas à la cantine"),
        ((2,), (1,), (3,)),
    ),
)


def _first_of_next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _next_changeable(days: Sequence[MealDay], now: datetime) -> MealDay | None:
    open_days = [
        d
        for d in days
        if d.bookable and d.changeable_until is not None and d.changeable_until > now
    ]
    return min(open_days, key=lambda d: d.day) if open_days else None


def todo_reader(today: date, now: datetime) -> Reader[CanteenTodo]:
    def read(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[CanteenTodo, datetime, bool]:
        family = conn.family(ctx, ref)
        invoices = conn.invoices(ctx, ref)
        results: list[ReadResult[Any]] = [family, invoices]
        this_month = today.replace(day=1)
        next_days = []
        for child in family.data.children:
            found = None
            # Late in the month the next open day is often in the next one.
            for month in (this_month, _first_of_next_month(this_month)):
                days = conn.reservations(ctx, ref, child.id, month)
                results.append(days)
                found = _next_changeable(days.data, now)
                if found is not None:
                    break
            next_days.append((child, found))
        return CanteenTodo(invoices.data, next_days), *combine(*results)

    return read


def todo_items(svc: Service, data: CanteenTodo, today: date) -> list[TodoItem]:
    items = []
    for child, day in data.next_days:
        if day is None or day.changeable_until is None:
            continue
        deadline = day.changeable_until
        items.append(
            todo_item(
                svc,
                "meal_deadline",
                child.id,
                on=deadline.astimezone(PARIS).date(),
                deadline=deadline,
                summary=_(
                    "Réserver ou annuler le repas de %(name)s du %(day)s",
                    name=child.first_name,
                    day=short_day(day.day),
                ),
                note=(
                    _(
                        "Actuellement réservé. Modifiable jusqu'au %(day)s à %(time)s.",
                        day=short_day(deadline),
                        time=clock(deadline),
                    )
                    if day.booked
                    else _(
                        "Actuellement non réservé. Modifiable jusqu'au %(day)s à %(time)s.",
                        day=short_day(deadline),
                        time=clock(deadline),
                    )
                ),
                anchor=f"meals-{dom_id(child.id)}",
                through_portal=True,
                order=MEAL_DEADLINE_ORDER,
            )
        )
    items.extend(invoice_items(svc, data.invoices, today))
    return items
