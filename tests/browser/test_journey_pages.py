"""Every page the resident journeys add, checked as the site's other pages are: axe-core
(WCAG 2.1 A and AA, and best practices) in French and in English, a visible focus at
every keyboard stop, no sideways scrolling at 320 px, no console error, and a first
visit within the page budget (50 KB transferred, 10 requests).

The pages are reached as a resident reaches them, in one walk per identity: Éloïse, with
nothing linked, goes through the linking pages; Marie-Thérèse unlinks (the question
only), cancels a hold (the question), renews a loan, opens next month's meals, renews
her housing application, looks at her to-do list, calendar, activity and data, pays
one invoice, has another refused and a third left pending, then deletes her account.
Locators use ids and addresses, not words, so the same walk runs in both languages.
The walks run once per language, and every check is made at each stop (they used to
be six walks, one per check and language).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from portal.extensions import db
from portal.models import Citizen
from sandbox.idp.identities import IDENTITIES_BY_KEY
from tests.browser.support import (
    FC_BUTTON,
    LANGUAGES,
    SERVICES_BUDGET,
    ConsoleWatch,
    LivePortal,
    PageLoad,
    budget_problems,
    clear_browser_cache,
    focus_is_visible,
    identity_button_name,
    keyboard_stops,
    measure_page_load,
    narrow_problems,
    page_problems,
)

pytestmark = pytest.mark.browser

#: A context's browser language, which the portal follows when nothing else was chosen.
BROWSER_LOCALES = {"fr": "fr-FR", "en": "en-GB"}
UNPAID = ("fac-4521-2611", "fac-4521-2612")
#: Pages the test serves again through a route (the hand-off without its Refresh): the
#: browser's own figures for them are the route's, so only the budget applies.
SERVED_BY_THE_TEST = {"payment-handoff": "/go"}


@pytest.fixture
def portal(services_portal: LivePortal) -> LivePortal:
    """In this module the portal reads the sandbox's back-ends."""
    return services_portal


#: What a check does with each page: ``show`` is the one navigation (or swap) that
#: brings it, to run (and measure) as the check likes; the page is then ready to check.
Check = Callable[[Page, str, Callable[[], None]], None]

#: The pages each walk shows, in order.
JOURNEY_PAGES = (
    "link-index",
    "link-library",
    "link-library-with-errors",
    "link-canteen",
    "link-housing",
    "link-water",
    "link-blocked",
    "water-page",
    "water-reading-refused",
    "water-reading-declared",
    "water-cap-request",
    "water-cap-refused",
    "water-cap-sent",
    "unlink-question",
    "hold-cancel-question",
    "library-after-renewal",
    "meals-next-month",
    "housing-renewal-question",
    "housing-renewed",
    "todo",
    "calendar",
    "calendar-link-made",
    "activity",
    "my-data",
    "payment-handoff",
    "payment-paid",
    "payment-refused",
    "payment-abandoned",
    "payment-pending",
    "payment-refused-already-paid",
    "delete-question",
    "account-deleted",
)


@dataclass
class Walk:
    page: Page
    portal: LivePortal
    check: Check
    visited: list[str]
    #: Console errors met on the pages, but a page's own error status (a form refused
    #: with 422 is logged as a failed load).
    errors: list[str]

    def __post_init__(self) -> None:
        self.console = ConsoleWatch(self.page)

    def visit(
        self,
        key: str,
        show: Callable[[], None],
        prepare: Callable[[], None] | None = None,
        status: int = 200,
    ) -> None:
        """``prepare`` brings the browser next to the page (not measured), ``show``
        brings the page itself."""
        self.visited.append(key)
        if prepare is not None:
            prepare()
            # What the prepared page loads (its icon last) is not the next page's weight.
            self.page.wait_for_load_state("networkidle")
        self.console.clear()
        self.check(self.page, key, show)
        self.errors.extend(f"{key}: {e}" for e in self.console.unexpected(self.page, status))

    def goto(self, key: str, path: str) -> None:
        def show() -> None:
            response = self.page.goto(path)
            assert response is not None and response.status == 200, (path, response)
            expect(self.page.locator("main h1")).to_be_visible()

        self.visit(key, show)


