"""A desk's referent manages the desk's agents: sees them, adds one by the reference
their refused sign-in showed them, and closes an access."""

from __future__ import annotations

import logging

from flask import abort, flash, g, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from portal.agents import access, bp
from portal.auth.session import see_other
from portal.extensions import db
from portal.journeys import journey
from portal.models import Agent, AgentAccessRequest, AgentRole, Desk
from portal.models.desk import DESK_ROLES

log = logging.getLogger(__name__)


def role_label(role: str) -> str:
    return {
        "adviser": _("Conseiller ou conseillère"),
        "referent": _("Référent ou référente du guichet"),
        "service_owner": _("Responsable de service"),
        "territory_admin": _("Administrateur ou administratrice du territoire"),
    }.get(role, role)


@bp.app_template_filter("agent_role")
def _agent_role_filter(role: str) -> str:
    return role_label(role)


def _members(desk: Desk) -> list[tuple[Agent, AgentRole]]:
    rows = db.session.execute(
        db.select(Agent, AgentRole)
        .join(AgentRole, AgentRole.agent_id == Agent.id)
        .where(AgentRole.desk_id == desk.id)
        .order_by(Agent.active.desc(), Agent.name, Agent.id)
    ).all()
    return [(agent, role) for agent, role in rows]


def _back(desk: Desk) -> Response:
    return see_other(url_for("agents.desk_agents", desk_id=desk.id))


@bp.get("/desk/<desk_id>/agents")
@access.agent_required(role="referent", desk_param="desk_id")
@journey("agents", "desk-agents")
def desk_agents(desk_id: str) -> str:
    return render_template(
        "agents/desk_agents.html",
        agent=g.agent,
        desk=g.desk,
        members=_members(g.desk),
        roles=DESK_ROLES,
    )


@bp.post("/desk/<desk_id>/agents/<agent_id>/deactivate")
@access.agent_required(role="referent", desk_param="desk_id")
@journey("agents", "desk-deactivate")
def desk_deactivate(desk_id: str, agent_id: str) -> Response:
    desk: Desk = g.desk
    target_id = access.parse_id(agent_id)
    target = db.session.get(Agent, target_id) if target_id is not None else None
    if target is None or access.desk_role(target, desk) is None:
        abort(404)  # only the desk's own agents, and the same answer for any other
    if target.id == g.agent.id:
        flash(_("Vous ne pouvez pas désactiver votre propre accès."), "error")
        return _back(desk)
    if any(held.desk_id is None for held in access.roles_of(target)):
        # A service owner's or a territory administrator's access is an operator's call.
        flash(
            _(
                "L'accès de %(name)s ne peut être désactivé que par la personne qui "
                "administre le Compte territorial.",
                name=target.display_name,
            ),
            "error",
        )
        return _back(desk)
    if target.active:
        access.deactivate(target)
        db.session.commit()
        log.info("agent %s deactivated by referent %s of desk %s", target.id, g.agent.id, desk.id)
    flash(_("L'accès de %(name)s est désactivé.", name=target.display_name), "success")
    return _back(desk)


@bp.post("/desk/<desk_id>/agents/add")
@access.agent_required(role="referent", desk_param="desk_id")
@journey("agents", "desk-add")
def desk_add(desk_id: str) -> Response:
    desk: Desk = g.desk
    reference = access.normalise_reference(request.form.get("reference", ""))
    role = request.form.get("role", "")
    if reference is None:
        flash(
            _(
                "Cette référence n'est pas valide : elle compte douze chiffres ou lettres "
                "de A à F, par exemple 3F2A-91C0-7B4E."
            ),
            "error",
        )
        return _back(desk)
    if role not in DESK_ROLES:
        flash(_("Choisissez le rôle à donner."), "error")
        return _back(desk)
    found = access.agent_by_reference(reference)
    if found is None:
        flash(
            _(
                "Aucune demande d'accès ne correspond à la référence %(reference)s. Demandez "
                "à la personne de se connecter une fois avec ProConnect, puis de vous donner "
                "la référence affichée.",
                reference=reference,
            ),
            "error",
        )
        return _back(desk)
    if isinstance(found, AgentAccessRequest):
        agent = Agent(
            idp_id=found.idp_id,
            sub=found.sub,
            name=found.display_name or reference,
            given_name=found.given_name,
            usual_name=found.usual_name,
            active=True,
        )
        db.session.add(agent)
        db.session.delete(found)
        db.session.flush()
    else:
        agent = found
        if not agent.active:
            access.reopen(agent)
    access.grant(agent, role, desk)
    db.session.commit()
    log.info("agent %s given %s on desk %s by referent %s", agent.id, role, desk.id, g.agent.id)
    flash(
        _(
            "%(name)s a désormais le rôle « %(role)s » sur ce guichet.",
            name=agent.display_name,
            role=role_label(role),
        ),
        "success",
    )
    return _back(desk)
