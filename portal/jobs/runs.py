"""Claiming a period before running it, and recording how the run went.

Every statement here runs in its own short transaction on the engine, never in the
job's session: a job that rolls back cannot take its claim or its failure with it.

- First attempt: ``INSERT … ON CONFLICT DO NOTHING`` the (job, period) row as
  ``running``. The unique key lets one insert win; any other run of that period (a
  second worker, the next minute's tick) inserts nothing and is skipped.
- A later attempt (after a failure, queued with a delay) claims the row back with an
  ``UPDATE … WHERE state = 'failed' AND attempts = <the attempt before>``: only one
  retry of a given attempt can win.
- A ``running`` row older than ``STALE_AFTER`` is a worker that died mid-run: the
  period may be claimed again (each job is idempotent).
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult

from portal.config import PROJECT_ROOT
from portal.extensions import db
from portal.jobs import Job, jobs
from portal.models import JobRun
from portal.models._types import utcnow

log = logging.getLogger(__name__)

#: A run still ``running`` after this is taken for one whose worker died.
STALE_AFTER = timedelta(hours=1)
#: The delay before the second attempt; it doubles for each one after.
RETRY_BASE_S = 30
#: Kept for operators: succeeded runs for a week, failed ones for a month.
SUCCEEDED_RETENTION = timedelta(days=7)
FAILED_RETENTION = timedelta(days=30)

_table = cast(sa.Table, JobRun.__table__)


@dataclass(frozen=True, slots=True)
class Claim:
    id: int
    name: str
    period: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """``skipped`` (another run has the period), ``succeeded`` or ``failed``; after a
    failure, ``retry_in_s`` is the delay before the next attempt, None when none is left."""

    state: str
    claim: Claim | None = None
    retry_in_s: int | None = None


def _rowcount(result: sa.Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount or 0


def _claimed(conn: sa.Connection, where: sa.ColumnElement[bool]) -> Claim | None:
    row = conn.execute(
        sa.select(_table.c.id, _table.c.name, _table.c.period, _table.c.attempts).where(where)
    ).one()
    return Claim(row.id, row.name, row.period, row.attempts)


def _take_back(
    condition: sa.ColumnElement[bool], where: sa.ColumnElement[bool], now: datetime
) -> Claim | None:
    """Set a row matching ``where & condition`` running again, one attempt more."""
    with db.engine.begin() as conn:
        taken = _rowcount(
            conn.execute(
                sa.update(_table)
                .where(where & condition)
                .values(
                    state="running",
                    attempts=_table.c.attempts + 1,
                    started_at=now,
                    finished_at=None,
                    updated_at=now,
                )
            )
        )
        return _claimed(conn, where) if taken else None


def _stale(now: datetime) -> sa.ColumnElement[bool]:
    return (_table.c.state == "running") & (_table.c.started_at < now - STALE_AFTER)


def claim(name: str, period: str, attempt: int = 1, now: datetime | None = None) -> Claim | None:
    """Take (``name``, ``period``) for ``attempt``; None: another run has it."""
    now = now or utcnow()
    where = (_table.c.name == name) & (_table.c.period == period)
    if attempt > 1:
        return _take_back(
            (_table.c.state == "failed") & (_table.c.attempts == attempt - 1), where, now
        )
    with db.engine.begin() as conn:
        insert = (sqlite_insert if conn.dialect.name == "sqlite" else postgresql_insert)(_table)
        # RETURNING, not the row count: psycopg reports -1 for an INSERT … ON CONFLICT.
        inserted = conn.execute(
            insert.values(
                name=name,
                period=period,
                state="running",
                attempts=1,
                last_error="",
                summary="",
                started_at=now,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["name", "period"])
            .returning(_table.c.id)
        ).scalar_one_or_none()
        if inserted is not None:
            return _claimed(conn, where)
    return _take_back(_stale(now), where, now)


def claim_again(run_id: int, now: datetime | None = None) -> Claim | None:
    """An operator's retry of a failed (or interrupted) run; None if it is not one."""
    now = now or utcnow()
    return _take_back((_table.c.state == "failed") | _stale(now), _table.c.id == run_id, now)


