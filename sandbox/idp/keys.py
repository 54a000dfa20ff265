"""Signing keys of the sandbox identity provider.

Keys are generated in memory at start-up: the sandbox never needs stable keys, and fresh
keys on each run make sure the portal really fetches the JWKS instead of pinning a key.
Rotation and algorithm switches exist so that tests can prove the portal re-fetches the
JWKS when it meets an unknown ``kid``.
"""

from __future__ import annotations

from collections import deque

from joserfc.jwk import ECKey, KeySet, RSAKey

SUPPORTED_SIGNING_ALGS = ("ES256", "RS256")

SigningKey = ECKey | RSAKey

# Retired keys are kept only to recognise our own past ID tokens at logout.
_RETIRED_KEYS_KEPT = 20


def generate_signing_key(alg: str) -> SigningKey:
    """Create a new private key for ``alg`` with a fresh ``kid`` (its JWK thumbprint)."""
    parameters = {"use": "sig", "alg": alg}
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters, auto_kid=True)
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters, auto_kid=True)
    raise ValueError(f"Unsupported signing algorithm: {alg!r}")


class KeyStore:
    """The active signing key, plus the keys it replaced.

    Only the active key is published in the JWKS, so a rotation really removes the old
    ``kid`` for relying parties. Not thread-safe on its own: callers hold the IdP lock.
    """

    def __init__(self, default_alg: str) -> None:
        if default_alg not in SUPPORTED_SIGNING_ALGS:
            raise ValueError(f"Unsupported signing algorithm: {default_alg!r}")
        self.default_alg = default_alg
        self.active: SigningKey = generate_signing_key(default_alg)
        self._latest_by_alg: dict[str, SigningKey] = {default_alg: self.active}
        self._retired: deque[SigningKey] = deque(maxlen=_RETIRED_KEYS_KEPT)

    @property
    def alg(self) -> str:
        """Algorithm of the active key."""
        return str(self.active.alg)

    @property
    def kid(self) -> str:
        """Key id of the active key."""
        return str(self.active.kid)

    def _activate(self, key: SigningKey) -> None:
        if key is not self.active:
            self._retired.append(self.active)
        if key in self._retired:
            self._retired.remove(key)
        self.active = key
        self._latest_by_alg[self.alg] = key

    def rotate(self) -> SigningKey:
        """Replace the active key with a new key of the same type and a new ``kid``."""
        self._activate(generate_signing_key(self.alg))
        return self.active

    def switch_alg(self, alg: str) -> SigningKey:
        """Sign with another algorithm from now on; a no-op if it is already in use."""
        if alg not in SUPPORTED_SIGNING_ALGS:
            raise ValueError(f"Unsupported signing algorithm: {alg!r}")
        if alg != self.alg:
            self._activate(generate_signing_key(alg))
        return self.active

    def restore_default_alg(self) -> SigningKey:
        """Go back to the last key of the configured algorithm (used by reset).

        The key itself is kept, not regenerated, so a relying party that cached it
        before an algorithm switch still recognises it.
        """
        if self.alg != self.default_alg:
            self._activate(self._latest_by_alg[self.default_alg])
        return self.active

    def public_jwks(self) -> dict:
        """The JWKS document: public part of the active key only."""
        return KeySet([self.active]).as_dict(private=False)

    def verification_keys(self) -> KeySet:
        """Every key we signed with recently, to recognise our own tokens."""
        return KeySet([self.active, *self._retired])
