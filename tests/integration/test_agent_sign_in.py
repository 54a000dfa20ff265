"""Agents sign in with ProConnect (the sandbox's look-alike, over real HTTP): with a second
factor and a provisioned access only, in a session of their own that never mixes with a
resident's, and out again through ProConnect."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Agent, AgentSession, AuthSession
from sandbox.idp.agents import SANDBOX_IDP_ID, agent_sub
from tests.support import (
    Sandbox,
    agent_sign_in,
    choose_agent,
    provision_agent,
    sign_in,
    start_agent_sign_in,
)

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
CLIENT_ID = "compte-territorial-agents-dev"
SCOPE = "openid given_name usual_name email uid siret idp_id organization_label roles"


def agent_sessions(app: Flask) -> list[AgentSession]:
    with app.app_context():
        return list(db.session.execute(db.select(AgentSession)).scalars())


def csrf_on(client: FlaskClient, path: str) -> str:
    match = CSRF_RE.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def assert_no_agent_session(client: FlaskClient, app: Flask) -> None:
    r = client.get("/agents/")
    assert r.status_code == 302 and r.headers["Location"] == "/agents/connexion"
    assert agent_sessions(app) == []


# -- the happy path ------------------------------------------------------------------------


@pytest.mark.parametrize("agent", ["claire", "karim"])
def test_a_provisioned_agent_with_a_second_factor_signs_in(
    client: FlaskClient, app: Flask, fc_sandbox: Sandbox, agent: str
) -> None:
    provision_agent(app, agent)
    auth = start_agent_sign_in(client)
    p = auth.params
    assert auth.request_url.startswith(fc_sandbox.pc_issuer + "/authorize?")
    # Exactly what ProConnect accepts, nothing else (it refuses any other parameter).
    assert set(p) == {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "claims",
    }
    assert p["client_id"] == CLIENT_ID
    assert p["scope"] == SCOPE
    assert p["redirect_uri"] == "http://localhost/agents/proconnect/callback"
    assert re.fullmatch(r"[0-9a-f]{64}", p["state"])
    assert re.fullmatch(r"[0-9a-f]{64}", p["nonce"])
    assert json.loads(p["claims"]) == {
        "id_token": {
            "acr": {
                "essential": True,
                "values": ["eidas0-mfa", "eidas1-mfa", "eidas2", "eidas3"],
            },
            "amr": None,
        }
    }
    r = client.get(choose_agent(auth, agent))
    assert r.status_code == 303 and r.headers["Location"] == "/agents/"
    [cookie] = [c for c in r.headers.getlist("Set-Cookie") if c.startswith("agent_session=")]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    html = client.get("/agents/").get_data(as_text=True)
    name = {"claire": "Claire Anne DUBOIS", "karim": "Karim BENALI"}[agent]
    assert f"Vous êtes connecté(e) en tant que {name}" in html
    assert "Se déconnecter de l'espace agents" in html
    with app.app_context():
        [row] = db.session.execute(db.select(Agent)).scalars()
        assert row.email.endswith("@test.proconnect.gouv.fr")
        assert len(row.siret) == 14 and row.organization_label
        assert row.last_seen_at is not None
    # The agents' session is not a resident's: the residents' pages still ask for one.
    assert client.get("/").status_code == 302
    with client.session_transaction() as s:
        assert "sid" not in s


def test_an_agent_without_a_second_factor_is_refused(client: FlaskClient, app: Flask) -> None:
    provision_agent(app, "sophie")
    r = agent_sign_in(client, "sophie")
    assert r.status_code == 403
    html = r.get_data(as_text=True)
    assert "Une double authentification est nécessaire" in html
    assert "un mot de passe seul" in html
    assert "Activez la double authentification" in html
    assert_no_agent_session(client, app)


@pytest.mark.parametrize(("acr", "status"), [("eidas3", 303), ("eidas0-mfa", 303), ("eidas0", 403)])
def test_the_acr_of_the_sign_in_decides_not_the_agent(
    client: FlaskClient, app: Flask, acr: str, status: int
) -> None:
    provision_agent(app, "sophie")
    r = client.get(choose_agent(start_agent_sign_in(client), "sophie", acr=acr))
    assert r.status_code == status


def test_an_acr_forced_below_the_allow_list_is_refused(
    client: FlaskClient, app: Flask, fc_sandbox: Sandbox
) -> None:
    """Even an agent whose identity provider does MFA: the ID token's acr decides."""
    provision_agent(app, "claire")
    fc_sandbox.pc_behave(id_token_acr="eidas1")
    assert agent_sign_in(client, "claire").status_code == 403
    assert_no_agent_session(client, app)


