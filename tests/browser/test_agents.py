"""The agents' pages in a real browser, as an adviser meets them: the sign-in page, the
sandbox's ProConnect page, the agents' home, a desk's agents as its referent sees them,
the refusal without a second factor, the "whom to ask" page of an agent not
provisioned, and the page after signing out. Each
passes axe-core in French and in English, shows the keyboard focus at every stop, reads
at 320 px without sideways scrolling, and stays within the page budget (40 KB, 6
requests) on a first visit."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.support import (
    LivePortal,
    page_checks,
)
from tests.integration.test_desks import add_desk, grant
from tests.support import provision_agent

pytestmark = pytest.mark.browser

LOCALES = {"fr": "fr-FR", "en": "en-GB"}


def to_proconnect(page: Page) -> None:
    page.goto("/agents/connexion")
    page.locator("main a[href$='/agents/proconnect/login']").click()
    page.wait_for_url(re.compile(r"/proconnect/api/v2/authorize"))


def choose(page: Page, agent: str) -> None:
    page.locator(f"button[name=agent][value={agent}]").click()


def check(
    page: Page, portal: LivePortal, lang: str, show: Callable[[], None], *, reload: bool = False
) -> list[str]:
    """Every check of an agents' page (``page_checks``), within the default budget."""
    return page_checks(page, portal, lang, show, reload=reload)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_each_agents_page_passes_every_check(
    new_context: Callable[..., BrowserContext], portal: LivePortal, lang: str
) -> None:
    provision_agent(portal.app, "claire")
    desk = add_desk(portal.app, "France services de Pessac", "13000000000013")
    grant(portal.app, "claire", "referent", desk)
    page = new_context(locale=LOCALES[lang]).new_page()
    problems: dict[str, list[str]] = {}

    def visit(key: str, show: Callable[[], None], *, reload: bool = False) -> None:
        found = check(page, portal, lang, show, reload=reload)
        if found:
            problems[key] = found

    def sign_in_page() -> None:
        page.goto("/agents/connexion")
        expect(page.locator("main h1")).to_be_visible()

    visit("sign-in", sign_in_page)

    def home() -> None:
        choose(page, "claire")
        page.wait_for_url(re.compile(r"/agents/$"))
        expect(page.locator("main h1")).to_be_visible()

    to_proconnect(page)
    visit("home", home, reload=True)

    def desk_agents() -> None:
        page.goto(f"/agents/desk/{desk}/agents")
        expect(page.locator("main h1")).to_be_visible()
        expect(page.locator("main")).to_contain_text("Claire")

    visit("desk-agents", desk_agents)
    page.goto("/agents/")

    def logged_out() -> None:
        page.locator("main form[action$='/agents/logout'] button").click()
        page.wait_for_url(re.compile(r"/agents/proconnect/logged-out"))
        expect(page.locator("main h1")).to_be_visible()

    visit("logged-out", logged_out, reload=True)

    def refused(agent: str) -> Callable[[], None]:
        def show() -> None:
            choose(page, agent)
            page.wait_for_url(re.compile(r"/agents/proconnect/callback"))
            expect(page.locator("main h1")).to_be_visible()

        return show

    to_proconnect(page)
    visit("refused-without-second-factor", refused("sophie"))
    to_proconnect(page)
    visit("not-provisioned", refused("karim"))
    assert not problems, "\n".join(f"{k}:\n" + "\n".join(v) for k, v in problems.items())


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_an_agent_signs_in_and_out_by_keyboard_alone(
    new_context: Callable[..., BrowserContext], portal: LivePortal, javascript: bool
) -> None:
    provision_agent(portal.app, "claire")
    desk = add_desk(portal.app, "France services de Pessac", "13000000000013")
    grant(portal.app, "claire", "referent", desk)
    page = new_context(java_script_enabled=javascript).new_page()
    page.goto("/agents/connexion")
    page.locator("main a[href$='/agents/proconnect/login']").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/proconnect/api/v2/authorize"))
    page.locator("button[name=agent][value=claire]").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/agents/$"))
    expect(page.locator("main")).to_contain_text("Claire")
    # The desk's page, through the link on the home page.
    page.locator(f"main a[href$='/agents/desk/{desk}/agents']").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/agents/desk/{desk}/agents$"))
    expect(page.locator("main table")).to_contain_text("Claire")
    page.goto("/agents/")
    page.locator("main form[action$='/agents/logout'] button").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/agents/proconnect/logged-out"))
    assert page.context.cookies() == [] or all(
        c["name"] != "agent_session" for c in page.context.cookies()
    )
