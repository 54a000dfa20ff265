"""Taking a connection from the pool without a round trip to the database, safely.

SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` each time a connection is taken from
the pool: one round trip per request, and one more per snapshot a dashboard reads. Most
of the time nothing happened to the connection since it was given back a few
milliseconds earlier. What does happen, and the check here catches without asking the
server:

- PostgreSQL restarted, failed over, or ended the connection (``pg_terminate_backend``,
  ``idle_session_timeout``): it says so on the socket (a FATAL message, then the close),
  so an idle connection whose socket has something to read is dead. A look at the socket
  (``poll`` with no timeout) sees it, and the pool opens a fresh connection instead.
- A firewall or NAT that forgets an idle connection says nothing: a connection unused
  for longer than ``ping_after_idle_s`` gets the round trip before it is used.

``PORTAL_DB_POOL_PRE_PING=true`` keeps SQLAlchemy's ping on every check-out, for a path
to the database where neither holds. Not used with SQLite (no socket, no server).
"""

from __future__ import annotations

import logging
import select
import time
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

#: Where the time a connection was given back is kept, on its pool record.
CHECKED_IN_AT = "portal_checked_in_at"


def closed_by_server(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket has something to read (the server's goodbye,
    or its close) or is in error: either way the connection cannot be used."""
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # closed on our side already
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def answers_ping(dbapi_connection: Any) -> bool:
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
    except Exception:
        return False
    return True


def install_liveness_check(engine: sa.Engine, ping_after_idle_s: float) -> None:
    """On every check-out from ``engine``'s pool: a look at the socket, and a ping only
    after ``ping_after_idle_s`` unused. A dead connection raises ``DisconnectionError``,
    on which the pool discards it and opens another (SQLAlchemy's documented way)."""

    @sa.event.listens_for(engine.pool, "checkin")
    def remember_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[CHECKED_IN_AT] = time.monotonic()

    @sa.event.listens_for(engine.pool, "checkout")
    def check_on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.pop(CHECKED_IN_AT, None)
        if checked_in_at is None:
            return  # just opened
        if closed_by_server(dbapi_connection):
            log.info("a pooled database connection was closed by the server: replaced")
            raise sa.exc.DisconnectionError("closed by the server")
        if time.monotonic() - checked_in_at > ping_after_idle_s and not answers_ping(
            dbapi_connection
        ):
            log.info("a pooled database connection idle for long did not answer: replaced")
            raise sa.exc.DisconnectionError("no answer after a long idle")
