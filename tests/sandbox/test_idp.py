"""Tests of the sandbox identity provider (FranceConnect v2 look-alike)."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet
from werkzeug.test import TestResponse

from sandbox import create_app
from sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from sandbox.idp.identities import IDENTITIES, get_identity, pairwise_sub

ISSUER = "http://localhost/api/v2"
CALLBACK = "http://127.0.0.1:5000/auth/franceconnect/callback"
LOGGED_OUT = "http://127.0.0.1:5000/auth/franceconnect/logged-out"
STATE = "state-" + "s" * 58
NONCE = "nonce-" + "n" * 58


# -- helpers ---------------------------------------------------------------------------


def authorize_params(**overrides: str | None) -> dict[str, str]:
    """A valid authorization request; ``None`` removes a parameter."""
    params: dict[str, str | None] = {
        "client_id": DEFAULT_CLIENT_ID,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "openid profile birth email",
        "state": STATE,
        "nonce": NONCE,
        "acr_values": "eidas1",
    }
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


def transaction_id(page: str) -> str:
    match = re.search(r'name="transaction_id" value="([^"]+)"', page)
    assert match, "the chooser must carry the transaction id in a hidden field"
    return match.group(1)


def query(response: TestResponse) -> dict[str, str]:
    """Single-valued query parameters of a redirect's Location."""
    assert response.status_code == 302, response.get_data(as_text=True)
    return {key: values[0] for key, values in parse_qs(urlsplit(response.location).query).items()}


def choose(
    client: FlaskClient, identity: str = "marie-therese", **overrides: str | None
) -> TestResponse:
    """Go through /authorize and pick ``identity``; returns the decision response."""
    page = client.get("/api/v2/authorize", query_string=authorize_params(**overrides))
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(
        "/api/v2/authorize/decision",
        data={"transaction_id": transaction_id(page.get_data(as_text=True)), "identity": identity},
    )


def get_code(client: FlaskClient, identity: str = "marie-therese", **overrides: str | None) -> str:
    return query(choose(client, identity, **overrides))["code"]


def exchange(client: FlaskClient, code: str, **overrides: str) -> TestResponse:
    data = {
        "grant_type": "authorization_code",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "code": code,
        "redirect_uri": CALLBACK,
        **overrides,
    }
    return client.post("/api/v2/token", data=data)


def login(client: FlaskClient, identity: str = "marie-therese", **overrides: str | None) -> dict:
    """Full code flow up to the token response."""
    response = exchange(client, get_code(client, identity, **overrides))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def jwks(client: FlaskClient) -> KeySet:
    return KeySet.import_key_set(client.get("/api/v2/jwks").get_json())


def verify(client: FlaskClient, token: str) -> jwt.Token:
    """Verify like a strict relying party: signature against the JWKS, ES256/RS256 only."""
    return jwt.decode(token, jwks(client), algorithms=["ES256", "RS256"])


