"""``flask agents`` and ``flask desks``: an operator opens, and closes, an agent's
access, gives roles, and declares the help desks.

Only provisioned agents get in: ProConnect says who someone is, not that they work
with this portal. The agent who is refused is shown their ``idp_id`` and ``sub``
(and a short reference), which the operator types here. ``flask agents expire`` closes
the accesses left unused (run it daily, see docs/operations.md).
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from portal.agents import access
from portal.extensions import db
from portal.models import Agent, Desk
from portal.models.desk import DESK_ROLES, ROLES


@click.group("agents")
def agents() -> None:
    """Provision and deactivate agents (ProConnect sign-in)."""


def _find(idp_id: str, sub: str) -> Agent | None:
    return db.session.execute(
        db.select(Agent).filter_by(idp_id=idp_id, sub=sub)
    ).scalar_one_or_none()


def _desk(ref: str) -> Desk:
    desk = access.find_desk(ref)
    if desk is None:
        raise click.ClickException(f"no desk with the id or SIRET {ref!r}")
    return desk


def _give(agent: Agent, role: str | None, desk_ref: str | None, instances: str) -> None:
    """``--role``/``--desk``/``--instances`` of ``add`` and ``grant``."""
    if role is None:
        if desk_ref:
            raise click.UsageError("--desk needs --role")
        return
    if role in DESK_ROLES and not desk_ref:
        raise click.UsageError(f"--role {role} needs --desk")
    if role not in DESK_ROLES and desk_ref:
        raise click.UsageError(f"--role {role} is held without a desk: no --desk")
    slugs = [slug.strip() for slug in instances.split(",") if slug.strip()]
    if role == "service_owner" and not slugs:
        raise click.UsageError("--role service_owner needs --instances")
    desk = _desk(desk_ref) if desk_ref else None
    if agent.id is None:
        db.session.flush()
    access.grant(agent, role, desk, slugs)
    where = f" on desk {desk.id} ({desk.name})" if desk else ""
    extra = f" for {', '.join(slugs)}" if role == "service_owner" else ""
    click.echo(f"role {role}{where}{extra} given")


ROLE_OPTION = click.option("--role", type=click.Choice(ROLES), help="A role to give.")
DESK_OPTION = click.option("--desk", "desk_ref", help="The desk (id or SIRET) of the role.")
INSTANCES_OPTION = click.option(
    "--instances", default="", help="service_owner: connector instance slugs, comma-separated."
)


@agents.command("add")
@click.option("--idp-id", required=True, help="The agent's identity provider (idp_id).")
@click.option("--sub", required=True, help="The agent's ProConnect sub for this portal.")
@click.option("--name", required=True, help="Who this is, for operators (e.g. 'Claire Dubois').")
@ROLE_OPTION
@DESK_OPTION
@INSTANCES_OPTION
@with_appcontext
def add(
    idp_id: str, sub: str, name: str, role: str | None, desk_ref: str | None, instances: str
) -> None:
    """Open an access (or reopen a deactivated one), with a role if given."""
    idp_id, sub, name = idp_id.strip(), sub.strip(), name.strip()
    if not idp_id or not sub or not name:
        raise click.UsageError("--idp-id, --sub and --name must not be empty")
    agent = _find(idp_id, sub)
    if agent is None:
        agent = Agent(idp_id=idp_id, sub=sub, name=name, active=True)
        db.session.add(agent)
        click.echo(f"agent {name!r} provisioned")
    elif agent.active:
        click.echo(f"agent {agent.name!r} was already provisioned and active")
    else:
        access.reopen(agent)
        agent.name = name
        click.echo(f"agent {name!r} reactivated")
    _give(agent, role, desk_ref, instances)
    db.session.commit()


def _existing(idp_id: str, sub: str) -> Agent:
    agent = _find(idp_id.strip(), sub.strip())
    if agent is None:
        raise click.ClickException("no agent with this idp_id and sub")
    return agent


@agents.command("grant")
@click.option("--idp-id", required=True)
@click.option("--sub", required=True)
@click.option("--role", type=click.Choice(ROLES), required=True, help="The role to give.")
@DESK_OPTION
@INSTANCES_OPTION
@with_appcontext
def grant(idp_id: str, sub: str, role: str, desk_ref: str | None, instances: str) -> None:
    """Give an agent a role (on a desk: replaces their role there)."""
    _give(_existing(idp_id, sub), role, desk_ref, instances)
    db.session.commit()


@agents.command("revoke")
@click.option("--idp-id", required=True)
@click.option("--sub", required=True)
@click.option("--role", type=click.Choice(ROLES), required=True, help="The role to take away.")
@DESK_OPTION
@with_appcontext
def revoke(idp_id: str, sub: str, role: str, desk_ref: str | None) -> None:
    """Take a role away from an agent."""
    agent = _existing(idp_id, sub)
    desk = _desk(desk_ref) if desk_ref else None
    if not access.revoke(agent, role, desk):
        raise click.ClickException(f"agent {agent.name!r} does not hold this role")
    db.session.commit()
    click.echo(f"role {role} taken away from {agent.name!r}")


@agents.command("expire")
@with_appcontext
def expire() -> None:
    """Deactivate agents not seen for 183 days; warn those not seen for 152 days.

    Idempotent: run it daily (see docs/operations.md).
    """
    deactivated, warned, cleared = access.expire_inactive()
    click.echo(f"{deactivated} agent(s) not seen for {access.EXPIRE_AFTER.days} days deactivated")
    click.echo(f"{warned} agent(s) not seen for {access.WARN_AFTER.days} days warned")
    click.echo(f"{cleared} warning(s) cleared (agents seen again)")


@agents.command("deactivate")
@click.option("--idp-id", required=True)
@click.option("--sub", required=True)
@with_appcontext
def deactivate(idp_id: str, sub: str) -> None:
    """Close an access and end the agent's sessions now."""
    agent = _existing(idp_id, sub)
    access.deactivate(agent)
    db.session.commit()
    click.echo(f"agent {agent.name!r} deactivated")


