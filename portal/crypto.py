"""Secrets at rest: encrypted with keys from the environment, rotatable.

``PORTAL_ENCRYPTION_KEYS`` is a comma-separated list of Fernet keys: the first encrypts,
all decrypt. To rotate with several instances (docs/operations.md, "Rotating the
encryption keys"): add a new key second everywhere, then move it first, run ``flask
--app portal rotate-secrets`` (re-encrypts every stored secret with it), then drop the
old key.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._fernet = MultiFernet([Fernet(k.encode("ascii")) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise ValueError("secret cannot be decrypted with the configured keys") from None

    def rotate(self, ciphertext: str) -> str:
        """The same secret, encrypted with the first (newest) key."""
        return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")


def dev_key(secret_key: str) -> str:
    """A stable development key derived from the secret key (never used in production,
    where PORTAL_ENCRYPTION_KEYS is required)."""
    digest = hashlib.sha256(b"compte-territorial-secrets:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def secret_box() -> SecretBox:
    return current_app.extensions["secret_box"]
