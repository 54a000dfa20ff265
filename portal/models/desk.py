"""Help desks (guichets) and who may do what there: the agents' roles.

A role on a desk is ``adviser`` (helps residents at that desk) or ``referent`` (also
manages the desk's agents). Two roles hold without a desk: ``service_owner`` of the
connector instances named in ``instances`` (their slugs) and ``territory_admin``. Both
kinds live in one table, ``agent_role``: a desk role has a ``desk_id`` and no
``instances``; a desk-less role has neither a desk nor (except ``service_owner``)
instances. An agent has at most one role per desk (``uq_agent_role_agent_id``); the
commands keep at most one row per desk-less role and agent.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import Model
from portal.models._types import UTCDateTime, utcnow

#: Roles held on one desk; a referent may do everything an adviser may.
DESK_ROLES = ("adviser", "referent")
#: Roles held without a desk.
TERRITORY_ROLES = ("service_owner", "territory_admin")
ROLES = DESK_ROLES + TERRITORY_ROLES


class Desk(Model):
    """A help desk where advisers meet residents (a town hall, a France services desk)."""

    __tablename__ = "desk"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    siret: Mapped[str] = mapped_column(String(14), unique=True)
    address: Mapped[str] = mapped_column(Text, default="")
    #: The communes served, as a list of names (``["Bordeaux", "Pessac"]``).
    communes: Mapped[list[str]] = mapped_column(JSON, default=list)
    phone: Mapped[str] = mapped_column(String(32), default="")
    #: Free text, shown as typed (« lundi–vendredi 9 h–12 h »).
    opening_hours: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AgentRole(Model):
    """One thing an agent may do: a role on a desk, or a desk-less role (see the module)."""

    __tablename__ = "agent_role"
    __table_args__ = (
        UniqueConstraint("agent_id", "desk_id", name="uq_agent_role_agent_id"),
        CheckConstraint(
            "role IN ('adviser', 'referent', 'service_owner', 'territory_admin')", name="role"
        ),
        CheckConstraint(
            "(desk_id IS NOT NULL) = (role IN ('adviser', 'referent'))", name="desk_for_role"
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"), index=True)
    desk_id: Mapped[int | None] = mapped_column(
        ForeignKey("desk.id", ondelete="CASCADE"), index=True, default=None
    )
    role: Mapped[str] = mapped_column(String(32))
    #: ``service_owner`` only: the connector instance slugs they own.
    instances: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    desk: Mapped[Desk | None] = relationship()


class AgentAccessRequest(Model):
    """An agent ProConnect identified but the portal does not know yet.

    Kept from the refused sign-in so that a desk's referent can open the access by the
    short reference the refusal page showed (the reference is a hash: it cannot be
    turned back into ``idp_id`` and ``sub``). Deleted once used, or by the purge after
    ``ACCESS_REQUEST_RETENTION``.
    """

    __tablename__ = "agent_access_request"

    reference: Mapped[str] = mapped_column(String(14), primary_key=True)
    idp_id: Mapped[str] = mapped_column(String(255))
    sub: Mapped[str] = mapped_column(String(255))
    given_name: Mapped[str] = mapped_column(String(255), default="")
    usual_name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.usual_name}".strip()
