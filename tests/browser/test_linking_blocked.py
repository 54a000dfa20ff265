"""A linking form blocked by the proof limits says so, and until when, before the
resident types: its fields are disabled, so nobody types a PIN for nothing."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import LivePortal, assert_no_axe_violations, keyboard_stops
from tests.browser.test_journey_pages import block_linking, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def portal(services_portal: LivePortal) -> LivePortal:
    return services_portal


def test_a_blocked_linking_form_says_until_when_and_cannot_be_filled(
    page: Page, portal: LivePortal
) -> None:
    sign_in(page, "eloise")
    block_linking(portal, "eloise")
    page.goto("/link/bib-merignac")
    notice = page.locator("#link-blocked")
    expect(notice).to_be_visible()
    expect(notice).to_have_text(
        re.compile(
            "bloqué jusqu'(?:à|au \\d{1,2}(?:er)? \\w+ à) \\d{1,2}\u00a0h\u00a0\\d{2}\u00a0:"
        )
    )
    for field in ("#card_number", "#pin", "main form button[type=submit]"):
        expect(page.locator(field)).to_be_disabled()
    stops = [s["element"] for s in keyboard_stops(page, max_presses=60)]
    assert not any(s.startswith("input") for s in stops), stops
    assert_no_axe_violations(page)
