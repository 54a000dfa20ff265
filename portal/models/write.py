"""Writes to back-ends, remembered by their idempotency key, and payments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import Model
from portal.models._types import UTCDateTime, utcnow


class WriteRecord(Model):
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
    #: pending (in flight), done (the back-end answered: done or refused), failed (not
    #: sent or refused before processing: nothing was done, the same key may be tried
    #: again), unknown (sent, no answer: it may have been done; ``result`` keeps what was
    #: asked, and the same key is sent again to learn the back-end's answer).
    state: Mapped[str] = mapped_column(String(16), default="pending")
    result: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


#: A payment still open: being started (no provider id yet) or handed off and waiting
#: for the back-end's word. At most one per resident, instance and invoice.
OPEN_PAYMENT_STATES = ("starting", "pending")
_OPEN = text("state IN ('starting', 'pending')")


class Payment(Model):
    """A payment handed off to the payment provider. Only the back-end's confirmation,
    asked for server-side, ever marks it paid.

    The row is inserted ``starting`` *before* the provider is asked, and the partial
    unique index below admits one open payment per invoice: of several tabs paying the
    same invoice at the same moment, the database lets exactly one start, and the others
    are sent to its payment. ``payment_id`` (the provider's) is known from ``pending`` on.
    """

    __tablename__ = "payment"
    __table_args__ = (
        Index(
            "uq_payment_open_invoice",
            "citizen_id",
            "instance_slug",
            "invoice_id",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), index=True
    )
    instance_slug: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[str] = mapped_column(String(128))
    payment_id: Mapped[str | None] = mapped_column(String(128), unique=True, default=None)
    amount_cents: Mapped[int] = mapped_column(default=0)
    #: starting, pending, paid, refused, abandoned; ``failed``: the start got no payment.
    #: The invoice's title as the back-end labels it (« Cantine – novembre 2026 »).
    invoice_label: Mapped[str] = mapped_column(String(255), default="", server_default="")
    state: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
