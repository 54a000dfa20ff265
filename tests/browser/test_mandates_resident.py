"""'Mes mandats' and the revocation's confirmation page in a real browser: each passes
axe-core in French and in English, shows the keyboard focus at every stop and reads at
320 px without sideways scrolling; the revocation is sent by keyboard alone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from portal.actor import Actor
from portal.extensions import db
from portal.models import Agent, Citizen, JournalEntry, Mandate
from tests.browser.support import (
    LivePortal,
    focus_is_visible,
    keyboard_stops,
    narrow_problems,
    page_problems,
    sign_in_by_clicking,
)
from tests.integration.test_desks import SIRET_A, add_desk
from tests.support import open_test_mandate, provision_agent

pytestmark = pytest.mark.browser

LOCALES = {"fr": "fr-FR", "en": "en-GB"}


def a_mandate_with_an_action(portal: LivePortal) -> str:
    """Éloïse's mandate at a desk, covering two libraries, with one action under it."""
    desk = add_desk(portal.app, "France services de Pessac", SIRET_A)
    provision_agent(portal.app, "claire")
    with portal.app.app_context():
        agent = db.session.execute(db.select(Agent.id)).scalar_one()
        citizen = db.session.execute(db.select(Citizen.id)).scalar_one()
    reference = open_test_mandate(
        portal.app,
        citizen_id=citizen,
        desk_id=desk,
        agent_id=agent,
        scopes=["bib-merignac", "bib-pessac", "bib-merignac:payments"],
    )
    with portal.app.app_context():
        mandate = db.session.execute(db.select(Mandate).filter_by(reference=reference)).scalar_one()
        actor = Actor.adviser(
            agent, citizen, mandate_id=mandate.id, channel="phone", scopes=frozenset()
        )
        JournalEntry.record(
            citizen,
            "renew_loan",
            actor=actor,
            connector_instance="bib-merignac",
            code="renew_loan",
            params={"title": "Le Petit Prince"},
        )
        db.session.commit()
    return reference


def problems_of(page: Page, portal: LivePortal, lang: str) -> list[str]:
    found = page_problems(page, portal, lang)
    stops = keyboard_stops(page, max_presses=80)
    found += [f"focus is invisible: {s}" for s in stops if not focus_is_visible(s)]
    found += narrow_problems(page)
    return found


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_my_mandates_and_the_revocation_pass_every_check(
    browser: Browser, services_portal: LivePortal, lang: str
) -> None:
    context = browser.new_context(locale=LOCALES[lang], base_url=services_portal.url)
    try:
        page = context.new_page()
        sign_in_by_clicking(page, "eloise")
        reference = a_mandate_with_an_action(services_portal)
        problems: dict[str, list[str]] = {}

        page.goto(f"/account/mandates?lang={lang}")
        expect(page.locator("main h1")).to_be_visible()
        expect(page.locator("main")).to_contain_text(reference)
        problems["list"] = problems_of(page, services_portal, lang)

        page.goto(f"/account/mandates/{reference}/revoke?scope=bib-pessac")
        expect(page.locator("main form button[type=submit]")).to_be_visible()
        problems["confirm-one-service"] = problems_of(page, services_portal, lang)

        page.goto(f"/account/mandates/{reference}/revoke")
        problems["confirm-whole"] = problems_of(page, services_portal, lang)

        # Sent by keyboard: the list comes back with the message.
        page.goto(f"/account/mandates/{reference}/revoke?scope=bib-pessac")
        page.locator("main form button[type=submit]").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/account/mandates$"))
        expect(page.locator(".flashes .notice--success")).to_be_visible()
        problems["after-revoking"] = problems_of(page, services_portal, lang)

        found = {k: v for k, v in problems.items() if v}
        assert not found, "\n".join(f"{k}:\n" + "\n".join(v) for k, v in found.items())
    finally:
        context.close()
