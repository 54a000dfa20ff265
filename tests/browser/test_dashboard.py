"""A resident's dashboard and service pages in a real browser, with the sandbox's
back-ends behind the portal: the shell at once, each card as its service answers (or
fails to), and every page usable with a screen reader, the keyboard alone, no
JavaScript, a narrow screen and a slow connection."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.support import (
    LANGUAGES,
    NARROW,
    SERVICES_BUDGET,
    ConsoleWatch,
    LivePortal,
    PageLoad,
    assert_no_axe_violations,
    budget_problems,
    clear_browser_cache,
    focus_is_visible,
    focused_element,
    keyboard_stops,
    measure_page_load,
    page_problems,
    sideways_scrolling,
    sign_in_by_clicking,
    switch_language,
    tab_to,
)

pytestmark = pytest.mark.browser

UNAVAILABLE = "Ce service est temporairement indisponible."
#: The portal's card deadline (``live_services_portal``), and a little more for the browser.
CARD_DEADLINE_MS = 2_000
CARD_DEADLINE_AND_MARGIN_MS = CARD_DEADLINE_MS + 1_500

#: What the sandbox links at sign-in (demo-links.toml), in the registry's order.
SERVICES = {
    "marie-therese": (
        "bib-bordeaux",
        "bib-merignac",
        "cantine-bordeaux",
        "logement-metropole",
        "eau-bordeaux",
    ),
    "dartagnan": ("bib-pessac", "cantine-bordeaux", "logement-metropole", "eau-bordeaux"),
}
#: One service page per category (the two libraries are two connector types).
SERVICE_PAGES = (
    "/services/bib-merignac",
    "/services/bib-bordeaux",
    "/services/cantine-bordeaux",
    "/services/logement-metropole",
    "/services/eau-bordeaux",
)
CARDS = "#main .cards > li"
ARRIVED = CARDS + "[class*='card--']"


@pytest.fixture
def portal(services_portal: LivePortal) -> LivePortal:
    """In this module the portal reads the sandbox's back-ends."""
    return services_portal


# -- what a person sees ------------------------------------------------------------------


def title_of(portal: LivePortal, slug: str) -> str:
    return portal.app.extensions["connectors"].instances[slug].title


def placeholder_link(page: Page, portal: LivePortal, slug: str) -> Locator:
    """A placeholder's link to its service page, by its accessible name (htmx's loading
    mark, " …", is added to it while the card is on its way)."""
    name = portal.translate("fr", "Voir mes informations") + " – " + title_of(portal, slug)
    return card(page, slug).get_by_role("link", name=re.compile("^" + re.escape(name)))


def announcements(page: Page) -> Locator:
    """The sentences of the dashboard's polite live region."""
    return page.locator("#cards-status p")


def wait_for_cards(page: Page, portal: LivePortal, identity: str = "marie-therese") -> None:
    """Until every placeholder has become a card, each arrival was announced, and nothing
    else the dashboard loads is on its way."""
    slugs = SERVICES[identity]
    expect(page.locator(CARDS)).to_have_count(len(slugs))
    expect(page.locator(ARRIVED)).to_have_count(len(slugs))
    for slug in slugs:
        expect(announcements(page).filter(has_text=title_of(portal, slug))).to_have_count(1)
    page.wait_for_load_state("networkidle")


def open_dashboard(page: Page, portal: LivePortal, lang: str) -> None:
    """Back to Marie-Thérèse's dashboard (through the language switch for another
    language), with every card arrived."""
    if lang == "fr":
        page.goto("/")
    else:
        switch_language(page, lang)
    wait_for_cards(page, portal)


def dashboard_in(page: Page, portal: LivePortal, lang: str) -> None:
    """Marie-Thérèse's dashboard, where signing in leaves her, in ``lang`` (chosen with
    the language switch), with every card arrived."""
    if lang != "fr":
        switch_language(page, lang)
    wait_for_cards(page, portal)


