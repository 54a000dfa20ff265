"""What the school canteen's card and page show, read through the resident's link."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from connectors.base import CallContext, LinkRef, ReadResult
from portal.models._types import utcnow
from portal.services.core import Reader, combine


@dataclass
class ChildMonth:
    child: Any
    days: Sequence[Any]

    @property
    def booked_count(self) -> int:
        return sum(1 for day in self.days if day.booked)

    @property
    def served_days(self) -> list[Any]:
        """The days the canteen serves a meal: the only rows of a month view."""
        return [day for day in self.days if day.served]

    @property
    def changeable(self) -> list[Any]:
        return [day for day in self.days if day.bookable and day.changeable_until is not None]


@dataclass
class CanteenView:
    family: Any
    invoices: Sequence[Any]
    months: Sequence[ChildMonth] = ()
    month: date | None = None

    @property
    def unpaid(self) -> list[Any]:
        return [invoice for invoice in self.invoices if not invoice.paid]

    @property
    def next_deadline(self) -> datetime | None:
        now = utcnow()
        deadlines = [
            day.changeable_until
            for month in self.months
            for day in month.days
            if day.bookable and day.changeable_until is not None and day.changeable_until > now
        ]
        return min(deadlines) if deadlines else None


def _canteen(
    conn: Any, ctx: CallContext, ref: LinkRef, month: date
) -> tuple[CanteenView, datetime, bool]:
    family = conn.family(ctx, ref)
    invoices = conn.invoices(ctx, ref)
    results: list[ReadResult[Any]] = [family, invoices]
    months = []
    for child in family.data.children:
        days = conn.reservations(ctx, ref, child.id, month)
        results.append(days)
        months.append(ChildMonth(child, days.data))
    invoices_sorted = sorted(invoices.data, key=lambda i: (i.paid, i.due_date))
    view = CanteenView(family.data, invoices_sorted, months, month)
    return view, *combine(*results)


def canteen_reader(month: date) -> Reader[CanteenView]:
    def read(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[CanteenView, datetime, bool]:
        return _canteen(conn, ctx, ref, month)

    return read


def this_month() -> Reader[CanteenView]:
    """The card's and the page's reader: this month's meals."""
    return canteen_reader(date.today().replace(day=1))


def read_family(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[Any, datetime, bool]:
    family = conn.family(ctx, ref)
    return family.data, family.fetched_at, family.stale
