"""``flask agents``: an operator opens, and closes, an agent's access.

Only provisioned agents get in: ProConnect says who someone is, not that they work
with this portal. The agent who is refused is shown their ``idp_id`` and ``sub``
(and a short reference), which the operator types here.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from portal.extensions import db
from portal.models import Agent, AgentSession


@click.group("agents")
def agents() -> None:
    """Provision and deactivate agents (ProConnect sign-in)."""


def _find(idp_id: str, sub: str) -> Agent | None:
    return db.session.execute(
        db.select(Agent).filter_by(idp_id=idp_id, sub=sub)
    ).scalar_one_or_none()


@agents.command("add")
@click.option("--idp-id", required=True, help="The agent's identity provider (idp_id).")
@click.option("--sub", required=True, help="The agent's ProConnect sub for this portal.")
@click.option("--name", required=True, help="Who this is, for operators (e.g. 'Claire Dubois').")
@with_appcontext
def add(idp_id: str, sub: str, name: str) -> None:
    """Open an access (or reopen a deactivated one)."""
    idp_id, sub, name = idp_id.strip(), sub.strip(), name.strip()
    if not idp_id or not sub or not name:
        raise click.UsageError("--idp-id, --sub and --name must not be empty")
    agent = _find(idp_id, sub)
    if agent is None:
        db.session.add(Agent(idp_id=idp_id, sub=sub, name=name, active=True))
        click.echo(f"agent {name!r} provisioned")
    elif agent.active:
        click.echo(f"agent {agent.name!r} was already provisioned and active")
    else:
        agent.active = True
        agent.name = name
        click.echo(f"agent {name!r} reactivated")
    db.session.commit()


@agents.command("deactivate")
@click.option("--idp-id", required=True)
@click.option("--sub", required=True)
@with_appcontext
def deactivate(idp_id: str, sub: str) -> None:
    """Close an access and end the agent's sessions now."""
    agent = _find(idp_id.strip(), sub.strip())
    if agent is None:
        raise click.ClickException("no agent with this idp_id and sub")
    agent.active = False
    db.session.execute(db.delete(AgentSession).where(AgentSession.agent_id == agent.id))
    db.session.commit()
    click.echo(f"agent {agent.name!r} deactivated")
