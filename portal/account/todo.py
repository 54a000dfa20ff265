"""What to do next, across every linked service, in one list sorted by date.

The services are read at the same time, each in a worker thread of its own with its own
application context (and so its own database session), under the card deadline: one
hanging back-end costs its own items, never the list. Workers return the connectors'
frozen dataclasses; the items, whose text is translated, are built afterwards in the
request's thread, where the locale is known.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import url_for
from flask_babel import gettext as _

from connectors.base import (
    CallContext,
    Child,
    HousingApplication,
    LinkRef,
    MealDay,
    ReadResult,
)
from portal.formatting import clock, money, short_day
from portal.models._types import utcnow
from portal.payments import ledger
from portal.services.actions import dom_id
from portal.services.reading import Reader, Service, combine, linked_services, read_concurrently

log = logging.getLogger(__name__)

#: What the resident does through the portal, not at the service's counter.
WRITE_KINDS = frozenset({"meal_deadline", "invoice", "housing_closes"})

PARIS = ZoneInfo("Europe/Paris")
#: Same date: what must be done first comes first.
KIND_ORDER = {
    "loan": 0,
    "invoice": 1,
    "meal_deadline": 2,
    "hold": 3,
    "housing_closes": 4,
    "housing_opens": 5,
}


def paris_today() -> date:
    """The territory's today: deadlines are local days."""
    return datetime.now(PARIS).date()


@dataclass(frozen=True)
class TodoItem:
    """One thing to do, by when, and where to do it."""

    on: date
    kind: str
    slug: str
    service_title: str
    summary: str
    anchor: str
    #: Stable across reads (the calendar updates the event instead of adding one); a
    #: hash, so it reveals neither the link nor the back-end's ids.
    uid: str
    note: str = ""
    overdue: bool = False
    #: The exact deadline when there is one (canteen bookings close at a given hour).
    deadline: datetime | None = None
    #: Done through the portal (a booking, a payment, a renewal), which is impossible
    #: while the service is unavailable (``Panel.writable``): then said, not offered.
    unavailable: bool = False

    @property
    def path(self) -> str:
        base = url_for("services.service", slug=self.slug)
        return f"{base}#{self.anchor}" if self.anchor else base


@dataclass(frozen=True)
class ServiceState:
    slug: str
    title: str
    state: str
    fetched_at: datetime | None = None


@dataclass
class TodoList:
    items: list[TodoItem] = field(default_factory=list)
    services: list[ServiceState] = field(default_factory=list)

    @property
    def unreadable(self) -> list[ServiceState]:
        return [s for s in self.services if s.state in ("unavailable", "relink")]

    @property
    def relink(self) -> list[ServiceState]:
        return [s for s in self.services if s.state == "relink"]

    @property
    def temporarily_unreadable(self) -> list[ServiceState]:
        return [s for s in self.services if s.state == "unavailable"]

    @property
    def stale(self) -> list[ServiceState]:
        return [s for s in self.services if s.state == "stale"]


# -- reading, in the workers --------------------------------------------------------------


@dataclass(frozen=True)
class LibraryTodo:
    loans: Sequence[Any]
    holds: Sequence[Any]


@dataclass(frozen=True)
class CanteenTodo:
    invoices: Sequence[Any]
    #: Per child, the next day whose booking can still change.
    next_days: Sequence[tuple[Child, MealDay | None]]


def _first_of_next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _next_changeable(days: Sequence[MealDay], now: datetime) -> MealDay | None:
    open_days = [
        d
        for d in days
        if d.bookable and d.changeable_until is not None and d.changeable_until > now
    ]
    return min(open_days, key=lambda d: d.day) if open_days else None


