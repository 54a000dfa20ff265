"""The owners' indicators, computed from the daily summaries (never from raw events).

Every figure comes from a few grouped queries (``SUM(...) ... GROUP BY period``) over
``measure_daily`` and ``measure_journey_daily`` (the day's roll-ups summed per instance,
``portal.measure.daily``), ``daily_visitors`` and ``satisfaction_answer``: the work grows
with days × instances, not with the number of events counted nor with the combinations of
dimensions the roll-ups keep. Histograms are integer columns, one per bucket, summed in
SQL, so that a period's p95 comes from the sum of its days' histograms.

A ``Selection`` is a granularity (day, week or month) and a range of whole periods; the
previous range of the same number of periods is read in the same queries, for comparison.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from portal.extensions import db
from portal.measure import (
    FIVE_LEVEL_SCORES,
    GOAL_CLARITY,
    GOAL_LOAD_TIME_S,
    GOAL_SATISFACTION,
    GOAL_UPTIME,
    MIN_ANSWERS,
    SATISFACTION_SCORES,
    add_histograms,
    empty_histogram,
    percentile_ms,
)
from portal.measure.daily import JOURNEY_FAILURES as JOURNEY_FAILURES
from portal.measure.daily import LINK_OUTCOMES as LINK_OUTCOMES
from portal.measure.daily import histogram_of
from portal.models.measure import (
    CHANNELS,
    DAILY_COUNTERS,
    LATENCY_BUCKETS,
    SERVER_BUCKETS,
    DailyVisitors,
    SatisfactionAnswer,
    measure_daily,
    measure_journey_daily,
)

GRANULARITIES = ("day", "week", "month")
#: At most this many periods on one page (and as many again for the comparison).
MAX_PERIODS = 62


class SelectionError(ValueError):
    """A period asked for that cannot be shown; ``code`` says which rule it broke."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


# -- periods -------------------------------------------------------------------------------


def period_start(day: date, granularity: str) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def period_end(start: date, granularity: str) -> date:
    if granularity == "week":
        return start + timedelta(days=6)
    if granularity == "month":
        return start.replace(day=calendar.monthrange(start.year, start.month)[1])
    return start


def next_period(start: date, granularity: str) -> date:
    return period_end(start, granularity) + timedelta(days=1)


def previous_period(start: date, granularity: str) -> date:
    return period_start(start - timedelta(days=1), granularity)


@dataclass(frozen=True)
class Selection:
    """Whole periods from the one holding ``start`` to the one holding ``end``."""

    granularity: str
    start: date
    end: date

    @classmethod
    def of(cls, granularity: str, start: date, end: date) -> Selection:
        if granularity not in GRANULARITIES:
            raise SelectionError("granularity")
        if end < start:
            raise SelectionError("order")
        selection = cls(
            granularity,
            period_start(start, granularity),
            period_end(period_start(end, granularity), granularity),
        )
        if len(selection.periods) > MAX_PERIODS:
            raise SelectionError("too_many")
        return selection

    @classmethod
    def default(cls, today: date, granularity: str = "week") -> Selection:
        """The last twelve whole periods before today (today is not over yet)."""
        last = previous_period(period_start(today, granularity), granularity)
        first = last
        for _ in range(11):
            first = previous_period(first, granularity)
        return cls.of(granularity, first, last)

    @property
    def periods(self) -> list[date]:
        starts, current = [], self.start
        while current <= self.end:
            starts.append(current)
            current = next_period(current, self.granularity)
        return starts

    @property
    def previous(self) -> Selection:
        """As many periods, just before."""
        count = len(self.periods)
        first = self.start
        for _ in range(count):
            first = previous_period(first, self.granularity)
        return Selection(self.granularity, first, self.start - timedelta(days=1))


# -- what one period holds -----------------------------------------------------------------


def _ratio(part: int | float, whole: int | float) -> float | None:
    return part / whole if whole else None


