"""In-memory state of the sandbox identity provider.

The sandbox runs as a single process (threaded dev server or test client), so a dict per
kind of object guarded by one lock is enough. Nothing survives a restart, on purpose.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.idp.keys import SUPPORTED_SIGNING_ALGS, KeyStore

ACCESS_TOKEN_TTL_S = 60
TRANSACTION_TTL_S = 30 * 60
# Spent or expired codes are remembered a while so a replay gets "invalid_grant".
_CODE_MEMORY_S = 10 * 60

_UNSET = object()


def _optional_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError("doit être une chaîne ou null")


def _audience(value: Any) -> str | list[str] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise ValueError("doit être une chaîne, une liste de chaînes ou null")


def _choice(*allowed: Any) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        if value not in allowed:
            raise ValueError(f"valeurs possibles : {', '.join(map(repr, allowed))}")
        return value

    return validate


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError("doit être un booléen")


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("doit être un nombre")
    return int(value)


def _optional_non_negative(value: Any) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError("doit être un nombre positif ou nul, ou null")
    return value


def _optional_http_status(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise ValueError("doit être un code de statut HTTP (100-599) ou null")
    return value


# key -> (default value, validator). A null value in an update restores the default.
BEHAVIOUR_SPEC: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "id_token_nonce": (None, _optional_str),
    "id_token_alg": (None, _choice(None, "none", "HS256")),
    "tamper_signature": (False, _boolean),
    "id_token_aud": (None, _audience),
    "id_token_iss": (None, _optional_str),
    "id_token_acr": (None, _optional_str),
    "id_token_exp_offset": (0, _integer),
    "userinfo_sub": (None, _optional_str),
    "userinfo_format": ("jwt", _choice("jwt", "json")),
    "callback_iss": (None, _optional_str),
    "code_ttl_s": (None, _optional_non_negative),
    "token_status": (None, _optional_http_status),
    "userinfo_status": (None, _optional_http_status),
}
# Not stored in the behaviour: it selects the active key in the key store.
SIGNING_ALG_KEY = "signing_alg"


def default_behaviour() -> dict[str, Any]:
    """A fresh copy of the behaviour of a well-behaved FranceConnect."""
    return {key: default for key, (default, _validator) in BEHAVIOUR_SPEC.items()}


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated /authorize request, kept server-side while the user picks an identity."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str
    nonce: str
    acr: str
    amr_requested: bool


@dataclass
class CodeGrant:
    """What an authorization code stands for, and whether it is spent."""

    request: AuthorizationRequest
    identity_key: str
    auth_time: int
    expires_at: float
    used: bool = False
    access_tokens: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AccessToken:
    """An opaque access token accepted by /userinfo until ``expires_at``."""

    client_id: str
    identity_key: str
    scopes: tuple[str, ...]
    expires_at: float


class IdpState:
    """All mutable state of the identity provider, behind one lock."""

    def __init__(self, default_alg: str) -> None:
        self.lock = threading.RLock()
        self.keys = KeyStore(default_alg)
        self.behaviour: dict[str, Any] = default_behaviour()
        self._transactions: dict[str, tuple[AuthorizationRequest, float]] = {}
        self._codes: dict[str, CodeGrant] = {}
        self._access_tokens: dict[str, AccessToken] = {}
        #: Seconds added to the clock, so a test can age codes without waiting.
        self.clock_offset_s = 0.0

    def now(self) -> float:
        """The monotonic clock every expiry is measured on, plus the test offset."""
        return time.monotonic() + self.clock_offset_s

    def advance_clock(self, seconds: float) -> None:
        """Move the provider's clock forward (codes, tokens and transactions age)."""
        with self.lock:
            self.clock_offset_s += seconds

    # -- behaviour -------------------------------------------------------------------

    def behaviour_snapshot(self) -> dict[str, Any]:
        """The current behaviour, with the active signing algorithm and key id."""
        with self.lock:
            return {**self.behaviour, SIGNING_ALG_KEY: self.keys.alg, "kid": self.keys.kid}

    def update_behaviour(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate every change first, then apply them all, so a typo changes nothing.

        Raises ValueError with a French message naming the offending key.
        """
        validated: dict[str, Any] = {}
        signing_alg: Any = _UNSET
        for key, value in changes.items():
            if key == SIGNING_ALG_KEY:
                if value not in SUPPORTED_SIGNING_ALGS:
                    raise ValueError(f"{key} : valeurs possibles : ES256, RS256")
                signing_alg = value
                continue
            if key not in BEHAVIOUR_SPEC:
                raise ValueError(f"clé inconnue : {key}")
            default, validator = BEHAVIOUR_SPEC[key]
            try:
                validated[key] = default if value is None else validator(value)
            except ValueError as error:
                raise ValueError(f"{key} : {error}") from None
        with self.lock:
            self.behaviour.update(validated)
            if signing_alg is not _UNSET:
                self.keys.switch_alg(signing_alg)
        return self.behaviour_snapshot()

    def reset(self) -> None:
        """Default behaviour and default algorithm; forget codes and tokens, keep keys."""
        with self.lock:
            self.behaviour = default_behaviour()
            self.keys.restore_default_alg()
            self._codes.clear()
            self._access_tokens.clear()
            self.clock_offset_s = 0.0

    # -- authorization transactions --------------------------------------------------

    def start_transaction(self, request: AuthorizationRequest) -> str:
        """Remember a validated request and return the id the chooser form carries."""
        transaction_id = secrets.token_urlsafe(24)
        now = self.now()
        with self.lock:
            self._purge(now)
            self._transactions[transaction_id] = (request, now + TRANSACTION_TTL_S)
        return transaction_id

    def finish_transaction(self, transaction_id: str) -> AuthorizationRequest | None:
        """Take a pending request out (each chooser page can be answered once)."""
        with self.lock:
            entry = self._transactions.pop(transaction_id, None)
        if entry is None or entry[1] <= self.now():
            return None
        return entry[0]

    # -- authorization codes ---------------------------------------------------------

    def issue_code(
        self, request: AuthorizationRequest, identity_key: str, ttl_s: float, auth_time: int
    ) -> str:
        """Create a single-use code valid for ``ttl_s`` seconds (0 means already expired)."""
        code = secrets.token_urlsafe(32)
        now = self.now()
        with self.lock:
            self._purge(now)
            self._codes[code] = CodeGrant(request, identity_key, auth_time, now + ttl_s)
        return code

    def redeem_code(self, code: str) -> tuple[CodeGrant | None, str | None]:
        """Spend a code: returns (grant, None) on success, (None, reason) otherwise.

        The code is burnt on its first presentation whatever happens next, and a replay
        also revokes the access tokens obtained with it (RFC 6749 §4.1.2).
        """
        with self.lock:
            grant = self._codes.get(code)
            if grant is None:
                return None, "unknown code"
            if grant.used:
                for token in grant.access_tokens:
                    self._access_tokens.pop(token, None)
                return None, "code already used"
            grant.used = True
            if grant.expires_at <= self.now():
                return None, "code expired"
            return grant, None

    # -- access tokens ---------------------------------------------------------------

    def issue_access_token(self, grant: CodeGrant) -> str:
        """Create an access token for the identity behind ``grant``."""
        token = secrets.token_urlsafe(32)
        with self.lock:
            self._access_tokens[token] = AccessToken(
                client_id=grant.request.client_id,
                identity_key=grant.identity_key,
                scopes=grant.request.scopes,
                expires_at=self.now() + ACCESS_TOKEN_TTL_S,
            )
            grant.access_tokens.append(token)
        return token

    def lookup_access_token(self, token: str) -> AccessToken | None:
        """The access token if it exists and has not expired."""
        with self.lock:
            entry = self._access_tokens.get(token)
        if entry is None or entry.expires_at <= self.now():
            return None
        return entry

    def _purge(self, now: float) -> None:
        """Drop stale entries so a long-running demo does not grow without bound."""
        for transaction_id, (_request, expires_at) in list(self._transactions.items()):
            if expires_at <= now:
                del self._transactions[transaction_id]
        for code, grant in list(self._codes.items()):
            if grant.expires_at + _CODE_MEMORY_S <= now:
                del self._codes[code]
        for token, entry in list(self._access_tokens.items()):
            if entry.expires_at <= now:
                del self._access_tokens[token]