def sign_in(page: Page, identity: str) -> None:
    """Sign in by clicking, whatever the language (ids and roles, not words)."""
    page.goto("/auth/login")
    page.locator(FC_BUTTON).click()
    page.get_by_role("button", name=identity_button_name(identity), exact=True).click()
    page.wait_for_url(re.compile(r"/$"))
    page.wait_for_load_state("networkidle")


def block_linking(portal: LivePortal, identity: str) -> None:
    """As after the resident's limit of proofs: the form says until when it is blocked."""
    from portal.config import current_settings
    from portal.linking.attempts import Attempts

    with portal.app.app_context():
        settings = current_settings()
        [citizen_id] = [
            c.id
            for c in db.session.execute(db.select(Citizen)).scalars()
            if c.given_name == IDENTITIES_BY_KEY[identity].given_name
        ]
        attempts = Attempts(settings, {"citizen": str(citizen_id)})
        while not attempts.blocked():
            attempts.begin()


def eloise_walk(walk: Walk) -> None:
    page = walk.page
    sign_in(page, "eloise")
    walk.goto("link-index", "/link")
    walk.goto("link-library", "/link/bib-merignac")

    def refused_form() -> None:
        page.locator("#card_number").fill("1234")
        page.locator("main form button[type=submit]").click()
        expect(page.locator(".error-summary")).to_be_focused()

    walk.visit(
        "link-library-with-errors",
        refused_form,
        prepare=lambda: page.goto("/link/bib-merignac"),
        status=422,
    )
    walk.goto("link-canteen", "/link/cantine-bordeaux")
    walk.goto("link-housing", "/link/logement-metropole")
    walk.goto("link-water", "/link/eau-pessac")
    block_linking(walk.portal, "eloise")
    walk.goto("link-blocked", "/link/bib-merignac")


WATER = "/services/eau-bordeaux"
WATER_ALERT = "alr-bdx-4521-1"
REPAIR_INVOICE = {
    "name": "facture-plombier.pdf",
    "mimeType": "application/pdf",
    "buffer": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
}
NOT_A_PDF = {"name": "photo.pdf", "mimeType": "application/pdf", "buffer": b"\x89PNG\r\n\x1a\n"}


def water_walk(walk: Walk) -> None:
    """Marie-Thérèse's water: the page and its chart, a reading refused on its field then
    declared, and the cap request after her leak (refused, then sent)."""
    page = walk.page
    sign_in(page, "marie-therese")
    walk.goto("water-page", WATER)

    def refused_reading() -> None:
        page.locator("#index_m3").fill("1")
        page.locator("#reading button[type=submit]").click()
        expect(page.locator("#reading .error-summary")).to_be_focused()

    walk.visit("water-reading-refused", refused_reading, prepare=lambda: page.goto(WATER))

    def declared_reading() -> None:
        last = page.locator("#reading tbody tr").first.locator("td").first.inner_text()
        index = int("".join(ch for ch in last.split("m")[0] if ch in "0123456789")) + 4
        page.locator("#index_m3").fill(str(index))
        page.locator("#reading button[type=submit]").click()
        expect(page.locator("#reading [role=status]")).to_be_focused()

    walk.visit("water-reading-declared", declared_reading, prepare=lambda: page.goto(WATER))
    cap = f"{WATER}/alerts/{WATER_ALERT}/cap"
    walk.goto("water-cap-request", cap)

    def filled(document: dict) -> Callable[[], None]:
        def fill() -> None:
            page.goto(cap)
            page.locator("#repaired_on").fill(date.today().isoformat())
            page.locator("#repair_location").fill("Canalisation enterrée devant la maison")
            page.locator("#repair_invoice").set_input_files(document)

        return fill

    def refused_cap() -> None:
        page.locator("main form button[type=submit]").click()
        expect(page.locator(".error-summary")).to_be_focused()

    walk.visit("water-cap-refused", refused_cap, prepare=filled(NOT_A_PDF), status=422)

    def sent_cap() -> None:
        page.locator("main form button[type=submit]").click()
        page.wait_for_url(re.compile(r"/services/eau-bordeaux#alerts$"))
        expect(page.locator("main .notice--success").first).to_be_visible()

    walk.visit("water-cap-sent", sent_cap, prepare=filled(REPAIR_INVOICE))


