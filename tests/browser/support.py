"""What the browser tests share: how to launch chromium, the person's moves (signing in by
clicking, switching language), the pages every check visits, an axe-core run, the console
watch, and the measure of what one page load transfers."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import axe_playwright_python
from flask import Flask
from flask_babel import force_locale, gettext
from playwright.sync_api import ConsoleMessage, Error, Locator, Page, Request, expect

from portal.i18n import LANGUAGE_NAMES
from sandbox.idp.identities import get_identity
from tests.support import Sandbox

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

FC_LINK_NAME = "S'identifier avec FranceConnect"
#: The FranceConnect button whatever the language (its wording is translated).
FC_BUTTON = "a.fc-button"
SIGN_OUT_NAME = "Se déconnecter"
LOGIN_URL = re.compile(r"/auth/login(\?.*)?$")


@dataclass(frozen=True)
class LivePortal:
    url: str
    app: Flask
    sandbox: Sandbox

    def translate(self, lang: str, message: str) -> str:
        """``message`` (French, as in the templates) as the portal shows it in ``lang``."""
        with self.app.test_request_context(), force_locale(lang):
            return gettext(message)


# -- the person's moves --------------------------------------------------------------------


def greeted_name(identity_key: str) -> str:
    """How the home page names a person: their first given name, then the name they use
    (FranceConnect's usage name, else the family name), exactly as FranceConnect sends it."""
    identity = get_identity(identity_key)
    assert identity is not None, identity_key
    first = identity.given_name.split()[0]
    return f"{first} {identity.preferred_username or identity.family_name}"


def expected_greeting(identity_key: str) -> str:
    return f"Bonjour {greeted_name(identity_key)}"


def identity_button_name(identity_key: str) -> str:
    identity = get_identity(identity_key)
    assert identity is not None, identity_key
    return f"Se connecter en tant que {identity.display_name}"


def choose_identity_by_clicking(page: Page, identity_key: str) -> None:
    """On the sandbox's chooser (always in French), pick a test identity and wait for the
    portal's home, in whatever language the person chose there."""
    page.get_by_role("button", name=identity_button_name(identity_key), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(greeted_name(identity_key))


def sign_in_by_clicking(page: Page, identity_key: str = "marie-therese") -> None:
    page.goto("/auth/login")
    page.locator(FC_BUTTON).click()
    choose_identity_by_clicking(page, identity_key)


def switch_language(page: Page, lang: str) -> None:
    """Follow the language switch in the header, as a person would."""
    page.get_by_role("navigation").get_by_role(
        "link", name=LANGUAGE_NAMES[lang], exact=True
    ).click()
    page.wait_for_url(re.compile(rf"[?&]lang={lang}$"), wait_until="load")


# -- the pages every check visits ------------------------------------------------------------


@dataclass(frozen=True)
class PortalPage:
    """A page as a person reaches it: ``prepare`` brings the browser next to it, ``load``
    is the one navigation that shows it (and the one a page budget measures)."""

    key: str
    path: str
    prepare: Callable[[Page, str], None]
    load: Callable[[Page, str], None]
    #: HTTP status of the page itself.
    status: int = 200

    def open(self, page: Page, lang: str) -> None:
        self.prepare(page, lang)
        self.load(page, lang)

    def __str__(self) -> str:
        return self.key


@contextmanager
def showing_page(page: Page, status: int = 200) -> Iterator[None]:
    """Expect the navigation made in the block to end on a page with this HTTP status
    (after any redirects)."""
    with page.expect_response(
        lambda r: (
            r.request.is_navigation_request()
            and r.frame == page.main_frame
            and not 300 <= r.status < 400
        )
    ) as shown:
        yield
    assert shown.value.status == status, f"{shown.value.url}: {shown.value.status}"


def _page_at(key: str, path: str, shows: str, status: int = 200) -> PortalPage:
    """A page reached by its address; in English through the header's language switch."""

    def prepare(page: Page, lang: str) -> None:
        if lang != "fr":
            page.goto(path)

    def load(page: Page, lang: str) -> None:
        with showing_page(page, status):
            if lang == "fr":
                page.goto(path)
            else:
                switch_language(page, lang)
        expect(page.locator(shows).first).to_be_visible()

    return PortalPage(key, path, prepare, load, status)


def _home() -> PortalPage:
    def prepare(page: Page, lang: str) -> None:
        sign_in_by_clicking(page)

    def load(page: Page, lang: str) -> None:
        with showing_page(page):
            if lang == "fr":
                page.goto("/")
            else:
                switch_language(page, lang)
        expect(page.get_by_role("heading", level=1)).to_contain_text(greeted_name("marie-therese"))

    return PortalPage("home", "/", prepare, load)


def _sign_in_after_cancelling() -> PortalPage:
    """Back on the sign-in page with an error message, after cancelling at FranceConnect."""

    def prepare(page: Page, lang: str) -> None:
        page.goto("/auth/login")
        if lang != "fr":
            switch_language(page, lang)
        page.locator(FC_BUTTON).click()
        expect(page.get_by_role("button", name="Annuler")).to_be_visible()

    def load(page: Page, lang: str) -> None:
        with showing_page(page):
            page.get_by_role("button", name="Annuler").click()
            page.wait_for_url(LOGIN_URL, wait_until="load")
        expect(page.locator(".notice--error")).to_be_visible()

    return PortalPage("sign-in-cancelled", "/auth/login", prepare, load)


PAGES: tuple[PortalPage, ...] = (
    _page_at("sign-in", "/auth/login", ".fc-button"),
    _home(),
    _page_at("accessibility", "/accessibilite", "main h1"),
    _page_at("legal", "/mentions-legales", "main h1"),
    _page_at("privacy", "/donnees-personnelles", "main h1"),
    _page_at("not-found", "/page-qui-n-existe-pas", "main h1", status=404),
    _sign_in_after_cancelling(),
    _page_at("logged-out", "/auth/franceconnect/logged-out", "main h1"),
)
LANGUAGES = ("fr", "en")


# -- console ---------------------------------------------------------------------------------


class ConsoleWatch:
    """Collects console errors and uncaught exceptions; a CSP violation logs an error."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            self.errors.append(f"{message.text} ({where})")

    def _on_page_error(self, error: Error) -> None:
        self.errors.append(f"uncaught {error.name}: {error.message}")

    def clear(self) -> None:
        self.errors.clear()

    def unexpected(self, page: Page, status: int = 200) -> list[str]:
        """The errors, except chromium's note that the page itself came with the error
        status it was meant to have (a 404 page is logged as a failed load)."""
        expected = f"Failed to load resource: the server responded with a status of {status} "
        return [
            e
            for e in self.errors
            if not (status >= 400 and e.startswith(expected) and e.endswith(f"({page.url})"))
        ]


# -- keyboard ----------------------------------------------------------------------------------

_FOCUSED = """() => {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const style = getComputedStyle(element);
  const name = (element.innerText || element.value || "").trim().split("\\n")[0];
  const box = element.getBoundingClientRect();
  return {
    element: `${element.tagName.toLowerCase()} "${name}"`,
    href: element.getAttribute("href"),
    within: element.parentElement?.closest("[id]")?.id ?? null,
    outline: style.outlineStyle,
    width: parseFloat(style.outlineWidth),
    onScreen: box.bottom > 0 && box.right > 0
      && box.top < window.innerHeight && box.left < window.innerWidth,
  };
}"""


def focused_element(page: Page) -> dict[str, Any] | None:
    """What has the keyboard focus (None: nothing but the page): its tag and text, its
    ``href``, the ``id`` of the closest element around it that has one, its outline, and
    whether it is on screen."""
    return page.evaluate(_FOCUSED)


def focus_is_visible(focused: dict[str, Any]) -> bool:
    return focused["outline"] != "none" and focused["width"] >= 2


def keyboard_stops(page: Page, max_presses: int = 50) -> list[dict[str, Any]]:
    """Tab from the top of the page to past its last stop; what had the focus at each."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    stops = []
    for _ in range(max_presses):
        page.keyboard.press("Tab")
        focused = focused_element(page)
        if focused is None:  # past the last stop: the whole page was toured
            break
        stops.append(focused)
    return stops


def tab_to(page: Page, target: Locator, max_presses: int = 40) -> None:
    """Press Tab until ``target`` has the focus."""
    for _ in range(max_presses):
        page.keyboard.press("Tab")
        if target.evaluate("(element) => element === document.activeElement"):
            return
    raise AssertionError(f"{target} never got the focus in {max_presses} presses of Tab")


# -- reflow ------------------------------------------------------------------------------------

#: 320 CSS pixels wide: a 1280 px window zoomed to 400 % (WCAG 1.4.10).
NARROW = {"width": 320, "height": 256}

_MEASURE = """() => {
  const width = window.innerWidth;
  const wider = [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > width + 0.5)
    .map((e) => `${e.tagName.toLowerCase()}${e.className ? "." + e.className : ""}`
      + ` (right edge ${Math.round(e.getBoundingClientRect().right)} px)`);
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width, wider};
}"""


def sideways_scrolling(page: Page) -> str:
    """Why the page scrolls sideways, or "" if it does not."""
    measure = page.evaluate(_MEASURE)
    if measure["scrollWidth"] <= measure["innerWidth"]:
        return ""
    return (
        f"{page.url} scrolls sideways at {measure['innerWidth']} px: content is "
        f"{measure['scrollWidth']} px wide; too wide: {measure['wider']}"
    )


# -- axe-core ----------------------------------------------------------------------------------

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]

_RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {runOnly: {type: "tag", values: tags}});
  return results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    helpUrl: v.helpUrl,
    targets: v.nodes.map((n) => n.target.join(" ")),
    summary: v.nodes.length ? v.nodes[0].failureSummary : "",
  }));
}"""


@functools.cache
def axe_source() -> str:
    path = Path(axe_playwright_python.__file__).parent / "axe.min.js"
    return path.read_text(encoding="utf-8")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core on the page. It is injected with ``evaluate``, which the page's Content
    Security Policy does not apply to (a script tag would be refused)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    return page.evaluate(_RUN_AXE, AXE_TAGS)


def format_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        lines.extend(f"    at {target}" for target in v["targets"])
        if v["summary"]:
            lines.extend(f"    {line}" for line in v["summary"].splitlines())
    return "\n".join(lines)


def page_problems(page: Page, portal: LivePortal, lang: str) -> list[str]:
    """What is wrong with the page in ``lang``: a language it does not declare, a skip
    link in another language, and what axe-core finds."""
    problems = []
    declared = page.locator("html").get_attribute("lang")
    if declared != lang:
        problems.append(f'<html lang="{declared}">, not "{lang}"')
    skip = page.locator(".skip-link").inner_text()
    if skip != portal.translate(lang, "Aller au contenu"):
        problems.append(f"the skip link says {skip!r}")
    violations = axe_violations(page)
    if violations:
        problems.append(format_violations(violations))
    return problems


def assert_no_axe_violations(page: Page) -> None:
    violations = axe_violations(page)
    assert not violations, f"axe-core violations on {page.url}:\n" + format_violations(violations)


# -- what a page load transfers ------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """What one page may cost a person on a first visit."""

    bytes: int
    requests: int

    def __str__(self) -> str:
        return f"{self.bytes // 1024} KB / {self.requests}"


#: A page of the site.
PAGE_BUDGET = Budget(40 * 1024, 6)
#: A page that shows a resident's services (the dashboard also loads one card per service),
#: and the status page.
SERVICES_BUDGET = Budget(50 * 1024, 10)
COMPRESSED_ENCODINGS = {"gzip", "br", "deflate", "zstd"}
#: Flask-Compress leaves smaller responses alone (``COMPRESS_MIN_SIZE``).
COMPRESS_MIN_SIZE = 256
#: What the portal sends as text, and so compressed when big enough.
TEXT_RESOURCES = {"document", "stylesheet", "script", "xhr", "fetch"}


@dataclass(frozen=True)
class Transfer:
    """One request and what came back over the wire."""

    method: str
    url: str
    resource_type: str
    status: int
    headers_bytes: int
    body_bytes: int
    #: ``Content-Encoding`` of the response, and the body's size once decoded.
    encoding: str
    decoded_bytes: int | None

    @property
    def bytes(self) -> int:
        return self.headers_bytes + self.body_bytes

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status < 400


@dataclass
class PageLoad:
    """Every request made while one page was loaded, redirects that led to it included."""

    transfers: list[Transfer] = field(default_factory=list)
    budget: Budget = PAGE_BUDGET

    @property
    def page_transfers(self) -> list[Transfer]:
        """The page itself and what it loads; the redirects leading to it are not its weight."""
        return [t for t in self.transfers if not t.is_redirect]

    @property
    def redirects(self) -> list[Transfer]:
        return [t for t in self.transfers if t.is_redirect]

    @property
    def requests(self) -> int:
        return len(self.page_transfers)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.page_transfers)

    def figures(self, title: str, origin: str = "") -> str:
        """The totals, then each request: what a failure message shows."""
        return (
            f"{title}: {self.requests} requests, {self.bytes:,} bytes "
            f"({self.bytes / 1024:.1f} KB)\n" + self.describe(origin)
        )

    def describe(self, origin: str = "") -> str:
        return "\n".join(
            f"  {t.status} {t.resource_type:<10} {t.method} {_short(t.url, origin)}: "
            f"{t.bytes:,} B"
            + (f" ({t.encoding}, {t.decoded_bytes:,} B decoded)" if t.encoding else "")
            + (" [redirect, not counted]" if t.is_redirect else "")
            for t in self.transfers
        )


def _short(url: str, origin: str) -> str:
    url = url.removeprefix(origin)
    path, _, query = url.partition("?")
    return f"{path}?{query[:40]}…" if len(query) > 40 else url


def _decoded_length(request: Request) -> int | None:
    """The decoded body's length of a finished request, None for a redirect."""
    response = request.response()
    if response is None or 300 <= response.status < 400:
        return None
    return len(response.body())


