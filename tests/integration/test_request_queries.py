"""How many SQL statements (and pool check-outs, each a ping when pre-ping is on) a
request costs, counted on the portal's engine by SQLAlchemy's own events, with a real
sign-in through the sandbox's provider.

Static files and ``/healthz`` never touch the database, even with a session cookie;
``/readyz`` checks the database and nothing else; the dashboard shell stays within a
small, stated number of statements."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import unescape

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal.extensions import db
from tests.support import sign_in

#: What the dashboard shell costs the demo resident (5 linked services) once her cards
#: were read, as measured: the session with its resident (one query), her links, her
#: mandates' notices, her reminder settings (the dashboard offers to turn them on), every
#: last snapshot the shell shows (one query for all), and the payments under way of the
#: two services with invoices.
SHELL_MAX_STATEMENTS = 7


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)
    checkouts: int = 0


@contextmanager
def counting(app: Flask) -> Iterator[Counted]:
    """Every statement and every connection taken from the pool, on the portal's engine."""
    counted = Counted()
    with app.app_context():
        engine = db.engine

    def on_statement(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        counted.statements.append(statement)

    def on_checkout(*_args: object) -> None:
        counted.checkouts += 1

    sa.event.listen(engine, "before_cursor_execute", on_statement)
    sa.event.listen(engine.pool, "checkout", on_checkout)
    try:
        yield counted
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_statement)
        sa.event.remove(engine.pool, "checkout", on_checkout)


def signed_in_get(client: FlaskClient, app: Flask, path: str) -> tuple[TestResponse, Counted]:
    """Sign the demo resident in, open the dashboard once ("last seen" written, locale
    remembered), then ask for ``path``, counting."""
    assert sign_in(client).status_code == 303
    assert client.get("/").status_code == 200
    with counting(app) as counted:
        response = client.get(path)
    return response, counted


def test_static_files_and_healthz_cost_no_query_with_a_session(
    services_client: FlaskClient, services_app: Flask
) -> None:
    for path in ("/static/css/portal.css", "/static/js/htmx.min.js", "/healthz"):
        r, counted = signed_in_get(services_client, services_app, path)
        assert r.status_code == 200, path
        assert counted.statements == [], (path, counted.statements)
        assert counted.checkouts == 0, path


def test_readyz_checks_the_database_and_loads_no_session(
    services_client: FlaskClient, services_app: Flask
) -> None:
    r, counted = signed_in_get(services_client, services_app, "/readyz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok", "database": "ok"}
    assert counted.statements == ["SELECT 1"]


def test_the_dashboard_shell_stays_within_its_statements(
    services_client: FlaskClient, services_app: Flask
) -> None:
    client = services_client
    assert sign_in(client).status_code == 303
    # The first visit: the shell, then its cards (each read leaves its snapshots).
    shell = client.get("/").get_data(as_text=True)
    cards = sorted({unescape(url) for url in re.findall(r'hx-get="(/[^"]*card[^"]*)"', shell)})
    assert len(cards) == 4, cards
    for card in cards:
        assert client.get(card, headers={"HX-Request": "true"}).status_code == 200
    with counting(services_app) as counted:
        r = client.get("/")
    assert r.status_code == 200 and "Bonjour" in r.get_data(as_text=True)
    assert len(counted.statements) <= SHELL_MAX_STATEMENTS, counted.statements