@dataclass
class Figures:
    """What the roll-ups say of one period (or of a sum of periods)."""

    visits: int = 0
    #: The sum of daily distinct visitors (a week's or a month's is not its distinct count).
    visitors: int = 0
    started: int = 0
    completed: int = 0
    failed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(JOURNEY_FAILURES, 0))
    links: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LINK_OUTCOMES, 0))
    calls: int = 0
    calls_ok: int = 0
    actions: int = 0
    actions_ok: int = 0
    assisted: int = 0
    channels: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANNELS, 0))
    server_ms_sum: int = 0
    server_histogram: list[int] = field(default_factory=empty_histogram)
    latency_histogram: list[int] = field(default_factory=empty_histogram)
    answers: int = 0
    satisfaction_points: float = 0.0
    clarity_answers: int = 0
    clarity_points: float = 0.0

    def add(self, other: Figures) -> Figures:
        self.visits += other.visits
        self.visitors += other.visitors
        self.started += other.started
        self.completed += other.completed
        for name, n in other.failed.items():
            self.failed[name] = self.failed.get(name, 0) + n
        for name, n in other.links.items():
            self.links[name] = self.links.get(name, 0) + n
        self.calls += other.calls
        self.calls_ok += other.calls_ok
        self.actions += other.actions
        self.actions_ok += other.actions_ok
        self.assisted += other.assisted
        for name, n in other.channels.items():
            self.channels[name] = self.channels.get(name, 0) + n
        self.server_ms_sum += other.server_ms_sum
        self.server_histogram = add_histograms([self.server_histogram, other.server_histogram])
        self.latency_histogram = add_histograms([self.latency_histogram, other.latency_histogram])
        self.answers += other.answers
        self.satisfaction_points += other.satisfaction_points
        self.clarity_answers += other.clarity_answers
        self.clarity_points += other.clarity_points
        return self

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    @property
    def given_up(self) -> int:
        """Started, neither completed nor failed: never negative (a journey started in
        one period may end in the next)."""
        return max(0, self.started - self.completed - self.failures)

    @property
    def success_rate(self) -> float | None:
        return _ratio(self.completed, self.started)

    @property
    def link_attempts(self) -> int:
        return sum(self.links.values())

    @property
    def link_success_rate(self) -> float | None:
        return _ratio(self.links.get("success", 0), self.link_attempts)

    @property
    def availability(self) -> float | None:
        """The share of successful probes and calls to the back-ends."""
        return _ratio(self.calls_ok, self.calls)

    @property
    def latency_p95_ms(self) -> int | None:
        return percentile_ms(self.latency_histogram)

    @property
    def server_p95_ms(self) -> int | None:
        return percentile_ms(self.server_histogram)

    @property
    def server_mean_ms(self) -> float | None:
        return _ratio(self.server_ms_sum, sum(self.server_histogram))

    @property
    def assisted_share(self) -> float | None:
        return _ratio(self.assisted, self.actions)

    def channel_share(self, channel: str) -> float | None:
        return _ratio(self.channels.get(channel, 0), self.actions)

    @property
    def satisfaction(self) -> float | None:
        """Out of 10; None under ``MIN_ANSWERS`` answers (the observatory's rule)."""
        if self.answers < MIN_ANSWERS:
            return None
        return self.satisfaction_points / self.answers

    @property
    def clarity(self) -> float | None:
        if self.clarity_answers < MIN_ANSWERS:
            return None
        return self.clarity_points / self.clarity_answers


# -- the queries ---------------------------------------------------------------------------


def _period_sql(column: Any, granularity: str) -> Any:
    """The start of the column's period, as 'YYYY-MM-DD' text, in the database's dialect."""
    if db.engine.dialect.name == "postgresql":
        unit = {"day": "day", "week": "week", "month": "month"}[granularity]
        return sa.func.to_char(sa.func.date_trunc(unit, column), "YYYY-MM-DD")
    if granularity == "week":
        return sa.func.date(column, "weekday 0", "-6 days")
    if granularity == "month":
        return sa.func.strftime("%Y-%m-01", column)
    return sa.func.date(column)


def _scoped(statement: Any, column: Any, instances: Sequence[str] | None) -> Any:
    if instances is not None:
        statement = statement.where(column.in_(list(instances)))
    return statement


def _figures_of(row: Any) -> Figures:
    """A summed ``measure_daily`` row as figures."""

    def n(name: str) -> int:
        return int(getattr(row, name) or 0)

    return Figures(
        visits=n("visits"),
        started=n("started"),
        completed=n("completed"),
        failed={name: n(f"failed_{name}") for name in JOURNEY_FAILURES},
        links={name: n(f"link_{name}") for name in LINK_OUTCOMES},
        calls=n("calls"),
        calls_ok=n("calls_ok"),
        actions=n("actions"),
        actions_ok=n("actions_ok"),
        assisted=n("assisted"),
        channels={name: n(f"channel_{name}") for name in CHANNELS},
        server_ms_sum=n("server_ms_sum"),
        server_histogram=histogram_of(row, SERVER_BUCKETS),
        latency_histogram=histogram_of(row, LATENCY_BUCKETS),
    )


def _key(value: Any) -> Any:
    return date.fromisoformat(value) if isinstance(value, str) else value


