"""The satisfaction prompt after a renewal, in a real browser: answered to the end and
dismissed, with JavaScript (htmx swaps it in place, the loans stay as they are) and
without (each step a plain form, the browser sent back to the page); by keyboard alone;
axe-clean in French and English; at 320 px without sideways scrolling. It never
blocks: the page around it works while it is there."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from portal.extensions import db
from portal.models import SatisfactionAnswer
from tests.browser.support import (
    LANGUAGES,
    NARROW,
    LivePortal,
    assert_no_axe_violations,
    focus_is_visible,
    focused_element,
    sideways_scrolling,
    sign_in_by_clicking,
    switch_language,
    tab_to,
)

pytestmark = pytest.mark.browser

MERIGNAC = "/services/bib-merignac"
QUESTION = "De façon générale, comment ça s'est passé\u00a0?"
JS = pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])


@pytest.fixture
def portal(services_portal: LivePortal) -> LivePortal:
    return services_portal


def renewed(page: Page) -> None:
    """Renew Marie-Thérèse's first renewable loan at Mérignac; the prompt then shows."""
    sign_in_by_clicking(page, "marie-therese")
    page.goto(MERIGNAC)
    page.locator("#loans tbody").get_by_role("button").first.click()
    expect(page.locator("#satisfaction fieldset legend").first).to_be_visible()


def answers(portal: LivePortal) -> list[SatisfactionAnswer]:
    with portal.app.app_context():
        rows = list(db.session.execute(db.select(SatisfactionAnswer)).scalars())
        db.session.expunge_all()
        return rows


def mark(page: Page) -> None:
    page.evaluate("() => { window.__samePage = true; }")


def same_document(page: Page) -> bool:
    return page.evaluate("() => window.__samePage === true")


@JS
def test_the_prompt_after_a_renewal_is_answered_step_by_step(
    new_context: Callable[..., BrowserContext], portal: LivePortal, javascript: bool
) -> None:
    page = new_context(java_script_enabled=javascript).new_page()
    renewed(page)
    prompt = page.locator("#satisfaction")
    expect(prompt).to_contain_text(QUESTION)
    expect(page.locator("#loans")).to_be_visible()  # the page is all there, around it
    mark(page)

    prompt.get_by_label("Bien", exact=True).check()
    prompt.get_by_role("button", name="Envoyer").click()
    expect(prompt).to_contain_text(
        "Qu'avez-vous pensé des informations et des instructions fournies\u00a0?"
    )
    expect(prompt).to_contain_text("N'écrivez pas d'informations personnelles")
    assert same_document(page) is javascript
    mark(page)

    prompt.get_by_label("4 – Clair", exact=True).check()
    prompt.get_by_label("Oui, par téléphone").check()
    prompt.get_by_label("Un commentaire\u00a0?").fill("Appelez-moi au 06 12 34 56 78")
    prompt.get_by_role("button", name="Envoyer").click()
    expect(prompt).to_contain_text("Avez-vous réussi à obtenir de l'aide\u00a0?")
    prompt.get_by_label("Oui", exact=True).check()
    prompt.get_by_label("Qualité de l'aide obtenue").select_option("4")
    prompt.get_by_role("button", name="Envoyer").click()
    expect(prompt).to_contain_text("Merci pour votre réponse.")
    assert same_document(page) is javascript

    [answer] = answers(portal)
    assert (answer.satisfaction, answer.clarity, answer.journey) == ("good", 4, "renew_loan")
    assert answer.help == {"phone": {"reached": True, "quality": 4}}
    assert answer.comment == "Appelez-moi au [numéro retiré]"
    page.goto(MERIGNAC)
    expect(page.locator("#satisfaction")).to_be_empty()


@JS
def test_the_prompt_dismissed_goes_and_the_page_goes_on(
    new_context: Callable[..., BrowserContext], portal: LivePortal, javascript: bool
) -> None:
    page = new_context(java_script_enabled=javascript).new_page()
    renewed(page)
    page.locator("#satisfaction").get_by_role("button", name="Ne pas répondre").click()
    expect(page.locator("#satisfaction")).to_be_empty()
    expect(page.locator("#loans")).to_be_visible()
    assert answers(portal) == []
    # Another renewal of the same journey: not asked again in this session.
    button = page.locator("#loans tbody").get_by_role("button")
    if button.count():
        button.first.click()
        expect(page.locator("#loans [role=status], .flashes .notice").first).to_be_visible()
        expect(page.locator("#satisfaction")).to_be_empty()


def test_the_prompt_is_answered_by_keyboard_alone(page: Page, portal: LivePortal) -> None:
    renewed(page)
    prompt = page.locator("#satisfaction")
    # From the top of the page: the prompt sits in the flash area, before the content.
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    tab_to(page, prompt.get_by_label("Bien", exact=True))  # the group's first stop
    page.keyboard.press("ArrowDown")  # the radio group's own keys choose
    expect(prompt.get_by_label("Moyennement", exact=True)).to_be_checked()
    tab_to(page, prompt.get_by_role("button", name="Envoyer"))
    focused = focused_element(page)
    assert focused is not None and focus_is_visible(focused), focused
    page.keyboard.press("Enter")
    expect(prompt).to_contain_text("Qu'avez-vous pensé des informations")
    tab_to(page, prompt.get_by_role("button", name="Fermer"))
    page.keyboard.press("Enter")
    expect(prompt).to_be_empty()
    [answer] = answers(portal)
    assert answer.satisfaction == "average" and answer.clarity is None


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_prompt_is_axe_clean(page: Page, portal: LivePortal, lang: str) -> None:
    sign_in_by_clicking(page, "marie-therese")
    page.goto(MERIGNAC)
    if lang != "fr":
        switch_language(page, lang)
    page.locator("#loans tbody").get_by_role("button").first.click()
    prompt = page.locator("#satisfaction")
    expect(prompt).to_contain_text(portal.translate(lang, QUESTION))
    assert_no_axe_violations(page)
    prompt.locator("input[value=good]").check()
    prompt.locator("button:not([name=dismiss])").click()
    expect(prompt.locator("textarea")).to_be_visible()
    assert_no_axe_violations(page)


@JS
def test_the_prompt_reflows_at_320_px(
    new_context: Callable[..., BrowserContext], portal: LivePortal, javascript: bool
) -> None:
    page = new_context(viewport=NARROW, java_script_enabled=javascript).new_page()
    renewed(page)
    problem = sideways_scrolling(page)
    assert not problem, problem
    prompt = page.locator("#satisfaction")
    prompt.get_by_label("Mal", exact=True).check()
    prompt.get_by_role("button", name="Envoyer").click()
    expect(prompt.locator("textarea")).to_be_visible()
    problem = sideways_scrolling(page)
    assert not problem, problem