def read_library(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[LibraryTodo, datetime, bool]:
    loans = conn.loans(ctx, ref)
    holds = conn.holds(ctx, ref)
    return LibraryTodo(loans.data, holds.data), *combine(loans, holds)


def canteen_reader(today: date, now: datetime) -> Reader[CanteenTodo]:
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


def read_housing(
    conn: Any, ctx: CallContext, ref: LinkRef
) -> tuple[HousingApplication, datetime, bool]:
    application = conn.application(ctx, ref)
    return application.data, application.fetched_at, application.stale


def _reader(category: str, today: date, now: datetime) -> Reader[Any] | None:
    """None for a category that has nothing to put in the list (yet)."""
    if category == "library":
        return read_library
    if category == "canteen":
        return canteen_reader(today, now)
    if category == "housing":
        return read_housing
    return None


def read_todo(citizen_id: int, deadline_s: float) -> TodoList:
    """Every linked service read concurrently; never raises, never waits past the
    deadline (plus a small grace) for a slow one."""
    today, now = paris_today(), utcnow()
    readers: dict[str, Reader[Any]] = {}
    services = []
    for svc in linked_services(citizen_id):
        reader = _reader(svc.category, today, now)
        if reader is not None:
            readers[svc.slug] = reader
            services.append(svc)
    if not services:
        return TodoList()
    panels = read_concurrently(services, readers, deadline_s)

    todo = TodoList()
    for svc in services:
        panel = panels[svc.slug]
        todo.services.append(
            ServiceState(svc.slug, svc.instance.title, panel.state, panel.fetched_at)
        )
        if panel.has_data:
            items = items_for(svc, panel.data, today)
            if not panel.writable:
                items = [
                    replace(item, unavailable=True) if item.kind in WRITE_KINDS else item
                    for item in items
                ]
            todo.items.extend(items)
    todo.items.sort(
        key=lambda i: (
            i.on,
            i.deadline.timestamp() if i.deadline else float("inf"),
            KIND_ORDER[i.kind],
        )
    )
    return todo


# -- items, in the request's thread ------------------------------------------------------


def _uid(link_id: int, kind: str, thing: str) -> str:
    digest = hashlib.sha256(f"{link_id}:{kind}:{thing}".encode()).hexdigest()[:32]
    return f"{kind}-{digest}@compte-territorial"


def items_for(svc: Service, data: Any, today: date) -> list[TodoItem]:
    if svc.category == "library":
        return _library_items(svc, data, today)
    if svc.category == "canteen":
        return _canteen_items(svc, data, today)
    if svc.category == "housing":
        return _housing_items(svc, data, today)
    return []


def _item(svc: Service, kind: str, thing: str, **values: Any) -> TodoItem:
    return TodoItem(
        kind=kind,
        slug=svc.slug,
        service_title=svc.instance.title,
        uid=_uid(svc.link.id, kind, thing),
        **values,
    )


def _library_items(svc: Service, data: LibraryTodo, today: date) -> list[TodoItem]:
    items = [
        _item(
            svc,
            "loan",
            loan.id,
            on=loan.due_date,
            summary=_("Rendre « %(title)s »", title=loan.title),
            anchor="loans",
            overdue=loan.due_date < today,
        )
        for loan in data.loans
    ]
    items.extend(
        _item(
            svc,
            "hold",
            hold.id,
            on=hold.waiting_until,
            summary=_("Retirer « %(title)s »", title=hold.title),
            note=_("À retirer à %(place)s", place=hold.pickup_place),
            anchor="holds",
            overdue=hold.waiting_until < today,
        )
        for hold in data.holds
        if hold.status == "ready" and hold.waiting_until is not None
    )
    return items


def _canteen_items(svc: Service, data: CanteenTodo, today: date) -> list[TodoItem]:
    items = []
    for child, day in data.next_days:
        if day is None or day.changeable_until is None:
            continue
        deadline = day.changeable_until
        items.append(
            _item(
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
            )
        )
    # What is left to pay: not paid as the back-end says or as it confirmed to the portal,
    # and no payment waiting for its confirmation (it must not be paid twice).
    left_to_pay = [
        line.invoice
        for line in ledger.invoice_lines(svc.link, data.invoices)
        if line.status == "to_pay"
    ]
    items.extend(
        _item(
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
        )
        for invoice in left_to_pay
    )
    return items


def _housing_items(svc: Service, data: HousingApplication, today: date) -> list[TodoItem]:
    opens, closes = data.renewal_opens_on, data.renewal_closes_on
    if opens is None or closes is None or data.status not in ("active", "renewal_due"):
        return []
    items = []
    if today < opens:
        items.append(
            _item(
                svc,
                "housing_opens",
                svc.link.external_id,  # stable, fresh or from the snapshot
                on=opens,
                summary=_("Le renouvellement de votre demande de logement devient possible"),
                note=_("Jusqu'au %(date)s inclus.", date=short_day(closes)),
                anchor="renewal",
            )
        )
    if today <= closes:
        items.append(
            _item(
                svc,
                "housing_closes",
                svc.link.external_id,  # stable, fresh or from the snapshot
                on=closes,
                summary=_("Renouveler votre demande de logement (dernier jour)"),
                note=_("Sans renouvellement, la demande sera radiée."),
                anchor="renewal",
            )
        )
    return items
