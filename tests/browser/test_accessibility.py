"""Every page passes axe-core (WCAG 2.1 A and AA, and best practices), in French and in
English, declares its language, and runs without a console error: a blocked script or
style (Content Security Policy) would show up there."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    LANGUAGES,
    PAGES,
    ConsoleWatch,
    LivePortal,
    PortalPage,
    assert_no_axe_violations,
    focus_is_visible,
    keyboard_stops,
)

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
