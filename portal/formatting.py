"""Dates, times and money formatted by Babel for the reader's locale, in the
territory's time zone."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask
from flask_babel import format_currency, format_date, format_percent, format_time


def money(cents: int | None) -> str:
    return format_currency((cents or 0) / 100, "EUR") if cents is not None else ""


#: A date is one unit on screen: its parts are joined by non-breaking spaces, so that a
#: narrow column or a line's end never splits « 23 / novembre 2026 ».
_UNBROKEN = str.maketrans({" ": "\u00a0"})


def day(value: date | datetime | None) -> str:
    return format_date(value, "long").translate(_UNBROKEN) if value is not None else ""


def short_day(value: date | datetime | None) -> str:
    """Weekday and day, e.g. « lundi 23 novembre », for calendars."""
    return format_date(value, "EEEE d MMMM").translate(_UNBROKEN) if value is not None else ""


def clock(value: datetime | None) -> str:
    return format_time(value, "short") if value is not None else ""


def init_formatting(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Europe/Paris")
    app.add_template_filter(money)
    app.add_template_filter(day)
    app.add_template_filter(short_day)
    app.add_template_filter(clock)
    app.jinja_env.globals.update(format_date=format_date, format_percent=format_percent)
