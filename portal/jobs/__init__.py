"""What runs outside requests: periodic jobs, their schedules, and how a run is claimed.

A job is one line of ``portal.jobs.schedule.JOBS``: a name, a schedule and the dotted
path of a function the worker calls inside an application context. The worker
(``flask --app portal jobs worker``, Huey's consumer) queues every minute each job for
its current period, and the run first *claims* the period with a ``job_run`` row
(``portal.jobs.runs``). Two workers, or a job queued twice, never
run one period twice: the second insert fails and that run is skipped. A failed run is
tried again after a growing delay, up to the job's attempts, then stays listed by
``flask jobs failed`` until an operator retries it or the next period comes.

Each job must be idempotent: it can still run twice when a worker dies in the middle
of it (its ``running`` row goes stale, and the period is claimed again).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True, slots=True)
class Every:
    """Every ``minutes`` minutes, from midnight UTC (``minutes`` divides a day)."""

    minutes: int

    def __post_init__(self) -> None:
        if self.minutes <= 0 or (24 * 60) % self.minutes:
            raise ValueError("a period must divide a day: 1, 5, 15, 60, … minutes")

    def __str__(self) -> str:
        if self.minutes % 60 == 0:
            return f"every {self.minutes // 60} hour(s)"
        return f"every {self.minutes} minute(s)"

    def period(self, now: datetime) -> str:
        now = now.astimezone(UTC)
        minute = (now.hour * 60 + now.minute) // self.minutes * self.minutes
        start = now.replace(hour=minute // 60, minute=minute % 60, second=0, microsecond=0)
        return start.strftime("%Y-%m-%dT%H:%MZ")


@dataclass(frozen=True, slots=True)
class Daily:
    """Once a day, from ``at`` (Paris time: the territory's day, not UTC's). A worker
    started later in the day runs the day's period at once."""

    at: time

    def __str__(self) -> str:
        return f"daily from {self.at:%H:%M} (Paris)"

    def period(self, now: datetime) -> str:
        local = now.astimezone(PARIS)
        day = local.date() if local.time() >= self.at else local.date() - timedelta(days=1)
        return day.isoformat()


def every(minutes: int = 0, hours: int = 0) -> Every:
    return Every(minutes + 60 * hours)


def daily(at: str) -> Daily:
    """``daily("01:30")``: every day from 01:30, Paris time."""
    return Daily(time.fromisoformat(at))


@dataclass(frozen=True, slots=True)
class Job:
    #: Unique; what operators type (``flask jobs run purge-expired``).
    name: str
    schedule: Every | Daily
    #: ``"package.module:function"``, called with no argument inside an app context;
    #: what it returns is summarised on its ``job_run`` row (counts, never personal data).
    target: str
    #: Tries of one period before it is left failed (the delay doubles each time).
    attempts: int = 4

    def function(self) -> Callable[[], object]:
        module, _, attribute = self.target.partition(":")
        function: Callable[[], object] = getattr(importlib.import_module(module), attribute)
        return function


def jobs() -> dict[str, Job]:
    from portal.jobs.schedule import JOBS

    return {job.name: job for job in JOBS}


def job(name: str) -> Job:
    try:
        return jobs()[name]
    except KeyError:
        raise LookupError(name) from None
