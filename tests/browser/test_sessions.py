"""Seen in a browser: an htmx action on an expired session goes to the sign-in page
(never a sign-in page inside « Mes prêts »), a refused form token says so where the
resident looks, and the session's end is announced in time with a way to stay signed in.
Each state also passes axe in French and English."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from portal.extensions import db
from portal.models import AuthSession
from portal.models._types import utcnow
from tests.browser.support import (
    LANGUAGES,
    ConsoleWatch,
    LivePortal,
    page_problems,
    sign_in_by_clicking,
)

pytestmark = pytest.mark.browser

MERIGNAC = "/services/bib-merignac"


@pytest.fixture
def portal(services_portal: LivePortal) -> LivePortal:
    return services_portal


def move_session(portal: LivePortal, **ago: timedelta) -> None:
    """Move the session's timestamps into the past, as time passing would."""
    with portal.app.app_context():
        for auth in db.session.execute(db.select(AuthSession)).scalars():
            for field, delta in ago.items():
                setattr(auth, field, utcnow() - delta)
        db.session.commit()


def test_renewing_on_an_expired_session_goes_to_sign_in_and_back(
    page: Page, portal: LivePortal, console: ConsoleWatch
) -> None:
    sign_in_by_clicking(page)
    page.goto(MERIGNAC)
    expect(page.locator("#loans")).to_be_visible()
    move_session(portal, last_seen_at=timedelta(minutes=31))
    page.locator("#loans tbody").get_by_role("button").first.click()

    page.wait_for_url(re.compile(r"/auth/login\?next=/services/bib-merignac$"))
    expect(page.locator(".flashes")).to_contain_text("Votre session a expiré")
    expect(page.locator("#loans")).to_have_count(0)  # a page, not a panel of the old one
    page.locator(".fc-button").click()
    choose_identity_by_clicking_to(page, MERIGNAC)
    expect(page.locator(".flashes")).to_contain_text("votre dernière action n'a pas été faite")
    expect(page.locator("#loans .fc-button")).to_have_count(0)
    assert not console.errors, console.errors


def choose_identity_by_clicking_to(page: Page, path: str) -> None:
    page.get_by_role("button", name=re.compile("Marie-Thérèse")).first.click()
    page.wait_for_url(re.compile(re.escape(path) + "$"))


def test_a_refused_token_under_htmx_says_so_in_the_page(
    page: Page, portal: LivePortal, console: ConsoleWatch
) -> None:
    sign_in_by_clicking(page)
    page.goto(MERIGNAC)
    rows = page.locator("#loans tbody tr").count()
    page.evaluate(
        "() => document.querySelectorAll('input[name=csrf_token]')"
        ".forEach((i) => { i.value = 'stale'; })"
    )
    page.locator("#loans tbody").get_by_role("button").first.click()
    alert = page.locator("#page-alert [role=alert]")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Rien n'a été enregistré")
    expect(alert.get_by_role("link", name="Recharger la page")).to_have_attribute("href", MERIGNAC)
    assert page.locator("#loans tbody tr").count() == rows  # the list is still there
    for lang in LANGUAGES[:1]:
        assert not page_problems(page, portal, lang)


def test_the_warning_comes_before_the_end_and_staying_keeps_what_was_typed(
    page: Page, portal: LivePortal, console: ConsoleWatch
) -> None:
    sign_in_by_clicking(page, "eloise")
    page.goto("/link/bib-merignac")
    timer = page.locator(".session-timer")
    expect(timer).to_contain_text(
        re.compile(r"Votre session se termine à \d{1,2}\u00a0h\u00a0\d{2}")
    )
    warning = page.locator("#session-warning")
    expect(warning).to_be_hidden()
    # The absolute limit is 90 s away: the warning (2 minutes before) shows at once.
    move_session(portal, created_at=timedelta(hours=12) - timedelta(seconds=90))
    page.reload()
    expect(warning).to_be_visible()
    stay = warning.get_by_role("button", name="Rester connecté(e)")
    expect(stay).to_be_focused()
    page.get_by_label("Numéro de carte de bibliothèque").fill("33281000129033")
    assert not page_problems(page, portal, "fr")
    move_session(portal, created_at=timedelta(minutes=5))
    stay.click()
    expect(page.locator("#session-warning")).to_be_hidden()
    expect(page.get_by_label("Numéro de carte de bibliothèque")).to_have_value("33281000129033")
    assert not console.errors, console.errors


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_warning_passes_axe_in_each_language(page: Page, portal: LivePortal, lang: str) -> None:
    sign_in_by_clicking(page)
    move_session(portal, created_at=timedelta(hours=12) - timedelta(seconds=90))
    page.goto(f"/accessibilite?lang={lang}")
    expect(page.locator("#session-warning")).to_be_visible()
    assert not page_problems(page, portal, lang)
