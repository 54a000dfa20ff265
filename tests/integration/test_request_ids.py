"""One id per request, over HTTP: the portal answers with it, the back-ends receive it,
and with ``PORTAL_LOG_FORMAT=json`` every log line is one JSON object carrying it,
without a resident's e-mail, ``sub`` or a token.

The portal is gunicorn started with the ``Procfile``'s own command line (its logger
class writes the access lines). Its connectors reach the sandbox's back-ends through a
recorder of this test's own, on a loopback port of its own, which notes the
``X-Request-Id`` of every request on its way to the real sandbox: nothing in the
sandbox or in the portal's HTTP layer is replaced.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask

from portal import create_app
from portal.extensions import db
from portal.models import Citizen
from tests.integration.test_logs import BIN, procfile_web_command
from tests.support import (
    DEMO_LINKS_FILE,
    PROJECT_ROOT,
    Authorize,
    Sandbox,
    ServerThread,
    choose_identity,
    empty_tables,
    free_port,
    portal_settings,
    sandbox_connectors_file,
    wait_until_serving,
)

HX = {"HX-Request": "true"}
HEX32 = re.compile(r"[0-9a-f]{32}")
EMAIL = "marie-therese.dubois@example.org"


@dataclass
class Recorder:
    """WSGI middleware in front of the sandbox: (path, X-Request-Id) of every request."""

    app: Any
    seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self.lock:
            self.seen.append((environ["PATH_INFO"], environ.get("HTTP_X_REQUEST_ID", "")))
        return self.app(environ, start_response)

    def take(self) -> list[tuple[str, str]]:
        with self.lock:
            seen, self.seen = self.seen, []
        return seen


@dataclass
class Portal:
    url: str
    log: Path
    recorder: Recorder
    sandbox: Sandbox
    #: Ids of requests whose back-end calls a test saw, for the log test to find.
    request_ids: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def portal(
    database_url: str, sandbox_server: ServerThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Portal]:
    tmp = tmp_path_factory.mktemp("request-ids")
    recorder = Recorder(sandbox_server.server.app)
    in_front = ServerThread(recorder).start()
    sandbox = Sandbox(sandbox_server.url)
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(PROJECT_ROOT),
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_FC_ISSUER": sandbox.issuer,
        "PORTAL_AGENT_ISSUER": sandbox.pc_issuer,
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
        "PORTAL_CONNECTORS_FILE": sandbox_connectors_file(in_front.url, tmp / "connectors.toml"),
        "PORTAL_DEMO_LINKS_FILE": DEMO_LINKS_FILE,
        "PORTAL_PROBE_INTERVAL_S": "0",
        "PORTAL_MEASURE_ENABLED": "false",
        "PORTAL_TRUSTED_PROXIES": "1",
        "PORTAL_LOG_FORMAT": "json",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp / "portal.log"
    with log.open("wb") as out:
        server = subprocess.Popen(  # noqa: S603
            procfile_web_command(port), cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(url, server, log)
            sandbox.reset()
            yield Portal(url, log, recorder, sandbox)
        finally:
            server.terminate()
            server.wait(10)
            in_front.stop()
            sandbox.reset()
            sandbox.http.close()
            empty_tables(create_app(portal_settings(database_url, sandbox.issuer)))


def signed_in(portal: Portal) -> httpx.Client:
    browser = httpx.Client(timeout=15)
    start = browser.get(portal.url + "/auth/franceconnect/login")
    auth = Authorize(start.headers["Location"], {})
    assert browser.get(portal.url + choose_identity(auth, "marie-therese")).status_code == 303
    return browser


def test_every_answer_has_an_id_and_a_proxys_well_formed_one_is_kept(portal: Portal) -> None:
    first = httpx.get(portal.url + "/healthz").headers["X-Request-Id"]
    second = httpx.get(portal.url + "/healthz").headers["X-Request-Id"]
    assert HEX32.fullmatch(first) and HEX32.fullmatch(second) and first != second
    # nginx's $request_id, sent by the (trusted) proxy: the portal's logs share it.
    kept = httpx.get(portal.url + "/no/such/page", headers={"X-Request-Id": "a1b2c3d4e5f60718"})
    assert kept.status_code == 404
    assert kept.headers["X-Request-Id"] == "a1b2c3d4e5f60718"
    for forged in ("short", "a b c d e f g h i", "x" * 200, "abc\"def'ghi<jk>"):
        answer = httpx.get(portal.url + "/healthz", headers={"X-Request-Id": forged})
        assert HEX32.fullmatch(answer.headers["X-Request-Id"]), forged


def test_the_back_ends_receive_the_id_the_portal_answered_with(portal: Portal) -> None:
    browser = signed_in(portal)
    try:
        portal.recorder.take()
        answer = browser.get(
            portal.url + "/cards?slug=bib-merignac&slug=cantine-bordeaux&slug=bib-bordeaux",
            headers=HX,
        )
        assert answer.status_code == 200
        request_id = answer.headers["X-Request-Id"]
        seen = portal.recorder.take()
    finally:
        browser.close()
    # Three back-ends read side by side by worker threads (Koha's card in several calls,
    # themselves side by side): every one of them carried the request's id.
    paths = {path for path, _ in seen}
    assert any(p.startswith("/library/merignac/") for p in paths), paths
    assert any(p.startswith("/canteen/") for p in paths), paths
    assert any(p.startswith("/koha/") for p in paths), paths
    assert {rid for _, rid in seen} == {request_id}
    portal.request_ids.append(request_id)


def test_json_log_lines_parse_and_carry_no_personal_data(portal: Portal, database_url) -> None:
    time.sleep(0.3)  # gunicorn writes the access line once the answer is sent
    lines = [line for line in portal.log.read_text(encoding="utf-8").splitlines() if line]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    access = [e for e in entries if e["logger"] == "gunicorn.access"]
    assert access, "no access line"
    assert all({"method", "path", "status", "duration_ms", "request_id"} <= set(e) for e in access)
    # The sign-in callback carries a code and a state in its query: never logged.
    callbacks = [e for e in access if e["path"] == "/auth/franceconnect/callback"]
    assert callbacks and all(e["status"] == 303 for e in callbacks)
    for request_id in portal.request_ids:
        mine = [e for e in entries if e.get("request_id") == request_id]
        assert {e["logger"] for e in mine} >= {"gunicorn.access", "connectors.http"}
        calls = [e for e in mine if "backend" in e]
        assert calls and all(e["path"] == "/cards" and e["method"] == "GET" for e in calls)
        assert any("{patron_id}" in e["backend"]["route"] for e in calls)  # templates
    app: Flask = create_app(portal_settings(database_url, portal.sandbox.issuer))
    with app.app_context():
        subs = [c.sub for c in db.session.execute(db.select(Citizen)).scalars()]
        db.engine.dispose()
    assert subs, "the resident signed in"
    text = "\n".join(lines)
    # Nor the patron's card number (mer-p-0417), which the back-ends' URLs carry.
    for secret in (EMAIL, *subs, "mer-p-0417", "code=", "state=", "Bearer ", "slug="):
        assert secret not in text, secret
