"""What the water card and page show, read through the resident's link.

The contract, its readings, its consumption per period, its alerts and its invoices are
independent reads: they go out side by side (``connectors.concurrent.gather``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from connectors.base import (
    CallContext,
    ConsumptionAlert,
    ConsumptionPeriod,
    Invoice,
    LinkRef,
    MeterReading,
    ReadResult,
    WaterContract,
)
from connectors.concurrent import gather
from portal.services.core import Reader, combine

#: Two periods are "the same period" of different years when their starts are this
#: close, once whole years apart.
SAME_PERIOD_SLACK_DAYS = 45
#: Years of history the comparison and the law's average look back on.
YEARS_BACK = 3


def same_period_before(
    periods: Sequence[ConsumptionPeriod], period: ConsumptionPeriod, years: int
) -> ConsumptionPeriod | None:
    """The period that started about ``years`` years before ``period``, if any."""
    target = period.start - timedelta(days=round(365.25 * years))
    close = [
        p for p in periods if abs((p.start - target).days) <= SAME_PERIOD_SLACK_DAYS and p != period
    ]
    return min(close, key=lambda p: abs((p.start - target).days)) if close else None


def same_period_average(
    periods: Sequence[ConsumptionPeriod], period: ConsumptionPeriod
) -> float | None:
    """The average volume of the same period over the last three years (as the law
    counts it), or None when the contract is too recent to have one."""
    earlier = [same_period_before(periods, period, years) for years in range(1, YEARS_BACK + 1)]
    volumes = [p.volume_m3 for p in earlier if p is not None]
    return sum(volumes) / len(volumes) if volumes else None


@dataclass
class WaterView:
    contract: WaterContract
    periods: Sequence[ConsumptionPeriod]
    alerts: Sequence[ConsumptionAlert]
    invoices: Sequence[Invoice]
    readings: Sequence[MeterReading] = ()
    today: date = field(default_factory=date.today)

    @property
    def closed(self) -> bool:
        return self.contract.ended_on is not None and self.contract.ended_on <= self.today

    @property
    def latest(self) -> ConsumptionPeriod | None:
        return max(self.periods, key=lambda p: p.end) if self.periods else None

    @property
    def chronological(self) -> list[ConsumptionPeriod]:
        return sorted(self.periods, key=lambda p: p.start)

    def year_before(self, period: ConsumptionPeriod) -> ConsumptionPeriod | None:
        return same_period_before(self.periods, period, 1)

    def average_of(self, period: ConsumptionPeriod) -> float | None:
        return same_period_average(self.periods, period)

    @property
    def trend(self) -> tuple[ConsumptionPeriod, ConsumptionPeriod] | None:
        """The latest period and the same one a year earlier, when both are known."""
        latest = self.latest
        if latest is None:
            return None
        before = self.year_before(latest)
        return (latest, before) if before is not None else None

    @property
    def open_alerts(self) -> list[ConsumptionAlert]:
        return [a for a in self.alerts if a.status == "open" and a.respond_by >= self.today]

    @property
    def unpaid(self) -> list[Invoice]:
        return [invoice for invoice in self.invoices if not invoice.paid]

    @property
    def next_due(self) -> date | None:
        """The next date money is due: an unpaid invoice or the next instalment."""
        dates = [i.due_date for i in self.unpaid]
        dates += [i.due_date for i in self.contract.instalments if not i.paid]
        upcoming = [d for d in dates if d >= self.today]
        return min(upcoming) if upcoming else (min(dates) if dates else None)

    @property
    def last_trusted(self) -> MeterReading | None:
        """The last reading taken by the operator or declared by the resident (an
        estimated one says nothing of the meter)."""
        trusted = [r for r in self.readings if r.kind != "estimated"]
        return max(trusted, key=lambda r: (r.taken_on, r.index_m3)) if trusted else None

    @property
    def usual_daily_m3(self) -> float:
        """Average use per day over the last three years of billed periods."""
        recent = sorted(self.periods, key=lambda p: p.end, reverse=True)[: 2 * YEARS_BACK]
        days = sum((p.end - p.start).days + 1 for p in recent)
        return sum(p.volume_m3 for p in recent) / days if days else 0.0

    @property
    def reading_requested(self) -> bool:
        return self.contract.reading_requested_by is not None and not self.closed

    def invoice(self, invoice_id: str | None) -> Invoice | None:
        return next((i for i in self.invoices if i.id == invoice_id), None)


def _read(
    conn: Any, ctx: CallContext, ref: LinkRef, with_readings: bool
) -> tuple[WaterView, datetime, bool]:
    calls: list[Callable[[], ReadResult[Any]]] = [
        lambda: conn.contract(ctx, ref),
        lambda: conn.consumption(ctx, ref),
        lambda: conn.alerts(ctx, ref),
        lambda: conn.invoices(ctx, ref),
    ]
    if with_readings:
        calls.append(lambda: conn.readings(ctx, ref))
    results = gather(ctx, calls)
    contract, periods, alerts, invoices = results[:4]
    readings = results[4].data if with_readings else ()
    invoices_sorted = sorted(invoices.data, key=lambda i: (i.paid, i.due_date))
    view = WaterView(contract.data, periods.data, alerts.data, invoices_sorted, readings)
    return view, *combine(*results)


def water_card(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[WaterView, datetime, bool]:
    """The card: the contract, the trend, the alert and what is due."""
    return _read(conn, ctx, ref, with_readings=False)


def water_page(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[WaterView, datetime, bool]:
    """The page: the card's reads and the meter readings."""
    return _read(conn, ctx, ref, with_readings=True)


def card_reader() -> Reader[WaterView]:
    return water_card
