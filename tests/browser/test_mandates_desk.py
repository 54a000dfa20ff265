"""The desk's mandate pages in a real browser, as an adviser meets them: the desk's home,
its journal, a mandate's receipt, ending a mandate by its reference and the receipt of
that end. Each passes axe-core in French and in English, shows the keyboard focus at
every stop, reads at 320 px without sideways scrolling and stays within 50 KB and 10
requests on a first visit; the receipt printed by Chromium is one A4 page."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from pypdf import PdfReader

from portal.extensions import db
from portal.models import Citizen
from tests.browser.support import (
    SERVICES_BUDGET,
    LivePortal,
    page_checks,
    tab_to,
)
from tests.browser.test_agents import LOCALES, choose, to_proconnect
from tests.integration.test_desks import add_desk, agent_row, grant
from tests.support import open_test_mandate, provision_agent

pytestmark = pytest.mark.browser


def arrange(portal: LivePortal) -> tuple[int, int, str, str]:
    """Desk A, where Claire is adviser, desk B, and a mandate of each (Élodie's at A,
    Bernard's at B); returns both desks and both references."""
    app = portal.app
    provision_agent(app, "claire")
    a = add_desk(app, "France services de Pessac", "13000000000013")
    b = add_desk(app, "Mairie de Mérignac", "21330281300016", communes="Mérignac")
    grant(app, "claire", "adviser", a)
    with app.app_context():
        elodie = Citizen(sub="e" * 64, given_name="Élodie Anne", family_name="Martin-Larrieu")
        bernard = Citizen(sub="b" * 64, given_name="Bernard", family_name="Petit")
        db.session.add_all([elodie, bernard])
        db.session.commit()
        elodie_id, bernard_id = elodie.id, bernard.id
    claire = agent_row(app, "claire").id
    ref_a = open_test_mandate(
        app,
        citizen_id=elodie_id,
        desk_id=a,
        agent_id=claire,
        scopes=["bib-pessac", "eau-pessac", "eau-pessac:payments"],
        duration="1d",
    )
    ref_b = open_test_mandate(
        app, citizen_id=bernard_id, desk_id=b, agent_id=claire, scopes=["bib-merignac"]
    )
    return a, b, ref_a, ref_b


def sign_in(page: Page) -> None:
    to_proconnect(page)
    choose(page, "claire")
    page.wait_for_url(re.compile(r"/agents/$"))


def check(page: Page, portal: LivePortal, lang: str, show: Callable[[], None]) -> list[str]:
    return page_checks(page, portal, lang, show, budget=SERVICES_BUDGET)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_each_desk_mandate_page_passes_every_check(
    new_context: Callable[..., BrowserContext], portal: LivePortal, lang: str
) -> None:
    a, _b, ref_a, ref_b = arrange(portal)
    page = new_context(locale=LOCALES[lang]).new_page()
    sign_in(page)
    problems: dict[str, list[str]] = {}

    def visit(key: str, show: Callable[[], None]) -> None:
        found = check(page, portal, lang, show)
        if found:
            problems[key] = found

    def goto(path: str, shows: str) -> Callable[[], None]:
        def show() -> None:
            page.goto(path)
            expect(page.locator("main h1")).to_be_visible()
            expect(page.locator("main")).to_contain_text(shows)

        return show

    visit("home", goto(f"/agents/desk/{a}", "Élodie Anne Martin-Larrieu"))
    visit("search", goto(f"/agents/desk/{a}?q=martin", "Élodie Anne Martin-Larrieu"))
    visit("receipt", goto(f"/agents/desk/{a}/mandates/{ref_a}/receipt", ref_a))
    visit("revoke", goto(f"/agents/desk/{a}/revoke", "M-7K3F-9QX2"))

    def unknown() -> None:
        page.locator("main input[name=reference]").fill("M-AAAA-AAAA")
        page.locator("main form button[type=submit]").click()
        expect(page.locator("main .notice--error")).to_be_visible()

    visit("revoke-unknown", unknown)

    def confirm() -> None:
        page.locator("main input[name=reference]").fill(ref_b.lower())
        page.locator("main form button[type=submit]").click()
        expect(page.locator("main")).to_contain_text("Bernard Petit")

    visit("revoke-confirm", confirm)

    def revoked() -> None:
        page.locator("main form button[type=submit]").click()
        page.wait_for_url(re.compile(r"/revocations/"))
        expect(page.locator("main")).to_contain_text(ref_b)

    visit("revocation-receipt", revoked)
    visit("journal", goto(f"/agents/desk/{a}/journal", ref_b))
    assert not problems, "\n".join(f"{k}:\n" + "\n".join(v) for k, v in problems.items())


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_printed_receipt_is_one_a4_page(
    new_context: Callable[..., BrowserContext], portal: LivePortal, lang: str
) -> None:
    a, _b, ref_a, _ref_b = arrange(portal)
    page = new_context(locale=LOCALES[lang]).new_page()
    sign_in(page)
    page.goto(f"/agents/desk/{a}/mandates/{ref_a}/receipt")
    expect(page.locator("main svg[role=img]")).to_be_visible()
    printed = page.pdf(format="A4")
    reader = PdfReader(io.BytesIO(printed))
    assert len(reader.pages) == 1
    words = reader.pages[0].extract_text()
    assert ref_a in words
    assert "Compte territorial" not in words.split(ref_a)[0]  # no header printed
    # What only the screen needs is not printed.
    assert "PDF" not in words


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_a_mandate_is_ended_by_keyboard_alone(
    new_context: Callable[..., BrowserContext], portal: LivePortal, javascript: bool
) -> None:
    a, _b, _ref_a, ref_b = arrange(portal)
    page = new_context(java_script_enabled=javascript).new_page()
    sign_in(page)
    page.locator(f"main a[href$='/agents/desk/{a}']").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/agents/desk/{a}$"))
    tab_to(page, page.locator("main .button-group a[href$='/revoke']"))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/revoke$"))
    tab_to(page, page.locator("main input[name=reference]"))
    page.keyboard.type(ref_b.replace("-", " "))
    page.keyboard.press("Enter")
    expect(page.locator("main h1")).to_contain_text(ref_b)
    tab_to(page, page.locator("main form button[type=submit]"))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/revocations/{ref_b}$"))
    expect(page.locator("main")).to_contain_text("Mairie de Mérignac")
    # The desk's journal, by keyboard from the receipt's links.
    tab_to(page, page.locator("nav.desk-nav a[href$='/journal']"))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/journal$"))
    expect(page.locator("main table")).to_contain_text(ref_b)
