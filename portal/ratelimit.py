"""A ``limits`` storage in the portal's own database, so that Flask-Limiter's limits
(sign-in, calendar feed, payment notifications) hold across the processes of one server
without Redis: with in-process memory, two gunicorn workers allowed twice the limit.

``portal-db://`` is registered with the storage registry of the ``limits`` package; the
database URL comes quoted in the query: ``portal-db://?url=sqlite%3A%2F%2F%2F…``. Each fixed
window is one ``rate_counter`` row, incremented by a single ``INSERT … ON CONFLICT DO
UPDATE … RETURNING`` (SQLite 3.35+ and PostgreSQL alike): two processes can never read
the same count and both write it back. The storage has its own small engine and commits
each step, apart from the request's transaction.
"""

from __future__ import annotations

import os
import random
import threading
import time
from urllib.parse import parse_qs, quote, urlsplit

import sqlalchemy as sa
from limits.storage import Storage

#: Scheme of the database storage: ``RATELIMIT_STORAGE_URI = "portal-db://"``.
SCHEME = "portal-db"
#: A pooled connection unused this long is pinged before use (the web pool's default).
PING_AFTER_IDLE_S = 30
#: One increment in this many also deletes the windows that have ended.
PURGE_ONE_IN = 200

_INCR = sa.text(
    "INSERT INTO rate_counter (key, count, expires_at) VALUES (:key, :amount, :expires_at) "
    "ON CONFLICT (key) DO UPDATE SET "
    "count = CASE WHEN rate_counter.expires_at <= :now THEN :amount "
    "ELSE rate_counter.count + :amount END, "
    "expires_at = CASE WHEN rate_counter.expires_at <= :now THEN :expires_at "
    "ELSE rate_counter.expires_at END "
    "RETURNING count"
)


_engines: dict[tuple[int, str], sa.Engine] = {}
_engines_lock = threading.Lock()


def _engine(url: str) -> sa.Engine:
    """One small engine per database and process, created on first use (a forked
    worker never reuses its parent's connections), shared by every storage instance."""
    with _engines_lock:
        key = (os.getpid(), url)
        if key not in _engines:
            if url.startswith("sqlite"):
                from portal import _sqlite_for_concurrent_requests

                engine = sa.create_engine(url)
                sa.event.listen(engine, "connect", _sqlite_for_concurrent_requests)
            else:
                from portal.dbpool import install_liveness_check

                # No ping per check-out: a connection the server closed is seen on its
                # socket, one idle for long is pinged (``portal.dbpool``).
                engine = sa.create_engine(url, pool_size=1, max_overflow=4)
                install_liveness_check(engine, PING_AFTER_IDLE_S)
            _engines[key] = engine
        return _engines[key]


class DatabaseStorage(Storage):
    """Fixed-window counters in the ``rate_counter`` table (Flask-Limiter's default
    strategy; moving windows are not supported)."""

    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 (read by the limits registry)

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        **_options: object,
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        urls = parse_qs(urlsplit(uri or "").query).get("url")
        if not urls:
            raise ValueError("portal-db:// needs the database URL: portal-db://?url=<quoted>")
        self.database_url = urls[0]

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sa.exc.SQLAlchemyError

    @property
    def engine(self) -> sa.Engine:
        return _engine(self.database_url)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self.engine.begin() as conn:
            count = conn.execute(
                _INCR, {"key": key, "amount": amount, "now": now, "expires_at": now + expiry}
            ).scalar_one()
            if random.randrange(PURGE_ONE_IN) == 0:  # noqa: S311 (not security)
                conn.execute(
                    sa.text("DELETE FROM rate_counter WHERE expires_at <= :now"), {"now": now}
                )
        return int(count)

    def get(self, key: str) -> int:
        with self.engine.connect() as conn:
            count = conn.execute(
                sa.text("SELECT count FROM rate_counter WHERE key = :key AND expires_at > :now"),
                {"key": key, "now": time.time()},
            ).scalar_one_or_none()
        return int(count or 0)

    def get_expiry(self, key: str) -> float:
        with self.engine.connect() as conn:
            expires_at = conn.execute(
                sa.text("SELECT expires_at FROM rate_counter WHERE key = :key"), {"key": key}
            ).scalar_one_or_none()
        now = time.time()
        return float(expires_at) if expires_at is not None and expires_at > now else now

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1 FROM rate_counter WHERE 1 = 0"))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return conn.execute(sa.text("DELETE FROM rate_counter")).rowcount

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM rate_counter WHERE key = :key"), {"key": key})


def storage_settings(database_url: str, redis_url: str, redis_prefix: str) -> dict[str, object]:
    """Flask-Limiter's storage configuration: Redis when configured (shared by several
    servers), the portal's database otherwise (shared by the processes of one server).

    If Redis stops answering, each process counts in its own memory until it answers
    again (Flask-Limiter checks): limits per process for a while, rather than every
    limited page (sign-in among them) failing. Short socket timeouts, as for the
    breakers, so a slow Redis does not hold a resident's request."""
    if redis_url:
        return {
            "RATELIMIT_STORAGE_URI": redis_url,
            "RATELIMIT_STORAGE_OPTIONS": {
                "key_prefix": redis_prefix + "limits",
                "socket_timeout": 0.25,
                "socket_connect_timeout": 0.25,
            },
            "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        }
    return {"RATELIMIT_STORAGE_URI": f"{SCHEME}://?url={quote(database_url, safe='')}"}
