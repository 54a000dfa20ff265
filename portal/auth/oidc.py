"""An OpenID Connect relying party shaped by FranceConnect v2's rules.

Authlib does the OAuth 2.0 mechanics (authorization URL, code exchange with
``client_secret_post``); joserfc verifies every JWT. Nothing here imports Flask, so the
checks can be read and unit-tested on their own.

What FranceConnect adds to plain OIDC, and why it is enforced here:
- ``state`` and ``nonce`` are 64 hex characters (FranceConnect refuses nonces under 22
  characters; Authlib's default is 20);
- ``acr_values=eidas1`` is asked for and the returned ``acr`` must be at least that;
- userinfo comes back as a signed JWT (``application/jwt``), verified like the ID token;
- only asymmetric signatures (ES256, RS256) are accepted unless a legacy setting says so.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

# Authlib 1.9 warns when it runs on httpx rather than its fork httpx2; httpx is this
# project's HTTP client, and Authlib still supports it fully. Authlib installs its own
# "always" filter when ``authlib.deprecate`` is imported, so silence the import itself.
import authlib.deprecate  # noqa: F401
import httpx

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client
from authlib.common.errors import AuthlibBaseError
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey
from joserfc.jwt import JWTClaimsRegistry

from connectors.http.tls import shared_ssl_context

log = logging.getLogger(__name__)

ASYMMETRIC_ALGS = ("ES256", "RS256")
ACR_LEVELS = {"eidas1": 1, "eidas2": 2, "eidas3": 3}
REQUIRED_ACR = "eidas1"
METADATA_TTL_S = 3600
JWKS_TTL_S = 3600
#: A forged ``kid`` must not let anyone make us hammer the provider's JWKS endpoint.
JWKS_FORCED_REFRESH_MIN_INTERVAL_S = 10


class OIDCError(Exception):
    """A sign-in that cannot go on. ``kind`` picks the message the resident sees.

    kinds: ``unreachable`` (provider down or too slow), ``provider`` (the provider
    answered with an error), ``invalid`` (a response failed verification),
    ``mfa_required`` (an agent signed in without a second factor, ProConnect only).
    The message is for the logs only: it never contains tokens or personal data.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None


@dataclass(frozen=True, slots=True)
class SignInResult:
    id_token: str
    id_claims: dict[str, Any]
    userinfo: dict[str, Any]


def new_state_or_nonce() -> str:
    """64 hexadecimal characters: FranceConnect's recommended length."""
    return secrets.token_hex(32)


