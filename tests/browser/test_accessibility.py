"""Every page passes axe-core (WCAG 2.1 A and AA, and best practices), in French and in
English, declares its language, and runs without a console error: a blocked script or
style (Content Security Policy) would show up there."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.support import (
    LANGUAGES,
    PAGES,
    ConsoleWatch,
    LivePortal,
    PortalPage,
    assert_no_axe_violations,
    focus_is_visible,
    keyboard_stops,
    sign_in_by_clicking,
    switch_language,
)

BROWSER_LOCALES = {"fr": "fr-FR", "en": "en-GB"}

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("target", PAGES, ids=str)
def test_each_page_passes_axe_in_each_language(
    page: Page, portal: LivePortal, console: ConsoleWatch, target: PortalPage, lang: str
) -> None:
    target.prepare(page, lang)
    console.clear()
    target.load(page, lang)

    # The page says which language it is in, and is in that language.
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator(".skip-link")).to_have_text(portal.translate(lang, "Aller au contenu"))
    assert_no_axe_violations(page)
    errors = console.unexpected(page, status=target.status)
    assert not errors, f"console errors on {page.url}:\n" + "\n".join(errors)


@pytest.mark.parametrize("target", PAGES, ids=str)
def test_each_keyboard_stop_shows_where_the_focus_is(page: Page, target: PortalPage) -> None:
    target.open(page, "fr")
    stops = keyboard_stops(page)
    assert stops, f"nothing on {page.url} takes the keyboard focus"
    invisible = [s for s in stops if not focus_is_visible(s)]
    assert not invisible, f"focus is invisible on {page.url}: {invisible}"


# -- the canteen's page states: one family form, after a save, and while down -------------

CANTEEN = "/services/cantine-bordeaux"


def _canteen_state(page: Page, portal: LivePortal, state: str, lang: str) -> None:
    """Bring the canteen page into ``state`` in ``lang``."""
    sign_in_by_clicking(page, "marie-therese")
    page.goto(CANTEEN)
    if lang != "fr":
        switch_language(page, lang)
    if state == "meals-saved":
        page.locator("#meals input[type=checkbox]").first.click()
        page.locator("#meals button[type=submit]").click()
        expect(page.locator("#meals [role=status]")).to_be_focused()
    elif state == "meals-unsaved":
        page.locator("#meals input[type=checkbox]").first.click()
    elif state == "canteen-down":
        portal.sandbox.fault("canteen", "bordeaux", "error500")
        page.reload()
        expect(page.locator("#meals button[disabled]")).to_be_visible()
    elif state == "todo-canteen-down":
        page.goto("/account/todo")
        portal.sandbox.fault("canteen", "bordeaux", "error500")
        page.reload()
        expect(page.locator("#todo-list strong").first).to_be_visible()


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize(
    "state", ["meals-unsaved", "meals-saved", "canteen-down", "todo-canteen-down"]
)
def test_each_canteen_state_passes_axe_in_each_language(
    browser: Browser, services_portal: LivePortal, state: str, lang: str
) -> None:
    context = browser.new_context(locale=BROWSER_LOCALES[lang], base_url=services_portal.url)
    try:
        page = context.new_page()
        watch = ConsoleWatch(page)
        _canteen_state(page, services_portal, state, lang)
        expect(page.locator("html")).to_have_attribute("lang", lang)
        assert_no_axe_violations(page)
        errors = watch.unexpected(page, status=200)
        assert not errors, "\n".join(errors)
    finally:
        context.close()
        services_portal.sandbox.fault("canteen", "bordeaux", None)
