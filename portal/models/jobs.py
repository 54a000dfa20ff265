"""What the worker did: one row per run of a periodic job, and the connectors' probes.

``JobRun`` is how two workers agree that a period's job runs once: the row is inserted
before the job runs, and its unique (job, period) makes the second worker's insert fail,
so that one skips. It also keeps the job's state, its attempts and its last error (the
exception's type and where it was raised, never its message: a message may quote a
resident's data), so a job that keeps failing is listed for operators
(``flask jobs failed``).

``InstanceProbe`` is one probe of one connector instance by the worker: the status page
computes availability from these rows, so every web server shows the same.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import Model
from portal.models._types import UTCDateTime, utcnow

JOB_STATES = ("running", "succeeded", "failed")


class JobRun(Model):
    __tablename__ = "job_run"
    __table_args__ = (
        UniqueConstraint("name", "period", name="uq_job_run_name_period"),
        Index("ix_job_run_state_updated_at", "state", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The job's name in ``portal.jobs.schedule.JOBS``.
    name: Mapped[str] = mapped_column(String(64))
    #: The period this run is for (``2026-12-04``, ``2026-12-04T14:25Z``), or
    #: ``manual:…`` for a run asked for by an operator.
    period: Mapped[str] = mapped_column(String(40))
    #: ``running``, ``succeeded`` or ``failed``.
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    #: The exception's type and where it was raised; empty after a success.
    last_error: Mapped[str] = mapped_column(String(255), default="")
    #: What the job said it did (counts), for operators.
    summary: Mapped[str] = mapped_column(String(500), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InstanceProbe(Model):
    __tablename__ = "instance_probe"
    __table_args__ = (Index("ix_instance_probe_slug_checked_at", "instance_slug", "checked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_slug: Mapped[str] = mapped_column(String(64))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
