"""The daily summaries the owners' pages read: ``measure_daily`` (one row per day,
instance and category) and ``measure_journey_daily`` (one per day, instance and journey).

``summarise_day(day)`` sums that day's ``measure_rollup`` rows into them, replacing what
was there, in the caller's transaction: ``rollup_day`` calls it, and ``flask measure
rollup`` calls it for any day whose roll-ups have no summary yet (roll-ups written before
the summaries existed, or by another tool). A summary holds only sums of roll-ups, so it
is exactly as anonymous as they are, and kept as long.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import sqlalchemy as sa

from portal.extensions import db
from portal.measure import empty_histogram
from portal.models.measure import (
    CHANNELS,
    DAILY_COUNTERS,
    LATENCY_BUCKETS,
    SERVER_BUCKETS,
    MeasureRollup,
    measure_daily,
    measure_journey_daily,
)

JOURNEY_FAILURES = ("refused", "unavailable", "invalid")
LINK_OUTCOMES = ("success", "refused", "unavailable", "invalid", "blocked")


def _failure(failure: str) -> str:
    return failure if failure in JOURNEY_FAILURES else "invalid"


def add_rollup(
    into: dict[str, int],
    kind: str,
    outcome: str,
    failure: str,
    channel: str,
    assisted: bool,
    count: int,
    value_sum: int,
    histogram: list[int] | None,
) -> None:
    """Add one roll-up row to ``into`` (``DAILY_COUNTERS`` and bucket columns)."""
    if kind == "page_view":
        into["visits"] += count
        into["server_ms_sum"] += value_sum
        for name, n in zip(SERVER_BUCKETS, histogram or (), strict=False):
            into[name] += int(n or 0)
    elif kind == "journey_started":
        into["started"] += count
    elif kind == "journey_completed":
        into["completed"] += count
    elif kind == "journey_failed" and failure != "given_up":
        # The roll-up writes "given up" rows too; the pages recompute the same figure.
        into["failed_" + _failure(failure)] += count
    elif kind == "link_attempt":
        into["link_" + (outcome if outcome in LINK_OUTCOMES else "invalid")] += count
    elif kind == "connector_call":
        into["calls"] += count
        if outcome == "ok":
            into["calls_ok"] += count
        for name, n in zip(LATENCY_BUCKETS, histogram or (), strict=False):
            into[name] += int(n or 0)
    elif kind == "action":
        into["actions"] += count
        if outcome == "success":
            into["actions_ok"] += count
        if assisted:
            into["assisted"] += count
        into["channel_" + (channel if channel in CHANNELS else "web")] += count


def _zeros() -> dict[str, int]:
    return dict.fromkeys((*DAILY_COUNTERS, *SERVER_BUCKETS, *LATENCY_BUCKETS), 0)


def _journey_zeros() -> dict[str, int]:
    return {"started": 0, "completed": 0, **{f"failed_{f}": 0 for f in JOURNEY_FAILURES}}


def summarise_day(day: date) -> int:
    """Replace ``day``'s summaries with the sums of its roll-ups; not committed. Returns
    the number of ``measure_daily`` rows written."""
    R = MeasureRollup
    rows = db.session.execute(
        sa.select(R.instance, R.category, R.kind, R.step, R.outcome, R.failure, R.channel,
                  R.assisted, R.count, R.value_sum, R.histogram).where(R.day == day)
    )  # fmt: skip
    daily: dict[tuple[str, str], dict[str, int]] = defaultdict(_zeros)
    journeys: dict[tuple[str, str, str], dict[str, int]] = defaultdict(_journey_zeros)
    for (
        instance,
        category,
        kind,
        step,
        outcome,
        failure,
        channel,
        assisted,
        count,
        value_sum,
        histogram,
    ) in rows:
        count, value_sum = int(count or 0), int(value_sum or 0)
        add_rollup(daily[(instance, category)], kind, outcome, failure, channel,
                   bool(assisted), count, value_sum, histogram)  # fmt: skip
        if kind in ("journey_started", "journey_completed", "journey_failed"):
            journey = journeys[(instance, category, step)]
            if kind == "journey_started":
                journey["started"] += count
            elif kind == "journey_completed":
                journey["completed"] += count
            elif failure != "given_up":
                journey["failed_" + _failure(failure)] += count
    db.session.execute(sa.delete(measure_daily).where(measure_daily.c.day == day))
    db.session.execute(sa.delete(measure_journey_daily).where(measure_journey_daily.c.day == day))
    if daily:
        db.session.execute(
            sa.insert(measure_daily),
            [{"day": day, "instance": i, "category": c, **v} for (i, c), v in daily.items()],
        )
    if journeys:
        db.session.execute(
            sa.insert(measure_journey_daily),
            [{"day": day, "instance": i, "category": c, "journey": j, **v}
             for (i, c, j), v in journeys.items()],
        )  # fmt: skip
    return len(daily)


def days_to_summarise() -> list[date]:
    """Days with roll-ups and no summary."""
    rolled = set(db.session.execute(sa.select(MeasureRollup.day).distinct()).scalars())
    done = set(db.session.execute(sa.select(measure_daily.c.day).distinct()).scalars())
    return sorted(rolled - done)


def histogram_of(row: Any, columns: tuple[str, ...]) -> list[int]:
    """A summed row's buckets, as a histogram."""
    histogram = empty_histogram()
    for i, name in enumerate(columns):
        histogram[i] = int(getattr(row, name) or 0)
    return histogram
