"""The daily roll-ups, and the purge of what measurement keeps only for a while.

``rollup_day(day)`` counts one Paris day of raw events into ``MeasureRollup`` (one row
per kind and combination of dimensions: count, distinct visitors, value sum, histogram)
and ``DailyVisitors`` (per instance, and ``""`` for the whole portal). It deletes the
day's rows and writes them again in one transaction: running it twice, or after more
events of that day arrived late, leaves exactly what the raw events say.

Journeys given up are computed here, per journey and dimensions, as
``max(0, started - completed - failed)``, and written as ``journey_failed`` rows of
failure ``given_up``; raw events never hold that class.

Each day's roll-ups are then summed into the summaries the owners' pages read
(``portal.measure.daily``).

``flask --app portal measure rollup`` rolls up every complete day not rolled up yet (or
``--day``), summarises any day rolled up without a summary, then deletes the visitor
keys of past days and the raw events older than ``RAW_EVENT_RETENTION``. Owners' pages,
the statistics API and open data read roll-ups and summaries, never raw events.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, cast

import click
import sqlalchemy as sa
from flask.cli import AppGroup
from sqlalchemy.engine import CursorResult

from portal.extensions import db
from portal.measure import bucket_of, empty_histogram
from portal.measure.daily import days_to_summarise, summarise_day
from portal.measure.events import paris_day, recorder
from portal.models import DailyVisitors, MeasureEvent, MeasureRollup, VisitorKey
from portal.models.measure import RAW_EVENT_RETENTION

DIMENSIONS = (
    "kind",
    "category",
    "instance",
    "step",
    "outcome",
    "failure",
    "channel",
    "assisted",
)


@dataclass
class _Group:
    count: int = 0
    value_sum: int = 0
    visitors: set[str] = field(default_factory=set)
    histogram: list[int] | None = None


@dataclass(frozen=True)
class RolledUp:
    day: date
    events: int
    rows: int
    visitors: int


def rollup_day(day: date) -> RolledUp:
    """Count ``day``'s raw events into its roll-ups, replacing what was there; commit."""
    table = MeasureEvent.__table__
    columns = [table.c[name] for name in DIMENSIONS] + [table.c.value_ms, table.c.visitor]
    groups: dict[tuple[Any, ...], _Group] = defaultdict(_Group)
    portal_visitors: set[str] = set()
    instance_visitors: dict[str, set[str]] = defaultdict(set)
    events = 0
    rows = db.session.execute(sa.select(*columns).where(table.c.day == day))
    for row in rows:
        events += 1
        key = tuple(row[: len(DIMENSIONS)])
        group = groups[key]
        group.count += 1
        value, visitor = row.value_ms, row.visitor
        if value is not None:
            group.value_sum += int(value)
            if group.histogram is None:
                group.histogram = empty_histogram()
            group.histogram[bucket_of(int(value))] += 1
        if visitor and row.kind == "page_view":
            group.visitors.add(visitor)
            portal_visitors.add(visitor)
            if row.instance:
                instance_visitors[row.instance].add(visitor)
    _add_given_up(groups)

    db.session.execute(sa.delete(MeasureRollup).where(MeasureRollup.day == day))
    db.session.execute(sa.delete(DailyVisitors).where(DailyVisitors.day == day))
    values = [
        {
            "day": day,
            **dict(zip(DIMENSIONS, key, strict=True)),
            "count": group.count,
            "visitors": len(group.visitors),
            "value_sum": group.value_sum,
            "histogram": group.histogram,
        }
        for key, group in sorted(groups.items(), key=lambda item: tuple(map(str, item[0])))
    ]
    if values:
        db.session.execute(sa.insert(MeasureRollup), values)
    daily = [{"day": day, "instance": "", "visitors": len(portal_visitors)}] if events else []
    daily += [
        {"day": day, "instance": instance, "visitors": len(visitors)}
        for instance, visitors in sorted(instance_visitors.items())
    ]
    if daily:
        db.session.execute(sa.insert(DailyVisitors), daily)
    summarise_day(day)
    db.session.commit()
    return RolledUp(day, events, len(values), len(portal_visitors))