def _transfer(request: Request, decoded_lengths: dict[int, int | None]) -> Transfer:
    response = request.response()
    if response is None:  # failed: nothing came back
        return Transfer(request.method, request.url, request.resource_type, 0, 0, 0, "", None)
    response.finished()
    sizes = request.sizes()
    # Read when the request finished: once the page has navigated away, the browser no
    # longer has the body of a response it showed before.
    if id(request) in decoded_lengths:
        decoded = decoded_lengths[id(request)]
    else:
        decoded = _decoded_length(request)
    body = sizes["responseBodySize"]
    encoding = response.headers.get("content-encoding", "")
    if body < 0 and not encoding and decoded is not None:
        # Chromium now and then reports a negative size for a small response fetched
        # beside the page (the icon); sent uncompressed, its body is its decoded length.
        body = decoded
    return Transfer(
        method=request.method,
        url=request.url,
        resource_type=request.resource_type,
        status=response.status,
        headers_bytes=sizes["responseHeadersSize"],
        body_bytes=body,
        encoding=encoding,
        decoded_bytes=decoded,
    )


def measure_page_load(
    page: Page, load: Callable[[], None], budget: Budget = PAGE_BUDGET
) -> PageLoad:
    """Record every request made by ``load`` (and until the network is idle) with the bytes
    transferred for it: response headers plus the body as sent, compressed or not."""
    requests: list[Request] = []
    decoded_lengths: dict[int, int | None] = {}

    def record(request: Request) -> None:
        requests.append(request)

    def finished(request: Request) -> None:
        decoded_lengths[id(request)] = _decoded_length(request)

    page.on("request", record)
    page.on("requestfinished", finished)
    try:
        load()
        page.wait_for_load_state("networkidle")
    finally:
        page.remove_listener("request", record)
        page.remove_listener("requestfinished", finished)
    return PageLoad([_transfer(r, decoded_lengths) for r in requests], budget)


