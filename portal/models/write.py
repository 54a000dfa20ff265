"""Writes to back-ends, remembered by their idempotency key, and payments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models._types import UTCDateTime, utcnow


class WriteRecord(db.Model):
    """One submitted write (renew, book, pay...), keyed by the idempotency key the form
    carried. The unique key makes a double click or a replayed form land on the first
    attempt's row: the back-end is called once, and the second answer is the first one.
    """

    __tablename__ = "write_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), index=True
    )
    instance_slug: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    #: pending (in flight), done (the back-end answered: done or refused), failed (no
    #: answer: nothing was done, the same key may be tried again).
    state: Mapped[str] = mapped_column(String(16), default="pending")
    result: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Payment(db.Model):
    """A payment handed off to the payment provider. Only the back-end's confirmation,
    asked for server-side, ever marks it paid."""

    __tablename__ = "payment"

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), index=True
    )
    instance_slug: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[str] = mapped_column(String(128))
    payment_id: Mapped[str] = mapped_column(String(128), unique=True)
    amount_cents: Mapped[int] = mapped_column(default=0)
    #: The invoice's title as the back-end labels it (« Cantine – novembre 2026 »).
    invoice_label: Mapped[str] = mapped_column(String(255), default="", server_default="")
    state: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