def read_figures(
    start: date,
    end: date,
    granularity: str,
    instances: Sequence[str] | None,
    by: str = "period",
) -> dict[Any, Figures]:
    """Figures per period start (``by="period"``), per instance slug (``by="instance"``,
    summed over the range) or per (period start, instance) (``by="grid"``), for the
    roll-ups of ``instances`` (None: every row, the portal's own pages included)."""
    D = measure_daily.c
    found: dict[Any, Figures] = defaultdict(Figures)

    def columns(model: Any) -> list[Any]:
        period = _period_sql(model.day, granularity)
        return {"period": [period], "instance": [model.instance]}.get(by, [period, model.instance])

    def key_of(*values: Any) -> Any:
        if by == "period":
            return _key(values[0])
        if by == "instance":
            return values[0]
        return (_key(values[0]), values[1])

    width = 1 if by in ("period", "instance") else 2
    group = columns(D)
    sums = [
        sa.func.sum(D[name]).label(name)
        for name in (*DAILY_COUNTERS, *SERVER_BUCKETS, *LATENCY_BUCKETS)
    ]
    summed = _scoped(
        sa.select(*group, *sums).where(D.day >= start, D.day <= end).group_by(*group),
        D.instance,
        instances,
    )
    for row in db.session.execute(summed):
        found[key_of(*row[:width])] = _figures_of(row)

    V = DailyVisitors
    vgroup = columns(V)
    visitors = sa.select(*vgroup, sa.func.sum(V.visitors)).where(V.day >= start, V.day <= end)
    if instances is None and by == "period":
        visitors = visitors.where(V.instance == "")  # the portal's own distinct count
    else:
        visitors = _scoped(visitors, V.instance, instances)
    for row in db.session.execute(visitors.group_by(*vgroup)):
        found[key_of(*row[:width])].visitors += int(row[width] or 0)

    S = SatisfactionAnswer
    sgroup = columns(S)
    answers = _scoped(
        sa.select(*sgroup, S.satisfaction, S.clarity, sa.func.count())
        .where(S.day >= start, S.day <= end)
        .group_by(*sgroup, S.satisfaction, S.clarity),
        S.instance,
        instances,
    )
    for row in db.session.execute(answers):
        satisfaction, clarity, n = row[width:]
        figures = found[key_of(*row[:width])]
        if satisfaction in SATISFACTION_SCORES:
            figures.answers += n
            figures.satisfaction_points += SATISFACTION_SCORES[satisfaction] * n
        if clarity in FIVE_LEVEL_SCORES:
            figures.clarity_answers += n
            figures.clarity_points += FIVE_LEVEL_SCORES[clarity] * n
    return dict(found)


@dataclass(frozen=True)
class FunnelRow:
    """One journey over the range: how many began, ended well, failed (per class) or
    were given up."""

    category: str
    journey: str
    started: int
    completed: int
    failed: dict[str, int]

    @property
    def given_up(self) -> int:
        return max(0, self.started - self.completed - sum(self.failed.values()))

    @property
    def success_rate(self) -> float | None:
        return _ratio(self.completed, self.started)


def read_funnel(start: date, end: date, instances: Sequence[str] | None) -> list[FunnelRow]:
    J = measure_journey_daily.c
    failures = [sa.func.sum(J[f"failed_{name}"]) for name in JOURNEY_FAILURES]
    statement = _scoped(
        sa.select(J.category, J.journey, sa.func.sum(J.started), sa.func.sum(J.completed),
                  *failures)
        .where(J.day >= start, J.day <= end)
        .group_by(J.category, J.journey),
        J.instance,
        instances,
    )  # fmt: skip
    rows = [
        FunnelRow(category, journey, int(started or 0), int(completed or 0),
                  {name: int(n or 0) for name, n in zip(JOURNEY_FAILURES, failed, strict=True)})
        for category, journey, started, completed, *failed in db.session.execute(statement)
    ]  # fmt: skip
    return sorted(rows, key=lambda row: -row.started)


def read_categories(start: date, end: date, instances: Sequence[str] | None) -> dict[str, str]:
    """The kind of service (category) each instance's roll-ups carry."""
    D = measure_daily.c
    statement = _scoped(
        sa.select(D.instance, D.category)
        .where(D.day >= start, D.day <= end, D.instance != "")
        .group_by(D.instance, D.category),
        D.instance,
        instances,
    )
    return {instance: category for instance, category in db.session.execute(statement)}


