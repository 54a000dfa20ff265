"""Signed tokens in reminder links: unsubscribing (no sign-in) and confirming an address.

Signed with the secret key (``itsdangerous``), each with a purpose of its own (its salt),
so one kind of token never opens the other's door. The unsubscribe token does not
expire: a link in an old message must still work (RFC 8058). Like the session cookies,
they are verified with ``PORTAL_SECRET_KEY`` or one of ``PORTAL_SECRET_KEY_FALLBACKS``:
a rotation done in two steps keeps the links already sent; once a key leaves the
fallbacks, the links it signed stop working and the next digest carries new ones.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from portal.config import current_settings

UNSUBSCRIBE_SALT = "compte-territorial/reminders/unsubscribe"
CONFIRM_SALT = "compte-territorial/reminders/confirm-email"
#: An address confirmation link works for a day.
CONFIRM_MAX_AGE_S = 24 * 3600
#: Longer than any token this module writes: anything longer is refused unread.
MAX_TOKEN_LENGTH = 400


def _unsubscribe() -> URLSafeSerializer:
    return URLSafeSerializer(current_settings().secret_keys_oldest_first, salt=UNSUBSCRIBE_SALT)


def _confirm() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_settings().secret_keys_oldest_first, salt=CONFIRM_SALT)


def unsubscribe_token(citizen_id: int) -> str:
    return _unsubscribe().dumps(citizen_id)


def unsubscribe_citizen(token: str) -> int | None:
    """The resident an unsubscribe token names; None when it is not one of ours."""
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        value = _unsubscribe().loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def confirm_token(citizen_id: int, email: str) -> str:
    return _confirm().dumps([citizen_id, email])


def confirmed_address(token: str) -> tuple[int, str] | None:
    """(resident, address) of a confirmation token less than a day old; None otherwise."""
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        value = _confirm().loads(token, max_age=CONFIRM_MAX_AGE_S)
    except (BadSignature, SignatureExpired):
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], int)
        and isinstance(value[1], str)
    ):
        return value[0], value[1]
    return None