def test_an_agent_not_provisioned_is_told_whom_to_ask(client: FlaskClient, app: Flask) -> None:
    r = agent_sign_in(client, "karim")
    assert r.status_code == 403
    html = r.get_data(as_text=True)
    assert "Votre accès n&#39;est pas encore ouvert" in html
    assert "la personne qui administre le Compte territorial" in html
    assert re.search(r'class="agent-reference">[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}<', html)
    assert SANDBOX_IDP_ID in html and agent_sub(CLIENT_ID, "karim") in html
    assert_no_agent_session(client, app)
    with app.app_context():
        assert db.session.execute(db.select(Agent)).first() is None


def test_an_agent_is_matched_on_idp_and_sub_never_on_email(client: FlaskClient, app: Flask) -> None:
    with app.app_context():
        db.session.add(
            Agent(idp_id="another-idp", sub=agent_sub(CLIENT_ID, "claire"), name="Homonyme")
        )
        db.session.add(
            Agent(
                idp_id=SANDBOX_IDP_ID, sub="x" * 64, email="claire.dubois@test.proconnect.gouv.fr"
            )
        )
        db.session.commit()
    assert agent_sign_in(client, "claire").status_code == 403
    assert_no_agent_session(client, app)


def test_a_deactivated_agent_is_refused_and_loses_their_session(
    client: FlaskClient, app: Flask
) -> None:
    provision_agent(app, "claire")
    assert agent_sign_in(client, "claire").status_code == 303
    result = app.test_cli_runner().invoke(
        args=[
            "agents",
            "deactivate",
            "--idp-id",
            SANDBOX_IDP_ID,
            "--sub",
            agent_sub(CLIENT_ID, "claire"),
        ]
    )
    assert result.exit_code == 0, result.output
    assert_no_agent_session(client, app)
    r = agent_sign_in(client, "claire")
    assert r.status_code == 403
    assert "Votre accès a été désactivé" in r.get_data(as_text=True)
    assert_no_agent_session(client, app)
    # Provisioned again, the same agent gets in again.
    provision_agent(app, "claire")
    assert agent_sign_in(client, "claire").status_code == 303


# -- signing out ---------------------------------------------------------------------------


def test_an_agent_signs_out_through_proconnect(
    client: FlaskClient, app: Flask, fc_sandbox: Sandbox
) -> None:
    provision_agent(app, "claire")
    agent_sign_in(client, "claire")
    token = csrf_on(client, "/agents/")
    [row] = agent_sessions(app)
    r = client.post("/agents/logout", data={"csrf_token": token})
    assert r.status_code == 303
    end = urlsplit(r.headers["Location"])
    assert f"{end.scheme}://{end.netloc}{end.path}" == fc_sandbox.pc_issuer + "/session/end"
    q = {k: v[0] for k, v in parse_qs(end.query).items()}
    assert q["id_token_hint"] == row.id_token
    assert q["post_logout_redirect_uri"] == "http://localhost/agents/proconnect/logged-out"
    assert re.fullmatch(r"[0-9a-f]{64}", q["state"])
    assert_no_agent_session(client, app)  # gone here before ProConnect answers

    back = httpx.get(r.headers["Location"], timeout=10)
    assert back.status_code == 302
    ret = urlsplit(back.headers["Location"])
    assert parse_qs(ret.query)["state"] == [q["state"]]
    html = client.get(f"{ret.path}?{ret.query}").get_data(as_text=True)
    assert "Vous êtes déconnecté(e) de l'espace agents et de ProConnect" in html


