"""The whole desk visit in a real browser, adviser and resident on the same screen: the
adviser signs in with ProConnect, chooses the services, the resident signs in with
FranceConnect (signed out of it at once), both confirm, the adviser opens the resident's
space, renews a loan under the banner and ends the visit. By mouse and by keyboard
alone, with and without JavaScript. Each new page passes axe-core in French and in
English, reads at 320 px and stays within the page budget."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.support import LivePortal, identity_button_name
from tests.browser.test_agents import LOCALES, check
from tests.integration.test_desks import add_desk, grant
from tests.support import provision_agent

pytestmark = pytest.mark.browser

LIBRARY, CANTEEN = "bib-merignac", "cantine-bordeaux"


@pytest.fixture
def portal(services_portal: LivePortal) -> LivePortal:
    return services_portal


@pytest.fixture
def desk(portal: LivePortal) -> int:
    provision_agent(portal.app, "claire")
    desk_id = add_desk(portal.app, "Maison France services du Lac", "21330063500017")
    grant(portal.app, "claire", "adviser", desk_id)
    return desk_id


class Person:
    """Clicks, or presses keys on the focused element only."""

    def __init__(self, page: Page, keyboard: bool) -> None:
        self.page, self.keyboard = page, keyboard

    def press(self, target: Locator) -> None:
        if self.keyboard:
            target.focus()
            self.page.keyboard.press("Enter")
        else:
            target.click()

    def tick(self, box: Locator) -> None:
        if self.keyboard:
            box.focus()
            self.page.keyboard.press("Space")
        else:
            box.check()
        expect(box).to_be_checked()


def adviser_signs_in(person: Person) -> None:
    page = person.page
    page.goto("/agents/connexion")
    person.press(page.locator("main a[href$='/agents/proconnect/login']"))
    page.wait_for_url(re.compile(r"/proconnect/api/v2/authorize"))
    person.press(page.locator("button[name=agent][value=claire]"))
    page.wait_for_url(re.compile(r"/agents/$"))


def choose_services(person: Person, desk: int) -> None:
    page = person.page
    page.goto(f"/agents/desk/{desk}/mandates/new")
    person.tick(page.locator(f"input[name=scope][value='{LIBRARY}']"))
    person.tick(page.locator(f"input[name=scope][value='{CANTEEN}']"))
    person.tick(page.locator("input[name=duration][value='1m']"))
    expect(page.locator("input[name=channel][value=desk]")).to_be_checked()
    person.press(page.locator("main form button[type=submit]"))
    page.wait_for_url(re.compile(r"/agents/visit/[^/]+$"))


def resident_signs_in(person: Person) -> None:
    page = person.page
    person.press(page.locator("main a.fc-button"))
    page.wait_for_url(re.compile(r"/authorize"))
    person.press(page.get_by_role("button", name=identity_button_name("marie-therese"), exact=True))
    # Through FranceConnect's logout, straight to the recap.
    page.wait_for_url(re.compile(r"/agents/visit/[^/]+/recap$"))


def both_confirm(person: Person) -> None:
    page = person.page
    person.press(page.get_by_role("button", name=re.compile("je donne ce mandat")))
    page.wait_for_url(re.compile(r"/recap"))
    person.press(page.get_by_role("button", name=re.compile("ouvrir le mandat")))
    page.wait_for_url(re.compile(r"/proconnect/api/v2/authorize"))
    person.press(page.locator("button[name=agent][value=claire]"))
    page.wait_for_url(re.compile(r"/agents/desk/"))
    expect(page.locator("main")).to_contain_text("Le mandat est ouvert")


@pytest.mark.parametrize(
    ("javascript", "keyboard"),
    [(True, False), (False, True)],
    ids=["mouse-with-javascript", "keyboard-alone-without-javascript"],
)
def test_the_whole_desk_visit(
    new_context: Callable[..., BrowserContext],
    portal: LivePortal,
    desk: int,
    javascript: bool,
    keyboard: bool,
) -> None:
    page = new_context(java_script_enabled=javascript).new_page()
    person = Person(page, keyboard)
    adviser_signs_in(person)
    choose_services(person, desk)
    resident_signs_in(person)
    expect(page.locator("main")).to_contain_text("Médiathèque de Mérignac")
    expect(page.locator("main")).to_contain_text("déjà fermée sur cet ordinateur")
    both_confirm(person)

    # The desk's home lists the mandate; the adviser opens the resident's space.
    page.goto(f"/agents/desk/{desk}")
    act = page.locator("main form[action$='/act'] button[value=desk]").first
    person.press(act)
    page.wait_for_url(re.compile(r"/$"))
    banner = page.locator(".assisted-banner")
    expect(banner).to_contain_text("Vous agissez pour Marie-Thérèse")
    expect(page.locator("main")).not_to_contain_text("Régie de l'eau de Bordeaux")

    # Renew a loan under the mandate.
    page.goto(f"/services/{LIBRARY}")
    renew = page.locator(f"form[action$='/services/{LIBRARY}/loans/mer-l-0417-5/renew'] button")
    person.press(renew)
    expect(page.locator("main")).to_contain_text("est prolongé")
    expect(banner).to_be_visible()

    # End the visit: back at the desk, nothing of the resident's left open.
    person.press(banner.get_by_role("button", name=re.compile("Terminer")))
    page.wait_for_url(re.compile(rf"/agents/desk/{desk}$"))
    page.goto(f"/services/{LIBRARY}")
    page.wait_for_url(re.compile(r"/auth/login"))


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_each_page_of_the_visit_passes_every_check(
    new_context: Callable[..., BrowserContext], portal: LivePortal, desk: int, lang: str
) -> None:
    page = new_context(locale=LOCALES[lang]).new_page()
    person = Person(page, keyboard=False)
    adviser_signs_in(person)
    problems: dict[str, list[str]] = {}

    def visit(key: str, show: Callable[[], None], *, reload: bool = False) -> None:
        found = check(page, portal, lang, show, reload=reload)
        if found:
            problems[key] = found

    def choices() -> None:
        page.goto(f"/agents/desk/{desk}/mandates/new")
        expect(page.locator("main h1")).to_be_visible()

    visit("choices", choices)

    def choices_refused() -> None:
        page.locator("main form button[type=submit]").click()
        expect(page.locator(".error-summary")).to_be_visible()

    visit("choices-refused", choices_refused, reload=True)
    page.locator(f"input[name=scope][value='{LIBRARY}']").check()
    page.locator("input[name=duration][value='visit']").check()

    def handover() -> None:
        page.locator("main form button[type=submit]").click()
        page.wait_for_url(re.compile(r"/agents/visit/[^/]+$"))
        expect(page.locator("main h1")).to_be_visible()

    visit("handover", handover, reload=True)

    def recap() -> None:
        resident_signs_in(person)
        expect(page.locator("main h1")).to_be_visible()

    visit("recap", recap, reload=True)

    def adviser_step() -> None:
        page.get_by_role(
            "button", name=re.compile("je donne ce mandat|I give this mandate")
        ).click()
        expect(page.locator("#adviser")).to_be_visible()

    visit("recap-adviser", adviser_step, reload=True)
    page.get_by_role("button", name=re.compile("ouvrir le mandat|open the mandate")).click()
    page.wait_for_url(re.compile(r"/proconnect/api/v2/authorize"))
    page.locator("button[name=agent][value=claire]").click()
    page.wait_for_url(re.compile(r"/agents/desk/"))
    page.goto(f"/agents/desk/{desk}")
    page.locator("main form[action$='/act'] button[value=desk]").first.click()
    page.wait_for_url(re.compile(r"/$"))

    def banner() -> None:
        page.goto(f"/services/{LIBRARY}")
        expect(page.locator(".assisted-banner")).to_be_visible()

    visit("service-under-the-banner", banner)
    assert not problems, "\n".join(f"{k}:\n" + "\n".join(v) for k, v in problems.items())