@click.group("desks")
def desks() -> None:
    """Declare the help desks where advisers work."""


@desks.command("add")
@click.option("--name", required=True, help="e.g. 'France services de Pessac'.")
@click.option("--siret", required=True, help="The desk's SIRET (14 digits).")
@click.option("--address", required=True, help="Postal address, on one line.")
@click.option("--communes", required=True, help="Communes served, comma-separated.")
@click.option("--phone", default="", help="Phone number residents may call.")
@click.option("--hours", default="", help="Opening hours, free text.")
@with_appcontext
def add_desk(name: str, siret: str, address: str, communes: str, phone: str, hours: str) -> None:
    """Declare a desk (a SIRET is declared once)."""
    name, siret, address = name.strip(), siret.replace(" ", "").strip(), address.strip()
    served = [c.strip() for c in communes.split(",") if c.strip()]
    if not name or not address or not served:
        raise click.UsageError("--name, --address and --communes must not be empty")
    if len(siret) != 14 or not siret.isascii() or not siret.isdigit():
        raise click.UsageError("--siret must be 14 digits")
    if db.session.execute(db.select(Desk).filter_by(siret=siret)).first() is not None:
        raise click.ClickException(f"a desk with the SIRET {siret} exists already")
    desk = Desk(
        name=name,
        siret=siret,
        address=address,
        communes=served,
        phone=phone.strip(),
        opening_hours=hours.strip(),
        active=True,
    )
    db.session.add(desk)
    db.session.commit()
    click.echo(f"desk {desk.id} {name!r} added")


@desks.command("list")
@with_appcontext
def list_desks() -> None:
    """One line per desk: id, SIRET, name, communes, state."""
    rows = db.session.execute(db.select(Desk).order_by(Desk.id)).scalars().all()
    if not rows:
        click.echo("no desk")
    for desk in rows:
        state = "active" if desk.active else "inactive"
        click.echo(f"{desk.id}\t{desk.siret}\t{desk.name}\t{', '.join(desk.communes)}\t{state}")
