""" "My activity": what was done on a resident's accounts, by whom, with what outcome."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models._types import UTCDateTime, utcnow


class JournalEntry(db.Model):
    """Append-only in code: there is ``record()`` and no update or delete path, except
    the deletion of the resident's whole account (cascade).

    ``detail`` is a short non-secret text: never a password, a token or a proof.
    """

    __tablename__ = "journal_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(16))  # citizen | adviser | system
    actor_id: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64))
    connector_instance: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(16))  # success | failure
    detail: Mapped[str] = mapped_column(String(500), default="")

    @classmethod
    def record(
        cls,
        citizen_id: int,
        action: str,
        outcome: str = "success",
        *,
        actor_kind: str = "citizen",
        actor_id: str = "",
        connector_instance: str = "",
        detail: str = "",
    ) -> JournalEntry:
        entry = cls(
            citizen_id=citizen_id,
            action=action,
            outcome=outcome,
            actor_kind=actor_kind,
            actor_id=actor_id,
            connector_instance=connector_instance,
            detail=detail[:500],
        )
        db.session.add(entry)
        return entry
