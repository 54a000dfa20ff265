"""Anonymous measurement: raw events, the daily keys that count unique visitors, the
daily roll-ups owners' pages read, and satisfaction answers.

No row here ever holds a resident's id, an IP address, a user agent, a name, an e-mail
or free text typed by a resident (comments excepted, filtered: ``SatisfactionAnswer``).
Unique visitors are a keyed hash of the browser session with the day's key
(``VisitorKey``), which is deleted once its day is over: a past day's hashes can then no
longer be linked to any session, nor to each other across days.

Raw events are kept 13 months at most (``RAW_EVENT_RETENTION``); roll-ups are kept.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import Model
from portal.measure import BUCKETS_MS
from portal.models._types import UTCDateTime, utcnow

RAW_EVENT_RETENTION = timedelta(days=396)  # 13 months

#: ``MeasureEvent.kind``
EVENT_KINDS = (
    "page_view",  # a page of a service and step was served (value_ms: server time)
    "journey_started",  # a journey (category + step = the journey's name) began
    "journey_completed",
    "journey_failed",  # failure: refused | unavailable | invalid (given up is computed)
    "link_attempt",  # outcome: success | refused | unavailable | invalid | blocked
    "connector_call",  # outcome: ok | error (value_ms: latency), per instance
    "action",  # a write done (outcome: success | failure), per channel and assisted
)
FAILURE_CLASSES = ("refused", "unavailable", "invalid", "given_up")
CHANNELS = ("web", "desk", "phone")


class MeasureEvent(Model):
    __tablename__ = "measure_event"
    __table_args__ = (Index("ix_measure_event_day_kind", "day", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: UTC, to the second: when; ``day`` is the territory's (Europe/Paris) day.
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(24))
    #: The kind of service (its category, as ``ServiceKind.category``) or an area
    #: (``account``, ``auth``).
    category: Mapped[str] = mapped_column(String(32), default="")
    #: The connector instance slug, when the event is about one.
    instance: Mapped[str] = mapped_column(String(64), default="")
    #: The step or the journey's name (``renew_loan``, ``page``, ``link``…).
    step: Mapped[str] = mapped_column(String(48), default="")
    outcome: Mapped[str] = mapped_column(String(16), default="")
    failure: Mapped[str] = mapped_column(String(16), default="")
    channel: Mapped[str] = mapped_column(String(8), default="web")
    assisted: Mapped[bool] = mapped_column(Boolean, default=False)
    value_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    #: HMAC of the session with the day's key, truncated (``VisitorKey``); None: no session.
    visitor: Mapped[str | None] = mapped_column(String(32), default=None)


class VisitorKey(Model):
    """The key of one day, shared by every process; deleted when the day is over."""

    __tablename__ = "visitor_key"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    key: Mapped[str] = mapped_column(String(64))


class MeasureRollup(Model):
    """One day's count of one kind of event for one combination of dimensions; what the
    owners' pages, the statistics API and the open data read (never raw events).

    ``count`` events; ``visitors`` distinct visitors among them (page views only);
    ``value_sum`` and ``histogram`` (counts per bucket of ``portal.measure.BUCKETS_MS``)
    for events with a value, so any period's mean and p95 come from summed roll-ups."""

    __tablename__ = "measure_rollup"
    __table_args__ = (
        UniqueConstraint(
            "day",
            "kind",
            "category",
            "instance",
            "step",
            "outcome",
            "failure",
            "channel",
            "assisted",
            name="uq_measure_rollup_dimensions",
        ),
        Index("ix_measure_rollup_instance_day", "instance", "day"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(24))
    category: Mapped[str] = mapped_column(String(32), default="")
    instance: Mapped[str] = mapped_column(String(64), default="")
    step: Mapped[str] = mapped_column(String(48), default="")
    outcome: Mapped[str] = mapped_column(String(16), default="")
    failure: Mapped[str] = mapped_column(String(16), default="")
    channel: Mapped[str] = mapped_column(String(8), default="web")
    assisted: Mapped[bool] = mapped_column(Boolean, default=False)
    count: Mapped[int] = mapped_column(Integer, default=0)
    visitors: Mapped[int] = mapped_column(Integer, default=0)
    value_sum: Mapped[int] = mapped_column(Integer, default=0)
    histogram: Mapped[list[int] | None] = mapped_column(JSON, default=None)


class DailyVisitors(Model):
    """Distinct visitors of one day, per instance ('' = the whole portal): distinct
    counts cannot be summed from finer roll-ups, so they are counted here too."""

    __tablename__ = "daily_visitors"
    __table_args__ = (UniqueConstraint("day", "instance", name="uq_daily_visitors_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    instance: Mapped[str] = mapped_column(String(64), default="")
    visitors: Mapped[int] = mapped_column(Integer, default=0)


class SatisfactionAnswer(Model):
    """One anonymous answer to the satisfaction prompt after a completed journey.

    ``satisfaction``: ``good`` | ``average`` | ``bad`` (scored 10 / 5 / 0); ``clarity``
    1–5 (scored 0 / 2.5 / 5 / 7.5 / 10); ``help``: per channel asked for help, whether it
    was reached and how good it was (JSON: ``{"desk": {"reached": true, "quality": 4}}``),
    or ``{"none": true}``. ``comment``: already filtered (``portal.measure.filter_comment``)
    before it is stored; never shown unfiltered."""

    __tablename__ = "satisfaction_answer"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    category: Mapped[str] = mapped_column(String(32), default="")
    instance: Mapped[str] = mapped_column(String(64), default="")
    journey: Mapped[str] = mapped_column(String(48), default="")
    channel: Mapped[str] = mapped_column(String(8), default="web")
    assisted: Mapped[bool] = mapped_column(Boolean, default=False)
    satisfaction: Mapped[str] = mapped_column(String(8))
    clarity: Mapped[int | None] = mapped_column(Integer, default=None)
    help: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    comment: Mapped[str] = mapped_column(Text, default="")


#: ``measure_daily``'s counters, besides the histograms' buckets.
DAILY_COUNTERS = (
    "visits",  # page views
    "server_ms_sum",  # their server time, summed
    "started",
    "completed",
    "failed_refused",
    "failed_unavailable",
    "failed_invalid",
    "link_success",
    "link_refused",
    "link_unavailable",
    "link_invalid",
    "link_blocked",
    "calls",  # probes and calls to the back-end
    "calls_ok",
    "actions",
    "actions_ok",
    "assisted",
    "channel_web",
    "channel_desk",
    "channel_phone",
)
#: Pages' server time and back-ends' latency, one column per bucket of ``BUCKETS_MS``.
SERVER_BUCKETS = tuple(f"server_{i}" for i in range(len(BUCKETS_MS) + 1))
LATENCY_BUCKETS = tuple(f"latency_{i}" for i in range(len(BUCKETS_MS) + 1))

#: One row per day, instance and category: every figure the owners' pages show, summed
#: from that day's ``measure_rollup`` rows by ``portal.measure.daily`` (plain integer
#: columns: a year of the territory is a few thousand rows, summed without reading JSON).
measure_daily = Table(
    "measure_daily",
    Model.metadata,
    Column("id", Integer, primary_key=True),
    Column("day", Date, nullable=False),
    Column("instance", String(64), nullable=False, default=""),
    Column("category", String(32), nullable=False, default=""),
    *(
        Column(name, Integer, nullable=False, default=0)
        for name in (*DAILY_COUNTERS, *SERVER_BUCKETS, *LATENCY_BUCKETS)
    ),
    UniqueConstraint("day", "instance", "category", name="uq_measure_daily"),
    Index("ix_measure_daily_instance_day", "instance", "day"),
)

#: One row per day, instance and journey: the funnel (started, completed, failed by class;
#: given up is computed from them).
measure_journey_daily = Table(
    "measure_journey_daily",
    Model.metadata,
    Column("id", Integer, primary_key=True),
    Column("day", Date, nullable=False),
    Column("instance", String(64), nullable=False, default=""),
    Column("category", String(32), nullable=False, default=""),
    Column("journey", String(48), nullable=False, default=""),
    *(
        Column(name, Integer, nullable=False, default=0)
        for name in (
            "started",
            "completed",
            "failed_refused",
            "failed_unavailable",
            "failed_invalid",
        )
    ),
    UniqueConstraint("day", "instance", "category", "journey", name="uq_measure_journey_daily"),
    Index("ix_measure_journey_daily_day", "day"),
)
