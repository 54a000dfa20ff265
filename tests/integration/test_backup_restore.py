"""The restore drill of docs/operations.md, at every CI run: a database migrated from
empty and holding a resident's rows (links with an encrypted secret, the journal, a
mandate, a session, job runs), dumped with ``pg_dump -Fc``, restored with ``pg_restore``
into a new database; every row comes back, the portal reads them (the resident's data
export, the secret decrypted with the same keys, not with others), the append-only
triggers hold, new rows get new ids, and ``flask db upgrade`` has nothing to do.

PostgreSQL only (``TEST_DATABASE_URL``), with Debian's ``postgresql-client`` of the
server's major version (``pg_dump`` refuses a newer server).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import make_url

from portal import create_app
from portal.account.data import export_data
from portal.crypto import secret_box
from portal.extensions import db
from portal.mandates import open_mandate
from portal.mandates.legal import CURRENT
from portal.models import (
    Agent,
    AuthSession,
    Citizen,
    Desk,
    JobRun,
    JournalEntry,
    ServiceLink,
)
from tests.support import PROJECT_ROOT, portal_settings

KEYS = "tmtwPrbwQLQ9PQi2Qq1SJmfcMKEXGp0DCkmOQ5ITcnw="
OTHER_KEY = "bXkgb3RoZXIga2V5IHRoYXQgaXMgMzIgYnl0ZXMhISE="
PIN = "pin-0417-secret"
ISSUER = "http://127.0.0.1:1/api/v2"

BASE_URL = os.environ.get("TEST_DATABASE_URL", "")
pytestmark = pytest.mark.skipif(
    not BASE_URL.startswith(("postgres://", "postgresql")),
    reason="the restore drill needs PostgreSQL (TEST_DATABASE_URL)",
)


def client_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not found: install Debian's postgresql-client")
    return path


def major(version_text: str) -> int:
    match = re.search(r"(\d+)(?:\.\d+)?", version_text)
    assert match, version_text
    return int(match.group(1))


def libpq(url: sa.URL) -> str:
    """What pg_dump and pg_restore take: a libpq URL, without SQLAlchemy's driver."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def databases() -> Iterator[tuple[sa.URL, sa.URL]]:
    base = make_url(BASE_URL).set(drivername="postgresql+psycopg")
    suffix = uuid.uuid4().hex[:8]
    source = base.set(database=f"{base.database}_drill_src_{suffix}")
    target = base.set(database=f"{base.database}_drill_dst_{suffix}")
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        server = conn.execute(sa.text("SHOW server_version")).scalar_one()
        for url in (source, target):
            conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    for tool in ("pg_dump", "pg_restore"):
        version = subprocess.run(  # noqa: S603
            [client_tool(tool), "--version"], capture_output=True, text=True, check=True
        ).stdout
        if major(version) < major(server):
            pytest.skip(f"{tool} {version.strip()} is older than the server ({server})")
    try:
        yield source, target
    finally:
        with admin.connect() as conn:
            for url in (source, target):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        admin.dispose()


def portal(url: sa.URL, keys: str = KEYS) -> Flask:
    return create_app(
        portal_settings(url.render_as_string(hide_password=False), ISSUER, encryption_keys=keys)
    )


