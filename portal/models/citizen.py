"""A resident known to the portal through FranceConnect."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import Model
from portal.models._types import UTCDateTime, utcnow


class Citizen(Model):
    """Only what the journeys need, refreshed from FranceConnect at every sign-in.

    The FranceConnect ``sub`` is the only key: it is pairwise and stable, whereas an
    e-mail address can change hands, so accounts are never matched on e-mail.
    """

    __tablename__ = "citizen"
    #: Ids are never reused (see ``ServiceLink``): logs and journals name residents by id.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    sub: Mapped[str] = mapped_column(String(255), unique=True)
    given_name: Mapped[str] = mapped_column(String(255), default="")
    family_name: Mapped[str] = mapped_column(String(255), default="")
    #: FranceConnect's ``preferred_username``: the usage name, when the person has one.
    usage_name: Mapped[str] = mapped_column(String(255), default="")
    birthdate: Mapped[date | None] = mapped_column(default=None)
    email: Mapped[str] = mapped_column(String(320), default="")
    preferred_locale: Mapped[str | None] = mapped_column(String(8), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: SHA-256 of the secret in the resident's calendar feed URL (the URL itself is shown
    #: once); None when no feed exists. Revoking = clearing it.
    calendar_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)

    @property
    def display_name(self) -> str:
        """Given names then the name the person uses day to day."""
        return f"{self.given_name} {self.usage_name or self.family_name}".strip()

    @property
    def greeting_name(self) -> str:
        """How the person is greeted: their first given name (« Marie-Thérèse », not
        « Marie-Thérèse Anne ») and the name they use, the usage name if they have one."""
        first = (self.given_name.split() or [""])[0]
        return f"{first} {self.usage_name or self.family_name}".strip()