def marie_walk(walk: Walk) -> None:
    page, portal = walk.page, walk.portal
    sign_in(page, "marie-therese")
    walk.goto("unlink-question", "/link/bib-merignac/remove")

    page.goto("/services/bib-merignac")
    cancel = page.locator("#holds a[href$='/cancel']").first.get_attribute("href")
    assert cancel, "Marie-Thérèse has a hold she can cancel"
    walk.goto("hold-cancel-question", cancel)

    def renewed_in_place() -> None:
        page.locator("#loans tbody button").first.click()
        expect(page.locator("#loans [role=status]")).to_be_focused()

    walk.visit(
        "library-after-renewal",
        renewed_in_place,
        prepare=lambda: page.goto("/services/bib-merignac"),
    )
    page.goto("/services/cantine-bordeaux")
    next_month = page.locator("a[rel=next]").get_attribute("href")
    assert next_month
    walk.goto("meals-next-month", next_month)
    walk.goto("housing-renewal-question", "/services/logement-metropole/renew")

    def renewed_application() -> None:
        page.locator("#confirm button[type=submit]").click()
        expect(page.locator("#application [role=status]")).to_be_visible()

    walk.visit(
        "housing-renewed",
        renewed_application,
        prepare=lambda: page.goto("/services/logement-metropole/renew"),
    )
    walk.goto("todo", "/account/todo")
    walk.goto("calendar", "/account/calendar")

    def calendar_link_made() -> None:
        page.locator("form[action$='/account/calendar'] button").click()
        expect(page.locator("#feed-url")).to_be_visible()

    walk.visit(
        "calendar-link-made", calendar_link_made, prepare=lambda: page.goto("/account/calendar")
    )
    walk.goto("activity", "/account/activity")
    walk.goto("my-data", "/account/data")

    # Paying. The hand-off page leaves for the provider's by itself at once (a Refresh
    # header): it is shown again by its address, with that header held back, to be checked.
    def hold_the_handoff(route: Route) -> None:
        response = route.fetch()
        headers = {k: v for k, v in response.headers.items() if k.lower() != "refresh"}
        route.fulfill(response=response, headers=headers)

    page.goto("/services/cantine-bordeaux")
    page.locator(f"form[action$='/{UNPAID[0]}/pay'] button").click()
    page.wait_for_url(re.compile(r"/payfip/pay/"))
    payment_id = page.url.rstrip("/").rsplit("/", 1)[-1]

    def handoff() -> None:
        page.goto(f"/payments/{payment_id}/go")
        expect(page.locator("main a.button[href*='/payfip/pay/']")).to_be_visible()

    page.route("**/payments/*/go", hold_the_handoff)
    try:
        walk.visit("payment-handoff", handoff)
        assert page.url.endswith("/go"), page.url
    finally:
        page.unroute("**/payments/*/go")
    page.locator("main a.button[href*='/payfip/pay/']").click()

    def paid() -> None:
        page.locator("button[value=pay]").click()
        page.wait_for_url(re.compile(r"/payments/return\?"))
        expect(page.locator("main .notice--success")).to_be_visible()

    walk.visit("payment-paid", paid)

    def to_payfip() -> None:
        page.goto("/services/cantine-bordeaux")
        page.locator(f"form[action$='/{UNPAID[1]}/pay'] button").click()
        page.wait_for_url(re.compile(r"/payfip/pay/"))

    def pay_then(choice: str, notice: str) -> Callable[[], None]:
        def show() -> None:
            page.locator(f"button[value={choice}]").click()
            page.wait_for_url(re.compile(r"/payments/return\?"))
            expect(page.locator(f"main {notice}")).to_be_visible()

        return show

    walk.visit("payment-refused", pay_then("refuse", ".notice--error"), prepare=to_payfip)
    walk.visit("payment-abandoned", pay_then("abandon", ".notice--warning"), prepare=to_payfip)

    # Back before paying: the provider has not said anything yet.
    to_payfip()
    payment_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    walk.goto("payment-pending", f"/payments/return?payment_id={payment_id}")

    # Meanwhile the other parent pays that invoice: the provider refuses the resident's
    # payment, and the portal says the invoice is paid all the same.
    sandbox = walk.portal.sandbox
    other = sandbox.http.post(
        f"{sandbox.url}/canteen/bordeaux/v1/families/fam-4521/invoices/{UNPAID[1]}/payments",
        headers={"X-Api-Key": "sandbox-canteen-bordeaux-key", "Idempotency-Key": "parent-2"},
        json={"return_url": "http://127.0.0.1:9/r", "notify_url": "http://127.0.0.1:9/n"},
    )
    paid = sandbox.http.post(other.json()["redirect_url"], data={"action": "pay"})
    assert paid.status_code == 303, paid.text

    def refused_already_paid() -> None:
        page.get_by_role("link", name="Revenir au site de la collectivité").click()
        page.wait_for_url(re.compile(r"/payments/return\?"))
        expect(page.locator("main .notice--error")).to_be_visible()

    walk.visit(
        "payment-refused-already-paid",
        refused_already_paid,
        prepare=lambda: page.goto(f"{sandbox.url}/payfip/pay/{payment_id}"),
    )

    walk.goto("delete-question", "/account/delete")

    def ready_to_delete() -> None:
        page.goto("/account/delete")
        page.locator("#confirm").check()

    def deleted() -> None:
        page.locator("form[action$='/account/delete'] button").click()
        expect(page.locator("main h1")).to_be_visible()
        assert "/account/delete" not in page.url, page.url
        # Signed out: the header offers to sign in, not out.
        expect(page.locator("header form[action$='/auth/logout']")).to_have_count(0)

    walk.visit("account-deleted", deleted, prepare=ready_to_delete)
    assert portal.sandbox  # the walk used the sandbox's back-ends throughout


