"""Deterministic water-supply records of the sandbox (two operators), built relative to *today*.

Each household is one supply contract (abonnement) with its meter, its readings, its
consumption per half-yearly billing period (five years of history, so the same period
of the three previous years can always be compared), its invoices and, where the
volume of a period exceeded twice the average of the same period over the last three
years, the abnormal-consumption notice the law requires (CGCT L2224-12-4).

Billing periods are half-years ending on the last day of the month before last, so
that the latest period is over, read and invoiced, whatever day the sandbox runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sandbox.backends.records import add_months, month_label

#: Price of a cubic metre (water, sewerage, taxes), and the fixed part of a half-year.
PRICE_PER_M3_CENTS = 420
SUBSCRIPTION_CENTS = 3_450
#: Largest repair invoice a cap request may carry, and its only accepted type.
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
#: A declared index implying more than this many times the household's average daily
#: use since the last reading is refused as implausible.
IMPLAUSIBLE_FACTOR = 10
#: Periods of history each long-standing contract has (five years of half-years).
HISTORY_PERIODS = 10


@dataclass
class WaterReading:
    taken_on: date
    index_m3: int
    kind: str  # actual | declared | estimated


@dataclass
class WaterPeriod:
    start: date
    end: date
    volume_m3: int


@dataclass
class WaterInvoice:
    invoice_id: str
    label: str
    amount_cents: int
    issued_on: date
    due_date: date
    paid_on: date | None = None
    pdf_available: bool = True

    @property
    def paid(self) -> bool:
        return self.paid_on is not None


@dataclass
class WaterInstalment:
    due_date: date
    amount_cents: int
    paid: bool


@dataclass
class CapRequest:
    """What the operator keeps of a cap request: never the plumber's invoice itself,
    only its size and digest (the sandbox checks it and forgets it)."""

    reference: str
    received_on: date
    repaired_on: date
    repair_location: str
    attachment_sha256: str
    attachment_bytes: int


@dataclass
class WaterAlert:
    alert_id: str
    period_start: date
    period_end: date
    volume_m3: int
    average_m3: int
    notified_on: date
    respond_by: date
    #: ``open``, ``requested``, ``accepted`` or ``rejected``; an open alert past its
    #: deadline reads as ``expired`` (see ``status_on``).
    status: str = "open"
    invoice_id: str | None = None
    cap_request: CapRequest | None = None

    def status_on(self, today: date) -> str:
        if self.status == "open" and today > self.respond_by:
            return "expired"
        return self.status


@dataclass
class WaterContract:
    owner: str
    contract_id: str
    contract_number: str
    customer_reference: str
    holder: str
    supply_address: str
    meter_number: str
    meter_diameter_mm: int
    tariff: str
    started_on: date
    payment_plan: str  # monthly | direct_debit | per_invoice
    periods: list[WaterPeriod]
    readings: list[WaterReading]
    invoices: dict[str, WaterInvoice]
    instalments: list[WaterInstalment] = field(default_factory=list)
    alerts: dict[str, WaterAlert] = field(default_factory=dict)
    ended_on: date | None = None
    reading_requested_by: date | None = None
    locked: bool = False
    failed_attempts: int = 0

    def last_trusted_reading(self) -> WaterReading | None:
        """The latest actual or declared reading (estimates prove nothing)."""
        trusted = [r for r in self.readings if r.kind in ("actual", "declared")]
        return max(trusted, key=lambda r: (r.taken_on, r.index_m3), default=None)

    def average_daily_m3(self) -> float:
        """Average use per day over the last three years of billed periods."""
        recent = sorted(self.periods, key=lambda p: p.end, reverse=True)[:6]
        days = sum((p.end - p.start).days + 1 for p in recent)
        return sum(p.volume_m3 for p in recent) / days if days else 0.0


@dataclass
class WaterTenant:
    title: str
    contracts: dict[str, WaterContract]


# -- building the records ------------------------------------------------------------------


def period_bounds(today: date, index: int) -> tuple[date, date]:
    """Billing period ``index`` (0 = the latest one over), as (first day, last day)."""
    anchor = add_months(today.replace(day=1), -1)
    end = add_months(anchor, -6 * index) - timedelta(days=1)
    start = add_months(anchor, -6 * (index + 1))
    return start, end


def period_label(start: date, end: date) -> str:
    """``mai à octobre 2026`` or ``novembre 2025 à avril 2026``."""
    first, last = month_label(start), month_label(end)
    if start.year == end.year:
        first = first.rsplit(" ", 1)[0]
    return f"{first} à {last}"


def same_period_average(volumes: list[int], index: int) -> int:
    """Average volume of the same period over the three previous years."""
    previous = [volumes[index + 2 * k] for k in (1, 2, 3) if index + 2 * k < len(volumes)]
    return round(sum(previous) / len(previous)) if previous else 0


def _history(
    today: date,
    volumes: list[int],
    first_index: int,
    kinds: dict[int, str] | None = None,
    *,
    started_on: date | None = None,
    ended_on: date | None = None,
) -> tuple[list[WaterPeriod], list[WaterReading]]:
    """Periods (newest first) for ``volumes`` (newest first) and a reading at the end of
    each, the index counted up from ``first_index``. ``kinds`` marks readings by period
    index (``estimated``, ``declared``); the others are actual readings."""
    kinds = kinds or {}
    periods: list[WaterPeriod] = []
    for index, volume in enumerate(volumes):
        start, end = period_bounds(today, index)
        if started_on is not None and index == len(volumes) - 1:
            start = max(start, started_on)
        if ended_on is not None and index == 0:
            end = ended_on
        periods.append(WaterPeriod(start, end, volume))
    readings = []
    index_m3 = first_index
    oldest = periods[-1]
    readings.append(WaterReading(oldest.start, first_index, "actual"))
    for position in range(len(periods) - 1, -1, -1):
        index_m3 += periods[position].volume_m3
        readings.append(
            WaterReading(periods[position].end, index_m3, kinds.get(position, "actual"))
        )
    readings.reverse()
    return periods, readings


def _invoices(
    today: date,
    prefix: str,
    periods: list[WaterPeriod],
    *,
    latest_issued: int = -5,
    latest_due: int = 25,
    latest_paid: int | None = None,
    count: int = 4,
    archived_from: int | None = None,
    amount_of: dict[int, int] | None = None,
) -> dict[str, WaterInvoice]:
    """One invoice per period, newest first; the older ones are paid."""
    invoices = {}
    for index, period in enumerate(periods[:count]):
        invoice_id = f"{prefix}-{period.end:%y%m}"
        amount = (amount_of or {}).get(
            index, SUBSCRIPTION_CENTS + period.volume_m3 * PRICE_PER_M3_CENTS
        )
        if index == 0:
            issued = today + timedelta(days=latest_issued)
            due = today + timedelta(days=latest_due)
            paid = None if latest_paid is None else today + timedelta(days=latest_paid)
        else:
            issued = period.end + timedelta(days=20)
            due = issued + timedelta(days=30)
            paid = issued + timedelta(days=12)
        invoices[invoice_id] = WaterInvoice(
            invoice_id,
            f"Eau et assainissement — {period_label(period.start, period.end)}",
            amount,
            issued_on=issued,
            due_date=due,
            paid_on=paid,
            pdf_available=archived_from is None or index < archived_from,
        )
    return invoices


def _monthly_plan(today: date, amount_cents: int) -> list[WaterInstalment]:
    """Ten monthly instalments on the 5th, five of them behind us."""
    first = add_months(today.replace(day=1), -5)
    plan = []
    for month in range(10):
        due = add_months(first, month) + timedelta(days=4)
        plan.append(WaterInstalment(due, amount_cents, due < today))
    return plan


def build_water(today: date) -> dict[str, WaterTenant]:
    return {"bordeaux": _water_bordeaux(today), "pessac": _water_pessac(today)}


def _water_bordeaux(today: date) -> WaterTenant:
    contracts: list[WaterContract] = []

    # Marie-Thérèse: a leak. The latest period is far more than twice the average of the
    # same period of the three previous years; the notice came with the invoice.
    volumes = [148, 47, 52, 45, 55, 44, 50, 46, 53, 45]
    periods, readings = _history(today, volumes, 1_208)
    invoices = _invoices(today, "eau-bdx-4521", periods, archived_from=3)
    latest = periods[0]
    leak_invoice = next(iter(invoices))
    notified = today - timedelta(days=4)
    contracts.append(
        WaterContract(
            owner="marie-therese",
            contract_id="ctr-bdx-4521",
            contract_number="CT-33063-004521",
            customer_reference="R7K4M2P9",
            holder="Marie-Thérèse Dubois",
            supply_address="12 rue des Faures, 33000 Bordeaux",
            meter_number="B19-004521",
            meter_diameter_mm=15,
            tariff="Tarif domestique",
            started_on=date(2009, 4, 1),
            payment_plan="per_invoice",
            periods=periods,
            readings=readings,
            invoices=invoices,
            alerts={
                "alr-bdx-4521-1": WaterAlert(
                    "alr-bdx-4521-1",
                    latest.start,
                    latest.end,
                    latest.volume_m3,
                    same_period_average(volumes, 0),
                    notified_on=notified,
                    respond_by=add_one_month(notified),
                    invoice_id=leak_invoice,
                )
            },
        )
    )

    # Charles d'Artagnan-Lévêque: an ordinary household paying monthly instalments.
    volumes = [58, 49, 61, 50, 57, 48, 60, 51, 59, 47]
    periods, readings = _history(today, volumes, 3_402)
    contracts.append(
        WaterContract(
            owner="dartagnan",
            contract_id="ctr-bdx-6630",
            contract_number="CT-33063-006630",
            customer_reference="T9D2W5LQ",
            holder="Charles d'Artagnan-Lévêque",
            supply_address="3 place Paul-Doumer, 33000 Bordeaux",
            meter_number="B21-006630",
            meter_diameter_mm=15,
            tariff="Tarif domestique",
            started_on=date(2016, 9, 15),
            payment_plan="monthly",
            instalments=_monthly_plan(today, 3_900),
            periods=periods,
            readings=readings,
            invoices=_invoices(
                today,
                "eau-bdx-6630",
                periods,
                latest_paid=-5,
                amount_of={0: 1_260, 1: 840, 2: 2_140, 3: 610},
            ),
        )
    )

    # Amina Benali: the meter could not be reached twice; the operator asks her to read it.
    volumes = [36, 33, 38, 31, 35, 30, 37, 32, 34, 31]
    periods, readings = _history(today, volumes, 812, {0: "estimated", 1: "estimated"})
    contracts.append(
        WaterContract(
            owner="amina",
            contract_id="ctr-bdx-0958",
            contract_number="CT-33063-000958",
            customer_reference="A3N8B1XK",
            holder="Amina Benali",
            supply_address="Résidence Les Aubiers, bâtiment C, appartement 41, 33300 Bordeaux",
            meter_number="B17-000958",
            meter_diameter_mm=15,
            tariff="Tarif domestique — tarification sociale",
            started_on=date(2014, 2, 1),
            payment_plan="per_invoice",
            periods=periods,
            readings=readings,
            invoices=_invoices(today, "eau-bdx-0958", periods, latest_paid=-2),
            reading_requested_by=today + timedelta(days=10),
        )
    )

    # Lucas Rousseau: moved out (he was given social housing); the contract is closed.
    ended = period_bounds(today, 1)[1] + timedelta(days=40)
    volumes = [14, 42, 47, 41, 45, 40, 46, 42, 44, 41]
    periods, readings = _history(today, volumes, 2_045, ended_on=ended)
    contracts.append(
        WaterContract(
            owner="lucas",
            contract_id="ctr-bdx-0415",
            contract_number="CT-33063-000415",
            customer_reference="L6R0U4SS",
            holder="Lucas Rousseau",
            supply_address="27 cours de l'Argonne, 33000 Bordeaux",
            meter_number="B15-000415",
            meter_diameter_mm=15,
            tariff="Tarif domestique",
            started_on=date(2012, 10, 1),
            payment_plan="per_invoice",
            periods=periods,
            readings=readings,
            invoices=_invoices(
                today,
                "eau-bdx-0415",
                periods,
                latest_issued=(ended - today).days + 15,
                latest_due=(ended - today).days + 45,
                latest_paid=(ended - today).days + 30,
            ),
            ended_on=ended,
        )
    )
    return WaterTenant("Régie de l'eau de Bordeaux", {c.contract_id: c for c in contracts})


def _water_pessac(today: date) -> WaterTenant:
    contracts: list[WaterContract] = []

    # Jean-Baptiste: an invoice due in a week, and a notice of last year he never
    # answered (its month has passed).
    volumes = [88, 71, 192, 70, 84, 69, 86, 72, 83, 70]
    periods, readings = _history(today, volumes, 5_310, {3: "declared"})
    invoices = _invoices(today, "eau-pes-0101", periods, latest_issued=-23, latest_due=7)
    old = periods[2]
    old_invoice = f"eau-pes-0101-{old.end:%y%m}"
    notified = old.end + timedelta(days=20)
    contracts.append(
        WaterContract(
            owner="jean-baptiste",
            contract_id="ctr-pes-0101",
            contract_number="PS-33318-000101",
            customer_reference="J1B9L5TA",
            holder="Jean-Baptiste de La Tour d'Auvergne-Lauraguais",
            supply_address="8 avenue du Général-Leclerc, 33600 Pessac",
            meter_number="P12-000101",
            meter_diameter_mm=20,
            tariff="Tarif domestique",
            started_on=date(1998, 6, 1),
            payment_plan="per_invoice",
            periods=periods,
            readings=readings,
            invoices=invoices,
            alerts={
                "alr-pes-0101-1": WaterAlert(
                    "alr-pes-0101-1",
                    old.start,
                    old.end,
                    old.volume_m3,
                    same_period_average(volumes, 2),
                    notified_on=notified,
                    respond_by=add_one_month(notified),
                    invoice_id=old_invoice,
                )
            },
        )
    )

    # Éloïse: moved in eight months ago, pays by direct debit; too new for comparisons.
    started = period_bounds(today, 1)[1] - timedelta(days=45)
    volumes = [19, 5]
    periods, readings = _history(today, volumes, 9_744, started_on=started)
    contracts.append(
        WaterContract(
            owner="eloise",
            contract_id="ctr-pes-1290",
            contract_number="PS-33318-001290",
            customer_reference="E2N7G3UY",
            holder="Éloïse Nguyen",
            supply_address="Résidence universitaire Le Taillan, chambre 214, 33600 Pessac",
            meter_number="P20-001290",
            meter_diameter_mm=15,
            tariff="Tarif domestique",
            started_on=started,
            payment_plan="direct_debit",
            periods=periods,
            readings=readings,
            invoices=_invoices(
                today, "eau-pes-1290", periods, latest_issued=-30, latest_due=-10, latest_paid=-10
            ),
        )
    )

    # Paul-Antoine: locked after too many wrong references (423 even with the right one).
    volumes = [62, 55, 60, 54, 63, 52, 61, 56, 60, 53]
    periods, readings = _history(today, volumes, 4_120)
    contracts.append(
        WaterContract(
            owner="paul-antoine",
            contract_id="ctr-pes-3112",
            contract_number="PS-33318-003112",
            customer_reference="P4C3S1NV",
            holder="Paul-Antoine Casanova",
            supply_address="41 rue Pasteur, 33600 Pessac",
            meter_number="P18-003112",
            meter_diameter_mm=15,
            tariff="Tarif domestique",
            started_on=date(2011, 3, 1),
            payment_plan="monthly",
            instalments=_monthly_plan(today, 4_200),
            periods=periods,
            readings=readings,
            invoices=_invoices(today, "eau-pes-3112", periods, latest_paid=-3),
            locked=True,
        )
    )
    return WaterTenant("Eau de Pessac", {c.contract_id: c for c in contracts})


def add_one_month(day: date) -> date:
    """The same day next month (the last day of a shorter month): a one-month deadline."""
    first = add_months(day, 1)
    following = add_months(day, 2)
    return min(first.replace(day=1) + timedelta(days=day.day - 1), following - timedelta(days=1))