def test_an_agent_sign_out_needs_the_form_token(client: FlaskClient, app: Flask) -> None:
    provision_agent(app, "claire")
    agent_sign_in(client, "claire")
    r = client.post("/agents/logout")
    assert r.status_code == 400
    assert len(agent_sessions(app)) == 1
    assert client.get("/agents/").status_code == 200


def test_resident_and_agent_sessions_in_one_browser_do_not_mix(
    client: FlaskClient, app: Flask
) -> None:
    provision_agent(app, "claire")
    sign_in(client, "eloise")
    assert agent_sign_in(client, "claire").status_code == 303
    assert client.get("/").status_code == 200
    agent_page = client.get("/agents/").get_data(as_text=True)
    assert "Claire Anne DUBOIS" in agent_page
    assert "Éloïse" not in agent_page  # the agents' pages show no resident
    # The resident signs out: the agent stays signed in.
    client.post("/auth/logout", data={"csrf_token": csrf_on(client, "/")})
    assert client.get("/").status_code == 302
    assert client.get("/agents/").status_code == 200
    assert len(agent_sessions(app)) == 1
    # The resident signs in again, then the agent signs out: the resident stays.
    sign_in(client, "eloise")
    client.post("/agents/logout", data={"csrf_token": csrf_on(client, "/agents/")})
    assert_no_agent_session(client, app)
    assert client.get("/").status_code == 200
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AuthSession)) == 1


# -- sessions ------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "minutes"), [("last_seen_at", 16), ("created_at", 12 * 60 + 1)])
def test_agent_sessions_end_after_15_idle_minutes_or_12_hours(
    client: FlaskClient, app: Flask, field: str, minutes: int
) -> None:
    from datetime import timedelta

    from portal.models._types import utcnow

    provision_agent(app, "claire")
    agent_sign_in(client, "claire")
    with app.app_context():
        [row] = db.session.execute(db.select(AgentSession)).scalars()
        setattr(row, field, utcnow() - timedelta(minutes=minutes))
        if field == "created_at":
            row.last_seen_at = utcnow()
        db.session.commit()
    r = client.get("/agents/")
    assert r.headers["Location"] == "/agents/connexion"
    assert "Votre session a expiré" in client.get("/agents/connexion").get_data(as_text=True)
    assert_no_agent_session(client, app)


def test_using_the_agents_area_does_not_extend_a_residents_session(
    client: FlaskClient, app: Flask
) -> None:
    from datetime import timedelta

    from portal.models._types import utcnow

    provision_agent(app, "claire")
    sign_in(client, "eloise")
    agent_sign_in(client, "claire")
    stale = utcnow() - timedelta(minutes=20)
    with app.app_context():
        [auth] = db.session.execute(db.select(AuthSession)).scalars()
        auth.last_seen_at = stale
        db.session.commit()
    assert client.get("/agents/").status_code == 200
    with app.app_context():
        [auth] = db.session.execute(db.select(AuthSession)).scalars()
        assert auth.last_seen_at == stale


def test_the_purge_deletes_expired_agent_sessions_only(client: FlaskClient, app: Flask) -> None:
    from datetime import timedelta

    from portal.models._types import utcnow

    provision_agent(app, "claire")
    provision_agent(app, "karim")
    agent_sign_in(client, "claire")
    other = app.test_client()
    agent_sign_in(other, "karim")
    with app.app_context():
        [stale] = db.session.execute(db.select(AgentSession).limit(1)).scalars()
        stale.last_seen_at = utcnow() - timedelta(minutes=16)
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["purge"])
    assert "1 expired agent session(s) deleted" in result.output
    assert len(agent_sessions(app)) == 1


