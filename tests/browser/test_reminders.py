"""The reminders' pages in a real browser: the settings page (off, on, with an error),
the unsubscribe question and its answer, and a tampered link. Each passes axe-core in
French and in English, shows the keyboard focus at every stop, reads at 320 px without
sideways scrolling and stays within the page budget; reminders are turned on from the
dashboard, and off from the message's link, by keyboard alone and without JavaScript's
help (plain forms)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from portal.config import current_settings
from portal.extensions import db
from portal.models import Citizen, ReminderSettings
from portal.reminders.tokens import unsubscribe_token
from tests.browser.support import LivePortal, page_checks, sign_in_by_clicking

pytestmark = pytest.mark.browser

LOCALES = {"fr": "fr-FR", "en": "en-GB"}


def press_submit(page: Page, form: str) -> None:
    """Tab-free activation: the form's button focused, then Enter, as a keyboard user."""
    page.locator(f"{form} button[type=submit]").focus()
    page.keyboard.press("Enter")


def marie_token(portal: LivePortal) -> str:
    with portal.app.app_context():
        citizen_id = db.session.execute(db.select(Citizen.id)).scalar_one()
        with portal.app.test_request_context(base_url=current_settings().base_url):
            return unsubscribe_token(citizen_id)


def reminders_on(portal: LivePortal) -> bool:
    with portal.app.app_context():
        db.session.expire_all()
        return bool(db.session.execute(db.select(ReminderSettings.enabled)).scalar_one())


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_reminder_pages_pass_every_check(
    browser: Browser, services_portal: LivePortal, lang: str
) -> None:
    context = browser.new_context(locale=LOCALES[lang], base_url=services_portal.url)
    try:
        page = context.new_page()
        sign_in_by_clicking(page, "marie-therese")
        problems: dict[str, list[str]] = {}

        def settings_page() -> None:
            page.goto(f"/reminders/?lang={lang}")
            expect(page.locator("main h1")).to_be_visible()

        problems["settings-off"] = page_checks(page, services_portal, lang, settings_page)

        # From the dashboard, in one step.
        page.goto(f"/?lang={lang}")
        press_submit(page, "form[action='/reminders/enable']")
        page.wait_for_url(re.compile(r"/reminders/$"))
        expect(page.locator(".flashes .notice--success")).to_be_visible()
        assert reminders_on(services_portal)
        problems["settings-on"] = page_checks(
            page, services_portal, lang, settings_page, max_presses=120
        )

        # Every kind unticked: refused, with the error summary.
        settings_page()
        for box in page.locator("form[action='/reminders/leads'] input[type=checkbox]").all():
            box.uncheck()

        def refused() -> None:
            press_submit(page, "form[action='/reminders/leads']")
            expect(page.locator(".error-summary")).to_be_visible()

        problems["settings-error"] = page_checks(
            page, services_portal, lang, refused, max_presses=120
        )

        # The message's link, in a browser that never signed in.
        token = marie_token(services_portal)
        stranger = context.browser.new_context(  # type: ignore[union-attr]
            locale=LOCALES[lang], base_url=services_portal.url
        )
        try:
            mail_client = stranger.new_page()

            def question() -> None:
                mail_client.goto(f"/reminders/unsubscribe/{token}?lang={lang}")
                expect(mail_client.locator("main form button[type=submit]")).to_be_visible()

            problems["unsubscribe"] = page_checks(mail_client, services_portal, lang, question)

            question()

            def answered() -> None:
                press_submit(mail_client, "main")
                expect(mail_client.locator("main .notice--success")).to_be_visible()

            problems["unsubscribed"] = page_checks(mail_client, services_portal, lang, answered)
            assert not reminders_on(services_portal)

            def tampered() -> None:
                mail_client.goto(f"/reminders/unsubscribe/{token[:-3]}xyz?lang={lang}")
                expect(mail_client.locator("main h1")).to_be_visible()

            problems["tampered"] = page_checks(mail_client, services_portal, lang, tampered)
        finally:
            stranger.close()

        found = {k: v for k, v in problems.items() if v}
        assert not found, "\n".join(f"{k}:\n" + "\n".join(v) for k, v in found.items())
    finally:
        context.close()