def encoded_body_sizes(page: Page) -> dict[str, int]:
    """What the page's own Performance API says each body weighed on the wire."""
    return page.evaluate(
        """() => Object.fromEntries(
          [...performance.getEntriesByType("navigation"),
           ...performance.getEntriesByType("resource")].map((e) => [e.name, e.encodedBodySize]))"""
    )


def budget_problems(page: Page, load: PageLoad) -> list[str]:
    """What is wrong with a page load just measured on ``page``: over its budget, or a
    measure that is not what was sent."""
    problems = []
    # What is measured is what was sent: successful text responses bigger than the
    # threshold went compressed, and the body counted is the compressed one. (Flask-Compress
    # leaves error responses alone: the 404 page is counted as sent, uncompressed.)
    for t in load.page_transfers:
        compressible = (
            200 <= t.status < 300
            and t.resource_type in TEXT_RESOURCES
            and (t.decoded_bytes or 0) > COMPRESS_MIN_SIZE
        )
        if compressible and t.encoding not in COMPRESSED_ENCODINGS:
            problems.append(f"{t.url} sent uncompressed")
        elif compressible and not t.body_bytes < (t.decoded_bytes or 0):
            problems.append(f"{t.url}: {t.body_bytes} B compressed, not less than decoded")
    # The browser's Performance API agrees on each body's size on the wire.
    on_the_wire = encoded_body_sizes(page)
    for t in load.page_transfers:
        if t.url in on_the_wire and t.body_bytes != on_the_wire[t.url]:
            problems.append(f"{t.url}: {t.body_bytes} B, the Performance API says {on_the_wire}")
    if load.requests > load.budget.requests:
        problems.append(f"{load.requests} requests, more than {load.budget.requests}")
    if load.bytes > load.budget.bytes:
        problems.append(f"{load.bytes:,} bytes, more than {load.budget.bytes:,}")
    return problems