def test_a_callback_with_a_foreign_state_is_refused(client: FlaskClient, app: Flask) -> None:
    provision_agent(app, "claire")
    auth = start_agent_sign_in(client)
    callback = choose_agent(auth, "claire").replace(auth.params["state"], "f" * 64)
    r = client.get(callback)
    assert r.status_code == 303 and r.headers["Location"] == "/agents/connexion"
    assert "n&#39;a pas pu être vérifiée" in client.get("/agents/connexion").get_data(as_text=True)
    assert_no_agent_session(client, app)


def test_a_callback_that_started_in_another_browser_is_refused(
    client: FlaskClient, app: Flask
) -> None:
    provision_agent(app, "claire")
    callback = choose_agent(start_agent_sign_in(client), "claire")
    other = app.test_client()
    assert other.get(callback).headers["Location"] == "/agents/connexion"
    assert_no_agent_session(other, app)


# -- the code ------------------------------------------------------------------------------


def test_a_code_serves_once(client: FlaskClient, app: Flask) -> None:
    provision_agent(app, "claire")
    auth = start_agent_sign_in(client)
    callback = choose_agent(auth, "claire")
    assert client.get(callback).status_code == 303
    client.post("/agents/logout", data={"csrf_token": csrf_on(client, "/agents/")})
    fresh = start_agent_sign_in(client)
    r = client.get(callback.replace(auth.params["state"], fresh.params["state"]))
    assert r.headers["Location"] == "/agents/connexion"
    assert "La connexion avec ProConnect n&#39;a pas pu aboutir" in client.get(
        "/agents/connexion"
    ).get_data(as_text=True)
    assert_no_agent_session(client, app)


def test_a_code_older_than_60_seconds_is_refused(
    client: FlaskClient, app: Flask, fc_sandbox: Sandbox
) -> None:
    provision_agent(app, "claire")
    callback = choose_agent(start_agent_sign_in(client), "claire")
    fc_sandbox.pc_advance_clock(61)
    r = client.get(callback)
    assert r.headers["Location"] == "/agents/connexion"
    assert_no_agent_session(client, app)


def test_a_code_younger_than_60_seconds_is_accepted(
    client: FlaskClient, app: Flask, fc_sandbox: Sandbox
) -> None:
    provision_agent(app, "claire")
    callback = choose_agent(start_agent_sign_in(client), "claire")
    fc_sandbox.pc_advance_clock(50)
    assert client.get(callback).headers["Location"] == "/agents/"


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param({"id_token_nonce": "0" * 64}, id="wrong-nonce"),
        pytest.param({"id_token_aud": "someone-else"}, id="wrong-aud"),
        pytest.param({"id_token_iss": "https://attacker.example/api/v2"}, id="wrong-iss"),
        pytest.param({"id_token_exp_offset": -600}, id="expired"),
        pytest.param({"tamper_signature": True}, id="tampered-signature"),
        pytest.param({"userinfo_sub": "a" * 64}, id="userinfo-sub-differs"),
    ],
)
def test_an_id_token_or_userinfo_that_fails_verification_signs_no_agent_in(
    client: FlaskClient, app: Flask, fc_sandbox: Sandbox, behaviour: dict
) -> None:
    provision_agent(app, "claire")
    fc_sandbox.pc_behave(**behaviour)
    r = agent_sign_in(client, "claire")
    assert r.headers["Location"] == "/agents/connexion"
    assert "La réponse de ProConnect n&#39;a pas pu être vérifiée" in client.get(
        "/agents/connexion"
    ).get_data(as_text=True)
    assert_no_agent_session(client, app)


# -- the sandbox refuses what ProConnect refuses -------------------------------------------


def test_proconnect_refuses_an_extra_authorize_parameter(client: FlaskClient) -> None:
    auth = start_agent_sign_in(client)
    page = httpx.get(auth.request_url + "&acr_values=eidas1", timeout=10)
    assert page.status_code == 400
    assert "Y000400" in page.text and "acr_values" in page.text


# -- the pages -----------------------------------------------------------------------------

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "agents"


