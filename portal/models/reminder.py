"""Reminders before deadlines: what a resident asked for, and what was sent.

A reminder is a row, not a far-future job: the worker's ``send_reminders`` reads the
residents' to-do lists, and each reminder it sends is a ``reminder_sent`` row whose key
(resident, item, deadline, lead time) is unique. A second run, or a second worker at the
same moment, inserts the same key and is refused by the database: the same deadline is
never told twice. At most one digest a day (``reminder_digest``, unique per resident and
day) carries the reminders of that day.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import Model
from portal.models._types import UTCDateTime, utcnow


class ReminderSettings(Model):
    """One row per resident who opened the settings; off by default (no row, or
    ``enabled`` false). ``email`` is where digests go: the FranceConnect address, or
    another once confirmed through a link sent to it (``pending_email`` meanwhile)."""

    __tablename__ = "reminder_settings"

    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    email: Mapped[str] = mapped_column(String(320), default="")
    pending_email: Mapped[str] = mapped_column(String(320), default="")
    #: Reminder kind → lead times in days, largest first (``portal.reminders.kinds``);
    #: a kind absent is not reminded.
    leads: Mapped[dict[str, list[int]]] = mapped_column(JSON, default=dict)
    #: The language the digests are written in: the resident's when they set them up.
    locale: Mapped[str] = mapped_column(String(8), default="fr")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


#: ``ReminderDigest.state`` of a day when every service was read and nothing was due: the
#: resident is not read again that day (changing their settings clears it).
NOTHING_DUE = "nothing_due"


class ReminderDigest(Model):
    """One message to a resident: claimed (``sending``) before it is sent, ``sent``
    after; or ``nothing_due``. Unique per resident and Paris day: at most one a day."""

    __tablename__ = "reminder_digest"
    __table_args__ = (UniqueConstraint("citizen_id", "day", name="uq_reminder_digest_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    day: Mapped[date]
    state: Mapped[str] = mapped_column(String(16), default="sending")
    channel: Mapped[str] = mapped_column(String(16), default="email")
    items: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ReminderSent(Model):
    """One deadline told once: ``key`` is a hash of the resident, the item's stable uid,
    the deadline and the lead time (so neither the item nor the back-end's ids show)."""

    __tablename__ = "reminder_sent"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    digest_id: Mapped[int] = mapped_column(ForeignKey("reminder_digest.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    due_on: Mapped[date]
    lead_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