def open_page(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None, path
    assert response.status == 200, f"{path}: HTTP {response.status}"
    expect(page.locator("main h1")).to_be_visible()


def card(page: Page, slug: str) -> Locator:
    return page.locator(f"#card-{slug}")


def state_class(state: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s)card--{state}(\s|$)")


def loan_titles(portal: LivePortal, tenant: str, patron: str) -> list[str]:
    """What the sandbox's library says the patron has on loan."""
    r = portal.sandbox.http.get(
        f"{portal.sandbox.url}/library/{tenant}/v1/patrons/{patron}/loans",
        headers={"X-Api-Key": f"sandbox-library-{tenant}-key"},
    )
    r.raise_for_status()
    return [loan["title"] for loan in r.json()["loans"]]


# -- the dashboard ----------------------------------------------------------------------------


def test_a_resident_sees_the_dashboard_at_once_while_one_service_hangs(
    page: Page, portal: LivePortal, console: ConsoleWatch
) -> None:
    portal.sandbox.fault("library", "pessac", "hang", hang_s=10)
    sign_in_by_clicking(page, "dartagnan")

    # The shell is there while Pessac's library has not answered: one placeholder per
    # service, the hanging one still a plain link to its page.
    expect(page.locator(CARDS)).to_have_count(len(SERVICES["dartagnan"]))
    pessac = card(page, "bib-pessac")
    expect(placeholder_link(page, portal, "bib-pessac")).to_be_visible()

    # The healthy services fill in their cards.
    for slug in ("cantine-bordeaux", "logement-metropole"):
        expect(card(page, slug)).to_have_class(state_class("ok"))
        expect(card(page, slug).locator(".facts")).to_be_visible()
        expect(card(page, slug)).not_to_contain_text(UNAVAILABLE)

    # The hanging one says so within its deadline, and still leads to its page.
    expect(pessac).to_contain_text(UNAVAILABLE, timeout=CARD_DEADLINE_AND_MARGIN_MS)
    expect(pessac).to_have_class(state_class("unavailable"))
    expect(
        pessac.get_by_role("link", name=title_of(portal, "bib-pessac"), exact=True)
    ).to_have_attribute("href", "/services/bib-pessac")

    # A screen reader heard one sentence per card, as each arrived.
    ok = portal.translate("fr", "%(service)s : informations à jour.")
    down = portal.translate("fr", "%(service)s : service temporairement indisponible.")
    for sentence in (
        down % {"service": title_of(portal, "bib-pessac")},
        ok % {"service": title_of(portal, "cantine-bordeaux")},
        ok % {"service": title_of(portal, "logement-metropole")},
    ):
        expect(announcements(page).get_by_text(sentence, exact=True)).to_have_count(1)
    for slug in SERVICES["dartagnan"]:
        expect(announcements(page).filter(has_text=title_of(portal, slug))).to_have_count(1)
    assert not console.errors, "\n".join(console.errors)


def test_a_resident_without_javascript_follows_a_service_link_to_its_page(
    new_context: Callable[..., BrowserContext], portal: LivePortal
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    sign_in_by_clicking(page, "marie-therese")

    # Nothing replaces the placeholders: each service is a link to its page.
    expect(page.locator(CARDS)).to_have_count(len(SERVICES["marie-therese"]))
    expect(page.locator(ARRIVED)).to_have_count(0)
    for slug in SERVICES["marie-therese"]:
        expect(placeholder_link(page, portal, slug)).to_have_attribute("href", f"/services/{slug}")

    placeholder_link(page, portal, "bib-merignac").click()
    expect(page).to_have_url(portal.url + "/services/bib-merignac")
    expect(page.get_by_role("heading", level=1)).to_have_text(title_of(portal, "bib-merignac"))
    loans = page.get_by_role("table")
    for title in loan_titles(portal, "merignac", "mer-p-0417"):
        expect(loans).to_contain_text(title)
    expect(page.locator(".notice")).to_have_count(0)


def test_a_resident_without_javascript_sees_the_last_known_facts_of_each_service(
    new_context: Callable[..., BrowserContext], portal: LivePortal
) -> None:
    # An earlier visit, with JavaScript, read every service (and kept their snapshots).
    earlier = new_context().new_page()
    sign_in_by_clicking(earlier, "marie-therese")
    wait_for_cards(earlier, portal)
    earlier.context.close()

    page = new_context(java_script_enabled=False).new_page()
    sign_in_by_clicking(page, "marie-therese")
    expect(page.locator(ARRIVED)).to_have_count(0)  # no card came: no script ran
    known = page.locator("#main .card-known")
    expect(known).to_have_count(len(SERVICES["marie-therese"]))
    library = card(page, "bib-merignac").locator(".card-known")
    expect(library).to_contain_text("Dernières informations connues, du ")
    expect(library).to_contain_text("prêts en cours")
    expect(library).to_contain_text("Amendes à régler")
    expect(card(page, "cantine-bordeaux").locator(".card-known")).to_contain_text("à payer")
    # Each service's page is still one link away.
    expect(placeholder_link(page, portal, "bib-merignac")).to_have_attribute(
        "href", "/services/bib-merignac"
    )
    switch_language(page, "en")
    expect(card(page, "bib-merignac").locator(".card-known")).to_contain_text(
        "Latest information we have, from "
    )

    # axe needs a script of its own: the same shell, with htmx kept from loading.
    scanned = new_context()
    scanned.route(re.compile(r".*/htmx[^/]*\.js.*"), lambda route: route.abort())
    shell = scanned.new_page()
    sign_in_by_clicking(shell, "marie-therese")
    for lang in LANGUAGES:
        if lang != "fr":
            switch_language(shell, lang)
        expect(shell.locator("#main .card-known")).to_have_count(len(SERVICES["marie-therese"]))
        expect(shell.locator(ARRIVED)).to_have_count(0)
        assert_no_axe_violations(shell)


# -- keyboard ---------------------------------------------------------------------------------


def test_a_resident_tabs_to_each_card_and_sees_where_the_focus_is(
    page: Page, portal: LivePortal
) -> None:
    sign_in_by_clicking(page, "marie-therese")
    wait_for_cards(page, portal)
    slugs = SERVICES["marie-therese"]
    cards = [f"card-{slug}" for slug in slugs]

    # From the top of the page, each card's one stop is its title link, in order.
    stops = keyboard_stops(page)
    in_cards = [(stop["within"], stop["href"]) for stop in stops if stop["within"] in cards]
    assert in_cards == [(f"card-{slug}", f"/services/{slug}") for slug in slugs], stops
    # Wherever the focus goes, it shows, and on screen.
    invisible = [stop for stop in stops if not (focus_is_visible(stop) and stop["onScreen"])]
    assert not invisible, f"focus is invisible on {page.url}: {invisible}"


def test_the_focus_stays_on_a_service_whose_card_arrives_while_a_resident_is_on_it(
    page: Page, portal: LivePortal
) -> None:
    portal.sandbox.fault("library", "pessac", "hang", hang_s=10)
    sign_in_by_clicking(page, "dartagnan")

    # Pessac's card is still on its way when the person tabs onto its link...
    tab_to(page, placeholder_link(page, portal, "bib-pessac"))
    expect(card(page, "bib-pessac")).not_to_have_class(state_class("unavailable"))

    # ...and when the card replaces the placeholder, the focus is on its title link, not
    # thrown back to the top of the page.
    expect(card(page, "bib-pessac")).to_have_class(
        state_class("unavailable"), timeout=CARD_DEADLINE_AND_MARGIN_MS
    )
    title_link = card(page, "bib-pessac").locator(".card-title a")
    expect(title_link).to_be_focused()
    focused = focused_element(page)
    assert focused is not None and focus_is_visible(focused), focused


# -- axe-core, language and console -------------------------------------------------------------


def assert_pages_pass(checked: dict[str, list[str]], console: ConsoleWatch) -> None:
    failing = {url: problems for url, problems in checked.items() if problems}
    assert not failing, "\n".join(
        f"{url}:\n" + "\n".join(problems) for url, problems in failing.items()
    )
    assert not console.errors, "console errors:\n" + "\n".join(console.errors)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_resident_s_dashboard_and_service_pages_pass_axe(
    page: Page, portal: LivePortal, console: ConsoleWatch, lang: str
) -> None:
    sign_in_by_clicking(page, "marie-therese")
    dashboard_in(page, portal, lang)
    expect(page.locator(ARRIVED)).to_have_class(
        [state_class("ok")] * len(SERVICES["marie-therese"])
    )
    checked: dict[str, list[str]] = {}
    checked["dashboard"] = page_problems(page, portal, lang)
    # The language chosen on the dashboard holds on the pages the person goes to next.
    for path in (*SERVICE_PAGES, "/services/bib-merignac/card", "/status"):
        open_page(page, path)
        checked[path] = page_problems(page, portal, lang)
    assert_pages_pass(checked, console)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_dashboard_with_a_stale_and_an_unavailable_card_passes_axe(
    page: Page, portal: LivePortal, console: ConsoleWatch, lang: str
) -> None:
    # The canteen fails from the start: nothing to show. Mérignac's library answers once,
    # then fails: its card shows what it said then.
    portal.sandbox.fault("canteen", "bordeaux", "error500")
    sign_in_by_clicking(page, "marie-therese")
    wait_for_cards(page, portal)
    portal.sandbox.fault("library", "merignac", "error500")
    console.clear()
    checked: dict[str, list[str]] = {}

    open_dashboard(page, portal, lang)
    expect(card(page, "bib-merignac")).to_have_class(state_class("stale"))
    expect(card(page, "bib-merignac").locator(".notice--warning")).to_be_visible()
    expect(card(page, "bib-merignac").locator(".facts")).to_be_visible()
    expect(card(page, "cantine-bordeaux")).to_have_class(state_class("unavailable"))
    expect(card(page, "cantine-bordeaux").locator(".notice--error")).to_be_visible()
    checked["dashboard"] = page_problems(page, portal, lang)
    for path in ("/services/bib-merignac", "/services/cantine-bordeaux"):
        open_page(page, path)
        expect(page.locator("main .notice")).to_be_visible()
        checked[path] = page_problems(page, portal, lang)
    assert_pages_pass(checked, console)


# -- page budget ------------------------------------------------------------------------------


def test_a_resident_s_pages_stay_within_budget_on_a_first_visit(
    page: Page,
    portal: LivePortal,
    page_budget_report: dict[str, PageLoad],
    record_property: Callable[[str, object], None],
) -> None:
    sign_in_by_clicking(page, "marie-therese")
    wait_for_cards(page, portal)

    def dashboard() -> None:
        page.goto("/")
        wait_for_cards(page, portal)

    loads: list[tuple[str, str, Callable[[], None]]] = [("dashboard-with-cards", "/", dashboard)]
    for path in (*SERVICE_PAGES, "/status"):
        key = "status" if path == "/status" else "service-" + path.removeprefix("/services/")
        loads.append((key, path, lambda path=path: open_page(page, path)))

    failures = []
    for key, path, load_page in loads:
        clear_browser_cache(page)
        load = measure_page_load(page, load_page, SERVICES_BUDGET)
        page_budget_report[key] = load
        record_property(f"{key}_requests", load.requests)
        record_property(f"{key}_transferred_bytes", load.bytes)
        figures = load.figures(f"{key} ({path})", origin=portal.url)
        print(figures)
        problems = budget_problems(page, load)
        if problems:
            failures.append("\n".join(problems) + "\n" + figures)
    assert not failures, "\n\n".join(failures)


# -- reflow -----------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_resident_reads_the_dashboard_and_each_service_at_320_px(
    new_context: Callable[..., BrowserContext], portal: LivePortal, lang: str
) -> None:
    page = new_context(viewport=NARROW).new_page()
    sign_in_by_clicking(page, "marie-therese")
    dashboard_in(page, portal, lang)
    problems = [sideways_scrolling(page)]
    for path in (*SERVICE_PAGES, "/services/bib-merignac/card", "/status"):
        open_page(page, path)
        problems.append(sideways_scrolling(page))
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)


def test_a_long_greeting_wraps_between_words_at_320_px(
    new_context: Callable[..., BrowserContext], portal: LivePortal
) -> None:
    page = new_context(viewport=NARROW).new_page()
    sign_in_by_clicking(page, "marie-therese")
    dashboard_in(page, portal, "fr")
    heading = page.locator("h1.greeting")
    expect(heading).to_have_text("Bonjour Marie-Thérèse DUBOIS")
    # Made much longer, as some names are: it wraps, and never overflows the screen.
    heading.evaluate(
        "h => { h.textContent = 'Bonjour Marie-Thérèse-Bernadette DUBOIS-LAURAGUAIS' }"
    )
    fits = heading.evaluate(
        "h => h.getBoundingClientRect().right <= document.documentElement.clientWidth"
        " && h.scrollWidth <= h.clientWidth"
    )
    assert fits
    assert not sideways_scrolling(page)
