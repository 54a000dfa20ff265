"""Mandates: what a resident lets a help desk do for them, and what was done under it.

A mandate belongs to a desk, not to one adviser. Its terms never change once opened:
the ``mandate`` row and its ``mandate_scope`` rows are written once; what happens later
is added, never overwritten: a ``mandate_revocation`` row ends the whole mandate (no
``scope``) or one of its services (a ``scope``), whoever revoked it (the resident
online, a desk, the portal when a newer mandate replaces it or a visit-only mandate's
visit ends). The database refuses updates of all three tables (triggers), and their
deletion while the resident's account exists.

A scope is an instance slug (``"bm-bordeaux"``), or ``"<slug>:payments"`` for paying
that service's invoices, which moves money and is asked for separately.

``DeskVisit`` is the short-lived state of a mandate being opened at the desk (5 minutes
a step), purged once used or expired. ``AssistedSession`` is an adviser acting for a
resident under a mandate: at the desk or on the phone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import Model
from portal.models._types import UTCDateTime, utcnow
from portal.models.agent import Agent
from portal.models.citizen import Citizen
from portal.models.desk import Desk

#: The fixed menu of durations, in the order shown.
DURATIONS = ("visit", "1d", "1m", "6m", "1y")
CHANNELS = ("desk", "phone")
PAYMENTS_SUFFIX = ":payments"


class Mandate(Model):
    __tablename__ = "mandate"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: What the receipt shows and a desk types to find it (« M-7K3F-9QX2 »).
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    desk_id: Mapped[int] = mapped_column(ForeignKey("desk.id"), index=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), index=True
    )
    #: A plain id, not a foreign key: the row is never updated, not even to unset it.
    opened_by_agent_id: Mapped[int | None] = mapped_column(Integer, default=None)
    duration: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(8), default="desk")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The version of the legal text the resident was shown (``portal.mandates.legal``).
    legal_version: Mapped[str] = mapped_column(String(16))
    #: SHA-256 over the terms (``portal.mandates.terms_hash``), printed as a QR code.
    terms_hash: Mapped[str] = mapped_column(String(64))
    #: The desk visit that opened it: a replayed confirmation finds it taken.
    visit_id: Mapped[str] = mapped_column(String(64), unique=True)
    #: The resident's and the desk's names, as they were when it was opened.
    desk_name: Mapped[str] = mapped_column(String(255), default="")
    adviser_name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    desk: Mapped[Desk] = relationship()
    citizen: Mapped[Citizen] = relationship()
    scopes: Mapped[list[MandateScope]] = relationship(
        order_by="MandateScope.id", lazy="selectin", viewonly=True
    )
    revocations: Mapped[list[MandateRevocation]] = relationship(
        order_by="MandateRevocation.id", lazy="selectin", viewonly=True
    )


class MandateScope(Model):
    __tablename__ = "mandate_scope"
    __table_args__ = (
        UniqueConstraint("mandate_id", "scope", name="uq_mandate_scope_mandate_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mandate_id: Mapped[int] = mapped_column(ForeignKey("mandate.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(80))


class MandateRevocation(Model):
    __tablename__ = "mandate_revocation"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    mandate_id: Mapped[int] = mapped_column(
        ForeignKey("mandate.id", ondelete="CASCADE"), index=True
    )
    #: None: the whole mandate; otherwise the one scope revoked.
    scope: Mapped[str | None] = mapped_column(String(80), default=None)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: ``citizen`` (online), ``desk`` (at a desk, ``by_id`` the agent), ``replaced``
    #: (a newer mandate of the same desk), ``visit_ended`` (a visit-only mandate).
    by_kind: Mapped[str] = mapped_column(String(16))
    by_id: Mapped[str] = mapped_column(String(64), default="")
    #: For a desk revocation: the desk's name, printed on the revocation receipt.
    by_label: Mapped[str] = mapped_column(String(255), default="")


class DeskVisit(Model):
    """A mandate being opened: the adviser's choices, then the resident who signed in."""

    __tablename__ = "desk_visit"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    desk_id: Mapped[int] = mapped_column(ForeignKey("desk.id", ondelete="CASCADE"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    duration: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(8), default="desk")
    #: The step's start: each step (the resident's sign-in, the two confirmations) must
    #: come within ``VISIT_STEP_S`` of the previous one.
    step_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    citizen_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), default=None
    )
    legal_version: Mapped[str] = mapped_column(String(16), default="")
    resident_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    mandate_id: Mapped[int | None] = mapped_column(
        ForeignKey("mandate.id", ondelete="CASCADE"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    desk: Mapped[Desk] = relationship()
    citizen: Mapped[Citizen | None] = relationship()


class AssistedSession(Model):
    """An adviser acting for a resident under a mandate, until they end it or leave it
    idle (``ASSISTED_IDLE``). Rows are kept as the record of visits (the desk's
    "today's visits") and purged with the mandate's retention."""

    __tablename__ = "assisted_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    mandate_id: Mapped[int] = mapped_column(
        ForeignKey("mandate.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"))
    desk_id: Mapped[int] = mapped_column(ForeignKey("desk.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(8), default="desk")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    actions: Mapped[int] = mapped_column(Integer, default=0)

    mandate: Mapped[Mandate] = relationship()
    agent: Mapped[Agent] = relationship()


class DeskJournalEntry(Model):
    """What happened at a desk (a mandate opened, revoked, a visit started or ended):
    append-only, in code and in the database."""

    __tablename__ = "desk_journal_entry"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    desk_id: Mapped[int] = mapped_column(ForeignKey("desk.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    agent_id: Mapped[int | None] = mapped_column(Integer, default=None)
    agent_name: Mapped[str] = mapped_column(String(255), default="")
    #: ``mandate_opened``, ``mandate_revoked``, ``scope_revoked``, ``visit_started``,
    #: ``visit_ended``, ``phone_session``.
    action: Mapped[str] = mapped_column(String(32))
    mandate_reference: Mapped[str] = mapped_column(String(16), default="")
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    note: Mapped[str] = mapped_column(Text, default="")


class MandateIsAppendOnly(RuntimeError):
    """A mandate, its terms, a revocation or a desk journal entry was about to change."""


def _refuse(_mapper: object, _connection: object, row: object) -> None:
    raise MandateIsAppendOnly(f"{type(row).__name__} rows cannot be changed")


for _model in (Mandate, MandateScope, MandateRevocation, DeskJournalEntry):
    event.listen(_model, "before_update", _refuse)


class MandateNotice(Model):
    """A notice sent to the resident about a mandate (``ending``: it ends soon), once:
    the unique key makes a second run, or two workers at once, send nothing more."""

    __tablename__ = "mandate_notice"
    __table_args__ = (UniqueConstraint("mandate_id", "kind", name="uq_mandate_notice_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mandate_id: Mapped[int] = mapped_column(ForeignKey("mandate.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
