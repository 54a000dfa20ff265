"""Roll-ups written directly, as ``flask measure rollup`` would leave them, and summed
into their daily summaries by the same code as the command: the owners' pages, the
statistics API and the open data read only these tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from flask import Flask

from portal.extensions import db
from portal.measure import bucket_of, empty_histogram
from portal.measure.daily import summarise_day
from portal.models.measure import DailyVisitors, MeasureRollup, SatisfactionAnswer


def histogram_of(values_ms: Sequence[int]) -> list[int]:
    histogram = empty_histogram()
    for value in values_ms:
        histogram[bucket_of(value)] += 1
    return histogram


def rollup(
    day: date,
    kind: str,
    count: int,
    *,
    instance: str = "",
    category: str = "",
    step: str = "",
    outcome: str = "",
    failure: str = "",
    channel: str = "web",
    assisted: bool = False,
    values_ms: Sequence[int] | None = None,
    histogram: list[int] | None = None,
    value_sum: int | None = None,
) -> MeasureRollup:
    """One roll-up row; ``values_ms`` gives its histogram and value sum (and count)."""
    if values_ms is not None:
        histogram = histogram_of(values_ms)
        value_sum = sum(values_ms)
        count = len(values_ms)
    return MeasureRollup(
        day=day,
        kind=kind,
        category=category,
        instance=instance,
        step=step,
        outcome=outcome,
        failure=failure,
        channel=channel,
        assisted=assisted,
        count=count,
        visitors=0,
        value_sum=value_sum or 0,
        histogram=histogram,
    )


def visitors(day: date, n: int, instance: str = "") -> DailyVisitors:
    return DailyVisitors(day=day, instance=instance, visitors=n)


def answers(
    day: date,
    instance: str,
    satisfaction: str,
    n: int,
    *,
    clarity: int | None = None,
    category: str = "",
    journey: str = "",
) -> list[SatisfactionAnswer]:
    return [
        SatisfactionAnswer(
            day=day,
            instance=instance,
            category=category,
            journey=journey,
            satisfaction=satisfaction,
            clarity=clarity,
        )
        for _ in range(n)
    ]


def seed(app: Flask, rows: Sequence[object]) -> None:
    """Add the rows, then sum the roll-ups' days into their summaries, as ``flask measure
    rollup`` does after rolling a day up."""
    with app.app_context():
        db.session.add_all(list(rows))
        db.session.flush()
        for day in {row.day for row in rows if isinstance(row, MeasureRollup)}:
            summarise_day(day)
        db.session.commit()


def seed_service_month(
    app: Flask, instance: str, category: str, day: date, *, scale: int = 1
) -> None:
    """A typical day of one service: pages, a journey's funnel, links, calls, actions."""
    rows: list[object] = [
        rollup(day, "page_view", 0, instance=instance, category=category, step="page",
               values_ms=[40] * (90 * scale) + [250] * (10 * scale)),
        rollup(day, "journey_started", 20 * scale, instance=instance, category=category,
               step="renew_loan"),
        rollup(day, "journey_completed", 14 * scale, instance=instance, category=category,
               step="renew_loan"),
        rollup(day, "journey_failed", 2 * scale, instance=instance, category=category,
               step="renew_loan", failure="refused"),
        rollup(day, "journey_failed", 1 * scale, instance=instance, category=category,
               step="renew_loan", failure="unavailable"),
        rollup(day, "link_attempt", 8 * scale, instance=instance, category=category,
               outcome="success"),
        rollup(day, "link_attempt", 2 * scale, instance=instance, category=category,
               outcome="refused"),
        rollup(day, "connector_call", 0, instance=instance, category=category, outcome="ok",
               values_ms=[80] * (99 * scale)),
        rollup(day, "connector_call", 0, instance=instance, category=category,
               outcome="error", values_ms=[3000] * scale),
        rollup(day, "action", 6 * scale, instance=instance, category=category,
               outcome="success", channel="web"),
        rollup(day, "action", 2 * scale, instance=instance, category=category,
               outcome="success", channel="desk", assisted=True),
        visitors(day, 30 * scale, instance),
    ]  # fmt: skip
    seed(app, rows)
