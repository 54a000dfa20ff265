"""Reading a resident's service data through their link, never failing the page.

Every read goes through ``read_panel``: it builds the call context with the deadline,
turns the four connector errors into a state the template knows how to say, and marks a
link the back-end no longer accepts. Nothing here raises to a view.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

import sqlalchemy as sa
from flask import Flask, abort, current_app, g
from sqlalchemy.orm.attributes import set_committed_value

from connectors.base import (
    CallContext,
    ContractBroken,
    InstanceConfig,
    LinkInvalid,
    LinkRef,
    ReadResult,
    Refused,
    Unavailable,
)
from portal.extensions import db
from portal.integrations import registry
from portal.models import ServiceLink
from portal.models._types import utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")
State = Literal["ok", "stale", "unavailable", "relink"]

#: A loan due within this many days "stands out" on the card and the page.
DUE_SOON_DAYS = 3
#: Threads reading at the same time for one request; more services simply queue.
MAX_WORKERS = 8
#: Time given to a worker past the connectors' own deadline (building the context,
#: loading the link) before its service is counted as unreadable.
GRACE_S = 0.5


@dataclass
class Panel(Generic[T]):
    """What a card or a page section shows: the data, how fresh, and what went wrong."""

    state: State
    data: T | None = None
    fetched_at: datetime | None = None
    reason: str = ""

    @property
    def has_data(self) -> bool:
        return self.data is not None

    @property
    def writable(self) -> bool:
        """Whether the service can be acted on: only what the back-end has just said
        may be acted on. While it is unavailable (a stale copy, or nothing), every write
        of the service is disabled, on every page, with the reason."""
        return self.state == "ok" and self.data is not None


@dataclass
class Service:
    """A resident's linked account at one instance, with what the registry knows."""

    link: ServiceLink
    instance: InstanceConfig
    category: str
    connector: Any

    @property
    def slug(self) -> str:
        return self.instance.slug

    @property
    def ref(self) -> LinkRef:
        return LinkRef(external_id=self.link.external_id)


def linked_services(citizen_id: int) -> list[Service]:
    """The resident's links whose instance is still configured, in the registry's order."""
    reg = registry()
    links = {
        link.instance_slug: link
        for link in db.session.execute(
            db.select(ServiceLink).filter_by(citizen_id=citizen_id)
        ).scalars()
    }
    services = []
    for slug, instance in reg.instances.items():
        link = links.get(slug)
        if link is not None:
            connector = reg.connector(slug)
            services.append(Service(link, instance, connector.category, connector))
    return services


def own_service(slug: str) -> Service:
    """The current resident's service at ``slug``, or 404 — whether the instance exists,
    or someone else has a link there, is not revealed."""
    citizen = g.citizen
    reg = registry()
    if slug not in reg.instances:
        abort(404)
    link = db.session.execute(
        db.select(ServiceLink).filter_by(citizen_id=citizen.id, instance_slug=slug)
    ).scalar_one_or_none()
    if link is None:
        abort(404)
    connector = reg.connector(slug)
    return Service(link, reg.instances[slug], connector.category, connector)


Reader = Callable[[Any, CallContext, LinkRef], tuple[T, datetime, bool]]


def read_panel(
    service: Service, reader: Reader[T], deadline_s: float, *, offline: bool = False
) -> Panel[T]:
    """``offline``: from the last good snapshots only, calling no back-end."""
    ctx = CallContext.with_timeout(
        deadline_s,
        actor=f"citizen:{service.link.citizen_id}",
        subject=str(service.link.id),
        offline=offline,
    )
    try:
        data, fetched_at, stale = reader(service.connector, ctx, service.ref)
    except LinkInvalid:
        _mark_needs_relink(service.link)
        return Panel("relink")
    except Refused as exc:
        return Panel("unavailable", reason=exc.reason)
    except (Unavailable, ContractBroken) as exc:
        if not offline:
            log.info("read on %s failed: %s", service.slug, type(exc).__name__)
        return Panel("unavailable")
    except Exception:
        # A connector bug must cost one card, not the page.
        log.exception("read on %s crashed", service.slug)
        return Panel("unavailable")
    if not offline:  # a snapshot says nothing of whether the back-end still knows the link
        _set_link_status(service.link, "active")
    return Panel("stale" if stale else "ok", data, fetched_at)


