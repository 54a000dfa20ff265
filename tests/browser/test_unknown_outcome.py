"""Marie renews her housing application; the back-end renews it but its answer comes
after the portal stopped waiting. In the browser she reads that it is not known yet
(never "nothing was done"), in her language, on a page that passes axe; her next visit
tells her it was renewed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from portal.services import answers
from tests.browser.support import (
    LANGUAGES,
    LivePortal,
    assert_no_axe_violations,
    sign_in_by_clicking,
    switch_language,
)

pytestmark = pytest.mark.browser

RENEW = "/services/logement-metropole/renew"
NOT_KNOWN = "Nous ne savons pas encore si votre demande a été renouvelée."


@pytest.fixture
def portal(services_portal: LivePortal) -> Iterator[LivePortal]:
    """The services portal, its housing read timeout short so the late answer misses it."""
    http = services_portal.app.extensions["connectors"]._http["logement-metropole"]
    real = http.instance
    http.instance = dataclasses.replace(real, timeout_s=0.5)
    yield services_portal
    http.instance = real
    services_portal.sandbox.fault("housing", "metropole", None)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_renewal_answered_too_late_says_it_is_not_known_yet(
    page: Page, portal: LivePortal, lang: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in_by_clicking(page)
    page.goto(RENEW)
    if lang != "fr":
        switch_language(page, lang)
    portal.sandbox.fault("housing", "metropole", "answer_late", hang_s=5)

    page.locator("#confirm button[type=submit]").click()

    status = page.locator("#application [role=status]")
    expect(status).to_contain_text(portal.translate(lang, NOT_KNOWN))
    expect(status).not_to_contain_text(
        portal.translate(
            lang, "Le service n'a pas répondu : rien n'a été fait. Vous pouvez réessayer."
        )
    )
    expect(status).to_be_focused()
    assert_no_axe_violations(page)

    # Her next visit, once the back-end answers again, says it was renewed.
    portal.sandbox.fault("housing", "metropole", None)
    monkeypatch.setattr(answers, "ASK_AGAIN_AFTER_S", 0.0)
    page.goto("/services/logement-metropole")
    expect(page.locator(".notice--success").first).to_contain_text(
        portal.translate(lang, "Votre demande est renouvelée jusqu'au %(date)s.").split("%")[0]
    )
    assert_no_axe_violations(page)
