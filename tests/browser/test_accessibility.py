"""Every page passes axe-core (WCAG 2.1 A and AA, and best practices), in French and in
English, declares its language, and runs without a console error: a blocked script or
style (Content Security Policy) would show up there."""

from __future__ import annotations

import re

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


# -- page states around the session's end ------------------------------------------------------


def _session_ends_soon(portal: LivePortal) -> None:
    from datetime import timedelta

    from portal.extensions import db
    from portal.models import AuthSession
    from portal.models._types import utcnow

    with portal.app.app_context():
        for auth in db.session.execute(db.select(AuthSession)).scalars():
            auth.created_at = utcnow() - timedelta(hours=12) + timedelta(seconds=90)
        db.session.commit()


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("state", ["session-warning", "form-token-refused", "session-expired"])
def test_each_session_state_passes_axe_in_each_language(
    page: Page, portal: LivePortal, console: ConsoleWatch, state: str, lang: str
) -> None:
    sign_in_by_clicking(page)
    if state == "session-warning":
        _session_ends_soon(portal)
        page.goto(f"/?lang={lang}")
        expect(page.locator("#session-warning")).to_be_visible()
    elif state == "form-token-refused":
        page.goto(f"/accessibilite?lang={lang}")
        page.evaluate(
            "() => document.querySelectorAll('input[name=csrf_token]')"
            ".forEach((i) => { i.value = 'stale'; })"
        )
        page.locator(".session-form button").click()
        # htmx sent it: the message shows in the page's alert region
        expect(page.locator("#page-alert [role=alert]")).to_be_visible()
    else:
        page.goto(f"/accessibilite?lang={lang}")
        _session_ends_soon(portal)
        from datetime import timedelta

        from portal.extensions import db
        from portal.models import AuthSession

        with portal.app.app_context():
            for auth in db.session.execute(db.select(AuthSession)).scalars():
                auth.created_at = auth.created_at - timedelta(minutes=5)
            db.session.commit()
        page.locator(".session-form button").click()
        page.wait_for_url(re.compile(r"/auth/login\?next=/accessibilite"))
        expect(page.locator(".flashes .notice")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    assert_no_axe_violations(page)


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