def _read_in_worker(app: Flask, link_id: int, reader: Reader[Any], deadline_s: float) -> Panel[Any]:
    """One service, in a worker: its own app context, its own session, its own link row
    (an ORM object never crosses threads)."""
    with app.app_context():
        link = db.session.get(ServiceLink, link_id)
        if link is None:  # unlinked meanwhile
            return Panel("unavailable")
        # Give the connection back before calling the back-end: a worker waiting on a
        # slow service must not hold one of the pool's few connections all that time
        # (the snapshot store takes its own, briefly, for each call).
        db.session.expunge(link)
        db.session.close()
        reg = registry()
        connector = reg.connector(link.instance_slug)
        service = Service(link, reg.instances[link.instance_slug], connector.category, connector)
        return read_panel(service, reader, deadline_s)


def read_concurrently(
    services: Sequence[Service], readers: dict[str, Reader[Any]], deadline_s: float
) -> dict[str, Panel[Any]]:
    """Each service read with its reader, all at once; never raises, never waits past the
    deadline (plus a small grace) for a slow one, which is then "unavailable"."""
    if not services:
        return {}
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    panels: dict[str, Panel[Any]] = {}
    pool = ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(services)))
    try:
        futures = {
            pool.submit(_read_in_worker, app, svc.link.id, readers[svc.slug], deadline_s): svc
            for svc in services
        }
        done, _pending = wait(futures, timeout=deadline_s + GRACE_S)
        for future, svc in futures.items():
            if future not in done:
                log.info("read on %s went past its deadline", svc.slug)
                panels[svc.slug] = Panel("unavailable")
            elif future.exception() is not None:
                log.error("read on %s crashed", svc.slug, exc_info=future.exception())
                panels[svc.slug] = Panel("unavailable")
            else:
                panels[svc.slug] = future.result()
    finally:
        # A worker still waiting on a back-end ends at its own deadline; nobody waits for it.
        pool.shutdown(wait=False, cancel_futures=True)
    return panels


def _mark_needs_relink(link: ServiceLink) -> None:
    _set_link_status(link, "needs_relink")


def _set_link_status(link: ServiceLink, status: str) -> None:
    """Record what the back-end said of the link, with a statement of its own: the link
    may be detached (read in a worker that gave its connection back during the call)."""
    if link.status == status:
        return
    db.session.execute(
        sa.update(ServiceLink).where(ServiceLink.id == link.id).values(status=status)
    )
    db.session.commit()
    set_committed_value(link, "status", status)


def combine(*results: ReadResult[Any]) -> tuple[datetime, bool]:
    """Oldest fetch time and whether any part is stale: a card is as fresh as its
    stalest part."""
    return min(r.fetched_at for r in results), any(r.stale for r in results)


# -- library -------------------------------------------------------------------------------


@dataclass
class LibraryView:
    patron: Any
    loans: Sequence[Any]
    holds: Sequence[Any] = ()
    account: Any = None
    today: date = field(default_factory=date.today)

    @property
    def overdue(self) -> list[Any]:
        return [loan for loan in self.loans if loan.due_date < self.today]

    @property
    def due_soon(self) -> list[Any]:
        limit = self.today + timedelta(days=DUE_SOON_DAYS)
        return [loan for loan in self.loans if self.today <= loan.due_date <= limit]

    @property
    def next_due(self) -> date | None:
        upcoming = [loan.due_date for loan in self.loans if loan.due_date >= self.today]
        return min(upcoming) if upcoming else None

    @property
    def holds_ready(self) -> list[Any]:
        return [hold for hold in self.holds if hold.status == "ready"]

    def loan_state(self, loan: Any) -> str:
        if loan.due_date < self.today:
            return "overdue"
        if loan.due_date <= self.today + timedelta(days=DUE_SOON_DAYS):
            return "due-soon"
        return ""


def library_card(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[LibraryView, datetime, bool]:
    patron = conn.patron(ctx, ref)
    loans = conn.loans(ctx, ref)
    holds = conn.holds(ctx, ref)
    return LibraryView(patron.data, loans.data, holds.data), *combine(patron, loans, holds)


def library_page(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[LibraryView, datetime, bool]:
    patron = conn.patron(ctx, ref)
    loans = conn.loans(ctx, ref)
    holds = conn.holds(ctx, ref)
    account = conn.account(ctx, ref)
    view = LibraryView(
        patron.data, sorted(loans.data, key=lambda loan: loan.due_date), holds.data, account.data
    )
    return view, *combine(patron, loans, holds, account)


# -- canteen -------------------------------------------------------------------------------


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


# -- housing -------------------------------------------------------------------------------


def housing_page(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[Any, datetime, bool]:
    application = conn.application(ctx, ref)
    return application.data, application.fetched_at, application.stale


def reader_for(category: str, *, page: bool) -> Reader[Any]:
    today = date.today()
    if category == "library":
        return library_page if page else library_card
    if category == "canteen":
        return canteen_reader(today.replace(day=1))
    if category == "housing":
        return housing_page
    raise LookupError(category)