def unverified_header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def unverified_claims(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def set_behaviour(client: FlaskClient, **behaviour: Any) -> dict[str, Any]:
    response = client.post("/_admin/idp/behaviour", json=behaviour)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# -- discovery -------------------------------------------------------------------------


def test_discovery_document(sandbox_client: FlaskClient) -> None:
    document = sandbox_client.get("/api/v2/.well-known/openid-configuration").get_json()

    assert document["issuer"] == ISSUER
    assert document["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert document["token_endpoint"] == f"{ISSUER}/token"
    assert document["userinfo_endpoint"] == f"{ISSUER}/userinfo"
    assert document["jwks_uri"] == f"{ISSUER}/jwks"
    assert document["end_session_endpoint"] == f"{ISSUER}/session/end"
    assert document["response_types_supported"] == ["code"]
    assert document["grant_types_supported"] == ["authorization_code"]
    assert document["acr_values_supported"] == ["eidas1"]
    assert document["subject_types_supported"] == ["pairwise"]
    assert document["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    assert document["userinfo_signing_alg_values_supported"] == ["ES256", "RS256"]
    assert document["token_endpoint_auth_methods_supported"] == ["client_secret_post"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert {"openid", "profile", "birth", "identite_pivot", "email"} <= set(
        document["scopes_supported"]
    )
    assert {"sub", "given_name", "family_name", "birthplace", "preferred_username"} <= set(
        document["claims_supported"]
    )


def test_issuer_follows_the_request_host(sandbox_client: FlaskClient) -> None:
    document = sandbox_client.get(
        "/api/v2/.well-known/openid-configuration", base_url="http://127.0.0.1:54321"
    ).get_json()
    assert document["issuer"] == "http://127.0.0.1:54321/api/v2"


def test_configured_issuer_wins(sandbox_config: dict) -> None:
    client = create_app({**sandbox_config, "SANDBOX_ISSUER": "https://idp.example/api/v2"})
    document = client.test_client().get("/api/v2/.well-known/openid-configuration").get_json()
    assert document["issuer"] == "https://idp.example/api/v2"
    assert document["jwks_uri"] == "https://idp.example/api/v2/jwks"


def test_jwks_publishes_public_signing_key(sandbox_client: FlaskClient) -> None:
    (key,) = sandbox_client.get("/api/v2/jwks").get_json()["keys"]
    assert key["kid"]
    assert key["use"] == "sig"
    assert key["alg"] == "ES256"
    assert key["kty"] == "EC"
    assert key["crv"] == "P-256"
    assert "d" not in key


# -- identities and chooser ------------------------------------------------------------


def test_identity_records_cover_the_required_cases() -> None:
    assert len(IDENTITIES) >= 6
    assert len({identity.key for identity in IDENTITIES}) == len(IDENTITIES)
    assert any(" " in i.given_name and "-" in i.given_name for i in IDENTITIES)
    assert any(
        "'" in i.family_name and re.search("[ÀÂÉÈÊËÎÏÔÙÛÜ]", i.family_name) for i in IDENTITIES
    )
    assert all(i.family_name == i.family_name.upper() for i in IDENTITIES)
    born_abroad = [i for i in IDENTITIES if i.birthcountry != "99100"]
    assert born_abroad
    assert all(i.birthplace == "" for i in born_abroad)
    assert any(i.birthdate.endswith("-01") and i.birthdate_precision != "day" for i in IDENTITIES)
    assert any(i.preferred_username and i.preferred_username != i.family_name for i in IDENTITIES)


def test_pairwise_sub_is_shaped_like_franceconnect() -> None:
    sub = pairwise_sub("client-a", "marie-therese")
    assert len(sub) == 66
    assert sub.endswith("v1")
    assert sub == hashlib.sha256(b"client-a:marie-therese").hexdigest() + "v1"
    assert sub != pairwise_sub("client-b", "marie-therese")


def test_chooser_lists_identities_accessibly(sandbox_client: FlaskClient) -> None:
    response = sandbox_client.get("/api/v2/authorize", query_string=authorize_params())
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    text = html.unescape(page)

    assert '<html lang="fr">' in page
    assert "<main" in page
    assert "<h1" in page
    assert "<title>Bac à sable FranceConnect — choisissez une identité de test</title>" in text
    assert re.search(r'<form method="post" action="/api/v2/authorize/decision">', page)
    buttons = re.findall(r'<button type="submit" name="identity" value="([^"]+)"', page)
    assert len(buttons) >= 6
    assert buttons == [identity.key for identity in IDENTITIES]
    assert text.count("Se connecter en tant que ") == len(IDENTITIES)
    for expected in (
        "Marie-Thérèse Anne",
        "D'ARTAGNAN-LÉVÊQUE",
        "DUBOIS",
        "1978-06-01",
        "99350",
        "marie-therese.dubois@example.org",
    ):
        assert expected in text
    assert ">Annuler</button>" in page
    assert ":focus-visible" in page
    assert "<script" not in page
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_authorize_accepts_get_and_post(sandbox_client: FlaskClient, method: str) -> None:
    if method == "GET":
        response = sandbox_client.get("/api/v2/authorize", query_string=authorize_params())
    else:
        response = sandbox_client.post("/api/v2/authorize", data=authorize_params())
    assert response.status_code == 200
    assert "transaction_id" in response.get_data(as_text=True)


# -- authorization errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"nonce": "n" * 21}, "invalid_request"),
        ({"nonce": None}, "invalid_request"),
        ({"acr_values": "eidas2"}, "invalid_request"),
        ({"acr_values": None}, "invalid_request"),
        ({"scope": "profile email"}, "invalid_scope"),
        ({"scope": "openid address"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"claims": "not json"}, "invalid_request"),
    ],
)
def test_invalid_requests_are_redirected_with_an_error(
    sandbox_client: FlaskClient, overrides: dict, error: str
) -> None:
    response = sandbox_client.get("/api/v2/authorize", query_string=authorize_params(**overrides))
    assert response.location.startswith(CALLBACK + "?")
    params = query(response)
    assert params["error"] == error
    assert params["error_description"]
    assert params["state"] == STATE
    assert params["iss"] == ISSUER


def test_nonce_of_22_characters_is_accepted(sandbox_client: FlaskClient) -> None:
    response = sandbox_client.get(
        "/api/v2/authorize", query_string=authorize_params(nonce="n" * 22)
    )
    assert response.status_code == 200


def test_missing_state_is_refused(sandbox_client: FlaskClient) -> None:
    params = query(
        sandbox_client.get("/api/v2/authorize", query_string=authorize_params(state=None))
    )
    assert params["error"] == "invalid_request"
    assert "state" not in params


def test_unknown_client_gets_an_error_page_not_a_redirect(sandbox_client: FlaskClient) -> None:
    response = sandbox_client.get(
        "/api/v2/authorize", query_string=authorize_params(client_id="intrus")
    )
    assert response.status_code == 400
    assert response.location is None
    assert response.mimetype == "text/html"
    assert '<html lang="fr">' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/auth/franceconnect/callback",
        CALLBACK + "/",
        "http://127.0.0.1:5000/auth/franceconnect/callback?x=1",
        "http://10.0.0.1:5000/auth/franceconnect/callback",
        "http://127.0.0.1:notaport/auth/franceconnect/callback",
        None,
    ],
)
def test_unregistered_redirect_uri_gets_an_error_page(
    sandbox_client: FlaskClient, redirect_uri: str | None
) -> None:
    response = sandbox_client.get(
        "/api/v2/authorize", query_string=authorize_params(redirect_uri=redirect_uri)
    )
    assert response.status_code == 400
    assert response.location is None


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:61234/auth/franceconnect/callback",
        "http://localhost:8080/auth/franceconnect/callback",
        "http://127.0.0.1/auth/franceconnect/callback",
    ],
)
def test_loopback_redirect_uri_may_use_any_port(
    sandbox_client: FlaskClient, redirect_uri: str
) -> None:
    response = choose(sandbox_client, redirect_uri=redirect_uri)
    assert response.location.startswith(redirect_uri + "?")
    code = query(response)["code"]
    assert exchange(sandbox_client, code, redirect_uri=redirect_uri).status_code == 200


