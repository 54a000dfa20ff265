"""A connection PostgreSQL ended (a restart, a fail-over, an administrator) is replaced
before a request uses it, though the pool no longer pings every connection it hands
out (``portal.dbpool``). PostgreSQL only: SQLite has no server to lose."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app, dbpool
from tests.support import Sandbox, empty_tables, portal_settings, sign_in


@pytest.fixture
def pg_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: TEST_DATABASE_URL")
    return database_url


def build_portal(pg_url: str, fc_sandbox: Sandbox, **settings: object) -> Flask:
    return create_app(portal_settings(pg_url, fc_sandbox.issuer, **settings))


@pytest.fixture
def pinged_after_idle(pg_url: str, fc_sandbox: Sandbox) -> Iterator[Flask]:
    app = build_portal(pg_url, fc_sandbox, db_ping_after_idle_s=0)
    yield app
    empty_tables(app)


def end_every_other_connection(url: str) -> int:
    """What a restart does to the portal's pool: the server ends each connection."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        ended = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )
        ).scalar_one()
    engine.dispose()
    time.sleep(0.2)  # the server's goodbye reaches the sockets
    return int(ended)


def backend_pid(client: FlaskClient, app: Flask) -> int:
    from portal.extensions import db

    with app.app_context():
        pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        db.session.remove()
    return int(pid)


def test_a_connection_the_server_ended_is_replaced_before_a_request_uses_it(
    app: Flask, client: FlaskClient, pg_url: str
) -> None:
    assert app.extensions["portal_settings"].db_pool_pre_ping is False
    sign_in(client)
    assert client.get("/").status_code == 200
    before = backend_pid(client, app)
    assert end_every_other_connection(pg_url) >= 1
    r = client.get("/")
    assert r.status_code == 200 and "Bonjour" in r.get_data(as_text=True)
    assert client.get("/readyz").get_json() == {"status": "ok", "database": "ok"}
    assert backend_pid(client, app) != before
    # The rate limits' own pool (in the database without Redis) recovers the same way.
    assert client.get("/auth/franceconnect/login").status_code == 302


def test_a_connection_unused_for_long_is_pinged_when_its_socket_says_nothing(
    pinged_after_idle: Flask, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A firewall that forgets an idle connection says nothing on its socket: the ping
    after ``PORTAL_DB_PING_AFTER_IDLE_S`` (0 here: every time) finds it dead."""
    client = pinged_after_idle.test_client()
    sign_in(client)
    assert client.get("/").status_code == 200
    monkeypatch.setattr(dbpool, "closed_by_server", lambda _connection: False)
    assert end_every_other_connection(pg_url) >= 1
    r = client.get("/")
    assert r.status_code == 200 and "Bonjour" in r.get_data(as_text=True)
