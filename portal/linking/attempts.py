"""Proofs of ownership are limited before they reach a back-end, in the database so
that every process of the portal counts the same attempts.

Three keys, each with its own limit:

- the resident (``PORTAL_LINK_FAILURE_LIMIT``): one person trying many cards;
- the target account, the back-end plus the card, family or application number as the
  back-end compares it (``PORTAL_LINK_ACCOUNT_LIMIT``): kept below the back-ends'
  lock-out threshold, so that nobody can lock someone else's card through the portal;
- the client address (``PORTAL_LINK_ADDRESS_LIMIT``): high enough for a help desk, a
  town hall's public computers or a carrier's NAT, only against mass abuse.

An attempt is counted before the back-end is called: its rows are inserted and
committed first, then every key is counted. An attempt goes on only if each count is
within its limit; otherwise its rows are deleted at once (a refused attempt reaches no
back-end, so it does not count). Because each attempt counts after its own rows are
committed, the k-th attempt to commit sees at least k rows: however many arrive at the
same moment, at most ``limit`` go on. A proof the back-end accepts is forgotten; a
wrong one, or one whose answer was lost, stays counted for the limit's period.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from limits import parse as parse_limit
from sqlalchemy.engine import CursorResult

from portal.config import Settings
from portal.extensions import db
from portal.models import LinkAttempt

SCOPES = ("citizen", "target", "address")
#: One attempt in this many also deletes the attempts no limit looks at any more.
PURGE_ONE_IN = 100


@dataclass(frozen=True)
class Limit:
    amount: int
    period_s: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        item = parse_limit(text)
        return cls(item.amount, item.get_expiry())


@dataclass(frozen=True)
class Blocked:
    """Why the attempt may not go on, and from when the next one may."""

    scope: str
    until: datetime


def _limits(settings: Settings) -> dict[str, Limit]:
    return {
        "citizen": Limit.parse(settings.link_failure_limit),
        "target": Limit.parse(settings.link_account_limit),
        "address": Limit.parse(settings.link_address_limit),
    }


def normalise_account(number: str) -> str:
    """The number as back-ends compare it: letters and digits, upper case."""
    return "".join(char for char in number if char.isalnum()).upper()


def target_key(backend: str, number: str) -> str:
    return f"{backend}|{normalise_account(number)}"


def _hashed(settings: Settings, scope: str, value: str) -> str:
    """An HMAC of what a key counts: the table never holds a typed card number."""
    message = f"{scope}|{value}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


class Attempts:
    """The limits of one request: ``keys`` maps each scope to what it counts (a scope
    left out is not checked, e.g. the target before a number is typed)."""

    def __init__(self, settings: Settings, keys: dict[str, str]) -> None:
        self.limits = _limits(settings)
        self.keys = {scope: _hashed(settings, scope, value) for scope, value in keys.items()}

    def blocked(self, now: float | None = None) -> Blocked | None:
        """Whether the next attempt would be refused, without counting one."""
        now = time.time() if now is None else now
        found: list[Blocked] = []
        for scope, key in self.keys.items():
            limit = self.limits[scope]
            times = self._times(scope, key, now)
            if len(times) >= limit.amount:
                found.append(_until(scope, times, limit, len(times) - limit.amount))
        return max(found, key=lambda b: b.until) if found else None

    def begin(self) -> str | Blocked:
        """Count one attempt before calling the back-end: its id, or why not."""
        now = time.time()
        attempt = uuid.uuid4().hex
        db.session.add_all(
            LinkAttempt(scope=scope, key=key, attempt=attempt, at=now)
            for scope, key in self.keys.items()
        )
        db.session.commit()
        if random.randrange(PURGE_ONE_IN) == 0:  # noqa: S311 (housekeeping, not security)
            purge(now - max(limit.period_s for limit in self.limits.values()))
        found: list[Blocked] = []
        for scope, key in self.keys.items():
            limit = self.limits[scope]
            times = self._times(scope, key, now)
            if len(times) > limit.amount:
                found.append(_until(scope, times, limit, len(times) - limit.amount - 1))
        if found:
            self.forget(attempt)
            return max(found, key=lambda b: b.until)
        return attempt

    def forget(self, attempt: str) -> None:
        """The attempt does not count (refused here, or the proof was accepted)."""
        db.session.execute(sa.delete(LinkAttempt).where(LinkAttempt.attempt == attempt))
        db.session.commit()

    def _times(self, scope: str, key: str, now: float) -> list[float]:
        since = now - self.limits[scope].period_s
        return list(
            db.session.execute(
                sa.select(LinkAttempt.at)
                .where(LinkAttempt.scope == scope, LinkAttempt.key == key)
                .where(LinkAttempt.at > since)
                .order_by(LinkAttempt.at)
            ).scalars()
        )


def _until(scope: str, times: list[float], limit: Limit, index: int) -> Blocked:
    """Attempts leave the window one by one: the one at ``index`` (oldest first) is the
    one whose leaving lets the next attempt in."""
    index = max(0, min(index, len(times) - 1))
    return Blocked(scope, datetime.fromtimestamp(times[index] + limit.period_s, UTC))


def purge(before: float) -> int:
    """Delete the attempts made before ``before`` (seconds since the epoch)."""
    # Session.execute is typed as returning a Result; for a DELETE it is a CursorResult.
    result = cast(
        CursorResult[Any], db.session.execute(sa.delete(LinkAttempt).where(LinkAttempt.at < before))
    )
    db.session.commit()
    return result.rowcount or 0
