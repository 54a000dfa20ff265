"""Records of the sandbox's school canteens (Bordeaux), built relative to *today*, with the
canteen calendar: which days are served and until when a booking can change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sandbox.backends.records import (
    add_months,
    days_from,
    holiday_name,
    is_working_day,
    local_datetime,
    month_label,
)

# -- canteen -------------------------------------------------------------------------------


@dataclass
class CanteenChild:
    child_id: str
    first_name: str
    school: str
    grade: str
    #: Weekdays (0 = Monday) booked by default, as in the family's yearly registration.
    weekdays: frozenset[int]
    #: Day-by-day changes made since registration: date -> booked.
    overrides: dict[date, bool] = field(default_factory=dict)

    def booked(self, day: date) -> bool:
        if not serves_meals(day):
            return False
        return self.overrides.get(day, day.weekday() in self.weekdays)


@dataclass
class CanteenInvoice:
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
class CanteenFamily:
    owner: str
    family_id: str
    family_number: str
    invoice_code: str
    display_name: str
    payer_name: str
    quotient_tier: str
    meal_price_cents: int
    children: dict[str, CanteenChild]
    invoices: dict[str, CanteenInvoice]
    locked: bool = False
    failed_attempts: int = 0


@dataclass
class CanteenTenant:
    title: str
    families: dict[str, CanteenFamily]


def serves_meals(day: date) -> bool:
    """School canteens serve Monday, Tuesday, Thursday and Friday, except public holidays.

    (No school on Wednesdays in most French primary schools; school holidays are left out
    so that a demo always has days to book.)
    """
    return day.weekday() in (0, 1, 3, 4) and not holiday_name(day)


def no_service_note(day: date) -> str:
    """Why there is no meal on ``day``, for the resident."""
    holiday = holiday_name(day)
    if holiday:
        return f"Jour férié ({holiday}) : pas de restauration scolaire."
    if day.weekday() == 2:
        return "Pas de restauration scolaire le mercredi."
    if day.weekday() >= 5:
        return "Pas de restauration scolaire le week-end."
    return ""


def change_deadline(day: date) -> datetime:
    """Bookings for ``day`` can change until 10:00 two working days before."""
    cursor = day
    working_days = 0
    while working_days < 2:
        cursor -= timedelta(days=1)
        if is_working_day(cursor):
            working_days += 1
    return local_datetime(cursor, 10, 0)


def build_canteen(today: date) -> dict[str, CanteenTenant]:
    return {"bordeaux": _canteen_bordeaux(today)}


def _canteen_bordeaux(today: date) -> CanteenTenant:
    last_month = add_months(today, -1)
    two_months_ago = add_months(today, -2)
    three_months_ago = add_months(today, -3)
    dubois = CanteenFamily(
        owner="marie-therese",
        family_id="fam-4521",
        family_number="0045217",
        invoice_code="KX4M7P",
        display_name="Famille Dubois",
        payer_name="Marie-Thérèse Dubois",
        quotient_tier="B",
        meal_price_cents=285,
        children={
            "enf-4521-1": CanteenChild(
                "enf-4521-1",
                "Chloé",
                "École élémentaire Albert-Thomas",
                "CM1",
                frozenset({0, 1, 3, 4}),
            ),
            "enf-4521-2": CanteenChild(
                "enf-4521-2",
                "Hugo",
                "École maternelle Albert-Thomas",
                "Grande section",
                frozenset({0, 1, 3}),
            ),
        },
        invoices={
            "fac-4521-2611": CanteenInvoice(
                "fac-4521-2611",
                f"Restauration scolaire — {month_label(last_month)}",
                8835,
                issued_on=days_from(today, -9),
                due_date=days_from(today, 21),
            ),
            "fac-4521-2612": CanteenInvoice(
                "fac-4521-2612",
                f"Accueil périscolaire du matin — {month_label(last_month)}",
                2460,
                issued_on=days_from(today, -9),
                due_date=days_from(today, 5),
            ),
            "fac-4521-2610": CanteenInvoice(
                "fac-4521-2610",
                f"Restauration scolaire — {month_label(two_months_ago)}",
                9405,
                issued_on=days_from(today, -39),
                due_date=days_from(today, -9),
                paid_on=days_from(today, -30),
            ),
            "fac-4521-2609": CanteenInvoice(
                "fac-4521-2609",
                f"Restauration scolaire — {month_label(three_months_ago)}",
                7980,
                issued_on=days_from(today, -69),
                due_date=days_from(today, -39),
                paid_on=days_from(today, -62),
                pdf_available=False,
            ),
        },
    )
    artagnan = CanteenFamily(
        owner="dartagnan",
        family_id="fam-6630",
        family_number="0066302",
        invoice_code="PT9R2D",
        display_name="Famille d'Artagnan-Lévêque",
        payer_name="Charles d'Artagnan-Lévêque",
        quotient_tier="D",
        meal_price_cents=410,
        children={
            "enf-6630-1": CanteenChild(
                "enf-6630-1",
                "Léa",
                "École élémentaire Paul-Bert",
                "CE2",
                frozenset({0, 1, 3, 4}),
            )
        },
        invoices={
            "fac-6630-2611": CanteenInvoice(
                "fac-6630-2611",
                f"Restauration scolaire — {month_label(last_month)}",
                6560,
                issued_on=days_from(today, -9),
                due_date=days_from(today, 21),
            )
        },
    )
    families = [dubois, artagnan]
    return CanteenTenant("Restauration scolaire de Bordeaux", {f.family_id: f for f in families})
