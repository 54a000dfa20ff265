"""Server-side record of a signed-in browser session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import Model
from portal.models._types import UTCDateTime, utcnow
from portal.models.citizen import Citizen


class AuthSession(Model):
    """Why server-side: a signed cookie alone cannot be revoked. With this row, signing
    out (or a timeout) kills the session even if someone kept a copy of the cookie, and
    the id token needed for FranceConnect's logout never travels back to the browser.
    """

    __tablename__ = "auth_session"

    #: Random, unguessable; the only thing the cookie carries to identify the session.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Kept only to send as ``id_token_hint`` when signing out of FranceConnect.
    id_token: Mapped[str] = mapped_column(Text, default="")

    citizen: Mapped[Citizen] = relationship()
