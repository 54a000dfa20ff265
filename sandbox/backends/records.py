"""What the records of every sandbox back-end share: the clock (Paris time, a pinnable
day), French dates, public holidays, and how many wrong proofs lock an account.
"""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sandbox.idp.identities import IDENTITIES_BY_KEY

PARIS = ZoneInfo("Europe/Paris")

#: Consecutive wrong proofs after which a card or family account is locked.
MAX_FAILED_PROOFS = 5

MONTHS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


# -- time --------------------------------------------------------------------------------


def paris_now() -> datetime:
    """Now, in the territory's time zone (deadlines are local times)."""
    return datetime.now(PARIS)


def sandbox_now(configured: str | None = None) -> datetime:
    """The sandbox's clock: now in Paris, moved to the pinned day if there is one.

    ``configured`` (or the ``SANDBOX_TODAY`` environment variable), an ISO date, pins the
    day so a test or a recorded demo can replay exactly the same records; the time of day
    stays real, so deadlines such as "10:00 two working days before" keep their meaning.
    """
    now = paris_now()
    value = configured or os.environ.get("SANDBOX_TODAY")
    if value:
        return datetime.combine(date.fromisoformat(value), now.timetz())
    return now


def sandbox_today(configured: str | None = None) -> date:
    """The day the data set is built for (see ``sandbox_now``)."""
    return sandbox_now(configured).date()


def local_datetime(day: date, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in Paris, with its UTC offset (RFC 3339 needs one)."""
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS)


def french_date(day: date) -> str:
    """``jeudi 14 mai 2026``: how dates are written in reasons a resident reads."""
    label = "1er" if day.day == 1 else str(day.day)
    return f"{WEEKDAYS_FR[day.weekday()]} {label} {MONTHS_FR[day.month - 1]} {day.year}"


def month_label(day: date) -> str:
    """``octobre 2026``."""
    return f"{MONTHS_FR[day.month - 1]} {day.year}"


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` away from ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def easter_sunday(year: int) -> date:
    """Gregorian Easter (anonymous Gregorian algorithm): three holidays hang on it."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def public_holidays(year: int) -> dict[date, str]:
    """French public holidays (jours fériés) of ``year``, with their names."""
    easter = easter_sunday(year)
    return {
        date(year, 1, 1): "Jour de l'An",
        easter + timedelta(days=1): "Lundi de Pâques",
        date(year, 5, 1): "Fête du Travail",
        date(year, 5, 8): "Victoire 1945",
        easter + timedelta(days=39): "Ascension",
        easter + timedelta(days=50): "Lundi de Pentecôte",
        date(year, 7, 14): "Fête nationale",
        date(year, 8, 15): "Assomption",
        date(year, 11, 1): "Toussaint",
        date(year, 11, 11): "Armistice 1918",
        date(year, 12, 25): "Noël",
    }


def holiday_name(day: date) -> str:
    return public_holidays(day.year).get(day, "")


def is_working_day(day: date) -> bool:
    """Monday to Friday, not a public holiday: when the canteen office handles changes."""
    return day.weekday() < 5 and not holiday_name(day)


def birthdate_of(identity_key: str) -> str:
    identity = IDENTITIES_BY_KEY[identity_key]
    return identity.birthdate


def days_from(today: date, offset: int) -> date:
    return today + timedelta(days=offset)
