"""Shared fixtures: the sandbox over real HTTP, a database (SQLite, or PostgreSQL when
``TEST_DATABASE_URL`` is set), and portals built from test settings.

The sandbox runs in a thread on a real loopback port, so every call the portal makes to
"FranceConnect" goes through its real HTTP client, exactly as in production.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

import sandbox
from portal import create_app
from portal.config import load_settings, normalise_database_url
from sandbox.mail import MailSink
from sandbox.messages import outbox_of
from tests.support import (
    DEMO_LINKS_FILE,
    Sandbox,
    ServerThread,
    empty_tables,
    portal_settings,
    sandbox_connectors_file,
)

# The loopback servers' access logs would drown every failure report.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[ServerThread]:
    server = ServerThread(sandbox.create_app({"TESTING": True})).start()
    yield server
    server.stop()


@pytest.fixture
def fc_sandbox(sandbox_server: ServerThread) -> Iterator[Sandbox]:
    box = Sandbox(sandbox_server.url)
    box.reset()
    yield box
    box.reset()
    box.http.close()


@pytest.fixture
def sandbox_mail(sandbox_server: ServerThread) -> Iterator[MailSink]:
    """The sandbox's SMTP sink on a free port, keeping what it receives where the shared
    sandbox lists it (``<sandbox_server.url>/sandbox/mail.json``); emptied afterwards.
    Point the portal at it with ``mail_url=sandbox_mail.url``."""
    app = sandbox_server.server.app
    sink = MailSink(outbox_of(app), port=0).start()
    yield sink
    sink.stop()
    outbox_of(app).clear()


# -- database ------------------------------------------------------------------------------


def _test_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return normalise_database_url(url)
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "portal.sqlite3")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated from empty with the real migrations, once per run."""
    url = _test_database_url(tmp_path_factory)
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    engine.dispose()
    app = create_app(load_settings({}, database_url=url, testing=True))
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
    return url


# -- the portal ----------------------------------------------------------------------------


@pytest.fixture
def app(database_url: str, fc_sandbox: Sandbox) -> Iterator[Flask]:
    app = create_app(portal_settings(database_url, fc_sandbox.issuer))
    yield app
    empty_tables(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def connectors_file(sandbox_server: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> str:
    return sandbox_connectors_file(
        sandbox_server.url, tmp_path_factory.mktemp("conf") / "connectors.toml"
    )


#: ``services_app``'s deadlines: room for healthy back-ends on a busy runner.
SERVICES_DEADLINES = {"card_deadline_s": 2.0, "page_deadline_s": 3.0}


@pytest.fixture
def services_app(
    database_url: str, fc_sandbox: Sandbox, connectors_file: str, request: pytest.FixtureRequest
) -> Iterator[Flask]:
    """A portal with the sandbox's back-ends and its demo accounts linked at sign-in.

    A test that waits for a back-end left hanging marks itself
    ``@pytest.mark.deadlines(card_deadline_s=…, page_deadline_s=…)``: shorter deadlines,
    the same behaviour, without seconds spent waiting for them to pass; one that
    measures the per-back-end limit, ``@pytest.mark.backend_concurrency(n)``."""
    deadlines = dict(SERVICES_DEADLINES)
    marker = request.node.get_closest_marker("deadlines")
    if marker is not None:
        unknown = set(marker.kwargs) - set(deadlines)
        assert not unknown, f"deadlines: unknown settings {sorted(unknown)}"
        deadlines.update(marker.kwargs)
    limit = request.node.get_closest_marker("backend_concurrency")
    if limit is not None:
        deadlines["backend_concurrency"] = limit.args[0]
    app = create_app(
        portal_settings(
            database_url,
            fc_sandbox.issuer,
            connectors_file=connectors_file,
            demo_links_file=DEMO_LINKS_FILE,
            **deadlines,
        )
    )
    yield app
    app.extensions["connectors"].close()
    empty_tables(app)


@pytest.fixture
def services_client(services_app: Flask) -> FlaskClient:
    return services_app.test_client()
