"""Provision the demo help desks and advisers in the development database, so that
``make run`` lets anyone try the advisers' side at once: sign in at
http://127.0.0.1:5000/agents/connexion as Claire DUBOIS (referent of the first desk) or
Karim BENALI (adviser at the second), through the sandbox's ProConnect page.

Idempotent: run by ``make run`` each time; it adds what is missing and changes nothing
else (an access closed by a referent stays closed). Development only: it uses the
sandbox's agents and the development client's ``sub`` values.
"""

from __future__ import annotations

from sandbox.idp.agents import SANDBOX_IDP_ID, agent_sub

CLIENT_ID = "compte-territorial-agents-dev"

DESKS = (
    {
        "name": "Maison France services de Bordeaux Lac",
        "siret": "21330063500017",
        "address": "12 rue du Lac, 33300 Bordeaux",
        "communes": ["Bordeaux", "Bruges", "Eysines"],
        "phone": "05 56 00 00 01",
        "opening_hours": "Du lundi au vendredi, de 9 h à 12 h 30 et de 13 h 30 à 17 h",
    },
    {
        "name": "Mairie de Mérignac – accueil numérique",
        "siret": "21330281300016",
        "address": "60 avenue du Maréchal-de-Lattre-de-Tassigny, 33700 Mérignac",
        "communes": ["Mérignac"],
        "phone": "05 56 00 00 02",
        "opening_hours": "Le mardi et le jeudi, de 14 h à 18 h",
    },
)
#: (sandbox agent, desk SIRET, role)
ROLES = (
    ("claire", "21330063500017", "referent"),
    ("karim", "21330281300016", "adviser"),
)


def provision() -> list[str]:
    from portal import create_app
    from portal.extensions import db
    from portal.models import Agent, AgentRole, Desk

    done: list[str] = []
    app = create_app()
    with app.app_context():
        for values in DESKS:
            if db.session.execute(db.select(Desk).filter_by(siret=values["siret"])).first():
                continue
            db.session.add(Desk(active=True, **values))
            done.append(f"desk {values['name']}")
        db.session.flush()
        for key, siret, role in ROLES:
            sub = agent_sub(CLIENT_ID, key)
            agent = db.session.execute(
                db.select(Agent).filter_by(idp_id=SANDBOX_IDP_ID, sub=sub)
            ).scalar_one_or_none()
            if agent is None:
                agent = Agent(idp_id=SANDBOX_IDP_ID, sub=sub, name=key.title())
                db.session.add(agent)
                db.session.flush()
                done.append(f"agent {key}")
            desk = db.session.execute(db.select(Desk).filter_by(siret=siret)).scalar_one()
            held = db.session.execute(
                db.select(AgentRole).filter_by(agent_id=agent.id, desk_id=desk.id)
            ).first()
            if held is None:
                db.session.add(AgentRole(agent_id=agent.id, desk_id=desk.id, role=role))
                done.append(f"{key}: {role} at {desk.name}")
        db.session.commit()
    return done


if __name__ == "__main__":
    for line in provision():
        print(f"demo: {line}")
