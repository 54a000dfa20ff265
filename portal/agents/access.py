"""Who may do what in the agents' area: roles on desks, the check every page makes,
and the closing of accesses left unused.

Every agents' page that concerns a desk is decorated with
``agent_required(role=..., desk_param=...)``: the agent must be signed in, the desk
must exist (otherwise the same 404 as any unknown page) and the agent must hold the
role on that desk (otherwise a 403 page saying so). A referent may do what an adviser
may.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import wraps
from typing import TypeVar

from flask import abort, g
from flask_babel import gettext as _

from portal.agents.session import agent_login_required
from portal.errors import render_error
from portal.extensions import db
from portal.models import Agent, AgentAccessRequest, AgentRole, AgentSession, Desk
from portal.models._types import utcnow
from portal.models.desk import DESK_ROLES, TERRITORY_ROLES

F = TypeVar("F", bound=Callable[..., object])

#: An agent not seen for this long loses their access...
EXPIRE_AFTER = timedelta(days=183)
#: ...and is warned from this age on (a month before).
WARN_AFTER = timedelta(days=152)

#: Which roles satisfy a page asking for a role.
SATISFIES: dict[str, tuple[str, ...]] = {
    "adviser": ("adviser", "referent"),
    "referent": ("referent",),
}

_MAX_ID = 2**31 - 1
_REFERENCE = re.compile(r"[0-9A-F]{12}")


def agent_reference(idp_id: str, sub: str) -> str:
    """A short reference for the pair, easy to read out on the phone (« 3F2A-91C0-7B4E »)."""
    digest = hashlib.sha256(f"{idp_id}\n{sub}".encode()).hexdigest()[:12].upper()
    return "-".join(digest[i : i + 4] for i in range(0, 12, 4))


def normalise_reference(text: str) -> str | None:
    """« 3f2a 91c0-7b4e » → « 3F2A-91C0-7B4E »; None if it cannot be a reference."""
    compact = re.sub(r"[\s\-]", "", text or "").upper()
    if not _REFERENCE.fullmatch(compact):
        return None
    return "-".join(compact[i : i + 4] for i in range(0, 12, 4))


def parse_id(value: object) -> int | None:
    """A database id from a URL or a form, or None (never an error, whatever is sent)."""
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= _MAX_ID else None


def find_desk(ref: str) -> Desk | None:
    """A desk by id or by SIRET (14 digits)."""
    ref = ref.strip()
    if len(ref) == 14 and ref.isdigit():
        return db.session.execute(db.select(Desk).filter_by(siret=ref)).scalar_one_or_none()
    desk_id = parse_id(ref)
    return db.session.get(Desk, desk_id) if desk_id is not None else None


def roles_of(agent: Agent) -> list[AgentRole]:
    return list(
        db.session.execute(
            db.select(AgentRole).filter_by(agent_id=agent.id).order_by(AgentRole.id)
        ).scalars()
    )


def desk_role(agent: Agent, desk: Desk) -> AgentRole | None:
    return db.session.execute(
        db.select(AgentRole).filter_by(agent_id=agent.id, desk_id=desk.id)
    ).scalar_one_or_none()


def grant(
    agent: Agent, role: str, desk: Desk | None = None, instances: Sequence[str] = ()
) -> AgentRole:
    """Give a role (replacing the agent's role on that desk, or the desk-less role's
    instances); the caller commits."""
    if role in DESK_ROLES:
        if desk is None:
            raise ValueError(f"the role {role} needs a desk")
        row = desk_role(agent, desk)
    elif role in TERRITORY_ROLES:
        if desk is not None:
            raise ValueError(f"the role {role} is held without a desk")
        row = db.session.execute(
            db.select(AgentRole).filter_by(agent_id=agent.id, desk_id=None, role=role)
        ).scalar_one_or_none()
    else:
        raise ValueError(f"unknown role {role!r}")
    if row is None:
        row = AgentRole(agent_id=agent.id, desk_id=desk.id if desk else None, role=role)
        db.session.add(row)
    row.role = role
    row.instances = sorted(set(instances)) if role == "service_owner" else []
    return row


def revoke(agent: Agent, role: str, desk: Desk | None = None) -> bool:
    """Take a role away; False if the agent did not hold it. The caller commits."""
    statement = db.select(AgentRole).filter_by(agent_id=agent.id, role=role)
    statement = statement.filter_by(desk_id=desk.id if desk else None)
    row = db.session.execute(statement).scalar_one_or_none()
    if row is None:
        return False
    db.session.delete(row)
    return True


def deactivate(agent: Agent) -> None:
    """Close the access and end the agent's sessions now; roles are kept, so that
    reopening the access gives them back. The caller commits."""
    agent.active = False
    agent.warned_at = None
    db.session.execute(db.delete(AgentSession).where(AgentSession.agent_id == agent.id))


def agent_by_reference(reference: str) -> Agent | AgentAccessRequest | None:
    """The agent known by this reference, or else the access request kept under it.

    An agent provisioned (``flask agents add``) after their refused sign-in is found as
    the agent, and their request is dropped. Agents are few: their references are
    computed rather than stored."""
    request_row = db.session.get(AgentAccessRequest, reference)
    if request_row is not None:
        known = db.session.execute(
            db.select(Agent).filter_by(idp_id=request_row.idp_id, sub=request_row.sub)
        ).scalar_one_or_none()
        if known is None:
            return request_row
        db.session.delete(request_row)
        return known
    for agent in db.session.execute(db.select(Agent)).scalars():
        if agent_reference(agent.idp_id, agent.sub) == reference:
            return agent
    return None


def record_access_request(idp_id: str, sub: str, given_name: str, usual_name: str) -> str:
    """Keep a refused agent's identifiers under their reference; the caller commits."""
    reference = agent_reference(idp_id, sub)
    row = db.session.get(AgentAccessRequest, reference)
    if row is None:
        row = AgentAccessRequest(reference=reference, idp_id=idp_id, sub=sub)
        db.session.add(row)
    row.given_name, row.usual_name, row.created_at = given_name, usual_name, utcnow()
    return reference