WALKS = (eloise_walk, water_walk, marie_walk)


def walk_all(
    new_context: Callable[..., BrowserContext],
    portal: LivePortal,
    lang: str,
    check: Check,
    **options: object,
) -> list[str]:
    """Show every journey page in ``lang``, one fresh browser context per identity, and
    check each; the console errors met on the way."""
    visited: list[str] = []
    errors: list[str] = []
    for walk in WALKS:
        page = new_context(locale=BROWSER_LOCALES[lang], **options).new_page()
        walk(Walk(page, portal, check, visited, errors))
    assert tuple(visited) == JOURNEY_PAGES, visited
    return errors


def assert_none(problems: dict[str, list[str]], errors: list[str]) -> None:
    assert not problems, "\n".join(f"{k}:\n" + "\n".join(v) for k, v in problems.items())
    assert not errors, "console errors:\n" + "\n".join(errors)


# -- the checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_journey_page_passes_every_check_in_each_language(
    new_context: Callable[..., BrowserContext],
    portal: LivePortal,
    lang: str,
    page_budget_report: dict[str, PageLoad],
    record_property: Callable[[str, object], None],
) -> None:
    """One walk per language, every check at each stop: the page's first visit within
    the budget (its one navigation measured, from an empty cache), axe-core, a visible
    focus at every keyboard stop (in French: the stops are the same in English), and no
    sideways scrolling once the window is narrowed to 320 px."""
    problems: dict[str, list[str]] = {}

    def check(page: Page, key: str, show: Callable[[], None]) -> None:
        found: list[str] = []
        clear_browser_cache(page)
        load = measure_page_load(page, show, SERVICES_BUDGET)
        name = key if lang == "fr" else f"{key}-{lang}"
        page_budget_report[name] = load
        record_property(f"{name}_requests", load.requests)
        record_property(f"{name}_transferred_bytes", load.bytes)
        figures = load.figures(name, origin=portal.url)
        print(figures)
        over = budget_problems(page, load)
        if key in SERVED_BY_THE_TEST:
            held = SERVED_BY_THE_TEST[key]
            over = [
                f
                for f in over
                if not (f.split(": ", 1)[0].endswith(held) and "Performance API" in f)
            ]
        if over:
            found += [*over, figures]
        found += page_problems(page, portal, lang)
        if lang == "fr":
            stops = keyboard_stops(page, max_presses=400)
            if not stops:
                found.append(f"nothing on {page.url} takes the keyboard focus")
            invisible = [s for s in stops if not focus_is_visible(s)]
            if invisible:
                found.append(f"focus is invisible: {invisible}")
        found += narrow_problems(page)
        if found:
            problems[f"{key} ({page.url})"] = found

    assert_none(problems, walk_all(new_context, portal, lang, check))
