"""A resident's account at one service instance, proven theirs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import Model
from portal.models._types import UTCDateTime, utcnow


class ServiceLink(Model):
    """One per resident and instance. The portal reaches a back-end for a resident only
    through their own link: this row is the object-level authorisation.

    ``secret_ciphertext`` holds, encrypted, what a back-end needs on every call (rare);
    proofs used only once to link (PIN, invoice code) are never stored.
    """

    __tablename__ = "service_link"
    # Ids are never reused (SQLite would hand out a deleted link's id again): a snapshot
    # or a journal line still naming an old link can never point at a new one.
    __table_args__ = (
        UniqueConstraint("citizen_id", "instance_slug"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), index=True
    )
    instance_slug: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    #: The card, family or application number as the resident typed it to link: the
    #: number they know (``external_id`` is the back-end's internal id).
    account_number: Mapped[str] = mapped_column(String(64), default="", server_default="")
    secret_ciphertext: Mapped[str | None] = mapped_column(Text, default=None)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    linked_by_kind: Mapped[str] = mapped_column(String(16), default="citizen")
    linked_by_id: Mapped[str] = mapped_column(String(64), default="")
    #: ``active`` or ``needs_relink`` (the back-end no longer accepts the link).
    status: Mapped[str] = mapped_column(String(16), default="active")


class ConnectorSnapshot(Model):
    """The last good answer of a back-end to one read, served (marked stale, with its
    time) while the back-end is down. Purged with the link it belongs to."""

    __tablename__ = "connector_snapshot"
    __table_args__ = (UniqueConstraint("instance_slug", "key"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_slug: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(512))
    #: The ServiceLink id the read was for (pseudonymous).
    subject: Mapped[str] = mapped_column(String(64), index=True, default="")
    payload: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime())