def reopen(agent: Agent) -> None:
    """Open a deactivated access again; the inactivity clock restarts. The caller commits."""
    agent.active = True
    agent.warned_at = None
    agent.opened_at = utcnow()


def last_seen(agent: Agent) -> datetime:
    """When the agent was last seen, or their access (re)opened if that is later."""
    opened = agent.opened_at or agent.created_at
    return max(agent.last_seen_at, opened) if agent.last_seen_at else opened


def expire_inactive(now: datetime | None = None) -> tuple[int, int, int]:
    """Deactivate agents not seen for ``EXPIRE_AFTER``, warn those not seen for
    ``WARN_AFTER`` (once), and clear the warning of those seen since; commits.
    Returns (deactivated, warned, cleared); running it again changes nothing."""
    now = now or utcnow()
    deactivated = warned = cleared = 0
    for agent in db.session.execute(db.select(Agent).filter_by(active=True)).scalars().all():
        age = now - last_seen(agent)
        if age >= EXPIRE_AFTER:
            deactivate(agent)
            deactivated += 1
        elif age >= WARN_AFTER:
            if agent.warned_at is None:
                agent.warned_at = now
                warned += 1
        elif agent.warned_at is not None:
            agent.warned_at = None
            cleared += 1
    db.session.commit()
    return deactivated, warned, cleared


def _refused_role() -> tuple[str, int]:
    return render_error(
        403,
        _(
            "Vous n'avez pas le rôle nécessaire sur ce guichet pour ouvrir cette page. "
            "Si vous en avez besoin, demandez-le au référent de votre guichet."
        ),
    )


def agent_required(role: str, desk_param: str = "desk_id") -> Callable[[F], F]:
    """Signed in, the desk exists (404 otherwise) and the agent holds ``role`` on it
    (403 otherwise); the view finds the desk on ``g.desk`` and the role on ``g.role``."""
    allowed = SATISFIES[role]

    def decorator(view: F) -> F:
        @wraps(view)
        def checked(*args: object, **kwargs: object) -> object:
            desk_id = parse_id(kwargs.get(desk_param))
            desk = db.session.get(Desk, desk_id) if desk_id is not None else None
            if desk is None or not desk.active:
                abort(404)
            held = desk_role(g.agent, desk)
            if held is None or held.role not in allowed:
                return _refused_role()
            g.desk, g.role = desk, held
            return view(*args, **kwargs)

        return agent_login_required(checked)  # type: ignore[return-value]

    return decorator
