"""The owners' pages and the open-data page in a real browser: a service's dashboard and
the page across an owner's services (signed in through the sandbox's ProConnect), and
the public open-data page. Each passes axe-core in French and in English, shows the
keyboard focus at every stop, reads at 320 px without sideways scrolling and stays
within the services' page budget (50 KB, 10 requests) on a first visit; the period is
chosen by keyboard alone, with or without JavaScript."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from portal.owners.routes import today
from tests.browser.support import (
    SERVICES_BUDGET,
    LivePortal,
    page_checks,
)
from tests.integration.test_owners import give
from tests.measure_seed import answers, seed, seed_service_month

pytestmark = pytest.mark.browser

LOCALES = {"fr": "fr-FR", "en": "en-GB"}
JS = pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])


@pytest.fixture
def portal(services_portal: LivePortal) -> LivePortal:
    """Claire owns both libraries of Mérignac and Pessac, with 120 days of roll-ups."""
    give(services_portal.app, "claire", "service_owner", "bib-merignac,bib-pessac")
    first = today() - timedelta(days=120)
    for offset in range(120):
        day = first + timedelta(days=offset)
        seed_service_month(services_portal.app, "bib-merignac", "library", day)
        seed_service_month(services_portal.app, "bib-pessac", "library", day, scale=3)
    seed(services_portal.app, answers(first, "bib-merignac", "good", 120, clarity=4))
    return services_portal


def sign_in_as_claire(page: Page) -> None:
    page.goto("/agents/connexion")
    page.locator("main a[href$='/agents/proconnect/login']").click()
    page.wait_for_url(re.compile(r"/proconnect/api/v2/authorize"))
    page.locator("button[name=agent][value=claire]").click()
    page.wait_for_url(re.compile(r"/agents/$"))


def check(page: Page, portal: LivePortal, lang: str, show: Callable[[], None]) -> list[str]:
    return page_checks(page, portal, lang, show, budget=SERVICES_BUDGET, max_presses=60)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_each_owners_page_passes_every_check(
    new_context: Callable[..., BrowserContext], portal: LivePortal, lang: str
) -> None:
    page = new_context(locale=LOCALES[lang]).new_page()
    problems: dict[str, list[str]] = {}

    def visit(key: str, path: str) -> None:
        def show() -> None:
            page.goto(path)
            expect(page.locator("main h1")).to_be_visible()

        found = check(page, portal, lang, show)
        if found:
            problems[key] = found

    sign_in_as_claire(page)
    visit("service", "/agents/owners/services/bib-merignac")
    expect(page.locator("main svg[role=img]").first).to_be_visible()
    expect(page.locator("main table").first).to_be_visible()
    visit("service-by-day", "/agents/owners/services/bib-pessac?period=day"
          f"&start={today() - timedelta(days=31)}&end={today() - timedelta(days=1)}")  # fmt: skip
    visit("territory", "/agents/owners/")
    visit("bad-period", "/agents/owners/?start=2026-11-30&end=2026-11-01")
    visit("open-data", "/donnees-ouvertes/")
    assert not problems, "\n".join(f"{k}:\n" + "\n".join(v) for k, v in problems.items())


@JS
def test_an_owner_chooses_the_period_by_keyboard_alone(
    new_context: Callable[..., BrowserContext], portal: LivePortal, javascript: bool
) -> None:
    page = new_context(java_script_enabled=javascript).new_page()
    sign_in_as_claire(page)
    page.goto("/agents/owners/services/bib-merignac")
    start = date(today().year, today().month, 1) - timedelta(days=1)
    start = start.replace(day=1)
    page.locator("#period").focus()
    page.keyboard.press("End")  # « par mois »
    page.locator("#start").focus()
    page.locator("#start").fill(start.isoformat())
    page.locator("#end").fill(start.isoformat())
    page.locator("main form.filter button[type=submit]").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"period=month"))
    rows = page.locator("#frequentation-title ~ .table-wrap tbody tr")
    expect(rows).to_have_count(1)
    expect(page.locator("#period")).to_have_value("month")
    # A CSV of that month is one link away, named for what it holds.
    link = page.locator("a[href*='/agents/owners/services/bib-merignac/demarches.csv']")
    expect(link).to_have_attribute("href", re.compile(rf"start={start.isoformat()}"))
