"""Who may do what: help desks, the agents' roles on them, the referent's page (over real
HTTP, agents signing in through the sandbox's ProConnect) and the closing of accesses
left unused."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Agent, AgentAccessRequest, AgentRole, AgentSession, Desk
from portal.models._types import utcnow
from sandbox.idp.agents import SANDBOX_IDP_ID, agent_sub
from tests.support import agent_sign_in, provision_agent

CLIENT_ID = "compte-territorial-agents-dev"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
REFERENCE_RE = re.compile(r'class="agent-reference">([0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4})<')
SIRET_A, SIRET_B = "21330063500017", "21330281300016"


def cli(app: Flask, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def add_desk(app: Flask, name: str, siret: str, communes: str = "Bordeaux,Pessac") -> int:
    result = cli(
        app,
        "desks",
        "add",
        "--name",
        name,
        "--siret",
        siret,
        "--address",
        "1 place de la Mairie, 33000 Bordeaux",
        "--communes",
        communes,
        "--phone",
        "05 56 00 00 00",
        "--hours",
        "Du lundi au vendredi, de 9 h à 12 h",
    )
    assert result.exit_code == 0, result.output
    match = re.search(r"desk (\d+) ", result.output)
    assert match, result.output
    return int(match.group(1))


def ids(agent: str) -> list[str]:
    return ["--idp-id", SANDBOX_IDP_ID, "--sub", agent_sub(CLIENT_ID, agent)]


def grant(app: Flask, agent: str, role: str, desk: int | str) -> None:
    result = cli(app, "agents", "grant", *ids(agent), "--role", role, "--desk", str(desk))
    assert result.exit_code == 0, result.output


def agent_row(app: Flask, agent: str) -> Agent:
    with app.app_context():
        row = db.session.execute(
            db.select(Agent).filter_by(sub=agent_sub(CLIENT_ID, agent))
        ).scalar_one()
        db.session.expunge(row)
        return row


def page_token(client: FlaskClient, path: str) -> str:
    r = client.get(path)
    assert r.status_code == 200, r.status_code
    match = CSRF_RE.search(r.get_data(as_text=True))
    assert match
    return match.group(1)


@pytest.fixture
def desks(app: Flask) -> tuple[int, int]:
    """Desk A, where Claire is referent and Karim adviser, and desk B."""
    a = add_desk(app, "France services de Pessac", SIRET_A)
    b = add_desk(app, "Mairie de Mérignac", SIRET_B, communes="Mérignac")
    provision_agent(app, "claire")
    provision_agent(app, "karim")
    grant(app, "claire", "referent", a)
    grant(app, "karim", "adviser", a)
    return a, b


# -- the commands --------------------------------------------------------------------------


def test_the_desk_commands_add_list_and_refuse_what_is_wrong(app: Flask) -> None:
    a = add_desk(app, "France services de Pessac", SIRET_A)
    listed = cli(app, "desks", "list").output
    assert f"{a}\t{SIRET_A}\tFrance services de Pessac\tBordeaux, Pessac\tactive" in listed
    again = cli(app, "desks", "add", "--name", "X", "--siret", SIRET_A, "--address", "Y",
                "--communes", "Z")  # fmt: skip
    assert again.exit_code != 0 and "exists already" in again.output
    for siret in ("123", "1234567890123a", "123456789012345"):
        bad = cli(app, "desks", "add", "--name", "X", "--siret", siret, "--address", "Y",
                  "--communes", "Z")  # fmt: skip
        assert bad.exit_code != 0 and "14 digits" in bad.output
    empty = cli(app, "desks", "add", "--name", "X", "--siret", SIRET_B, "--address", "Y",
                "--communes", " , ")  # fmt: skip
    assert empty.exit_code != 0
    with app.app_context():
        [desk] = db.session.execute(db.select(Desk)).scalars()
        assert desk.communes == ["Bordeaux", "Pessac"]
        assert desk.opening_hours == "Du lundi au vendredi, de 9 h à 12 h"
        assert desk.phone == "05 56 00 00 00" and desk.active


def test_the_agent_commands_give_and_take_roles(app: Flask) -> None:
    a = add_desk(app, "France services de Pessac", SIRET_A)
    b = add_desk(app, "Mairie de Mérignac", SIRET_B)
    added = cli(app, "agents", "add", *ids("claire"), "--name", "Claire", "--desk", SIRET_A,
                "--role", "referent")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "provisioned" in added.output and f"role referent on desk {a}" in added.output
    grant(app, "claire", "adviser", b)
    owner = cli(app, "agents", "grant", *ids("claire"), "--role", "service_owner",
                "--instances", "bib-merignac, bib-pessac")  # fmt: skip
    assert owner.exit_code == 0, owner.output
    assert cli(app, "agents", "grant", *ids("claire"), "--role", "territory_admin").exit_code == 0
    # What does not make sense is refused, and says why.
    refusals = {
        ("--role", "adviser"): "needs --desk",
        ("--role", "territory_admin", "--desk", str(a)): "without a desk",
        ("--role", "service_owner"): "needs --instances",
        ("--role", "adviser", "--desk", "999"): "no desk",
        ("--role", "adviser", "--desk", "abc"): "no desk",
        ("--role", "boss", "--desk", str(a)): "Invalid value",
    }
    for args, said in refusals.items():
        result = cli(app, "agents", "grant", *ids("claire"), *args)
        assert result.exit_code != 0 and said in result.output, (args, result.output)
    unknown = cli(app, "agents", "grant", "--idp-id", "x", "--sub", "y", "--role",
                  "territory_admin")  # fmt: skip
    assert unknown.exit_code != 0 and "no agent" in unknown.output
    with app.app_context():
        roles = sorted(
            (r.role, r.desk_id, tuple(r.instances))
            for r in db.session.execute(db.select(AgentRole)).scalars()
        )
    assert roles == sorted(
        [
            ("referent", a, ()),
            ("adviser", b, ()),
            ("service_owner", None, ("bib-merignac", "bib-pessac")),
            ("territory_admin", None, ()),
        ]
    )
    # One role per desk: granting another replaces it; revoking takes it away.
    grant(app, "claire", "referent", b)
    revoked = cli(app, "agents", "revoke", *ids("claire"), "--role", "referent", "--desk", str(a))
    assert revoked.exit_code == 0 and "taken away" in revoked.output
    twice = cli(app, "agents", "revoke", *ids("claire"), "--role", "referent", "--desk", str(a))
    assert twice.exit_code != 0 and "does not hold" in twice.output
    with app.app_context():
        desk_roles = db.session.execute(
            db.select(AgentRole.role, AgentRole.desk_id).where(AgentRole.desk_id.is_not(None))
        ).all()
    assert [tuple(r) for r in desk_roles] == [("referent", b)]


# -- the home page and the referent's page --------------------------------------------------


def test_the_home_page_lists_the_agents_desks_and_roles(
    client: FlaskClient, app: Flask, desks: tuple[int, int]
) -> None:
    a, b = desks
    grant(app, "claire", "adviser", b)
    assert agent_sign_in(client, "claire").status_code == 303
    html = client.get("/agents/").get_data(as_text=True)
    assert "Vos guichets et vos rôles" in html
    assert "France services de Pessac — Référent ou référente du guichet" in html
    assert "Mairie de Mérignac — Conseiller ou conseillère" in html
    assert f'href="/agents/desk/{a}/agents"' in html
    assert f'href="/agents/desk/{b}/agents"' not in html
    other = app.test_client()
    provision_agent(app, "karim")
    agent_sign_in(other, "karim")
    assert f'href="/agents/desk/{a}/agents"' not in other.get("/agents/").get_data(as_text=True)


def test_a_referent_sees_and_deactivates_an_agent_of_their_desk(
    client: FlaskClient, app: Flask, desks: tuple[int, int]
) -> None:
    a, _b = desks
    karim = app.test_client()
    assert agent_sign_in(karim, "karim").status_code == 303
    agent_sign_in(client, "claire")
    path = f"/agents/desk/{a}/agents"
    r = client.get(path)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "Agents du guichet France services de Pessac" in html
    assert "Karim BENALI" in html and "Conseiller ou conseillère" in html
    assert "Actif" in html and "Jamais" not in html  # both have signed in
    assert "Désactiver l'accès de Karim BENALI" in html
    assert "Désactiver l'accès de Claire" not in html  # not oneself
    karim_id = agent_row(app, "karim").id
    r = client.post(f"{path}/{karim_id}/deactivate", data={"csrf_token": page_token(client, path)})
    assert r.status_code == 303 and r.headers["Location"] == path
    html = client.get(path).get_data(as_text=True)
    assert "L&#39;accès de Karim BENALI est désactivé." in html
    assert "Désactivé" in html
    # Karim's session ended at once, and he can no longer sign in.
    assert karim.get("/agents/").headers["Location"] == "/agents/connexion"
    r = agent_sign_in(karim, "karim")
    assert r.status_code == 403 and "Votre accès a été désactivé" in r.get_data(as_text=True)
    assert not agent_row(app, "karim").active
    # A referent cannot close their own access by mistake.
    claire_id = agent_row(app, "claire").id
    token = page_token(client, path)
    client.post(f"{path}/{claire_id}/deactivate", data={"csrf_token": token})
    assert "votre propre accès" in client.get(path).get_data(as_text=True)
    assert agent_row(app, "claire").active
    # Nor the access of a territory administrator who also works at the desk.
    provision_agent(app, "sophie")
    grant(app, "sophie", "adviser", a)
    owner = cli(app, "agents", "grant", *ids("sophie"), "--role", "territory_admin")
    assert owner.exit_code == 0
    sophie_id = agent_row(app, "sophie").id
    client.post(f"{path}/{sophie_id}/deactivate", data={"csrf_token": page_token(client, path)})
    assert "ne peut être désactivé que par la personne qui administre" in client.get(path).get_data(
        as_text=True
    )
    assert agent_row(app, "sophie").active


def test_a_referent_adds_an_agent_by_the_reference_of_their_refusal(
    client: FlaskClient, app: Flask
) -> None:
    a = add_desk(app, "France services de Pessac", SIRET_A)
    provision_agent(app, "claire")
    grant(app, "claire", "referent", a)
    karim = app.test_client()
    r = agent_sign_in(karim, "karim")
    assert r.status_code == 403
    match = REFERENCE_RE.search(r.get_data(as_text=True))
    assert match
    reference = match.group(1)
    agent_sign_in(client, "claire")
    path = f"/agents/desk/{a}/agents"
    # Not a reference; a reference no one was given; no role: nothing is opened.
    for form, said in [
        ({"reference": "hello", "role": "adviser"}, "Cette référence n&#39;est pas valide"),
        ({"reference": "0000-0000-0000", "role": "adviser"}, "Aucune demande d&#39;accès"),
        ({"reference": reference, "role": "territory_admin"}, "Choisissez le rôle"),
    ]:
        r = client.post(f"{path}/add", data={**form, "csrf_token": page_token(client, path)})
        assert r.status_code == 303
        assert said in client.get(path).get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Agent)) == 1
    # Typed as read out on the phone: lower case, spaces instead of dashes.
    typed = reference.lower().replace("-", " ")
    r = client.post(
        f"{path}/add",
        data={"reference": typed, "role": "adviser", "csrf_token": page_token(client, path)},
    )
    assert r.status_code == 303
    html = client.get(path).get_data(as_text=True)
    assert "Karim BENALI a désormais le rôle" in html and "Jamais" in html
    with app.app_context():
        assert db.session.execute(db.select(AgentAccessRequest)).first() is None
    # Karim gets in, and sees his desk.
    assert agent_sign_in(karim, "karim").status_code == 303
    assert "France services de Pessac — Conseiller ou conseillère" in karim.get(
        "/agents/"
    ).get_data(as_text=True)
    # The same reference makes him referent; once deactivated, adding him reopens his access.
    token = page_token(client, path)
    client.post(
        f"{path}/add", data={"reference": reference, "role": "referent", "csrf_token": token}
    )
    karim_id = agent_row(app, "karim").id
    client.post(f"{path}/{karim_id}/deactivate", data={"csrf_token": page_token(client, path)})
    assert not agent_row(app, "karim").active
    token = page_token(client, path)
    client.post(
        f"{path}/add", data={"reference": reference, "role": "adviser", "csrf_token": token}
    )
    assert agent_row(app, "karim").active
    with app.app_context():
        [role] = db.session.execute(db.select(AgentRole).filter_by(agent_id=karim_id)).scalars()
        assert role.role == "adviser" and role.desk_id == a


def test_an_agent_provisioned_after_their_refusal_is_found_by_reference(
    client: FlaskClient, app: Flask
) -> None:
    a = add_desk(app, "France services de Pessac", SIRET_A)
    provision_agent(app, "claire")
    grant(app, "claire", "referent", a)
    karim = app.test_client()
    reference = REFERENCE_RE.search(agent_sign_in(karim, "karim").get_data(as_text=True))
    assert reference
    provision_agent(app, "karim")  # an operator was quicker than the referent
    agent_sign_in(client, "claire")
    path = f"/agents/desk/{a}/agents"
    data = {"reference": reference.group(1), "role": "adviser"}
    r = client.post(f"{path}/add", data={**data, "csrf_token": page_token(client, path)})
    assert r.status_code == 303
    assert "a désormais le rôle" in client.get(path).get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Agent)) == 2
        assert db.session.execute(db.select(AgentAccessRequest)).first() is None
    assert agent_sign_in(karim, "karim").status_code == 303


# -- who is refused --------------------------------------------------------------------------


def test_an_adviser_is_refused_the_referent_page(
    client: FlaskClient, app: Flask, desks: tuple[int, int]
) -> None:
    a, _b = desks
    agent_sign_in(client, "karim")
    token = page_token(client, "/agents/")
    r = client.get(f"/agents/desk/{a}/agents")
    assert r.status_code == 403
    assert "Vous n&#39;avez pas le rôle nécessaire sur ce guichet" in r.get_data(as_text=True)
    claire_id = agent_row(app, "claire").id
    r = client.post(f"/agents/desk/{a}/agents/{claire_id}/deactivate", data={"csrf_token": token})
    assert r.status_code == 403
    r = client.post(
        f"/agents/desk/{a}/agents/add",
        data={"reference": "0000-0000-0000", "role": "referent", "csrf_token": token},
    )
    assert r.status_code == 403
    assert agent_row(app, "claire").active


def test_a_referent_of_one_desk_is_refused_another_and_unknown_desks_are_404(
    client: FlaskClient, app: Flask, desks: tuple[int, int]
) -> None:
    a, b = desks
    agent_sign_in(client, "claire")
    assert client.get(f"/agents/desk/{b}/agents").status_code == 403
    karim_id = agent_row(app, "karim").id
    token = page_token(client, "/agents/")
    r = client.post(f"/agents/desk/{b}/agents/{karim_id}/deactivate", data={"csrf_token": token})
    assert r.status_code == 403
    unknown = client.get("/agents/desk/999999/agents")
    assert unknown.status_code == 404
    # The same page as any unknown address.
    nowhere = client.get("/agents/nowhere").get_data(as_text=True)
    main = re.compile(r"<main.*</main>", re.S)
    assert main.search(unknown.get_data(as_text=True)).group(0) == main.search(nowhere).group(0)
    assert "Page introuvable" in nowhere
    # Karim deactivated by the referent of B? Only B's agents, and the same 404 for others.
    grant(app, "claire", "referent", b)
    r = client.post(f"/agents/desk/{b}/agents/{karim_id}/deactivate", data={"csrf_token": token})
    assert r.status_code == 404
    assert agent_row(app, "karim").active
    with app.app_context():
        db.session.execute(db.update(Desk).where(Desk.id == b).values(active=False))
        db.session.commit()
    assert client.get(f"/agents/desk/{b}/agents").status_code == 404
    assert client.get(f"/agents/desk/{a}/agents").status_code == 200
    home = client.get("/agents/").get_data(as_text=True)
    assert "Mairie de Mérignac" not in home and "France services de Pessac" in home


@pytest.mark.parametrize(
    "desk_id",
    ["abc", "0", "-1", "1.0", "99999999999999999999999", "2147483648", "%00", "%C3%A9", "1%20"],
)
def test_hostile_desk_ids_are_404(
    client: FlaskClient, app: Flask, desks: tuple[int, int], desk_id: str
) -> None:
    agent_sign_in(client, "claire")
    token = page_token(client, "/agents/")
    assert client.get(f"/agents/desk/{desk_id}/agents").status_code == 404
    data = {"csrf_token": token, "reference": "0000-0000-0000", "role": "adviser"}
    assert client.post(f"/agents/desk/{desk_id}/agents/add", data=data).status_code == 404
    a, _b = desks
    r = client.post(f"/agents/desk/{a}/agents/{desk_id}/deactivate", data={"csrf_token": token})
    assert r.status_code == 404


def test_the_desk_pages_ask_a_signed_out_visitor_to_sign_in(
    client: FlaskClient, desks: tuple[int, int]
) -> None:
    a, _b = desks
    r = client.get(f"/agents/desk/{a}/agents")
    assert r.status_code == 302 and r.headers["Location"] == "/agents/connexion"


def test_every_desk_form_refuses_a_missing_form_token(
    client: FlaskClient, app: Flask, desks: tuple[int, int]
) -> None:
    a, _b = desks
    agent_sign_in(client, "claire")
    karim_id = agent_row(app, "karim").id
    r = client.post(f"/agents/desk/{a}/agents/{karim_id}/deactivate")
    assert r.status_code == 400
    assert "Le formulaire a expiré" in r.get_data(as_text=True)
    for token in ({}, {"csrf_token": "forged"}):
        r = client.post(
            f"/agents/desk/{a}/agents/add",
            data={"reference": "0000-0000-0000", "role": "adviser", **token},
        )
        assert r.status_code == 400
    assert agent_row(app, "karim").active


# -- accesses left unused --------------------------------------------------------------------


def test_expiry_deactivates_at_183_days_and_warns_from_152(app: Flask, client: FlaskClient) -> None:
    ages = {"d100": 100, "d151": 151, "d152": 152, "d182": 182, "d183": 183, "d400": 400}
    now = utcnow()
    opened_long_ago = {"created_at": now - timedelta(days=500), "opened_at": None}
    with app.app_context():
        for key, days in ages.items():
            seen = now - timedelta(days=days)
            db.session.add(
                Agent(idp_id="idp", sub=key, name=key, last_seen_at=seen, **opened_long_ago)
            )
        long_ago = now - timedelta(days=190)
        db.session.add(
            Agent(idp_id="idp", sub="never", name="never", created_at=long_ago, opened_at=long_ago)
        )
        db.session.add(Agent(idp_id="idp", sub="new", name="new", created_at=now))
        db.session.commit()
        # Rows from before ``opened_at`` existed: only ``last_seen_at`` counts.
        db.session.execute(db.update(Agent).where(Agent.sub.in_(list(ages))).values(opened_at=None))
        db.session.commit()
    provision_agent(app, "claire")
    agent_sign_in(client, "claire")
    with app.app_context():
        db.session.execute(
            db.update(Agent)
            .where(Agent.sub == agent_sub(CLIENT_ID, "claire"))
            .values(last_seen_at=now - timedelta(days=200), opened_at=now - timedelta(days=300))
        )
        db.session.commit()
    result = cli(app, "agents", "expire")
    assert result.exit_code == 0, result.output
    assert "4 agent(s) not seen for 183 days deactivated" in result.output
    assert "2 agent(s) not seen for 152 days warned" in result.output
    with app.app_context():
        state = {
            a.name: (a.active, a.warned_at is not None)
            for a in db.session.execute(db.select(Agent)).scalars()
        }
        assert db.session.execute(db.select(AgentSession)).first() is None
    assert state == {
        "d100": (True, False),
        "d151": (True, False),
        "d152": (True, True),
        "d182": (True, True),
        "d183": (False, False),
        "d400": (False, False),
        "never": (False, False),
        "new": (True, False),
        "Claire": (False, False),
    }
    assert client.get("/agents/").headers["Location"] == "/agents/connexion"
    # Idempotent: a second run (the same day) changes nothing.
    again = cli(app, "agents", "expire").output
    assert again.splitlines()[-3:] == [
        "0 agent(s) not seen for 183 days deactivated",
        "0 agent(s) not seen for 152 days warned",
        "0 warning(s) cleared (agents seen again)",
    ]
    # An agent seen again loses the warning at the next run.
    with app.app_context():
        db.session.execute(db.update(Agent).where(Agent.sub == "d152").values(last_seen_at=now))
        db.session.commit()
    assert "1 warning(s) cleared" in cli(app, "agents", "expire").output
    # An access reopened by an operator is not closed again before the agent can use it.
    provision_agent(app, "claire")
    assert "0 agent(s) not seen" in cli(app, "agents", "expire").output
    assert agent_row(app, "claire").active
    assert agent_sign_in(client, "claire").status_code == 303


def test_a_warned_agent_is_told_on_the_home_page(client: FlaskClient, app: Flask) -> None:
    provision_agent(app, "claire")
    agent_sign_in(client, "claire")
    assert "plus de cinq mois" not in client.get("/agents/").get_data(as_text=True)
    with app.app_context():
        db.session.execute(db.update(Agent).values(warned_at=utcnow()))
        db.session.commit()
    html = client.get("/agents/").get_data(as_text=True)
    assert "Vous ne vous étiez pas connecté(e) depuis plus de cinq mois" in html
    assert "Aucun rôle ne vous est encore attribué" in html


def test_a_refused_request_is_purged_after_30_days(client: FlaskClient, app: Flask) -> None:
    agent_sign_in(client, "karim")
    with app.app_context():
        [row] = db.session.execute(db.select(AgentAccessRequest)).scalars()
        row.created_at = utcnow() - timedelta(days=31)
        db.session.commit()
    assert "1 agent access request(s) older than 30 days deleted" in cli(app, "purge").output


def test_the_desk_pages_speak_english_when_asked(
    client: FlaskClient, app: Flask, desks: tuple[int, int]
) -> None:
    a, _b = desks
    agent_sign_in(client, "claire")
    html = client.get(f"/agents/desk/{a}/agents?lang=en").get_data(as_text=True)
    assert "Agents of the desk France services de Pessac" in html
    assert "Deactivate Karim's access" in html  # the name the operator typed, until he signs in
    assert "Never" in html
    assert "Your desks and roles" in client.get("/agents/").get_data(as_text=True)