class FranceConnectClient:
    """One per application; safe to share between threads."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        scopes: list[str],
        redirect_uri: str,
        timeout_s: float = 5.0,
        leeway_s: int = 30,
        allow_hs256: bool = False,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = scopes
        self.redirect_uri = redirect_uri
        self.timeout = httpx.Timeout(timeout_s)
        self.leeway_s = leeway_s
        self.allowed_algs = (*ASYMMETRIC_ALGS, "HS256") if allow_hs256 else ASYMMETRIC_ALGS
        # The process's one SSL context (see connectors.http.tls): building one per
        # client reloads the CA bundle. httpx's default trust_env=True is kept.
        self._http = httpx.Client(timeout=self.timeout, verify=shared_ssl_context(trust_env=True))
        self._lock = threading.Lock()
        self._metadata: tuple[float, ProviderMetadata] | None = None
        self._jwks: tuple[float, KeySet] | None = None
        self._last_forced_jwks = 0.0

    # -- discovery and keys ------------------------------------------------------------

    def metadata(self) -> ProviderMetadata:
        with self._lock:
            cached = self._metadata
        if cached and time.monotonic() - cached[0] < METADATA_TTL_S:
            return cached[1]
        doc = self._get_json(self.issuer + "/.well-known/openid-configuration")
        try:
            meta = ProviderMetadata(
                issuer=_require_str(doc, "issuer"),
                authorization_endpoint=_require_str(doc, "authorization_endpoint"),
                token_endpoint=_require_str(doc, "token_endpoint"),
                userinfo_endpoint=_require_str(doc, "userinfo_endpoint"),
                jwks_uri=_require_str(doc, "jwks_uri"),
                end_session_endpoint=doc.get("end_session_endpoint") or None,
            )
        except (KeyError, TypeError) as exc:
            raise OIDCError("invalid", f"discovery document incomplete: {exc}") from None
        if meta.issuer.rstrip("/") != self.issuer:
            raise OIDCError("invalid", "discovery issuer differs from the configured issuer")
        with self._lock:
            self._metadata = (time.monotonic(), meta)
        return meta

    def keyset(self, *, force: bool = False) -> KeySet:
        now = time.monotonic()
        with self._lock:
            cached = self._jwks
            if force:
                if now - self._last_forced_jwks < JWKS_FORCED_REFRESH_MIN_INTERVAL_S:
                    force = False
                else:
                    self._last_forced_jwks = now
        if cached and not force and now - cached[0] < JWKS_TTL_S:
            return cached[1]
        doc = self._get_json(self.metadata().jwks_uri)
        try:
            keys = KeySet.import_key_set(doc)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise OIDCError("invalid", f"JWKS unreadable: {type(exc).__name__}") from None
        with self._lock:
            self._jwks = (time.monotonic(), keys)
        return keys

    # -- the flow ------------------------------------------------------------------------

    def authorization_url(self, state: str, nonce: str, *, prompt: str = "") -> str:
        """``prompt="login"``: the person must identify again, even with a session at the
        provider (an adviser's confirmation of a mandate)."""
        meta = self.metadata()
        extras = self.authorize_extras()
        if prompt:
            extras["prompt"] = prompt
        with self._oauth() as oauth:
            url, _ = oauth.create_authorization_url(
                meta.authorization_endpoint, state=state, nonce=nonce, **extras
            )
        return url

    def authorize_extras(self) -> dict[str, str]:
        """Parameters added to the authorization request beyond the OAuth ones."""
        return {"acr_values": REQUIRED_ACR}

    def check_acr(self, claims: dict[str, Any]) -> None:
        """Refuse an ID token whose ``acr`` is below what this provider must give."""
        if ACR_LEVELS.get(str(claims.get("acr")), 0) < ACR_LEVELS[REQUIRED_ACR]:
            raise OIDCError("invalid", "id_token acr below eidas1")

    def complete(self, code: str, nonce: str) -> SignInResult:
        """Exchange the code, verify the ID token, fetch and verify userinfo."""
        meta = self.metadata()
        try:
            with self._oauth() as oauth:
                token = oauth.fetch_token(
                    meta.token_endpoint, code=code, grant_type="authorization_code"
                )
        except httpx.HTTPError as exc:
            raise OIDCError("unreachable", f"token endpoint: {type(exc).__name__}") from None
        except AuthlibBaseError as exc:
            raise OIDCError(
                "provider", f"token endpoint refused: {getattr(exc, 'error', exc)}"
            ) from None
        except (ValueError, TypeError, KeyError) as exc:
            raise OIDCError("invalid", f"token response unreadable: {type(exc).__name__}") from None
        id_token = token.get("id_token")
        access_token = token.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise OIDCError("invalid", "token response lacks id_token or access_token")
        claims = self.verify_id_token(id_token, nonce=nonce, access_token=access_token)
        userinfo = self.fetch_userinfo(access_token, expected_sub=claims["sub"])
        return SignInResult(id_token=id_token, id_claims=claims, userinfo=userinfo)

    def verify_id_token(self, id_token: str, *, nonce: str, access_token: str) -> dict[str, Any]:
        claims = self._verify_jwt(id_token, what="id_token")
        registry = JWTClaimsRegistry(
            leeway=self.leeway_s,
            iss={"essential": True, "value": self.metadata().issuer},
            aud={"essential": True, "value": self.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        _validate_claims(registry, claims, "id_token")
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.client_id:
            raise OIDCError("invalid", "id_token has several audiences and a foreign azp")
        self.check_acr(claims)
        at_hash = claims.get("at_hash")
        if at_hash is not None and at_hash != _at_hash(access_token):
            raise OIDCError("invalid", "id_token at_hash does not match the access token")
        return claims

    def fetch_userinfo(self, access_token: str, *, expected_sub: str) -> dict[str, Any]:
        try:
            resp = self._http.get(
                self.metadata().userinfo_endpoint,
                headers={"Authorization": f"Bearer {access_token}"},
            )
        except httpx.HTTPError as exc:
            raise OIDCError("unreachable", f"userinfo: {type(exc).__name__}") from None
        if resp.status_code != 200:
            raise OIDCError("provider", f"userinfo answered HTTP {resp.status_code}")
        content_type = resp.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/jwt":
            claims = self._verify_jwt(resp.text.strip(), what="userinfo")
            registry = JWTClaimsRegistry(
                leeway=self.leeway_s,
                iss={"essential": True, "value": self.metadata().issuer},
                aud={"essential": True, "value": self.client_id},
                sub={"essential": True},
            )
            _validate_claims(registry, claims, "userinfo")
        else:
            try:
                claims = resp.json()
            except ValueError:
                raise OIDCError("invalid", "userinfo is neither JWT nor JSON") from None
            if not isinstance(claims, dict):
                raise OIDCError("invalid", "userinfo JSON is not an object")
        if claims.get("sub") != expected_sub:
            raise OIDCError("invalid", "userinfo sub differs from id_token sub")
        return claims

    def end_session_url(
        self, *, id_token_hint: str, state: str, post_logout_uri: str
    ) -> str | None:
        endpoint = self.metadata().end_session_endpoint
        if not endpoint:
            return None
        query = urlencode(
            {
                "id_token_hint": id_token_hint,
                "state": state,
                "post_logout_redirect_uri": post_logout_uri,
            }
        )
        return endpoint + ("&" if "?" in endpoint else "?") + query

    # -- helpers -------------------------------------------------------------------------

    def _oauth(self) -> OAuth2Client:
        # A fresh client per flow: Authlib's client keeps the fetched token on itself,
        # which must never be shared between two residents' requests. Its SSL context,
        # which holds no state of a flow, is the process's one (as for ``self._http``):
        # building one per flow reloaded the CA bundle at every sign-in step.
        return OAuth2Client(
            client_id=self.client_id,
            client_secret=self.client_secret,
            scope=" ".join(self.scopes),
            redirect_uri=self.redirect_uri,
            token_endpoint_auth_method="client_secret_post",  # noqa: S106
            timeout=self.timeout,
            verify=shared_ssl_context(trust_env=True),
        )

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            resp = self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise OIDCError("unreachable", f"GET {url}: {type(exc).__name__}") from None
        if resp.status_code != 200:
            raise OIDCError("unreachable", f"GET {url}: HTTP {resp.status_code}")
        try:
            doc = resp.json()
        except ValueError:
            raise OIDCError("invalid", f"GET {url}: not JSON") from None
        if not isinstance(doc, dict):
            raise OIDCError("invalid", f"GET {url}: not a JSON object")
        return doc

    def _verify_jwt(self, token: str, *, what: str) -> dict[str, Any]:
        try:
            header = jws.extract_compact(token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeEncodeError) as exc:
            raise OIDCError(
                "invalid", f"{what} is not a compact JWS: {type(exc).__name__}"
            ) from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.allowed_algs:
            raise OIDCError("invalid", f"{what} alg {alg!r} not accepted")
        key: KeySet | OctKey
        if alg == "HS256":
            key = OctKey.import_key(self.client_secret)
        else:
            key = self.keyset()
            kid = header.get("kid")
            if kid is not None and not _has_kid(key, kid):
                # The provider may have rotated its keys: look again, once.
                key = self.keyset(force=True)
                if not _has_kid(key, kid):
                    raise OIDCError("invalid", f"{what} signed with an unknown key")
        candidates: list[KeySet | OctKey | Any] = [key]
        if isinstance(key, KeySet) and header.get("kid") is None:
            # No kid: some providers publish a single key and omit it. Try the keys
            # of the right type; the signature still has to verify.
            kty = "EC" if alg.startswith("ES") else "RSA"
            candidates = [k for k in key.keys if k.key_type == kty]
        decoded = None
        for candidate in candidates:
            try:
                decoded = jwt.decode(token, candidate, algorithms=[alg])
                break
            except (JoseError, ValueError):
                continue
        if decoded is None:
            raise OIDCError("invalid", f"{what} signature rejected")
        claims = decoded.claims
        if not isinstance(claims, dict):
            raise OIDCError("invalid", f"{what} claims are not an object")
        return claims


class ProConnectClient(FranceConnectClient):
    """The agents' provider: FranceConnect's shape, with ProConnect's differences.

    ProConnect refuses any authorize parameter it does not list (``acr_values`` is not
    sent): the second factor is asked for with the ``claims`` parameter (``acr``
    essential, among ``acr_values``), and the ``acr`` that comes back is checked against
    the same list. A token outside it raises ``OIDCError("mfa_required")``, which the
    agent is told about in plain words, never as a generic failure.
    """

    def __init__(self, *, acr_values: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.acr_values = list(acr_values)

    def authorize_extras(self) -> dict[str, str]:
        claims = {"id_token": {"acr": {"essential": True, "values": self.acr_values}, "amr": None}}
        return {"claims": json.dumps(claims, separators=(",", ":"))}

    def check_acr(self, claims: dict[str, Any]) -> None:
        if claims.get("acr") not in self.acr_values:
            raise OIDCError("mfa_required", f"id_token acr {claims.get('acr')!r} not accepted")


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)


def _validate_claims(registry: JWTClaimsRegistry, claims: dict[str, Any], what: str) -> None:
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise OIDCError(
            "invalid", f"{what} claims rejected: {exc.error}: {exc.description}"
        ) from None


def _at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def _require_str(doc: dict[str, Any], name: str) -> str:
    value = doc[name]
    if not isinstance(value, str) or not value:
        raise TypeError(name)
    return value