def test_loopback_port_rule_can_be_switched_off(sandbox_config: dict) -> None:
    client = create_app({**sandbox_config, "SANDBOX_LOOPBACK_ANY_PORT": False}).test_client()
    other_port = "http://127.0.0.1:61234/auth/franceconnect/callback"
    assert (
        client.get(
            "/api/v2/authorize", query_string=authorize_params(redirect_uri=other_port)
        ).status_code
        == 400
    )
    assert client.get("/api/v2/authorize", query_string=authorize_params()).status_code == 200


def test_cancel_redirects_with_access_denied(sandbox_client: FlaskClient) -> None:
    page = sandbox_client.get("/api/v2/authorize", query_string=authorize_params())
    response = sandbox_client.post(
        "/api/v2/authorize/decision",
        data={"transaction_id": transaction_id(page.get_data(as_text=True)), "cancel": "1"},
    )
    params = query(response)
    assert response.location.startswith(CALLBACK + "?")
    assert params["error"] == "access_denied"
    assert params["error_description"]
    assert params["state"] == STATE
    assert params["iss"] == ISSUER
    assert "code" not in params


def test_transaction_can_be_answered_only_once(sandbox_client: FlaskClient) -> None:
    page = sandbox_client.get("/api/v2/authorize", query_string=authorize_params())
    data = {"transaction_id": transaction_id(page.get_data(as_text=True)), "identity": "amina"}
    assert sandbox_client.post("/api/v2/authorize/decision", data=data).status_code == 302
    assert sandbox_client.post("/api/v2/authorize/decision", data=data).status_code == 400