def clear_browser_cache(page: Page) -> None:
    """Make the next load a first visit: nothing from the cache, everything transferred."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("Network.clearBrowserCache")
    finally:
        cdp.detach()


def write_budget_report(path: Path, loads: dict[str, PageLoad]) -> None:
    rows = [("page", "requests", "transferred", "bytes", "budget", "redirects before")]
    for key, load in loads.items():
        rows.append(
            (
                key,
                str(load.requests),
                f"{load.bytes / 1024:.1f} KB",
                f"{load.bytes:,}",
                str(load.budget),
                str(len(load.redirects)) if load.redirects else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "Page budget: at most so many KB transferred and requests made per page (column",
        f"budget): {PAGE_BUDGET} for the site's pages, {SERVICES_BUDGET} for the dashboard",
        "with its cards, the service pages and the status page.",
        "First visit (empty cache), French, chromium; bytes are response headers plus body",
        "as sent (compressed). Redirects that lead to a page are listed, not counted.",
        "",
    ]
    for i, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(width) if col == 0 else cell.rjust(width)
                for col, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if i == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines.append("")
    for key, load in loads.items():
        lines.append(key)
        lines.append(load.describe(origin=_origin_of(load)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _origin_of(load: PageLoad) -> str:
    pages = load.page_transfers
    if not pages:
        return ""
    match = re.match(r"https?://[^/]+", pages[0].url)
    return match.group(0) if match else ""


def narrow_problems(page: Page) -> list[str]:
    """Sideways scrolling at 320 px, if any; the viewport is put back after."""
    wide = page.viewport_size
    page.set_viewport_size(NARROW)
    try:
        sideways = sideways_scrolling(page)
    finally:
        if wide is not None:
            page.set_viewport_size(wide)
    return [sideways] if sideways else []


def page_checks(
    page: Page,
    portal: LivePortal,
    lang: str,
    show: Callable[[], None],
    *,
    budget: Budget = PAGE_BUDGET,
    reload: bool = False,
    max_presses: int = 80,
) -> list[str]:
    """Every check of one page: ``show`` is its one navigation, measured against
    ``budget``; then axe and the page's own problems, a visible focus at every keyboard
    stop, and no sideways scrolling at 320 px. With ``reload``, the page is reached by
    ``show`` and measured by loading it again (a page at the end of a chain of redirects
    through another site, whose figures the browser does not always give for the last
    one alone)."""
    if reload:
        show()

        def show_again() -> None:
            page.reload()
            expect(page.locator("main h1")).to_be_visible()

        show = show_again
    clear_browser_cache(page)
    load = measure_page_load(page, show, budget)
    found = budget_problems(page, load)
    if found:
        found.append(load.figures(page.url, origin=portal.url))
    found += page_problems(page, portal, lang)
    stops = keyboard_stops(page, max_presses=max_presses)
    if not stops:
        found.append("nothing takes the keyboard focus")
    found += [f"focus is invisible: {s}" for s in stops if not focus_is_visible(s)]
    found += narrow_problems(page)
    return found
