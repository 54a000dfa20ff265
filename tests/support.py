"""Helpers the tests share: servers on loopback, the sandbox's controls, and the
person's side of a FranceConnect sign-in."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server

from connectors.http.tls import shared_ssl_context
from portal.config import Settings, load_settings


def http_client() -> httpx.Client:
    """A fresh HTTP client (cookies of its own) with the process's one SSL context:
    ``httpx.Client()`` alone loads the CA bundle again, some 20 ms each time."""
    return httpx.Client(timeout=10, verify=shared_ssl_context())


class ServerThread:
    """A WSGI app served on 127.0.0.1 on a free port, in a daemon thread."""

    #: How often the serving loop looks whether ``stop`` was called: ``stop`` waits for
    #: it, and the default half second was spent at the end of every test with a server.
    POLL_INTERVAL_S = 0.05

    def __init__(self, app: object) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)  # type: ignore[arg-type]
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": self.POLL_INTERVAL_S},
            daemon=True,
        )

    def start(self) -> ServerThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


#: A complete production configuration (no real credentials): what an operator sets.
PRODUCTION = {
    "PORTAL_ENV": "production",
    "PORTAL_SECRET_KEY": "k" * 48,
    "PORTAL_BASE_URL": "https://compte.example.fr/",
    "PORTAL_FC_ISSUER": "https://fcp-low.sbx.dev-franceconnect.fr/api/v2",
    "PORTAL_FC_CLIENT_ID": "a-client-id",
    "PORTAL_FC_CLIENT_SECRET": "a-client-secret",
    "PORTAL_AGENT_ISSUER": "https://auth.agentconnect.gouv.fr/api/v2",
    "PORTAL_AGENT_CLIENT_ID": "an-agent-client-id",
    "PORTAL_AGENT_CLIENT_SECRET": "an-agent-client-secret",
    "PORTAL_DATABASE_URL": "postgresql://portal@db/portal",
    "PORTAL_ENCRYPTION_KEYS": "tmtwPrbwQLQ9PQi2Qq1SJmfcMKEXGp0DCkmOQ5ITcnw=",
    # One process on one server: what these tests build (several need PORTAL_REDIS_URL).
    "PORTAL_SINGLE_PROCESS": "1",
}


def wait_until_serving(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 30
) -> None:
    """Until ``url``'s ``/healthz`` answers; the server's log if it stopped instead."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url + "/healthz", timeout=2)
            return
        except httpx.TransportError:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """``gunicorn -w N --threads T 'portal:create_app()'`` as the Procfile runs it, from
    the repository's root (so ``gunicorn.conf.py`` is read), on a free loopback port."""

    def __init__(self, workers: int, env: dict[str, str], log: Path, threads: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.log = log.open("w")
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "portal:create_app()",
            ],
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("gunicorn stopped:\n" + self.log_path.read_text())
            try:
                httpx.get(self.url + "/healthz", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("gunicorn did not start")

    def stop(self) -> None:
        self.quit()
        self.wait_stopped()

    def quit(self) -> None:
        """SIGQUIT, gunicorn's quick shutdown: a test does not wait for open connections
        (``quit`` several servers, then wait for each: they stop side by side)."""
        self.process.send_signal(signal.SIGQUIT)

    def wait_stopped(self) -> None:
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def redis_or_skip(url: str) -> Any:
    """A client of the Redis at ``url``, or the test skipped, saying none answers there."""
    import pytest

    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(url, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {url}: nothing to share the state through")
    return client


@contextmanager
def redis_keyspace(url: str, label: str) -> Iterator[str]:
    """A key prefix of its own in the Redis at ``url`` (the test is skipped without one),
    and every key under it deleted afterwards: never a FLUSHDB of a shared database."""
    client = redis_or_skip(url)
    prefix = f"test-{label}-{uuid.uuid4().hex[:8]}:"
    try:
        yield prefix
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()


@dataclass
class Sandbox:
    """Handle on the running sandbox and its test controls."""

    url: str
    http: httpx.Client = field(default_factory=http_client)

    @property
    def issuer(self) -> str:
        return self.url + "/api/v2"

    @property
    def pc_issuer(self) -> str:
        """The ProConnect look-alike (agents)."""
        return self.url + "/proconnect/api/v2"

    def pc_behave(self, **behaviour: object) -> None:
        r = self.http.post(self.url + "/_admin/proconnect/behaviour", json=behaviour)
        r.raise_for_status()

    def pc_advance_clock(self, seconds: float) -> None:
        r = self.http.post(self.url + "/_admin/proconnect/clock", json={"advance_s": seconds})
        r.raise_for_status()

    def behave(self, **behaviour: object) -> None:
        r = self.http.post(self.url + "/_admin/idp/behaviour", json=behaviour)
        r.raise_for_status()

    def rotate_keys(self) -> None:
        self.http.post(self.url + "/_admin/idp/rotate-keys").raise_for_status()

    def reset(self) -> None:
        self.http.post(self.url + "/_admin/reset").raise_for_status()

    def fault(self, kind: str, tenant: str, mode: str | None = None, **options: object) -> None:
        """Make one sandbox back-end misbehave (``hang``, ``reset``, ``error500``,
        ``rate_limit``, ``malformed``, ``wrong_schema``; ``latency_ms`` adds delay;
        ``writes_only=True`` leaves reads working)."""
        r = self.http.post(
            f"{self.url}/_admin/faults/{kind}/{tenant}", json={"mode": mode, **options}
        )
        r.raise_for_status()


def empty_tables(app: Flask) -> None:
    from portal.extensions import db

    with app.app_context():
        db.session.remove()
        # Residents first: their journal and mandates are append-only while they exist
        # (triggers); desks next, for the same reason (their journal).
        db.session.execute(db.metadata.tables["citizen"].delete())
        db.session.execute(db.metadata.tables["desk_visit"].delete())
        db.session.execute(db.metadata.tables["assisted_session"].delete())
        db.session.execute(db.metadata.tables["desk"].delete())
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        db.session.remove()
        # Give the pool's connections back now rather than when the app is collected:
        # the reads run side by side, each app may hold several, and PostgreSQL has a
        # limit (a portal in use reconnects on its next request).
        db.engine.dispose()


def count_calls(app: Flask) -> Counter[str]:
    """Count, per instance, each call this portal makes to a back-end from now on (through
    the connectors' outcome hook, which measurement also uses)."""
    calls: Counter[str] = Counter()
    for http in app.extensions["connectors"]._http.values():
        hook = http._on_outcome

        def counted(slug: str, ok: bool, duration_s: float = 0.0, hook: object = hook) -> None:
            calls[slug] += 1
            if callable(hook):
                hook(slug, ok, duration_s)

        http._on_outcome = counted
    return calls


def portal_settings(database_url: str, issuer: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "fc_issuer": issuer,
        # The sandbox's ProConnect look-alike sits beside its FranceConnect one.
        "agent_issuer": issuer.removesuffix("/api/v2") + "/proconnect/api/v2",
        "base_url": "http://localhost",
        "testing": True,
        "signin_rate_limit": "1000 per minute",
        # No back-ends unless a test asks for them (see ``sandbox_connectors_file``).
        "connectors_file": "",
        "demo_links_file": "",
    }
    values.update(overrides)
    return load_settings({}, **values)


PROJECT_ROOT = Path(__file__).resolve().parent.parent
SANDBOX_DEV_URL = "http://127.0.0.1:5001"


def sandbox_connectors_file(sandbox_url: str, target: Path) -> str:
    """The repository's ``connectors.toml`` with its sandbox URLs pointed at ``sandbox_url``:
    the instances tests use are exactly the ones ``make run`` uses."""
    text = (PROJECT_ROOT / "connectors.toml").read_text(encoding="utf-8")
    target.write_text(text.replace(SANDBOX_DEV_URL, sandbox_url), encoding="utf-8")
    return str(target)


#: Mérignac annexes the browser tests' crowded portal adds to the sandbox's services.
CROWDED_ANNEXES = 4


def crowded_connectors_file(sandbox_url: str, target: Path, annexes: int) -> str:
    """The sandbox's instances plus ``annexes`` more Mérignac libraries under names of
    their own (``bib-merignac-annexe-N``, same back-end): a territory with more services
    than the dashboard has requests for."""
    sandbox_connectors_file(sandbox_url, target)
    extra = "".join(
        f"""
[instances.{slug}]
type = "library-standard"
title = "Médiathèque de Mérignac, annexe {n}"
communes = ["Mérignac"]
base_url = "{sandbox_url}/library/merignac"

[instances.{slug}.credentials]
api_key = "sandbox-library-merignac-key"
"""
        for n, slug in enumerate(annexe_slugs(annexes), start=1)
    )
    with target.open("a", encoding="utf-8") as file:
        file.write(extra)
    return str(target)


def annexe_slugs(count: int) -> list[str]:
    return [f"bib-merignac-annexe-{n}" for n in range(1, count + 1)]


def link_annexes(app: Flask, count: int, patron: str = "mer-p-0417") -> None:
    """Link the one signed-in resident's Mérignac card at every annexe too (arranged in
    the database: the linking journey is tested on its own)."""
    from portal.extensions import db
    from portal.models import Citizen, ServiceLink

    with app.app_context():
        [citizen] = db.session.execute(db.select(Citizen)).scalars().all()
        for slug in annexe_slugs(count):
            db.session.add(
                ServiceLink(citizen_id=citizen.id, instance_slug=slug, external_id=patron)
            )
        db.session.commit()


DEMO_LINKS_FILE = str(PROJECT_ROOT / "demo-links.toml")


# -- signing in through the sandbox, over HTTP ---------------------------------------------

TRANSACTION_RE = re.compile(r'name="transaction_id"\s+value="([^"]+)"')


@dataclass
class Authorize:
    """The browser's trip to the provider: what the portal sent and what came back."""

    request_url: str
    params: dict[str, str]
    callback_path: str = ""


def start_sign_in(client: FlaskClient, path: str = "/auth/franceconnect/login") -> Authorize:
    """Click the sign-in button (``path``: the residents' or the agents'): where the
    portal sends the browser, and with what."""
    r = client.get(path)
    assert r.status_code == 302, r.status_code
    url = r.headers["Location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    return Authorize(request_url=url, params=params)


def decide_at_provider(auth: Authorize, choice: dict[str, str], *, cancel: bool = False) -> str:
    """Play the person on the sandbox provider's page (FranceConnect's or ProConnect's,
    whose chooser works the same): send ``choice``, or cancel; return the callback
    path+query."""
    with http_client() as http:
        page = http.get(auth.request_url)
        assert page.status_code == 200, page.text
        match = TRANSACTION_RE.search(page.text)
        assert match, "the provider's page has no transaction"
        form = {"transaction_id": match.group(1), **({"cancel": "1"} if cancel else choice)}
        decision = http.post(
            auth.request_url.split("/authorize")[0] + "/authorize/decision", data=form
        )
    assert decision.status_code in (302, 303), decision.text
    location = urlsplit(decision.headers["Location"])
    return f"{location.path}?{location.query}"


def choose_identity(auth: Authorize, identity: str | None, *, cancel: bool = False) -> str:
    """Play the resident on FranceConnect's page; return the callback path+query."""
    return decide_at_provider(auth, {"identity": identity or ""}, cancel=cancel)


def sign_in(client: FlaskClient, identity: str = "marie-therese"):
    auth = start_sign_in(client)
    callback = choose_identity(auth, identity)
    return client.get(callback)


# -- an agent signing in through the sandbox's ProConnect, over HTTP ----------------------


def start_agent_sign_in(client: FlaskClient) -> Authorize:
    return start_sign_in(client, "/agents/proconnect/login")


def choose_agent(auth: Authorize, agent: str | None, *, cancel: bool = False, acr: str = "") -> str:
    """Play the agent on ProConnect's page (``acr``: another level than the agent's own);
    return the callback path+query."""
    return decide_at_provider(auth, {"agent": agent or "", "acr": acr}, cancel=cancel)


def agent_sign_in(client: FlaskClient, agent: str = "claire"):
    return client.get(choose_agent(start_agent_sign_in(client), agent))


def provision_agent(app: Flask, agent: str, *, client_id: str = "compte-territorial-agents-dev"):
    """``flask agents add`` for one of the sandbox's test agents."""
    from sandbox.idp.agents import SANDBOX_IDP_ID, agent_sub

    result = app.test_cli_runner().invoke(
        args=[
            "agents",
            "add",
            "--idp-id",
            SANDBOX_IDP_ID,
            "--sub",
            agent_sub(client_id, agent),
            "--name",
            agent.title(),
        ]
    )
    assert result.exit_code == 0, result.output
    return result


def as_answered(page: str, address_part: str) -> str:
    """What a page says, but for the address it is at (``address_part`` replaced), its
    CSRF tokens, which carry their second of signing, and the seconds the session has
    left, which tick between two requests: two "not found" pages compared this way must
    be equal, so that neither tells anything the other does not."""
    page = page.replace(address_part, "X")
    page = re.sub(r'data-remaining-s="\d+"', 'data-remaining-s=""', page)
    return re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value=""', page)


def open_test_mandate(
    app: Flask,
    *,
    citizen_id: int,
    desk_id: int,
    agent_id: int,
    scopes: list[str],
    duration: str = "1m",
    channel: str = "desk",
) -> str:
    """A mandate opened directly (not through a desk visit), for tests of what comes
    after; returns its reference. The visit itself is tested in test_mandate_visit."""
    import secrets

    from portal.extensions import db
    from portal.mandates import open_mandate
    from portal.mandates.legal import CURRENT
    from portal.models import Agent, Desk

    with app.app_context():
        mandate = open_mandate(
            visit_id=secrets.token_hex(16),
            desk=db.session.get_one(Desk, desk_id),
            agent=db.session.get_one(Agent, agent_id),
            citizen_id=citizen_id,
            scopes=scopes,
            duration=duration,
            channel=channel,
            legal_version=CURRENT,
        )
        db.session.commit()
        return mandate.reference