# -- code and token --------------------------------------------------------------------


def test_callback_carries_code_state_and_iss(sandbox_client: FlaskClient) -> None:
    params = query(choose(sandbox_client))
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == STATE
    assert params["iss"] == ISSUER
    assert len(params["code"]) >= 32
    assert re.fullmatch(r"[A-Za-z0-9_-]+", params["code"])


@pytest.mark.parametrize(
    ("alg", "kty"),
    [("ES256", "EC"), ("RS256", "RSA")],
)
def test_id_token_verifies_against_jwks(sandbox_config: dict, alg: str, kty: str) -> None:
    client = create_app({**sandbox_config, "SANDBOX_SIGNING_ALG": alg}).test_client()
    tokens = login(client, claims=json.dumps({"id_token": {"amr": {"essential": True}}}))

    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 60
    assert tokens["scope"] == "openid profile birth email"
    (key,) = client.get("/api/v2/jwks").get_json()["keys"]
    assert key["kty"] == kty
    assert key["alg"] == alg

    decoded = verify(client, tokens["id_token"])
    assert decoded.header["alg"] == alg
    assert decoded.header["kid"] == key["kid"]
    claims = decoded.claims
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": DEFAULT_CLIENT_ID},
        nonce={"essential": True, "value": NONCE},
        acr={"essential": True, "value": "eidas1"},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        auth_time={"essential": True},
    ).validate(claims)
    assert claims["sub"] == pairwise_sub(DEFAULT_CLIENT_ID, "marie-therese")
    assert claims["exp"] - claims["iat"] == 60
    assert claims["at_hash"] == at_hash(tokens["access_token"])
    assert claims["amr"] == ["pwd"]


def test_amr_only_when_requested(sandbox_client: FlaskClient) -> None:
    claims = verify(sandbox_client, login(sandbox_client)["id_token"]).claims
    assert "amr" not in claims


def test_code_is_single_use(sandbox_client: FlaskClient) -> None:
    code = get_code(sandbox_client)
    first = exchange(sandbox_client, code)
    assert first.status_code == 200
    second = exchange(sandbox_client, code)
    assert second.status_code == 400
    assert second.get_json()["error"] == "invalid_grant"
    # RFC 6749 §4.1.2: a replayed code revokes what it was exchanged for.
    access_token = first.get_json()["access_token"]
    userinfo = sandbox_client.get(
        "/api/v2/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert userinfo.status_code == 401


def test_code_expires(sandbox_client: FlaskClient) -> None:
    set_behaviour(sandbox_client, code_ttl_s=0)
    response = exchange(sandbox_client, get_code(sandbox_client))
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_code_ttl_comes_from_configuration(sandbox_config: dict) -> None:
    client = create_app({**sandbox_config, "SANDBOX_CODE_TTL_S": 0}).test_client()
    assert exchange(client, get_code(client)).get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("overrides", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "intrus"}, 401, "invalid_client"),
        ({"grant_type": "refresh_token"}, 400, "unsupported_grant_type"),
        ({"grant_type": ""}, 400, "invalid_request"),
        (
            {"redirect_uri": "http://localhost:5000/auth/franceconnect/callback"},
            400,
            "invalid_grant",
        ),
        ({"code": "unknown-code"}, 400, "invalid_grant"),
    ],
)
def test_token_errors(
    sandbox_client: FlaskClient, overrides: dict, status: int, error: str
) -> None:
    overrides = dict(overrides)
    code = overrides.pop("code", None) or get_code(sandbox_client)
    response = exchange(sandbox_client, code, **overrides)
    assert response.status_code == status
    assert response.get_json()["error"] == error
    assert response.headers["Cache-Control"] == "no-store"


# -- userinfo --------------------------------------------------------------------------


