"""Benchmark: what the request path costs before a view does its own work, in SQL
statements, connections taken from the pool and time, per route.

A signed-in resident (a session row and its cookie, four linked services whose
back-ends are never called) asks for a static file,
``/healthz``, ``/readyz`` and the dashboard shell through Flask's test client, in one
process; each change measured here is compared with the way it was before (emulated, as
``bench/create_app.py`` does), alternating rounds after a warm-up, so both sides see the
same machine.

Usage: ``PYTHONPATH=. .venv/bin/python bench/request_path.py [--rounds 200]
[--database-url postgresql://postgres@127.0.0.1:5432/bench_requests] [--before NAME]``.
The database is emptied and migrated first: give it one of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

import portal.auth.session as auth_session
from portal import create_app
from portal.config import load_settings, normalise_database_url

ROOT = Path(__file__).resolve().parent.parent
#: The demo resident's four services: the shell shows their last snapshots (none here),
#: read from the database without calling any back-end.
LINKS = (
    ("bib-merignac", "mer-p-0417"),
    ("bib-bordeaux", "51"),
    ("cantine-bordeaux", "fam-4521"),
    ("logement-metropole", "dem-0871"),
)
ROUTES = ("/static/css/portal.css", "/healthz", "/readyz", "/", "/account/activity")


@contextmanager
def every_request_loads_the_session() -> Iterator[None]:
    """Before: the session (and its resident) was loaded for static files and health."""
    saved = auth_session.SESSIONLESS_ENDPOINTS
    auth_session.SESSIONLESS_ENDPOINTS = frozenset()
    try:
        yield
    finally:
        auth_session.SESSIONLESS_ENDPOINTS = saved


@contextmanager
def two_queries_and_a_ping(app: Flask) -> Iterator[None]:
    """Before: the session row, then its resident (a lazy load), and SQLAlchemy's ping at
    every check-out from the pool."""
    from portal.extensions import db
    from portal.models import AuthSession

    def load_by_id() -> AuthSession | None:
        sid = auth_session.session.get("sid")
        return db.session.get(AuthSession, sid) if isinstance(sid, str) else None

    with app.app_context():
        pool = db.engine.pool
    saved = auth_session._load_auth_session, pool._pre_ping  # type: ignore[attr-defined]
    auth_session._load_auth_session = load_by_id  # type: ignore[assignment]
    pool._pre_ping = True  # type: ignore[attr-defined]
    try:
        yield
    finally:
        auth_session._load_auth_session, pool._pre_ping = saved  # type: ignore[attr-defined]


@contextmanager
def one_query_per_snapshot(app: Flask) -> Iterator[None]:
    """Before: the shell read each service's snapshots one query (and connection) each."""
    store = app.extensions["snapshot_store"]
    saved = store.prefetched

    @contextmanager
    def nothing_ahead(_subjects: object) -> Iterator[None]:
        yield

    store.prefetched = nothing_ahead
    try:
        yield
    finally:
        store.prefetched = saved


@contextmanager
def babel_lookups_per_date(_app: Flask) -> Iterator[None]:
    """Before: each date looked the time zone up through Flask-Babel and had Babel parse
    its locale's name again."""
    from datetime import datetime

    from flask_babel import to_user_timezone

    import portal.formatting as formatting

    def local(value: Any) -> Any:
        return to_user_timezone(value) if isinstance(value, datetime) else value

    saved = formatting._local, formatting._LOCALES
    formatting._local = local  # type: ignore[assignment]
    formatting._LOCALES = {True: "fr_FR", False: "en_GB"}  # type: ignore[dict-item]
    try:
        yield
    finally:
        formatting._local, formatting._LOCALES = saved


#: The ways it was before, by name (``--before``), each given the app.
BEFORE: dict[str, Callable[[Flask], Any]] = {
    "session-everywhere": lambda _app: every_request_loads_the_session(),
    "two-queries-and-a-ping": two_queries_and_a_ping,
    "one-query-per-snapshot": one_query_per_snapshot,
    "babel-lookups-per-date": babel_lookups_per_date,
}


