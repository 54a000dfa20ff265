"""Tests of the sandbox's ProConnect look-alike (the agents' identity provider)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet

from sandbox import create_app
from sandbox.config import DEFAULT_AGENT_CLIENT_ID, DEFAULT_AGENT_CLIENT_SECRET
from sandbox.idp.agents import AGENTS, SANDBOX_IDP_ID, agent_sub

BASE = "/proconnect/api/v2"
ISSUER = "http://localhost" + BASE
CALLBACK = "http://127.0.0.1:5000/agents/proconnect/callback"
LOGGED_OUT = "http://127.0.0.1:5000/agents/proconnect/logged-out"
SCOPE = "openid given_name usual_name email uid siret idp_id organization_label roles"
STATE = "s" * 64
NONCE = "n" * 64


@pytest.fixture
def client() -> FlaskClient:
    return create_app({"TESTING": True}).test_client()


def params(**overrides: str | None) -> dict[str, str]:
    values: dict[str, str | None] = {
        "response_type": "code",
        "client_id": DEFAULT_AGENT_CLIENT_ID,
        "redirect_uri": CALLBACK,
        "scope": SCOPE,
        "state": STATE,
        "nonce": NONCE,
        "claims": json.dumps(
            {"id_token": {"acr": {"essential": True, "values": ["eidas1-mfa"]}, "amr": None}}
        ),
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def code_for(
    client: FlaskClient, agent: str = "claire", acr: str = "", **overrides: str | None
) -> str:
    page = client.get(BASE + "/authorize", query_string=params(**overrides))
    assert page.status_code == 200, page.get_data(as_text=True)
    match = re.search(r'name="transaction_id" value="([^"]+)"', page.get_data(as_text=True))
    assert match
    r = client.post(
        BASE + "/authorize/decision",
        data={"transaction_id": match.group(1), "agent": agent, "acr": acr},
    )
    assert r.status_code == 302
    q = parse_qs(urlsplit(r.location).query)
    assert q["state"] == [STATE]
    return q["code"][0]


def redeem(client: FlaskClient, code: str) -> Any:
    return client.post(
        BASE + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": DEFAULT_AGENT_CLIENT_ID,
            "client_secret": DEFAULT_AGENT_CLIENT_SECRET,
        },
    )


def keys(client: FlaskClient) -> KeySet:
    return KeySet.import_key_set(client.get(BASE + "/jwks").get_json())


def test_discovery_is_under_its_own_path(client: FlaskClient) -> None:
    doc = client.get(BASE + "/.well-known/openid-configuration").get_json()
    assert doc["issuer"] == ISSUER
    assert doc["end_session_endpoint"] == ISSUER + "/session/end"
    assert "eidas1-mfa" in doc["acr_values_supported"]
    assert doc["token_endpoint_auth_methods_supported"] == ["client_secret_post"]


@pytest.mark.parametrize("extra", ["acr_values", "ui_locales", "response_mode", "foo"])
def test_an_unknown_authorize_parameter_is_refused_with_y000400(
    client: FlaskClient, extra: str
) -> None:
    r = client.get(BASE + "/authorize", query_string={**params(), extra: "x"})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "Y000400" in html and extra in html
    assert "Location" not in r.headers


@pytest.mark.parametrize(
    "optional",
    [{"prompt": "login"}, {"login_hint": "a@test.proconnect.gouv.fr"}, {"siret_hint": "1" * 14}],
)
def test_the_documented_optional_parameters_are_accepted(
    client: FlaskClient, optional: dict[str, str]
) -> None:
    assert client.get(BASE + "/authorize", query_string={**params(), **optional}).status_code == 200


@pytest.mark.parametrize(
    "overrides",
    [
        {"state": "s" * 31},
        {"nonce": "n" * 31},
        {"nonce": None},
        {"response_type": "token"},
        {"scope": "given_name email"},
        {"claims": "not json"},
    ],
)
def test_a_bad_value_is_refused_with_y000400(client: FlaskClient, overrides: dict) -> None:
    r = client.get(BASE + "/authorize", query_string=params(**overrides))
    assert r.status_code == 400 and "Y000400" in r.get_data(as_text=True)


def test_a_redirect_uri_must_match_exactly(client: FlaskClient) -> None:
    r = client.get(BASE + "/authorize", query_string=params(redirect_uri=CALLBACK + "/"))
    assert r.status_code == 400 and "Y030031" in r.get_data(as_text=True)
    # The loopback rule of the FranceConnect look-alike: any port on 127.0.0.1.
    other_port = CALLBACK.replace(":5000", ":49152")
    assert (
        client.get(BASE + "/authorize", query_string=params(redirect_uri=other_port)).status_code
        == 200
    )


def test_the_chooser_offers_agents_with_and_without_a_second_factor(client: FlaskClient) -> None:
    html = client.get(BASE + "/authorize", query_string=params()).get_data(as_text=True)
    for agent in AGENTS:
        assert agent.email in html and agent.siret in html and agent.acr in html
    assert {agent.acr for agent in AGENTS} >= {"eidas1-mfa", "eidas2", "eidas1"}
    assert all(agent.email.endswith("@test.proconnect.gouv.fr") for agent in AGENTS)


@pytest.mark.parametrize(
    ("agent", "acr", "amr"),
    [
        ("claire", "eidas1-mfa", ["pwd", "mail"]),
        ("karim", "eidas2", ["pwd", "otp"]),
        ("sophie", "eidas1", ["pwd"]),
    ],
)
def test_tokens_say_how_the_agent_authenticated(
    client: FlaskClient, agent: str, acr: str, amr: list[str]
) -> None:
    r = redeem(client, code_for(client, agent))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    claims = jwt.decode(body["id_token"], keys(client)).claims
    assert claims["iss"] == ISSUER and claims["aud"] == DEFAULT_AGENT_CLIENT_ID
    assert claims["sub"] == agent_sub(DEFAULT_AGENT_CLIENT_ID, agent)
    assert claims["nonce"] == NONCE
    assert (claims["acr"], claims["amr"]) == (acr, amr)
    assert claims["sid"] and isinstance(claims["auth_time"], int)

    info = client.get(
        BASE + "/userinfo", headers={"Authorization": "Bearer " + body["access_token"]}
    )
    assert info.status_code == 200 and info.mimetype == "application/jwt"
    user = jwt.decode(info.get_data(as_text=True), keys(client)).claims
    assert user["sub"] == claims["sub"]
    assert user["idp_id"] == SANDBOX_IDP_ID
    for name in (
        "given_name",
        "usual_name",
        "email",
        "uid",
        "siret",
        "organization_label",
        "roles",
    ):
        assert name in user
    assert re.fullmatch(r"\d{14}", user["siret"])


@pytest.mark.parametrize(
    ("acr", "amr"),
    [("eidas1", ["pwd"]), ("eidas3", ["pin", "hwk"]), ("eidas0-mfa", ["pwd", "mail"])],
)
def test_the_tester_may_pick_another_acr_for_one_sign_in(
    client: FlaskClient, acr: str, amr: list[str]
) -> None:
    body = redeem(client, code_for(client, "claire", acr=acr)).get_json()
    claims = jwt.decode(body["id_token"], keys(client)).claims
    assert (claims["acr"], claims["amr"]) == (acr, amr)
    info = client.get(
        BASE + "/userinfo", headers={"Authorization": "Bearer " + body["access_token"]}
    )
    assert info.status_code == 200


def test_sub_differs_from_one_client_to_another() -> None:
    assert agent_sub("a", "claire") != agent_sub("b", "claire")


def test_a_code_serves_once(client: FlaskClient) -> None:
    code = code_for(client)
    assert redeem(client, code).status_code == 200
    again = redeem(client, code)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"


def test_a_code_lives_60_seconds_on_the_providers_clock(client: FlaskClient) -> None:
    young, old = code_for(client), code_for(client)
    client.post("/_admin/proconnect/clock", json={"advance_s": 59})
    assert redeem(client, young).status_code == 200
    client.post("/_admin/proconnect/clock", json={"advance_s": 2})
    r = redeem(client, old)
    assert r.status_code == 400 and "expired" in r.get_json()["error_description"]
    # The reset sets the clock back.
    client.post("/_admin/reset")
    assert redeem(client, code_for(client)).status_code == 200


def test_the_token_endpoint_wants_the_client_secret_in_the_form(client: FlaskClient) -> None:
    r = client.post(
        BASE + "/token",
        data={
            "grant_type": "authorization_code",
            "code": code_for(client),
            "redirect_uri": CALLBACK,
            "client_id": DEFAULT_AGENT_CLIENT_ID,
            "client_secret": "wrong",
        },
    )
    assert r.status_code == 401


def _id_token(client: FlaskClient) -> str:
    return redeem(client, code_for(client)).get_json()["id_token"]


def test_session_end_goes_back_with_the_state(client: FlaskClient) -> None:
    r = client.get(
        BASE + "/session/end",
        query_string={
            "id_token_hint": _id_token(client),
            "state": "t" * 64,
            "post_logout_redirect_uri": LOGGED_OUT,
        },
    )
    assert r.status_code == 302
    assert r.location == LOGGED_OUT + "?state=" + "t" * 64


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"state": None}, "Y000400"),
        ({"id_token_hint": "x.y.z"}, "Y000400"),
        ({"post_logout_redirect_uri": LOGGED_OUT + "/"}, "Y030111"),
    ],
)
def test_session_end_refuses(client: FlaskClient, overrides: dict, code: str) -> None:
    query = {
        "id_token_hint": _id_token(client),
        "state": "t" * 64,
        "post_logout_redirect_uri": LOGGED_OUT,
        **overrides,
    }
    r = client.get(BASE + "/session/end", query_string={k: v for k, v in query.items() if v})
    assert r.status_code == 400 and code in r.get_data(as_text=True)


def test_the_controls_disappear_with_the_admin_switch() -> None:
    client = create_app({"TESTING": True, "SANDBOX_ADMIN": False}).test_client()
    assert client.post("/_admin/proconnect/clock", json={"advance_s": 1}).status_code == 404
