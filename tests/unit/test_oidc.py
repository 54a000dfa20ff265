"""The ID token checks, with a fake provider (no HTTP): the cases the sandbox does not
produce on its own."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from portal.auth import oidc
from portal.auth.oidc import FranceConnectClient, OIDCError

ISSUER = "https://fc.example/api/v2"


class FakeProvider(FranceConnectClient):
    """Serves discovery and JWKS from memory and counts JWKS fetches."""

    def __init__(self, keys: list[Any], **kwargs: Any) -> None:
        super().__init__(
            issuer=ISSUER,
            client_id="client",
            client_secret="secret",
            scopes=["openid"],
            redirect_uri="https://portal.example/cb",
            **kwargs,
        )
        self.published = keys
        self.jwks_fetches = 0
        self.discovery: dict[str, Any] = {
            "issuer": ISSUER,
            "authorization_endpoint": ISSUER + "/authorize",
            "token_endpoint": ISSUER + "/token",
            "userinfo_endpoint": ISSUER + "/userinfo",
            "jwks_uri": ISSUER + "/jwks",
            "end_session_endpoint": ISSUER + "/session/end",
        }

    def _get_json(self, url: str) -> dict[str, Any]:
        if url.endswith("/jwks"):
            self.jwks_fetches += 1
            return {"keys": [k.as_dict(private=False) for k in self.published]}
        return self.discovery


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": "client",
        "sub": "s" * 64 + "v1",
        "iat": now,
        "exp": now + 60,
        "nonce": "n" * 64,
        "acr": "eidas1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Any, payload: dict[str, Any], alg: str = "ES256", kid: bool = True) -> str:
    header = {"alg": alg}
    if kid:
        header["kid"] = key.kid
    return jwt.encode(header, payload, key)


@pytest.fixture
def key() -> ECKey:
    return ECKey.generate_key("P-256", auto_kid=True)


def test_a_valid_token_passes(key: ECKey) -> None:
    fc = FakeProvider([key])
    got = fc.verify_id_token(sign(key, claims()), nonce="n" * 64, access_token="at")
    assert got["sub"] == "s" * 64 + "v1"


def test_a_token_without_kid_is_tried_against_the_published_keys(key: ECKey) -> None:
    other = ECKey.generate_key("P-256", auto_kid=True)
    rsa = RSAKey.generate_key(2048, auto_kid=True)
    fc = FakeProvider([other, rsa, key])
    token = sign(key, claims(), kid=False)
    assert fc.verify_id_token(token, nonce="n" * 64, access_token="at")["acr"] == "eidas1"
    forged = sign(ECKey.generate_key("P-256"), claims(), kid=False)
    with pytest.raises(OIDCError, match="signature"):
        fc.verify_id_token(forged, nonce="n" * 64, access_token="at")


def test_at_hash_must_match_the_access_token(key: ECKey) -> None:
    fc = FakeProvider([key])
    good = oidc._at_hash("the-access-token")
    token = sign(key, claims(at_hash=good))
    fc.verify_id_token(token, nonce="n" * 64, access_token="the-access-token")
    with pytest.raises(OIDCError, match="at_hash"):
        fc.verify_id_token(token, nonce="n" * 64, access_token="another-token")


def test_several_audiences_need_our_azp(key: ECKey) -> None:
    fc = FakeProvider([key])
    token = sign(key, claims(aud=["client", "someone-else"]))
    with pytest.raises(OIDCError, match="azp"):
        fc.verify_id_token(token, nonce="n" * 64, access_token="at")
    ok = sign(key, claims(aud=["client", "someone-else"], azp="client"))
    fc.verify_id_token(ok, nonce="n" * 64, access_token="at")


@pytest.mark.parametrize("missing", ["sub", "exp", "iat", "nonce", "acr", "aud", "iss"])
def test_a_token_missing_an_essential_claim_is_refused(key: ECKey, missing: str) -> None:
    fc = FakeProvider([key])
    with pytest.raises(OIDCError):
        fc.verify_id_token(sign(key, claims(**{missing: None})), nonce="n" * 64, access_token="at")


@pytest.mark.parametrize("acr", ["eidas2", "eidas3"])
def test_a_higher_acr_is_accepted(key: ECKey, acr: str) -> None:
    fc = FakeProvider([key])
    fc.verify_id_token(sign(key, claims(acr=acr)), nonce="n" * 64, access_token="at")


def test_an_unknown_kid_refetches_the_keys_once_and_not_in_a_loop(key: ECKey) -> None:
    fc = FakeProvider([key])
    fc.verify_id_token(sign(key, claims()), nonce="n" * 64, access_token="at")
    assert fc.jwks_fetches == 1
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    for _ in range(3):
        with pytest.raises(OIDCError, match="unknown key"):
            fc.verify_id_token(sign(stranger, claims()), nonce="n" * 64, access_token="at")
    assert fc.jwks_fetches == 2  # one forced refresh, then throttled


def test_discovery_from_another_issuer_is_refused() -> None:
    fc = FakeProvider([])
    fc.discovery["issuer"] = "https://evil.example/api/v2"
    with pytest.raises(OIDCError, match="issuer"):
        fc.metadata()


def test_discovery_missing_an_endpoint_is_refused() -> None:
    fc = FakeProvider([])
    del fc.discovery["token_endpoint"]
    with pytest.raises(OIDCError, match="incomplete"):
        fc.metadata()


def test_end_session_url_carries_the_three_required_parameters() -> None:
    fc = FakeProvider([])
    url = fc.end_session_url(id_token_hint="tok", state="st", post_logout_uri="https://p/out")
    assert url == (
        ISSUER + "/session/end?id_token_hint=tok&state=st"
        "&post_logout_redirect_uri=https%3A%2F%2Fp%2Fout"
    )
    fc.discovery.pop("end_session_endpoint")
    fc._metadata = None
    assert fc.end_session_url(id_token_hint="t", state="s", post_logout_uri="u") is None


def test_state_and_nonce_are_64_hex_characters() -> None:
    values = {oidc.new_state_or_nonce() for _ in range(50)}
    assert len(values) == 50
    assert all(len(v) == 64 and int(v, 16) >= 0 for v in values)


def test_keyset_type_is_what_joserfc_gives() -> None:
    assert isinstance(FakeProvider([ECKey.generate_key("P-256")]).keyset(), KeySet)


# -- ProConnect (agents) -------------------------------------------------------------------

MFA_ACRS = ["eidas0-mfa", "eidas1-mfa", "eidas2", "eidas3"]


def proconnect() -> oidc.ProConnectClient:
    client = oidc.ProConnectClient(
        issuer="https://pc.example/api/v2",
        client_id="agents",
        client_secret="secret",
        scopes=["openid", "given_name", "usual_name"],
        redirect_uri="https://portal.example/agents/proconnect/callback",
        acr_values=MFA_ACRS,
    )
    base = "https://pc.example/api/v2"
    doc = {
        "issuer": base,
        "authorization_endpoint": base + "/authorize",
        "token_endpoint": base + "/token",
        "userinfo_endpoint": base + "/userinfo",
        "jwks_uri": base + "/jwks",
    }
    client._get_json = lambda url: doc  # type: ignore[method-assign]
    return client


def test_proconnect_asks_for_a_second_factor_with_the_claims_parameter_only() -> None:
    import json
    from urllib.parse import parse_qs, urlsplit

    url = proconnect().authorization_url(state="s" * 64, nonce="n" * 64)
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert set(params) == {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "claims",
    }
    assert json.loads(params["claims"]) == {
        "id_token": {"acr": {"essential": True, "values": MFA_ACRS}, "amr": None}
    }


@pytest.mark.parametrize("acr", MFA_ACRS)
def test_proconnect_accepts_each_acr_of_the_allow_list(acr: str) -> None:
    proconnect().check_acr({"acr": acr})


@pytest.mark.parametrize("acr", ["eidas1", "eidas0", "", None, "EIDAS2", ["eidas2"]])
def test_proconnect_refuses_any_other_acr_as_mfa_required(acr: object) -> None:
    with pytest.raises(OIDCError) as caught:
        proconnect().check_acr({"acr": acr} if acr is not None else {})
    assert caught.value.kind == "mfa_required"
