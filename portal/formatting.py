"""Dates, times and money formatted by Babel for the reader's locale, in the
territory's time zone.

French follows French typography (« 1er décembre », « 10 h 30 », non-breaking spaces);
English is British English (« 1 December 2026 », « 10:30 »), with none of it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from babel import Locale
from babel import dates as babel_dates
from flask import Flask
from flask_babel import (
    format_currency,
    format_date,
    format_percent,
    get_locale,
)

NBSP = "\u00a0"


def _french() -> bool:
    return str(get_locale() or "fr").startswith("fr")


#: Parsed once per process, not at every date a page shows.
_LOCALES = {True: Locale.parse("fr_FR"), False: Locale.parse("en_GB")}


#: The territory's time zone (``BABEL_DEFAULT_TIMEZONE``; no resident picks another):
#: converting with it directly costs a tenth of ``to_user_timezone``'s lookups.
TERRITORY_TZ = ZoneInfo("Europe/Paris")


def _moment(value: datetime) -> datetime:
    """A moment in the territory's time (a naive one is UTC)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(TERRITORY_TZ)


def _local(value: date | datetime) -> date | datetime:
    """A moment in the territory's time; a day stays a day."""
    return _moment(value) if isinstance(value, datetime) else value


def _day_pattern(value: date | datetime, pattern: str) -> str:
    local = _local(value)
    french = _french()
    text = babel_dates.format_date(local, pattern, locale=_LOCALES[french])
    if french and local.day == 1:
        # « 1er décembre », never « 1 décembre »
        text = "1er " + text[2:] if text.startswith("1 ") else text.replace(" 1 ", " 1er ", 1)
    return text


def money(cents: int | None) -> str:
    return format_currency((cents or 0) / 100, "EUR") if cents is not None else ""


#: A date is one unit on screen: its parts are joined by non-breaking spaces, so that a
#: narrow column or a line's end never splits « 23 / novembre 2026 ».
_UNBROKEN = str.maketrans({" ": "\u00a0"})


def day(value: date | datetime | None) -> str:
    """« 1er décembre 2026 », « 1 December 2026 », never split across lines."""
    return _day_pattern(value, "d MMMM y").translate(_UNBROKEN) if value is not None else ""


def short_day(value: date | datetime | None) -> str:
    """Weekday and day, e.g. « lundi 23 novembre », for calendars."""
    return _day_pattern(value, "EEEE d MMMM").translate(_UNBROKEN) if value is not None else ""


def clock(value: datetime | None) -> str:
    """« 10 h 30 », « 10:30 »."""
    if value is None:
        return ""
    local = _moment(value)
    if _french():
        return f"{local.hour}{NBSP}h{NBSP}{local.minute:02d}"
    return babel_dates.format_time(local, "HH:mm", locale="en_GB")


def when(value: datetime | None) -> str:
    """A moment: « 1er décembre 2026 à 10 h 30 », « 1 December 2026, 10:30 »."""
    if value is None:
        return ""
    if _french():
        return f"{day(value)} à {clock(value)}"
    return f"{day(value)}, {clock(value)}"


def init_formatting(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", TERRITORY_TZ.key)
    app.add_template_filter(money)
    app.add_template_filter(day)
    app.add_template_filter(short_day)
    app.add_template_filter(clock)
    app.add_template_filter(when)
    from portal.refusals import reason_text

    app.add_template_global(reason_text, "refusal_reason")
    app.jinja_env.globals.update(format_date=format_date, format_percent=format_percent)