@pytest.mark.parametrize("name", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_the_agents_pages_extend_the_portal_layout(name: str) -> None:
    """The skip link, the language switch and the landmarks come with base.html."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    assert text.startswith('{% extends "base.html" %}')
    assert "{% block title %}" in text and "<h1>" in text


def test_the_agents_pages_speak_english_when_asked(client: FlaskClient, app: Flask) -> None:
    r = agent_sign_in(client, "sophie")
    assert r.status_code == 403
    client.get("/agents/connexion?lang=en")
    html = client.get("/agents/connexion").get_data(as_text=True)
    assert "Sign in with ProConnect" in html


# -- the operator's commands and the agent's own choices -----------------------------------


def test_the_operator_commands_say_what_they_did(app: Flask) -> None:
    runner = app.test_cli_runner()
    sub = agent_sub(CLIENT_ID, "karim")
    add = ["agents", "add", "--idp-id", SANDBOX_IDP_ID, "--sub", sub, "--name", "Karim"]
    assert "provisioned" in runner.invoke(args=add).output
    assert "already provisioned" in runner.invoke(args=add).output
    off = ["agents", "deactivate", "--idp-id", SANDBOX_IDP_ID, "--sub", sub]
    assert "deactivated" in runner.invoke(args=off).output
    assert "reactivated" in runner.invoke(args=add).output
    unknown = runner.invoke(args=["agents", "deactivate", "--idp-id", "x", "--sub", "y"])
    assert unknown.exit_code != 0 and "no agent" in unknown.output
    empty = runner.invoke(args=["agents", "add", "--idp-id", " ", "--sub", sub, "--name", "K"])
    assert empty.exit_code != 0
    with app.app_context():
        [agent] = db.session.execute(db.select(Agent)).scalars()
        assert agent.active and agent.name == "Karim"


def test_an_agent_who_cancels_on_proconnect_can_try_again(client: FlaskClient, app: Flask) -> None:
    r = client.get(choose_agent(start_agent_sign_in(client), None, cancel=True))
    assert r.headers["Location"] == "/agents/connexion"
    html = client.get("/agents/connexion").get_data(as_text=True)
    assert "Vous avez annulé la connexion avec ProConnect" in html
    assert "S'identifier avec ProConnect" in html
    assert_no_agent_session(client, app)


def test_an_agents_page_says_when_the_session_ends_and_gives_more_time(
    client: FlaskClient, app: Flask
) -> None:
    provision_agent(app, "claire")
    agent_sign_in(client, "claire")
    html = client.get("/agents/").get_data(as_text=True).replace("\u00a0", " ")
    assert "Votre session se termine à" in html
    assert 'action="/agents/session/extend"' in html
    assert 'action="/auth/session/extend"' not in html  # never the residents' session
    with app.app_context():
        [row] = db.session.execute(db.select(AgentSession)).scalars()
        row.last_seen_at = row.last_seen_at.replace(microsecond=0) - timedelta(minutes=10)
        db.session.commit()
        before = row.last_seen_at
    token = csrf_on(client, "/agents/")
    stayed = client.post("/agents/session/extend", data={"csrf_token": token})
    assert stayed.status_code == 303 and stayed.headers["Location"] == "/agents/"
    assert "Vous restez connecté(e)" in client.get("/agents/").get_data(as_text=True)
    with app.app_context():
        [row] = db.session.execute(db.select(AgentSession)).scalars()
        assert row.last_seen_at > before
    partial = client.post(
        "/agents/session/extend", data={"csrf_token": token}, headers={"HX-Request": "true"}
    )
    assert partial.status_code == 200 and 'id="session-area"' in partial.get_data(as_text=True)
    # Without an agent's session: back to the agents' sign-in, nothing extended.
    refused = app.test_client().post("/agents/session/extend")
    assert refused.status_code in (302, 303, 400)
    with app.app_context():
        assert len(db.session.execute(db.select(AgentSession)).scalars().all()) == 1