def finish(taken: Claim, error: str = "", summary: str = "") -> None:
    now = utcnow()
    with db.engine.begin() as conn:
        conn.execute(
            sa.update(_table)
            .where(_table.c.id == taken.id)
            .values(
                state="failed" if error else "succeeded",
                last_error=error[:255],
                summary=summary[:500],
                finished_at=now,
                updated_at=now,
            )
        )


def error_text(exc: BaseException) -> str:
    """The exception's type and the last line of ours it went through: enough to find
    the cause, without its message (which may quote a resident's data)."""
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        if path.is_relative_to(PROJECT_ROOT) and "site-packages" not in path.parts:
            where = f"{path.relative_to(PROJECT_ROOT).as_posix()}:{frame.lineno}"
    name = f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
    return f"{name} at {where}" if where else name


def summary_of(result: object) -> str:
    if result is None:
        return ""
    lines = getattr(result, "lines", None)
    if callable(lines):
        # Counts of nothing say nothing: "3 expired session(s) deleted" only.
        return "; ".join(str(line) for line in lines() if not str(line).startswith("0 "))
    return str(result)


def retry_delay_s(attempts: int) -> int:
    """After ``attempts`` failed tries: 30 s, 60 s, 120 s, …"""
    return RETRY_BASE_S * 2 ** (attempts - 1)


def execute(job: Job, period: str, attempt: int = 1, taken: Claim | None = None) -> Outcome:
    """Claim ``period`` (unless ``taken`` already), run ``job`` in the current app
    context, record the outcome."""
    taken = taken or claim(job.name, period, attempt)
    if taken is None:
        log.info("job %s, period %s: taken by another run, skipped", job.name, period)
        return Outcome("skipped")
    try:
        result = job.function()()
    except Exception as exc:
        db.session.rollback()
        error = error_text(exc)
        finish(taken, error=error)
        left = taken.attempts < job.attempts
        log.warning(
            "job %s, period %s: attempt %d of %d failed (%s)%s\n%s",
            job.name,
            period,
            taken.attempts,
            job.attempts,
            error,
            ", to try again" if left else "",
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        return Outcome("failed", taken, retry_delay_s(taken.attempts) if left else None)
    finally:
        db.session.remove()
    finish(taken, summary=summary_of(result))
    log.info("job %s, period %s: done (attempt %d)", job.name, period, taken.attempts)
    return Outcome("succeeded", taken)


def due(now: datetime | None = None) -> list[tuple[Job, str]]:
    """Each job with its current period. Every tick queues them all: a period already
    taken costs its run one insert that does nothing, and a period missed (a worker
    started late in the day, a tick delayed) is caught up."""
    now = now or utcnow()
    return [(job, job.schedule.period(now)) for job in jobs().values()]


def failed_runs(now: datetime | None = None) -> list[JobRun]:
    """Runs left failed, and runs interrupted (stale), newest first."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            sa.select(JobRun)
            .where((JobRun.state == "failed") | _stale(now))
            .order_by(JobRun.updated_at.desc(), JobRun.id.desc())
        )
    )


def failed_counts(now: datetime | None = None) -> dict[str, int]:
    """Per job name, how many runs ``failed_runs`` lists (failed or interrupted): what
    ``/metrics`` exposes, one query whatever the history."""
    now = now or utcnow()
    rows = db.session.execute(
        sa.select(JobRun.name, sa.func.count())
        .where((JobRun.state == "failed") | _stale(now))
        .group_by(JobRun.name)
    ).all()
    return {name: int(count) for name, count in rows}


def delete_old_runs(now: datetime | None = None) -> int:
    """Runs past their retention (running ones are kept). Not committed."""
    now = now or utcnow()
    return _rowcount(
        db.session.execute(
            sa.delete(JobRun).where(
                ((JobRun.state == "succeeded") & (JobRun.updated_at < now - SUCCEEDED_RETENTION))
                | ((JobRun.state == "failed") & (JobRun.updated_at < now - FAILED_RETENTION))
            )
        )
    )
