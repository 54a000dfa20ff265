"""Building the ID token and the signed userinfo response.

Every deviation a test can ask for (wrong nonce, "none" algorithm, tampered signature,
expired token...) is applied here, in one place, so that the portal's tests can prove it
rejects each of them.
"""

from __future__ import annotations

import base64
import hashlib
import time
import warnings
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet, OctKey

from sandbox.idp.identities import SandboxIdentity
from sandbox.idp.keys import SUPPORTED_SIGNING_ALGS, SigningKey

ID_TOKEN_TTL_S = 60
USERINFO_TTL_S = 60

# Claims released by each scope (FranceConnect v2 bundles included).
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": (),
    "given_name": ("given_name",),
    "family_name": ("family_name",),
    "birthdate": ("birthdate",),
    "gender": ("gender",),
    "birthplace": ("birthplace",),
    "birthcountry": ("birthcountry",),
    "email": ("email",),
    "preferred_username": ("preferred_username",),
    "profile": ("given_name", "family_name", "birthdate", "gender", "preferred_username"),
    "birth": ("birthplace", "birthcountry"),
    "identite_pivot": (
        "given_name",
        "family_name",
        "birthdate",
        "gender",
        "birthplace",
        "birthcountry",
    ),
}
SUPPORTED_SCOPES = tuple(SCOPE_CLAIMS)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def at_hash(access_token: str) -> str:
    """OIDC ``at_hash``: left half of the SHA-256 of the access token, base64url."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return _b64url(digest[: len(digest) // 2])


def released_claims(identity: SandboxIdentity, scopes: tuple[str, ...]) -> dict[str, Any]:
    """Identity claims allowed by the granted scopes; ``given_name_array`` goes with
    ``given_name`` as FranceConnect does."""
    allowed: set[str] = set()
    for scope in scopes:
        allowed.update(SCOPE_CLAIMS.get(scope, ()))
    if "given_name" in allowed:
        allowed.add("given_name_array")
    return {name: value for name, value in identity.claims().items() if name in allowed}


def sign(claims: dict[str, Any], key: SigningKey) -> str:
    """Sign ``claims`` with our key, announcing its ``kid`` so clients can pick it."""
    header = {"alg": str(key.alg), "kid": str(key.kid)}
    return jwt.encode(header, claims, key, algorithms=[str(key.alg)])


def _sign_unsecured(claims: dict[str, Any]) -> str:
    """An ``alg: none`` JWT, which a relying party must refuse."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return jwt.encode({"alg": "none"}, claims, None, algorithms=["none"])


def _sign_hs256(claims: dict[str, Any], client_secret: str) -> str:
    """An HS256 JWT keyed with the client secret (FranceConnect v1 style, now refused)."""
    key = OctKey.import_key(client_secret)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return jwt.encode({"alg": "HS256"}, claims, key, algorithms=["HS256"])


def tamper(token: str) -> str:
    """Corrupt the signature while keeping a well-formed compact JWS."""
    header, payload, signature = token.split(".")
    raw = bytearray(_b64url_decode(signature)) or bytearray(b"\x00")
    raw[0] ^= 0xFF
    return f"{header}.{payload}.{_b64url(bytes(raw))}"


def build_id_token(
    *,
    issuer: str,
    client_id: str,
    client_secret: str,
    sub: str,
    nonce: str,
    acr: str,
    auth_time: int,
    access_token: str,
    amr_requested: bool,
    key: SigningKey,
    behaviour: dict[str, Any],
) -> str:
    """The ID token, with the misbehaviours currently switched on applied."""
    iat = int(time.time()) + behaviour["id_token_exp_offset"]
    claims: dict[str, Any] = {
        "iss": behaviour["id_token_iss"] or issuer,
        "sub": sub,
        "aud": behaviour["id_token_aud"] or client_id,
        "exp": iat + ID_TOKEN_TTL_S,
        "iat": iat,
        "auth_time": auth_time,
        "nonce": behaviour["id_token_nonce"] or nonce,
        "acr": behaviour["id_token_acr"] or acr,
        "at_hash": at_hash(access_token),
    }
    if amr_requested:
        claims["amr"] = ["pwd"]
    alg = behaviour["id_token_alg"]
    if alg == "none":
        token = _sign_unsecured(claims)
    elif alg == "HS256":
        token = _sign_hs256(claims, client_secret)
    else:
        token = sign(claims, key)
    if behaviour["tamper_signature"]:
        token = tamper(token)
    return token


def build_userinfo(
    *,
    issuer: str,
    client_id: str,
    sub: str,
    identity: SandboxIdentity,
    scopes: tuple[str, ...],
) -> dict[str, Any]:
    """Userinfo claims; the JWT-only claims (iss, aud, iat, exp) are included too."""
    now = int(time.time())
    return {
        "iss": issuer,
        "aud": client_id,
        "sub": sub,
        "iat": now,
        "exp": now + USERINFO_TTL_S,
        **released_claims(identity, scopes),
    }


def verify_own_token(token: str, keys: KeySet) -> dict[str, Any] | None:
    """Claims of a token we signed, or None. Expiry is deliberately not checked: an
    ``id_token_hint`` at logout is usually older than the ID token lifetime."""
    try:
        decoded = jwt.decode(token, keys, algorithms=list(SUPPORTED_SIGNING_ALGS))
    except (JoseError, ValueError, TypeError):
        return None
    return dict(decoded.claims)
