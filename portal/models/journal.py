""" "My activity": what was done on a resident's accounts, by whom, with what outcome."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import Model, db
from portal.models._types import UTCDateTime, utcnow

if TYPE_CHECKING:
    from portal.actor import Actor


class JournalEntry(Model):
    """Append-only in code: there is ``record()`` and no update or delete path, except
    the deletion of the resident's whole account (cascade).

    What happened is a ``code`` (see ``portal.journal_text``) with its ``params``
    (amounts in cents, dates, titles: never a password, a token, a proof or an internal
    id), rendered in the reader's language when read. ``detail`` is the French text
    older entries were written with, shown only for them.
    """

    __tablename__ = "journal_entry"
    # One resident's entries newest first (a page of "Mon activité"), their count and the
    # services they name, read from the index whatever the journal's size (PostgreSQL
    # carries the service in it). It serves every lookup by resident too.
    __table_args__ = (
        Index(
            "ix_journal_entry_citizen_id_at",
            "citizen_id",
            "at",
            "id",
            postgresql_include=["connector_instance"],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_kind: Mapped[str] = mapped_column(String(16))  # citizen | adviser | system
    actor_id: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(64))
    connector_instance: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(16))  # success | failure
    detail: Mapped[str] = mapped_column(String(500), default="")
    code: Mapped[str] = mapped_column(String(64), default="", server_default="")
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    #: An adviser's action: the mandate it was done under (a plain id: the entry is
    #: never updated) and how the adviser and the resident were in touch.
    mandate_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    channel: Mapped[str] = mapped_column(String(8), default="web", server_default="web")

    @classmethod
    def record(
        cls,
        citizen_id: int,
        action: str,
        outcome: str = "success",
        *,
        actor: Actor | None = None,
        connector_instance: str = "",
        detail: str = "",
        code: str = "",
        params: dict[str, Any] | None = None,
    ) -> JournalEntry:
        """``actor`` is who acted (``portal.actor.current_actor()`` in a request). None is
        the resident signing in or out, recorded as entries always were: a citizen, with
        no id (the entry's ``citizen_id`` says who)."""
        entry = cls(
            citizen_id=citizen_id,
            action=action,
            outcome=outcome,
            actor_kind=actor.journal_kind if actor is not None else "citizen",
            actor_id=actor.journal_id if actor is not None else "",
            connector_instance=connector_instance,
            detail=detail[:500],
            code=code or ("" if detail else action),
            params=params or None,
            mandate_id=actor.mandate_id if actor is not None else None,
            channel=actor.channel if actor is not None else "web",
        )
        db.session.add(entry)
        from portal.measure.events import on_journal

        on_journal(entry, actor)  # anonymous: the action, never who (never raises)
        return entry


class JournalIsAppendOnly(RuntimeError):
    """A journal entry was about to be changed: what was done stays as it was recorded."""


@event.listens_for(JournalEntry, "before_update")
def _refuse_updates(_mapper: object, _connection: object, entry: JournalEntry) -> None:
    # The database refuses it too (a trigger); this says so before the statement is sent.
    raise JournalIsAppendOnly(f"journal entry {entry.id} cannot be changed")
