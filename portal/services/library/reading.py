"""What the library's card and page show, read through the resident's link."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from connectors.base import CallContext, LinkRef
from connectors.concurrent import gather
from portal.services.core import combine

#: A loan due within this many days "stands out" on the card and the page.
DUE_SOON_DAYS = 3


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
    # Independent reads, side by side: the card waits for the slowest, not for the sum.
    patron, loans, holds = gather(
        ctx,
        [lambda: conn.patron(ctx, ref), lambda: conn.loans(ctx, ref), lambda: conn.holds(ctx, ref)],
    )
    return LibraryView(patron.data, loans.data, holds.data), *combine(patron, loans, holds)


def library_page(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[LibraryView, datetime, bool]:
    patron, loans, holds, account = gather(
        ctx,
        [
            lambda: conn.patron(ctx, ref),
            lambda: conn.loans(ctx, ref),
            lambda: conn.holds(ctx, ref),
            lambda: conn.account(ctx, ref),
        ],
    )
    view = LibraryView(
        patron.data, sorted(loans.data, key=lambda loan: loan.due_date), holds.data, account.data
    )
    return view, *combine(patron, loans, holds, account)


def read_loans(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[LibraryView, datetime, bool]:
    loans = conn.loans(ctx, ref)
    view = LibraryView(None, sorted(loans.data, key=lambda loan: loan.due_date))
    return view, loans.fetched_at, loans.stale


def read_holds(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[LibraryView, datetime, bool]:
    holds = conn.holds(ctx, ref)
    return LibraryView(None, (), holds.data), holds.fetched_at, holds.stale