@contextmanager
def sandbox_backends(tmp: str) -> Iterator[tuple[str, str]]:
    """The sandbox's identity provider and back-ends in a thread on loopback; yields its
    URL and a connectors file pointing at it."""
    import threading

    from werkzeug.serving import make_server

    import sandbox

    server = make_server("127.0.0.1", 0, sandbox.create_app({"TESTING": True}), threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    conf = Path(tmp) / "connectors.toml"
    text = (ROOT / "connectors.toml").read_text(encoding="utf-8")
    conf.write_text(text.replace("http://127.0.0.1:5001", url), encoding="utf-8")
    try:
        yield url, str(conf)
    finally:
        server.shutdown()


def demo_resident(app: Flask, identity: str = "marie-therese") -> FlaskClient:
    """The demo resident signed in through the sandbox's provider (her demo accounts
    linked at sign-in), then her dashboard and its cards opened once, as a first visit
    does: each card's read leaves its snapshots."""
    import re
    from html import unescape
    from urllib.parse import urlsplit

    import httpx

    client = app.test_client()
    start = client.get("/auth/franceconnect/login")
    authorize = start.headers["Location"]
    with httpx.Client(timeout=10) as http:
        page = http.get(authorize)
        transaction = re.search(r'name="transaction_id"\s+value="([^"]+)"', page.text)
        assert transaction, "the provider's page has no transaction"
        decision = http.post(
            authorize.split("/authorize")[0] + "/authorize/decision",
            data={"transaction_id": transaction.group(1), "identity": identity},
        )
    back = urlsplit(decision.headers["Location"])
    assert client.get(f"{back.path}?{back.query}").status_code == 303
    shell = client.get("/").get_data(as_text=True)
    for card in {unescape(u) for u in re.findall(r'hx-get="(/[^"]*card[^"]*)"', shell)}:
        assert client.get(card, headers={"HX-Request": "true"}).status_code == 200
    return client


def migrated_app(url: str, **overrides: object) -> Flask:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    engine.dispose()
    values: dict[str, object] = {
        "database_url": url,
        "testing": True,
        "connectors_file": str(ROOT / "connectors.toml"),
        "probe_interval_s": 0,
        "demo_links_file": "",
        "fc_issuer": "http://127.0.0.1:9/idp",
        "base_url": "http://localhost",
        "measure_enabled": False,
        "signin_rate_limit": "100000 per minute",
    }
    settings = load_settings({}, **{**values, **overrides})
    app = create_app(settings)
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
    return app


def signed_in_client(app: Flask) -> FlaskClient:
    from portal.extensions import db
    from portal.models import AuthSession, Citizen, ServiceLink

    with app.app_context():
        citizen = Citizen(sub=secrets.token_hex(8), given_name="Marie", family_name="Martin")
        db.session.add(citizen)
        db.session.flush()
        sid = secrets.token_urlsafe(32)
        db.session.add(AuthSession(id=sid, citizen_id=citizen.id))
        for slug, external_id in LINKS:
            db.session.add(
                ServiceLink(citizen_id=citizen.id, instance_slug=slug, external_id=external_id)
            )
        db.session.commit()
    client = app.test_client()
    with client.session_transaction() as session:
        session["sid"] = sid
        session["lang"] = "fr"
    return client


class Counter:
    def __init__(self, app: Flask) -> None:
        from portal.extensions import db

        with app.app_context():
            self.engine = db.engine
        self.statements = 0
        self.checkouts = 0
        sa.event.listen(self.engine, "before_cursor_execute", self._statement)
        sa.event.listen(self.engine.pool, "checkout", self._checkout)

    def _statement(self, *_args: object) -> None:
        self.statements += 1

    def _checkout(self, *_args: object) -> None:
        self.checkouts += 1


def measure(
    client: FlaskClient, counter: Counter, path: str, rounds: int
) -> tuple[float, float, float]:
    """Median time (ms), statements and checkouts per request."""
    statements, checkouts = counter.statements, counter.checkouts
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code)
        response.close()
    return (
        statistics.median(times) * 1000,
        (counter.statements - statements) / rounds,
        (counter.checkouts - checkouts) / rounds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--before", choices=sorted(BEFORE), default="one-query-per-snapshot")
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="the demo resident, signed in through the sandbox, her cards read once",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        url = normalise_database_url(args.database_url or f"sqlite:///{tmp}/bench.sqlite3")
        if args.sandbox:
            sandbox_url, conf = stack.enter_context(sandbox_backends(tmp))
            app = migrated_app(
                url,
                fc_issuer=sandbox_url + "/api/v2",
                connectors_file=conf,
                demo_links_file=str(ROOT / "demo-links.toml"),
            )
            client = demo_resident(app)
        else:
            app = migrated_app(url)
            client = signed_in_client(app)
        counter = Counter(app)
        before_way = BEFORE[args.before]
        results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for path in ROUTES:  # warm-up: templates, first connections
            measure(client, counter, path, 10)
        for _ in range(5):
            for path in ROUTES:
                with before_way(app):
                    results.setdefault(("before", path), []).append(
                        measure(client, counter, path, args.rounds // 5)
                    )
                results.setdefault(("after", path), []).append(
                    measure(client, counter, path, args.rounds // 5)
                )
    dialect = url.split(":", 1)[0].split("+", 1)[0]
    print(f"before: {args.before}; {dialect}; {args.rounds} requests per route and side\n")
    print(
        "| route | before: statements, checkouts, median | after: statements, checkouts, median |"
    )
    print("|---|---|---|")
    for path in ROUTES:
        cells = []
        for side in ("before", "after"):
            rows = results[(side, path)]
            ms = statistics.median(r[0] for r in rows)
            cells.append(f"{rows[-1][1]:.0f}, {rows[-1][2]:.0f}, {ms:.2f} ms")
        print(f"| `{path}` | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