# -- goals ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """One of the observatory's goals for one service: ``reached`` is None when it could
    not be measured (too few answers, no page served, no call made)."""

    key: str
    value: float | None
    target: float
    reached: bool | None


def goals_of(figures: Figures) -> list[Goal]:
    def judged(key: str, value: float | None, target: float, higher: bool) -> Goal:
        if value is None:
            return Goal(key, None, target, None)
        return Goal(key, value, target, value >= target if higher else value <= target)

    load_s = figures.server_mean_ms / 1000 if figures.server_mean_ms is not None else None
    return [
        judged("satisfaction", figures.satisfaction, GOAL_SATISFACTION, True),
        judged("clarity", figures.clarity, GOAL_CLARITY, True),
        judged("uptime", figures.availability, GOAL_UPTIME, True),
        judged("load_time", load_s, GOAL_LOAD_TIME_S, False),
        # Every resident signs in with FranceConnect: there is no other way in.
        Goal("franceconnect", 1.0, 1.0, True),
    ]


GOAL_KEYS = ("satisfaction", "clarity", "uptime", "load_time", "franceconnect")


@dataclass(frozen=True)
class GoalShare:
    key: str
    reached: int
    measured: int

    @property
    def share(self) -> float | None:
        return _ratio(self.reached, self.measured)


def goal_shares(per_service: Iterable[list[Goal]]) -> list[GoalShare]:
    reached: dict[str, int] = dict.fromkeys(GOAL_KEYS, 0)
    measured: dict[str, int] = dict.fromkeys(GOAL_KEYS, 0)
    for goals in per_service:
        for goal in goals:
            if goal.reached is not None:
                measured[goal.key] += 1
                reached[goal.key] += int(goal.reached)
    return [GoalShare(key, reached[key], measured[key]) for key in GOAL_KEYS]


# -- the report a page shows ---------------------------------------------------------------


@dataclass(frozen=True)
class ServiceRow:
    slug: str
    title: str
    category: str
    figures: Figures
    goals: list[Goal]


@dataclass(frozen=True)
class Report:
    selection: Selection
    #: (period start, figures) for the selection's periods, then for the previous ones.
    rows: list[tuple[date, Figures]]
    previous_rows: list[tuple[date, Figures]]
    total: Figures
    previous_total: Figures
    funnel: list[FunnelRow]
    goals: list[Goal]
    #: One row per service in scope (the territory's page); empty on a service's page.
    services: list[ServiceRow]
    #: Per kind of service: (category, figures summed over its services).
    kinds: list[tuple[str, Figures]]
    shares: list[GoalShare]


def build_report(
    selection: Selection,
    instances: Sequence[str] | None,
    titles: dict[str, str] | None = None,
    per_service: bool = False,
    categories: dict[str, str] | None = None,
) -> Report:
    """The figures of the selection and of the previous range, for ``instances`` (None:
    the whole portal); with ``per_service``, one row per service of ``titles`` too."""
    previous = selection.previous
    services: list[ServiceRow] = []
    kinds: list[tuple[str, Figures]] = []
    shares: list[GoalShare] = []
    if per_service and titles:
        # One pass over the roll-ups, per period and instance: the periods' totals and
        # the services' rows both come from it.
        grid = read_figures(previous.start, selection.end, selection.granularity, instances,
                            by="grid")  # fmt: skip
        per_period: dict[Any, Figures] = defaultdict(Figures)
        by_instance: dict[str, Figures] = defaultdict(Figures)
        for (start, slug), figures in grid.items():
            total_of_period = per_period[start]
            total_of_period.add(figures)
            if instances is None and slug != "":
                # The whole portal's distinct visitors are its own count ('').
                total_of_period.visitors -= figures.visitors
            if start >= selection.start:
                by_instance[slug].add(figures)
        slugs = list(titles) if instances is None else list(instances)
        if categories is None:
            categories = read_categories(selection.start, selection.end, slugs)
        for slug in slugs:
            figures = by_instance.get(slug, Figures())
            services.append(
                ServiceRow(
                    slug,
                    titles.get(slug, slug),
                    categories.get(slug, ""),
                    figures,
                    goals_of(figures),
                )
            )
        grouped: dict[str, Figures] = defaultdict(Figures)
        for service in services:
            grouped[service.category].add(service.figures)
        kinds = sorted(grouped.items())
        shares = goal_shares(service.goals for service in services)
    else:
        per_period = read_figures(previous.start, selection.end, selection.granularity, instances)

    def series(periods: list[date]) -> list[tuple[date, Figures]]:
        return [(start, per_period.get(start, Figures())) for start in periods]

    rows, previous_rows = series(selection.periods), series(previous.periods)
    total, previous_total = Figures(), Figures()
    for _, figures in rows:
        total.add(figures)
    for _, figures in previous_rows:
        previous_total.add(figures)
    return Report(
        selection=selection,
        rows=rows,
        previous_rows=previous_rows,
        total=total,
        previous_total=previous_total,
        funnel=read_funnel(selection.start, selection.end, instances),
        goals=goals_of(total),
        services=services,
        kinds=kinds,
        shares=shares,
    )


# -- one count of a dimension, as a function of the figures (for columns and series) ------


def link_count(outcome: str) -> Callable[[Figures], int]:
    return lambda f: f.links.get(outcome, 0)


def failure_count(failure: str) -> Callable[[Figures], int]:
    return lambda f: f.failed.get(failure, 0)


def channel_count(channel: str) -> Callable[[Figures], int]:
    return lambda f: f.channels.get(channel, 0)
