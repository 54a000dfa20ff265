"""Deterministic synthetic records of the sandbox back-ends, built relative to *today*.

Every date is an offset from the day the data set is built for, so due dates, meal
deadlines and renewal windows always mean something in a demo or a test, whatever the
calendar says. Nothing is random: two sandboxes built for the same day hold exactly the
same records, which is what lets tests compare them and demo scripts rely on them.

Each record belongs to one of the identity provider's test identities (``owner``) and
carries the proof its back-end asks for (card number and PIN, family number and invoice
code, housing "numéro unique", water contract number and customer reference), always
with that identity's birth date, so the portal can link accounts the way a resident
would.

The records of each kind live in their own module (``library_data``, ``koha_data``,
``canteen_data``, ``housing_data``, ``water_data``), on the shared clock and calendar of
``records``; this module assembles them into one ``Dataset`` and still exports every
name it always did, so ``from sandbox.backends.data import ...`` keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sandbox.backends.canteen_data import (
    CanteenChild,
    CanteenFamily,
    CanteenInvoice,
    CanteenTenant,
    build_canteen,
    change_deadline,
    no_service_note,
    serves_meals,
)
from sandbox.backends.housing_data import (
    HOUSING_RENEWAL_NOTICE_DAYS,
    HousingApplication,
    HousingTenant,
    build_housing,
)
from sandbox.backends.koha_data import (
    KOHA_FAILED_LOGIN_ATTEMPTS,
    KohaBiblio,
    KohaCheckout,
    KohaDebit,
    KohaHold,
    KohaItem,
    KohaPatron,
    KohaTenant,
    build_koha,
)
from sandbox.backends.library_data import (
    LOAN_PERIOD_DAYS,
    REASON_CARD_EXPIRED,
    REASON_CODES,
    REASON_IN_TRANSIT,
    REASON_OVERDUE,
    REASON_RESERVED,
    REASON_TOO_MANY,
    LibraryFine,
    LibraryHold,
    LibraryLoan,
    LibraryPatron,
    LibraryTenant,
    build_library,
)
from sandbox.backends.records import (
    MAX_FAILED_PROOFS,
    MONTHS_FR,
    PARIS,
    WEEKDAYS_FR,
    add_months,
    birthdate_of,
    easter_sunday,
    french_date,
    holiday_name,
    is_working_day,
    local_datetime,
    month_label,
    paris_now,
    public_holidays,
    sandbox_now,
    sandbox_today,
)
from sandbox.backends.water_data import WaterTenant, build_water

__all__ = [
    "HOUSING_RENEWAL_NOTICE_DAYS",
    "KOHA_FAILED_LOGIN_ATTEMPTS",
    "LOAN_PERIOD_DAYS",
    "MAX_FAILED_PROOFS",
    "MONTHS_FR",
    "PARIS",
    "REASON_CARD_EXPIRED",
    "REASON_CODES",
    "REASON_IN_TRANSIT",
    "REASON_OVERDUE",
    "REASON_RESERVED",
    "REASON_TOO_MANY",
    "WEEKDAYS_FR",
    "CanteenChild",
    "CanteenFamily",
    "CanteenInvoice",
    "CanteenTenant",
    "Dataset",
    "HousingApplication",
    "HousingTenant",
    "KohaBiblio",
    "KohaCheckout",
    "KohaDebit",
    "KohaHold",
    "KohaItem",
    "KohaPatron",
    "KohaTenant",
    "LibraryFine",
    "LibraryHold",
    "LibraryLoan",
    "LibraryPatron",
    "LibraryTenant",
    "WaterTenant",
    "add_months",
    "birthdate_of",
    "build_dataset",
    "change_deadline",
    "easter_sunday",
    "french_date",
    "holiday_name",
    "is_working_day",
    "local_datetime",
    "month_label",
    "no_service_note",
    "paris_now",
    "public_holidays",
    "sandbox_now",
    "sandbox_today",
    "serves_meals",
]


@dataclass
class Dataset:
    today: date
    library: dict[str, LibraryTenant]
    koha: dict[str, KohaTenant]
    canteen: dict[str, CanteenTenant]
    housing: dict[str, HousingTenant]
    water: dict[str, WaterTenant]


def build_dataset(today: date) -> Dataset:
    """Every record of every tenant, for ``today``. Pure: same day, same records."""
    return Dataset(
        today=today,
        library=build_library(today),
        koha=build_koha(today),
        canteen=build_canteen(today),
        housing=build_housing(today),
        water=build_water(today),
    )
