"""Public agents (advisers, service owners) known to the portal through ProConnect."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import Model
from portal.models._types import UTCDateTime, utcnow


class Agent(Model):
    """Provisioned by an operator (``flask agents add``) before the first sign-in.

    An agent is the pair (``idp_id``, ``sub``): ProConnect's ``sub`` is specific to one
    identity provider and one service, and an e-mail address can change hands, so an
    agent is never matched on e-mail. The names, e-mail and organisation are refreshed
    from ProConnect at each sign-in; ``name`` is what the operator typed.
    """

    __tablename__ = "agent"
    __table_args__ = (
        UniqueConstraint("idp_id", "sub", name="uq_agent_idp_id_sub"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idp_id: Mapped[str] = mapped_column(String(255))
    sub: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    given_name: Mapped[str] = mapped_column(String(255), default="")
    usual_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    siret: Mapped[str] = mapped_column(String(14), default="")
    organization_label: Mapped[str] = mapped_column(String(255), default="")
    active: Mapped[bool] = mapped_column(default=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: Set by ``flask agents expire`` when the agent has not been seen for five months
    #: (their access closes at six); cleared once they are seen again.
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: When the access was last opened or reopened: the inactivity clock starts there too,
    #: so that a reopened access is not closed again before the agent can sign in.
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def display_name(self) -> str:
        signed_in_as = f"{self.given_name} {self.usual_name}".strip()
        return signed_in_as or self.name


class AgentSession(Model):
    """An agent's signed-in session: its own table and cookie, never a resident's."""

    __tablename__ = "agent_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Kept only to send as ``id_token_hint`` when signing out of ProConnect.
    id_token: Mapped[str] = mapped_column(Text, default="")

    agent: Mapped[Agent] = relationship()
