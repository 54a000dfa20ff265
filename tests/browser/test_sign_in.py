"""A resident signs in with FranceConnect and signs out, in a real browser: by clicking,
without JavaScript, and with the keyboard alone."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.support import (
    FC_LINK_NAME,
    LOGIN_URL,
    SIGN_OUT_NAME,
    ConsoleWatch,
    LivePortal,
    choose_identity_by_clicking,
    expected_greeting,
    identity_button_name,
    tab_to,
)

pytestmark = pytest.mark.browser

LOGGED_OUT_TITLE = "Vous êtes déconnecté(e)"
LOGGED_OUT_CONFIRMED = "Vous êtes déconnecté(e) du Compte territorial et de FranceConnect."


def at_sandbox_chooser(page: Page, portal: LivePortal) -> None:
    page.wait_for_url(re.compile(re.escape(portal.sandbox.url) + r"/api/v2/authorize\?"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Choisissez une identité de test")


def at_logged_out_page(page: Page, portal: LivePortal) -> None:
    """Back from FranceConnect's sign-out, which the portal could confirm."""
    page.wait_for_url(re.compile(re.escape(portal.url) + r"/auth/franceconnect/logged-out\?state="))
    expect(page.get_by_role("heading", level=1)).to_have_text(LOGGED_OUT_TITLE)
    expect(page.get_by_text(LOGGED_OUT_CONFIRMED)).to_be_visible()


def home_asks_to_sign_in_again(page: Page) -> None:
    page.goto("/")
    expect(page).to_have_url(LOGIN_URL)
    expect(page.get_by_role("link", name=FC_LINK_NAME)).to_be_visible()
    expect(page.get_by_role("button", name=SIGN_OUT_NAME)).to_have_count(0)


def test_resident_signs_in_and_out_by_clicking(
    page: Page, portal: LivePortal, console: ConsoleWatch
) -> None:
    page.goto("/auth/login")
    page.get_by_role("link", name=FC_LINK_NAME).click()
    at_sandbox_chooser(page, portal)

    choose_identity_by_clicking(page, "dartagnan")
    expect(page).to_have_url(portal.url + "/")
    # Apostrophe, hyphen and accents arrive intact, in their FranceConnect capitals.
    expect(page.get_by_role("heading", level=1)).to_have_text("Bonjour Charles D'ARTAGNAN-LÉVÊQUE")

    page.get_by_role("button", name=SIGN_OUT_NAME).click()
    at_logged_out_page(page, portal)
    home_asks_to_sign_in_again(page)
    assert not console.errors, "\n".join(console.errors)


def test_resident_signs_in_and_out_without_javascript(
    new_context: Callable[..., BrowserContext], portal: LivePortal
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    page.goto("/auth/login")
    page.get_by_role("link", name=FC_LINK_NAME).click()
    at_sandbox_chooser(page, portal)

    choose_identity_by_clicking(page, "amina")
    # JavaScript really is off: htmx, loaded by every page, never ran.
    assert page.evaluate("() => typeof window.htmx") == "undefined"

    page.get_by_role("button", name=SIGN_OUT_NAME).click()
    at_logged_out_page(page, portal)
    home_asks_to_sign_in_again(page)


def test_resident_signs_in_and_out_with_the_keyboard_only(page: Page, portal: LivePortal) -> None:
    page.goto("/auth/login")

    # The skip link is the first stop, shows itself, and takes the focus to the content.
    skip_link = page.get_by_role("link", name="Aller au contenu")
    page.keyboard.press("Tab")
    expect(skip_link).to_be_focused()
    expect(skip_link).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    # From the content, the next stop is the FranceConnect button, with a visible focus.
    fc_link = page.get_by_role("link", name=FC_LINK_NAME)
    page.keyboard.press("Tab")
    expect(fc_link).to_be_focused()
    outline = fc_link.evaluate(
        "(element) => { const s = getComputedStyle(element);"
        " return {style: s.outlineStyle, width: parseFloat(s.outlineWidth)}; }"
    )
    assert outline["style"] != "none" and outline["width"] >= 2, outline
    page.keyboard.press("Enter")
    at_sandbox_chooser(page, portal)

    tab_to(page, page.get_by_role("button", name=identity_button_name("marie-therese")))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(expected_greeting("marie-therese"))

    tab_to(page, page.get_by_role("button", name=SIGN_OUT_NAME))
    page.keyboard.press("Enter")
    at_logged_out_page(page, portal)
