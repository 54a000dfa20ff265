"""Fixtures for the browser tests: the sandbox and the portal on real loopback ports, and
Debian's chromium driven by Playwright, with a fresh context (cookies, cache) per test.

The portal must know its own address (``base_url``) before it is built, because that is
where FranceConnect sends the person back; so its server binds a free port first and
receives the app afterwards.

Three portals share the sandbox and the database: ``live_portal`` has no back-end
(sign-in and information pages), ``live_services_portal`` reads the sandbox's back-ends
and links its demo accounts at sign-in (the dashboard and service pages), and
``live_crowded_portal`` has Mérignac annexes besides (more services than the dashboard
has card requests for). A test module whose pages need the back-ends overrides
``portal`` with ``services_portal`` or ``crowded_portal``; ``new_context``, ``page``
and ``console`` then open their pages on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

import sandbox
from portal import create_app
from portal.config import PROJECT_ROOT
from portal.extensions import limiter
from sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, default_clients
from tests.browser.support import (
    CHROMIUM_ARGS,
    CHROMIUM_PATH,
    ConsoleWatch,
    LivePortal,
    PageLoad,
    write_budget_report,
)
from tests.support import (
    CROWDED_ANNEXES,
    DEMO_LINKS_FILE,
    Sandbox,
    ServerThread,
    crowded_connectors_file,
    empty_tables,
    portal_settings,
    sandbox_connectors_file,
)

#: Long enough for a slow CI runner, short enough that a broken page fails quickly.
DEFAULT_TIMEOUT_MS = 10_000


class LateBoundApp:
    """A WSGI app whose target is set once the server's port is known."""

    def __init__(self) -> None:
        self.app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable:
        if self.app is None:
            raise RuntimeError("the portal is not built yet")
        return self.app(environ, start_response)


@pytest.fixture(scope="session")
def live_sandbox() -> Iterator[Sandbox]:
    """The FranceConnect-like sandbox, configured explicitly so that ``SANDBOX_*``
    variables in a developer's environment cannot change what the browser sees."""
    app = sandbox.create_app(
        {
            "TESTING": True,
            "SANDBOX_ISSUER": None,
            "SANDBOX_CLIENTS": default_clients(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
            "SANDBOX_LOOPBACK_ANY_PORT": True,
            "SANDBOX_CODE_TTL_S": 30,
            "SANDBOX_SIGNING_ALG": "ES256",
            "SANDBOX_ADMIN": True,
        }
    )
    server = ServerThread(app).start()
    box = Sandbox(server.url)
    yield box
    box.http.close()
    server.stop()


def _serve_portal(
    database_url: str, live_sandbox: Sandbox, **settings: object
) -> Iterator[LivePortal]:
    """Build a portal whose ``base_url`` is the address it is served at, and serve it."""
    wsgi = LateBoundApp()
    server = ServerThread(wsgi)
    try:
        wsgi.app = create_app(
            portal_settings(database_url, live_sandbox.issuer, base_url=server.url, **settings)
        )
    except BaseException:
        server.server.server_close()
        raise
    server.start()
    yield LivePortal(url=server.url, app=wsgi.app, sandbox=live_sandbox)
    server.stop()
    wsgi.app.extensions["connectors"].close()


def _clean(live: LivePortal) -> Iterator[LivePortal]:
    live.sandbox.reset()
    yield live
    empty_tables(live.app)
    live.sandbox.reset()


@pytest.fixture(scope="session")
def live_portal(database_url: str, live_sandbox: Sandbox) -> Iterator[LivePortal]:
    """The portal on ``http://127.0.0.1:PORT``, its own ``base_url``, without back-ends."""
    yield from _serve_portal(database_url, live_sandbox)


@pytest.fixture
def portal(live_portal: LivePortal) -> Iterator[LivePortal]:
    """The live portal, with empty tables and a sandbox in its default behaviour."""
    yield from _clean(live_portal)


@pytest.fixture(scope="session")
def live_services_portal(
    database_url: str, live_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivePortal]:
    """A live portal with the sandbox's back-ends and its demo accounts linked at sign-in,
    with the deadlines of the integration tests' ``services_app``."""
    connectors = sandbox_connectors_file(
        live_sandbox.url, tmp_path_factory.mktemp("browser-conf") / "connectors.toml"
    )
    yield from _serve_portal(
        database_url,
        live_sandbox,
        connectors_file=connectors,
        demo_links_file=DEMO_LINKS_FILE,
        card_deadline_s=2.0,
        page_deadline_s=3.0,
    )


@pytest.fixture(scope="session")
def live_crowded_portal(
    database_url: str, live_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivePortal]:
    """Like ``live_services_portal``, with ``CROWDED_ANNEXES`` more Mérignac libraries
    on Mérignac's back-end: more services than the dashboard has card requests for."""
    connectors = crowded_connectors_file(
        live_sandbox.url,
        tmp_path_factory.mktemp("crowded-conf") / "connectors.toml",
        CROWDED_ANNEXES,
    )
    yield from _serve_portal(
        database_url,
        live_sandbox,
        connectors_file=connectors,
        demo_links_file=DEMO_LINKS_FILE,
        card_deadline_s=2.0,
        page_deadline_s=3.0,
    )


def _ready(live: LivePortal) -> Iterator[LivePortal]:
    """A portal with back-ends as a test expects it: empty tables (no links, no last-good
    snapshots), no rate limit reached (every browser comes from 127.0.0.1, so failed
    proofs would add up to the per-address limit), every breaker closed (one opened by
    an earlier test would keep a healthy back-end's card "unavailable") and every
    back-end of the sandbox healthy."""
    live.app.extensions["connectors"].reset_breakers()
    limiter.reset()
    yield from _clean(live)


@pytest.fixture
def services_portal(live_services_portal: LivePortal) -> Iterator[LivePortal]:
    yield from _ready(live_services_portal)


@pytest.fixture
def crowded_portal(live_crowded_portal: LivePortal) -> Iterator[LivePortal]:
    yield from _ready(live_crowded_portal)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def new_context(browser: Browser, portal: LivePortal) -> Iterator[Callable[..., BrowserContext]]:
    """Open a browser context (French unless told otherwise); all are closed after the test,
    before the tables are emptied."""
    contexts: list[BrowserContext] = []

    def open_context(**options: Any) -> BrowserContext:
        options.setdefault("locale", "fr-FR")
        options.setdefault("base_url", portal.url)
        context = browser.new_context(**options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    """A page in a fresh French context."""
    return new_context().new_page()


@pytest.fixture
def console(page: Page) -> ConsoleWatch:
    """Console errors and uncaught exceptions of ``page`` (a CSP violation is one)."""
    return ConsoleWatch(page)


@pytest.fixture(scope="session")
def page_budget_report() -> Iterator[dict[str, PageLoad]]:
    """Page loads measured during the run, written as a table at the end of it."""
    loads: dict[str, PageLoad] = {}
    yield loads
    if loads:
        write_budget_report(PROJECT_ROOT / "test-results" / "page-budget.txt", loads)