def _add_given_up(groups: dict[tuple[Any, ...], _Group]) -> None:
    """Started - completed - failed, never negative, per journey and dimensions."""
    index = {name: i for i, name in enumerate(DIMENSIONS)}
    tally: dict[tuple[Any, ...], int] = defaultdict(int)
    signs = {"journey_started": 1, "journey_completed": -1, "journey_failed": -1}
    for key, group in groups.items():
        sign = signs.get(key[index["kind"]])
        if sign is None:
            continue
        journey = tuple(
            key[index[name]] for name in ("category", "instance", "step", "channel", "assisted")
        )
        tally[journey] += sign * group.count
    for (category, instance, step, channel, assisted), left in tally.items():
        if left > 0:
            key = (
                "journey_failed",
                category,
                instance,
                step,
                "failure",
                "given_up",
                channel,
                assisted,
            )
            groups[key].count += left


def days_to_roll_up(today: date | None = None) -> list[date]:
    """Complete days (before ``today``, Paris) with raw events and no roll-up yet."""
    today = today or paris_day()
    raw = sa.select(MeasureEvent.day).where(MeasureEvent.day < today).distinct()
    done = set(db.session.execute(sa.select(MeasureRollup.day).distinct()).scalars())
    return sorted(day for day in db.session.execute(raw).scalars() if day not in done)


def _deleted(statement: sa.Delete) -> int:
    return cast(CursorResult[Any], db.session.execute(statement)).rowcount or 0


def delete_past_keys(today: date | None = None) -> int:
    """The visitor keys of every day before ``today``: their hashes can no longer be
    tied to a session. Not committed."""
    today = today or paris_day()
    return _deleted(sa.delete(VisitorKey).where(VisitorKey.day < today))


def delete_old_events(now: datetime | None = None) -> int:
    """Raw events older than ``RAW_EVENT_RETENTION``. Not committed."""
    now = now or datetime.now(UTC)
    limit = now - RAW_EVENT_RETENTION
    return _deleted(sa.delete(MeasureEvent).where(MeasureEvent.at < limit))


measure_cli = AppGroup("measure", help="Anonymous measurement: roll-ups and retention.")


@measure_cli.command("rollup")
@click.option("--day", "day_text", default=None, help="One Paris day, YYYY-MM-DD.")
def rollup_command(day_text: str | None) -> None:
    """Roll up complete days (default: every one not rolled up yet, up to yesterday),
    then delete past days' visitor keys and raw events past retention. Safe to run
    again: a day rolled up twice is the same."""
    from flask import current_app

    rec = recorder(current_app)
    if rec is not None:
        rec.flush()  # what this process still holds
    if day_text:
        try:
            days = [date.fromisoformat(day_text)]
        except ValueError:
            raise click.BadParameter("YYYY-MM-DD", param_hint="--day") from None
    else:
        days = None
    for line in roll_up_pending(days).lines():
        click.echo(line)


@dataclass(frozen=True)
class Pending:
    rolled_up: list[RolledUp]
    summarised: list[tuple[date, int]]
    visitor_keys: int
    raw_events: int

    def lines(self) -> list[str]:
        return [
            *(
                f"{done.day.isoformat()}: {done.events} event(s), {done.rows} roll-up row(s), "
                f"{done.visitors} visitor(s)"
                for done in self.rolled_up
            ),
            *(
                f"{day.isoformat()}: {rows} summary row(s) from its roll-ups"
                for day, rows in self.summarised
            ),
            f"{self.visitor_keys} past visitor key(s) deleted",
            f"{self.raw_events} raw event(s) older than {RAW_EVENT_RETENTION.days} days deleted",
        ]


def roll_up_pending(days: list[date] | None = None) -> Pending:
    """Roll up ``days`` (default: every complete day not rolled up yet), summarise any
    day rolled up without a summary, then delete past days' visitor keys and raw events
    past retention; commit. What the worker runs each night and ``flask measure rollup``
    runs by hand: running it again changes nothing."""
    rolled_up = [rollup_day(day) for day in (days_to_roll_up() if days is None else days)]
    summarised = []
    for day in days_to_summarise():
        summarised.append((day, summarise_day(day)))
        db.session.commit()
    keys = delete_past_keys()
    events = delete_old_events()
    db.session.commit()
    return Pending(rolled_up, summarised, keys, events)


def rollup_up_to(today: date) -> list[RolledUp]:
    """Every complete day before ``today`` not rolled up yet (for tests and tools)."""
    return [rollup_day(day) for day in days_to_roll_up(today)]