def userinfo(client: FlaskClient, access_token: str) -> TestResponse:
    return client.get("/api/v2/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def test_userinfo_is_a_signed_jwt_matching_the_id_token(sandbox_client: FlaskClient) -> None:
    tokens = login(sandbox_client)
    response = userinfo(sandbox_client, tokens["access_token"])

    assert response.status_code == 200
    assert response.mimetype == "application/jwt"
    decoded = verify(sandbox_client, response.get_data(as_text=True))
    claims = decoded.claims
    id_claims = verify(sandbox_client, tokens["id_token"]).claims
    assert claims["sub"] == id_claims["sub"]
    assert claims["iss"] == ISSUER
    assert claims["aud"] == DEFAULT_CLIENT_ID
    assert claims["exp"] > claims["iat"]
    identity = get_identity("marie-therese")
    assert identity is not None
    assert claims["given_name"] == "Marie-Thérèse Anne"
    assert claims["given_name_array"] == ["Marie-Thérèse", "Anne"]
    assert claims["family_name"] == "MARTIN"
    assert claims["preferred_username"] == "DUBOIS"
    assert claims["birthdate"] == identity.birthdate
    assert claims["birthplace"] == "75107"
    assert claims["birthcountry"] == "99100"
    assert claims["email"] == identity.email


def test_userinfo_releases_only_granted_claims(sandbox_client: FlaskClient) -> None:
    tokens = login(sandbox_client, "amina", scope="openid birth")
    claims = verify(sandbox_client, userinfo(sandbox_client, tokens["access_token"]).text).claims
    assert claims["birthplace"] == ""
    assert claims["birthcountry"] == "99350"
    assert not {"given_name", "family_name", "email", "birthdate"} & set(claims)


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Bearer ", "Basic abc", None])
def test_userinfo_refuses_bad_tokens(sandbox_client: FlaskClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = sandbox_client.get("/api/v2/userinfo", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if header == "Bearer not-a-token":
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


# -- logout ----------------------------------------------------------------------------


def end_session(client: FlaskClient, **overrides: str | None) -> TestResponse:
    params: dict[str, str | None] = {
        "state": "logout-state-" + "x" * 40,
        "post_logout_redirect_uri": LOGGED_OUT,
    }
    params.update(overrides)
    return client.get(
        "/api/v2/session/end",
        query_string={key: value for key, value in params.items() if value is not None},
    )


def test_session_end_redirects_with_state(sandbox_client: FlaskClient) -> None:
    id_token = login(sandbox_client)["id_token"]
    response = end_session(sandbox_client, id_token_hint=id_token)
    assert response.status_code == 302
    assert response.location.startswith(LOGGED_OUT + "?")
    assert query(response) == {"state": "logout-state-" + "x" * 40}


def test_session_end_accepts_an_expired_hint_on_any_loopback_port(
    sandbox_client: FlaskClient,
) -> None:
    set_behaviour(sandbox_client, id_token_exp_offset=-600)
    id_token = login(sandbox_client)["id_token"]
    other_port = "http://localhost:61234/auth/franceconnect/logged-out"
    response = end_session(
        sandbox_client, id_token_hint=id_token, post_logout_redirect_uri=other_port
    )
    assert response.status_code == 302
    assert response.location.startswith(other_port + "?")


@pytest.mark.parametrize(
    "overrides",
    [
        {"id_token_hint": None},
        {"state": None},
        {"post_logout_redirect_uri": None},
        {"post_logout_redirect_uri": "https://evil.example/logged-out"},
        {"tamper": "1"},
    ],
)
def test_session_end_refusals(sandbox_client: FlaskClient, overrides: dict) -> None:
    overrides = dict(overrides)
    id_token = login(sandbox_client)["id_token"]
    if overrides.pop("tamper", None):
        header, payload, signature = id_token.split(".")
        id_token = f"{header}.{payload}.{signature[::-1]}"
    response = end_session(sandbox_client, **{"id_token_hint": id_token, **overrides})
    assert response.status_code == 400
    assert response.location is None
    assert response.mimetype == "text/html"


def test_session_end_refuses_a_hint_for_another_audience(sandbox_client: FlaskClient) -> None:
    set_behaviour(sandbox_client, id_token_aud="another-client")
    id_token = login(sandbox_client)["id_token"]
    assert end_session(sandbox_client, id_token_hint=id_token).status_code == 400


# -- test controls ---------------------------------------------------------------------


def test_rotate_keys_changes_kid(sandbox_client: FlaskClient) -> None:
    old_token = login(sandbox_client)["id_token"]
    old_kid = unverified_header(old_token)["kid"]

    rotated = sandbox_client.post("/_admin/idp/rotate-keys").get_json()
    assert rotated["previous_kid"] == old_kid
    assert rotated["kid"] != old_kid

    published = [key["kid"] for key in sandbox_client.get("/api/v2/jwks").get_json()["keys"]]
    assert published == [rotated["kid"]]
    new_token = login(sandbox_client)["id_token"]
    assert unverified_header(new_token)["kid"] == rotated["kid"]
    verify(sandbox_client, new_token)
    with pytest.raises(JoseError):
        verify(sandbox_client, old_token)
    # Our own old token is still recognised at logout.
    assert end_session(sandbox_client, id_token_hint=old_token).status_code == 302


def test_signing_alg_can_be_switched_and_reset_restores_it(sandbox_client: FlaskClient) -> None:
    original_kid = sandbox_client.get("/_admin/idp/behaviour").get_json()["kid"]
    switched = set_behaviour(sandbox_client, signing_alg="RS256")
    assert switched["signing_alg"] == "RS256"
    assert switched["kid"] != original_kid
    token = login(sandbox_client)["id_token"]
    assert verify(sandbox_client, token).header["alg"] == "RS256"

    assert sandbox_client.post("/_admin/reset").status_code == 200
    behaviour = sandbox_client.get("/_admin/idp/behaviour").get_json()
    assert behaviour["signing_alg"] == "ES256"
    assert behaviour["kid"] == original_kid


@pytest.mark.parametrize(
    ("behaviour", "check"),
    [
        ({"id_token_nonce": "x" * 40}, lambda c: c["nonce"] == "x" * 40),
        ({"id_token_aud": "someone-else"}, lambda c: c["aud"] == "someone-else"),
        ({"id_token_iss": "https://evil.example"}, lambda c: c["iss"] == "https://evil.example"),
        ({"id_token_acr": "eidas0"}, lambda c: c["acr"] == "eidas0"),
        ({"id_token_exp_offset": -600}, lambda c: c["exp"] < c["auth_time"]),
    ],
)
def test_id_token_claim_overrides(
    sandbox_client: FlaskClient, behaviour: dict, check: Callable[[dict], bool]
) -> None:
    set_behaviour(sandbox_client, **behaviour)
    claims = verify(sandbox_client, login(sandbox_client)["id_token"]).claims
    assert check(claims)


def test_unsecured_id_token(sandbox_client: FlaskClient) -> None:
    set_behaviour(sandbox_client, id_token_alg="none")
    token = login(sandbox_client)["id_token"]
    assert token.endswith(".")
    assert unverified_header(token)["alg"] == "none"
    assert unverified_claims(token)["nonce"] == NONCE
    with pytest.raises(JoseError):
        verify(sandbox_client, token)


def test_hs256_id_token(sandbox_client: FlaskClient) -> None:
    set_behaviour(sandbox_client, id_token_alg="HS256")
    token = login(sandbox_client)["id_token"]
    assert unverified_header(token)["alg"] == "HS256"
    with pytest.raises(JoseError):
        verify(sandbox_client, token)


def test_tampered_signature(sandbox_client: FlaskClient) -> None:
    set_behaviour(sandbox_client, tamper_signature=True)
    with pytest.raises(BadSignatureError):
        verify(sandbox_client, login(sandbox_client)["id_token"])


def test_userinfo_overrides(sandbox_client: FlaskClient) -> None:
    set_behaviour(sandbox_client, userinfo_sub="someone-else", userinfo_format="json")
    response = userinfo(sandbox_client, login(sandbox_client)["access_token"])
    assert response.mimetype == "application/json"
    assert response.get_json()["sub"] == "someone-else"


@pytest.mark.parametrize(
    ("value", "expected"), [("omit", None), ("https://evil.example", "https://evil.example")]
)
def test_callback_iss_override(
    sandbox_client: FlaskClient, value: str, expected: str | None
) -> None:
    set_behaviour(sandbox_client, callback_iss=value)
    assert query(choose(sandbox_client)).get("iss") == expected


@pytest.mark.parametrize(
    ("status", "error"), [(500, "server_error"), (503, "temporarily_unavailable")]
)
def test_forced_token_status(sandbox_client: FlaskClient, status: int, error: str) -> None:
    set_behaviour(sandbox_client, token_status=status)
    response = exchange(sandbox_client, get_code(sandbox_client))
    assert response.status_code == status
    assert response.get_json()["error"] == error


def test_forced_userinfo_status(sandbox_client: FlaskClient) -> None:
    access_token = login(sandbox_client)["access_token"]
    set_behaviour(sandbox_client, userinfo_status=502)
    assert userinfo(sandbox_client, access_token).status_code == 502


@pytest.mark.parametrize(
    "payload",
    [
        {"no_such_key": 1},
        {"tamper_signature": "yes"},
        {"signing_alg": "PS256"},
        ["not", "a", "dict"],
    ],
)
def test_bad_behaviour_is_refused_as_a_whole(sandbox_client: FlaskClient, payload: Any) -> None:
    before = sandbox_client.get("/_admin/idp/behaviour").get_json()
    body = payload if isinstance(payload, list) else {"id_token_nonce": "x" * 30, **payload}
    response = sandbox_client.post("/_admin/idp/behaviour", json=body)
    assert response.status_code == 400
    assert "error" in response.get_json()
    assert sandbox_client.get("/_admin/idp/behaviour").get_json() == before


def test_reset_restores_defaults_and_forgets_codes(sandbox_client: FlaskClient) -> None:
    set_behaviour(sandbox_client, tamper_signature=True, callback_iss="omit")
    kid = sandbox_client.get("/_admin/idp/behaviour").get_json()["kid"]
    code = get_code(sandbox_client)
    access_token = login(sandbox_client)["access_token"]

    assert sandbox_client.post("/_admin/reset").get_json() == {"status": "reset"}

    behaviour = sandbox_client.get("/_admin/idp/behaviour").get_json()
    assert behaviour["tamper_signature"] is False
    assert behaviour["callback_iss"] is None
    assert behaviour["kid"] == kid
    assert exchange(sandbox_client, code).get_json()["error"] == "invalid_grant"
    assert userinfo(sandbox_client, access_token).status_code == 401
    verify(sandbox_client, login(sandbox_client)["id_token"])


def test_null_restores_a_single_default(sandbox_client: FlaskClient) -> None:
    set_behaviour(sandbox_client, code_ttl_s=0, tamper_signature=True)
    behaviour = set_behaviour(sandbox_client, code_ttl_s=None)
    assert behaviour["code_ttl_s"] is None
    assert behaviour["tamper_signature"] is True


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_admin/idp/behaviour"),
        ("POST", "/_admin/idp/behaviour"),
        ("POST", "/_admin/idp/rotate-keys"),
        ("POST", "/_admin/reset"),
    ],
)
def test_admin_routes_are_hidden_when_disabled(
    sandbox_config: dict, method: str, path: str
) -> None:
    client = create_app({**sandbox_config, "SANDBOX_ADMIN": False}).test_client()
    response = client.open(path, method=method, json={"tamper_signature": True})
    assert response.status_code == 404
    # The provider itself still works.
    assert client.get("/api/v2/jwks").status_code == 200


def test_the_chooser_writes_communes_with_their_accents(sandbox_client: FlaskClient) -> None:
    response = sandbox_client.get("/api/v2/authorize", query_string=authorize_params())
    text = html.unescape(response.get_data(as_text=True))
    assert "Bibliothèque – Mérignac" in text
    assert "Logement social – Bordeaux Métropole" in text
    assert "Merignac" not in text
    assert "Metropole" not in text
