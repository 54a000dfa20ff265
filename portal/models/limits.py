"""Counters that must agree across every process of the portal: proof attempts when
linking an account, and the rate limits' fixed windows (see ``portal/ratelimit.py``)."""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import Model


class LinkAttempt(Model):
    """One proof of ownership about to be sent to a back-end, counted under one key.

    Each attempt writes one row per key it is limited by (the resident, the target
    account, the client address), all with the same ``attempt``. ``key`` is an HMAC of
    what it counts, so a card number typed by someone is never stored.
    """

    __tablename__ = "link_attempt"
    __table_args__ = (Index("ix_link_attempt_scope_key_at", "scope", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # citizen | target | address
    key: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[str] = mapped_column(String(32), index=True)
    #: Seconds since the epoch (UTC): compared with plain arithmetic on every database.
    at: Mapped[float] = mapped_column(Float)


class RateCounter(Model):
    """One fixed window of a Flask-Limiter limit: its count and when it ends."""

    __tablename__ = "rate_counter"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