def seed(app: Flask) -> int:
    """One resident's rows in the main tables; the resident's id."""
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
        citizen = Citizen(
            sub="d" * 64, given_name="Lou", family_name="DRILL", email="lou@example.org"
        )
        db.session.add(citizen)
        db.session.flush()
        db.session.add_all(
            [
                ServiceLink(
                    citizen_id=citizen.id,
                    instance_slug="bib-merignac",
                    external_id="mer-p-0417",
                    display_name="Carte de Lou",
                    account_number="0417",
                    secret_ciphertext=secret_box().encrypt(PIN),
                ),
                ServiceLink(
                    citizen_id=citizen.id, instance_slug="cantine-bordeaux", external_id="fam-9"
                ),
                JournalEntry(
                    citizen_id=citizen.id,
                    actor_kind="citizen",
                    action="renew",
                    connector_instance="bib-merignac",
                    outcome="success",
                    code="renewed",
                    params={"title": "Le Petit Prince"},
                ),
                AuthSession(id=uuid.uuid4().hex * 2, citizen_id=citizen.id, id_token="a.b.c"),
                JobRun(name="purge-expired", period="2026-12-04T10:00Z", state="succeeded"),
                JobRun(name="measure-rollup", period="2026-12-03", state="failed", attempts=4),
            ]
        )
        agent = Agent(idp_id="idp", sub="agent-drill", name="Claire")
        desk = Desk(name="Maison France services", siret="21330063500017")
        db.session.add_all([agent, desk])
        db.session.flush()
        open_mandate(
            visit_id=uuid.uuid4().hex,
            desk=desk,
            agent=agent,
            citizen_id=citizen.id,
            scopes=["bib-merignac"],
            duration="1m",
            channel="desk",
            legal_version=CURRENT,
        )
        db.session.commit()
        citizen_id = citizen.id
        db.engine.dispose()
    return citizen_id


def every_row(url: sa.URL) -> dict[str, list[tuple[object, ...]]]:
    """Each table's rows, in a stable order."""
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        rows = {
            name: sorted(
                (tuple(row) for row in conn.execute(sa.select(table))), key=lambda r: repr(r)
            )
            for name, table in meta.tables.items()
        }
    engine.dispose()
    return rows


def flask_cli(url: sa.URL, *args: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "PORTAL_DATABASE_URL": url.render_as_string(hide_password=False),
        "PORTAL_ENCRYPTION_KEYS": KEYS,
        "PORTAL_CONNECTORS_FILE": "",
        "PORTAL_DEMO_LINKS_FILE": "",
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "flask", "--app", "portal", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_a_dump_restored_into_a_new_database_is_the_same_portal(
    databases: tuple[sa.URL, sa.URL], tmp_path: Path
) -> None:
    source, target = databases
    citizen_id = seed(portal(source))
    dump = tmp_path / "portal.dump"
    subprocess.run(  # noqa: S603
        [client_tool("pg_dump"), "-Fc", "--no-owner", "-f", str(dump), libpq(source)],
        check=True,
    )
    subprocess.run(  # noqa: S603
        [
            client_tool("pg_restore"),
            "--no-owner",
            "--exit-on-error",
            "-d",
            libpq(target),
            str(dump),
        ],
        check=True,
    )

    before = every_row(source)
    after = every_row(target)
    assert after == before
    for table in ("citizen", "service_link", "journal_entry", "mandate", "auth_session"):
        assert after[table], f"{table} was seeded"

    app = portal(target)
    with app.app_context():
        citizen = db.session.get_one(Citizen, citizen_id)
        exported = export_data(citizen)
        assert exported["links"] and exported["activity"] and exported["mandates"]
        link = db.session.execute(
            sa.select(ServiceLink).where(ServiceLink.instance_slug == "bib-merignac")
        ).scalar_one()
        ciphertext = link.secret_ciphertext or ""
        assert secret_box().decrypt(ciphertext) == PIN
        # The sequences came back too: a new resident does not take a restored id.
        newcomer = Citizen(sub="n" * 64)
        db.session.add(newcomer)
        db.session.commit()
        assert newcomer.id > citizen_id
        # And the journal is still append-only (its triggers were restored after the rows).
        with pytest.raises(sa.exc.DBAPIError):
            db.session.execute(sa.text("UPDATE journal_entry SET detail = 'rewritten'"))
        db.session.rollback()
        db.engine.dispose()

    # The encryption keys are part of the backup: without them, the secrets are lost.
    with portal(target, keys=OTHER_KEY).app_context():
        with pytest.raises(ValueError, match="cannot be decrypted"):
            secret_box().decrypt(ciphertext)
        db.engine.dispose()

    output = flask_cli(target, "db", "upgrade")
    assert "Running upgrade" not in output, output
    assert "No new upgrade operations detected" in flask_cli(target, "db", "check")
