"""A resident with more services than the dashboard has requests for (eight, four of
them Mérignac annexes on Mérignac's back-end): the cards come in one request per
back-end, every one arrives and is announced, the page stays within its budget and
passes axe-core, and a hanging back-end delays only its own cards."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    SERVICES_BUDGET,
    LivePortal,
    PageLoad,
    assert_no_axe_violations,
    budget_problems,
    clear_browser_cache,
    measure_page_load,
    sign_in_by_clicking,
)
from tests.support import CROWDED_ANNEXES, annexe_slugs, link_annexes

pytestmark = pytest.mark.browser

ANNEXES = CROWDED_ANNEXES
SERVICES = (
    "bib-bordeaux",
    "bib-merignac",
    "cantine-bordeaux",
    "logement-metropole",
    "eau-bordeaux",
    *annexe_slugs(ANNEXES),
)
CARDS = "#main .cards > li"
ARRIVED = CARDS + "[class*='card--']"


@pytest.fixture
def portal(crowded_portal: LivePortal) -> LivePortal:
    """In this module the portal has eight services for Marie-Thérèse."""
    return crowded_portal


def crowded_dashboard(page: Page, portal: LivePortal) -> None:
    sign_in_by_clicking(page, "marie-therese")
    link_annexes(portal.app, ANNEXES)


def wait_for_every_card(page: Page, portal: LivePortal) -> None:
    """Every placeholder became a card, and each arrival was announced once."""
    expect(page.locator(CARDS)).to_have_count(len(SERVICES))
    expect(page.locator(ARRIVED)).to_have_count(len(SERVICES))
    for slug in SERVICES:
        title = portal.app.extensions["connectors"].instances[slug].title
        said = page.locator("#cards-status p").filter(has_text=title + " :")
        expect(said).to_have_count(1)
    page.wait_for_load_state("networkidle")


def test_eight_cards_arrive_in_four_requests_within_the_budget(
    page: Page,
    portal: LivePortal,
    page_budget_report: dict[str, PageLoad],
    record_property: Callable[[str, object], None],
) -> None:
    crowded_dashboard(page, portal)
    clear_browser_cache(page)

    def dashboard() -> None:
        page.goto("/")
        wait_for_every_card(page, portal)

    load = measure_page_load(page, dashboard, SERVICES_BUDGET)
    page_budget_report["dashboard-eight-services"] = load
    record_property("requests", load.requests)
    record_property("transferred_bytes", load.bytes)
    figures = load.figures("dashboard with eight services", origin=portal.url)
    print(figures)
    problems = budget_problems(page, load)
    assert not problems, "\n".join(problems) + "\n" + figures
    card_requests = [t for t in load.page_transfers if t.resource_type == "xhr"]
    # Four for five back-ends (Koha, Mérignac and its annexes, canteen, housing, water),
    # and the to-do list.
    assert len(card_requests) == 5, figures

    for slug in SERVICES:
        card = page.locator(f"#card-{slug}")
        expect(card).to_have_class("card card--ok")
        expect(card.locator(".facts")).to_be_visible()
    assert_no_axe_violations(page)


def test_a_hanging_back_end_delays_only_its_cards_and_the_focus_stays_put(
    page: Page, portal: LivePortal
) -> None:
    portal.sandbox.fault("library", "merignac", "hang", hang_s=10)
    crowded_dashboard(page, portal)
    page.goto("/")
    # The person is on the last annexe's link while its back-end, Mérignac's, hangs.
    last = SERVICES[-1]
    page.locator(f"#card-link-{last}").focus()

    # The services on other back-ends arrive without waiting for Mérignac's...
    for slug in ("bib-bordeaux", "cantine-bordeaux", "logement-metropole"):
        expect(page.locator(f"#card-{slug}")).to_have_class("card card--ok")
    for slug in ("bib-merignac", *annexe_slugs(ANNEXES)):
        expect(page.locator(f"#card-{slug}")).to_have_class("card")
    # ...whose cards come together, out of band but the first, at the card deadline;
    # the focus is then on the annexe's new title link.
    for slug in ("bib-merignac", *annexe_slugs(ANNEXES)):
        expect(page.locator(f"#card-{slug}")).to_have_class(
            "card card--unavailable", timeout=2_000 + 2_500
        )
    expect(page.locator(f"#card-{last} .card-title a")).to_be_focused()
