"""The calendar feed's secret token never reaches an access log: gunicorn started with
the ``Procfile``'s own options, and the development server ``make run`` uses."""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from flask import Flask

from portal import create_app
from portal.dashboard.calendar import create_feed
from portal.extensions import db
from portal.logmask import MASK, mask
from portal.models import Citizen
from tests.support import (
    PROJECT_ROOT,
    ServerThread,
    free_port,
    portal_settings,
    wait_until_serving,
)

BIN = Path(sys.executable).parent


def procfile_web_command(port: int) -> list[str]:
    """The ``web`` line of the Procfile, as the platform would run it."""
    for line in (PROJECT_ROOT / "Procfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("web:"):
            command = line.removeprefix("web:").strip()
            command = command.replace("${PORT:-8000}", str(port))
            command = command.replace("${WEB_CONCURRENCY:-2}", "1")
            return shlex.split(command.replace("0.0.0.0", "127.0.0.1", 1))  # noqa: S104
    raise AssertionError("no web process in the Procfile")


def sqlite_portal_with_a_feed(tmp_path: Path, issuer: str) -> tuple[str, str]:
    """A migrated SQLite file holding one resident with a feed; its URL and token."""
    url = "sqlite:///" + str(tmp_path / "portal.sqlite3")
    app: Flask = create_app(portal_settings(url, issuer))
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
        citizen = Citizen(sub="s" * 64, given_name="Lou", family_name="FEED")
        db.session.add(citizen)
        token = create_feed(citizen)
        db.session.commit()
    return url, token


def test_the_feed_token_is_masked_in_gunicorns_access_log(tmp_path: Path, fc_sandbox) -> None:
    url, token = sqlite_portal_with_a_feed(tmp_path, fc_sandbox.issuer)
    port = free_port()
    log_path = tmp_path / "access.log"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(PROJECT_ROOT),
        "PORTAL_DATABASE_URL": url,
        "PORTAL_FC_ISSUER": fc_sandbox.issuer,
        "PORTAL_CONNECTORS_FILE": "",
        "PORTAL_DEMO_LINKS_FILE": "",
        "PORTAL_PROBE_INTERVAL_S": "0",
    }
    command = procfile_web_command(port)
    assert "--logger-class" in command
    with log_path.open("wb") as out:
        server = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out)  # noqa: S603
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_serving(base, server, log_path)
            feed = httpx.get(f"{base}/calendar/{token}.ics", timeout=10)
            assert feed.status_code == 200 and b"BEGIN:VCALENDAR" in feed.content
            wrong = httpx.get(f"{base}/calendar/{'B' * 43}.ics?token={token}", timeout=10)
            assert wrong.status_code == 404
            time.sleep(0.5)  # let the worker flush its line
        finally:
            server.terminate()
            server.wait(timeout=30)
    log = log_path.read_text(encoding="utf-8")
    assert "GET /calendar/" in log, log
    assert token not in log
    assert "B" * 43 not in log
    assert f"/calendar/{MASK}.ics" in log
    assert re.search(r'"GET /calendar/\*\*\*\.ics" 200', log), log


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_the_feed_token_is_masked_in_the_development_servers_log(
    tmp_path: Path, fc_sandbox
) -> None:
    url, token = sqlite_portal_with_a_feed(tmp_path, fc_sandbox.issuer)
    server = ServerThread(create_app(portal_settings(url, fc_sandbox.issuer))).start()
    werkzeug_log = logging.getLogger("werkzeug")
    level, handler = werkzeug_log.level, Lines()
    werkzeug_log.setLevel(logging.INFO)
    werkzeug_log.addHandler(handler)
    try:
        r = httpx.get(f"{server.url}/calendar/{token}.ics", timeout=10)
        assert r.status_code == 200
        time.sleep(0.2)
    finally:
        server.stop()
        werkzeug_log.removeHandler(handler)
        werkzeug_log.setLevel(level)
    lines = handler.lines
    assert any(f"/calendar/{MASK}.ics" in line for line in lines), lines
    assert not any(token in line for line in lines)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GET /calendar/abcDEF_-123.ics HTTP/1.1", "GET /calendar/***.ics HTTP/1.1"),
        ('"GET /calendar/abc" 404', '"GET /calendar/***" 404'),
        ("/calendar/abc.ics?token=xyz&a=1", "/calendar/***.ics?token=***&a=1"),
        ("GET /account/calendar/revoke", "GET /account/calendar/revoke"),
        ("GET /account/calendar.ics", "GET /account/calendar.ics"),
        ("GET /cards?slug=bib", "GET /cards?slug=bib"),
    ],
)
def test_mask_hides_the_feed_token_and_nothing_else(line: str, expected: str) -> None:
    assert mask(line) == expected
