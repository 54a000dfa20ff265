"""Forms as a person sees them: a field refused is marked (``aria-invalid``) and shows it
with a border of its own, its message differs from a hint by more than colour (a mark
before it, a line beside the field), boxes to tick are at least 24 px, and the buttons of
a choice stand apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.support import (
    LANGUAGES,
    LivePortal,
    assert_no_axe_violations,
    sign_in_by_clicking,
)

pytestmark = pytest.mark.browser

_STYLE = """(element) => {
  const s = getComputedStyle(element);
  const before = getComputedStyle(element, "::before");
  return {
    border: [s.borderTopWidth, s.borderTopStyle, s.borderTopColor].join(" "),
    borderTop: parseFloat(s.borderTopWidth),
    borderLeft: parseFloat(s.borderLeftWidth),
    color: s.color,
    marker: before.content,
    markerWidth: parseFloat(before.width) || 0,
  };
}"""


def style(locator: Locator) -> dict[str, Any]:
    return locator.evaluate(_STYLE)


@pytest.fixture
def portal(services_portal: LivePortal) -> LivePortal:
    return services_portal


def sign_in_as(new_context: Callable[..., BrowserContext], identity: str) -> Page:
    page = new_context(viewport={"width": 1024, "height": 900}).new_page()
    sign_in_by_clicking(page, identity)
    return page


def test_a_refused_field_is_marked_and_its_error_is_not_told_by_colour_alone(
    new_context: Callable[..., BrowserContext],
) -> None:
    page = sign_in_as(new_context, "eloise")
    page.goto("/link/bib-merignac")
    card = page.locator("#card_number")
    valid = style(card)
    assert not card.get_attribute("aria-invalid")
    hint = page.locator("#card_number-hint")
    hint_style = style(hint)
    # Too short a number: refused, and said so.
    card.fill("12")
    page.locator("main form button[type=submit]").click()
    expect(page.locator(".error-summary")).to_be_focused()

    expect(card).to_have_attribute("aria-invalid", "true")
    invalid = style(card)
    assert invalid["border"] != valid["border"], (valid, invalid)
    assert invalid["borderTop"] >= 2, invalid
    error = page.locator("#card_number-error")
    expect(error).to_be_visible()
    error_style = style(error)
    # A mark before the message, which a hint has not...
    assert error_style["marker"] not in ("none", "normal", ""), error_style
    assert error_style["markerWidth"] > 0, error_style
    assert hint_style["marker"] in ("none", "normal"), hint_style
    # ...a line down the field's side...
    field = page.locator(".field--error").filter(has=card)
    assert style(field)["borderLeft"] >= 2
    # ...and the colour besides.
    assert error_style["color"] != hint_style["color"]
    # The summary links to the field, and stands out with a border.
    assert style(page.locator(".error-summary"))["borderTop"] >= 2
    expect(page.locator(".error-summary a[href='#card_number']")).to_be_visible()
    # The field's width fits a card number, not the whole column.
    box = card.bounding_box()
    assert box is not None and box["width"] < 400, box
    assert_no_axe_violations(page)


def test_boxes_to_tick_are_at_least_24_px_with_a_44_px_target(
    new_context: Callable[..., BrowserContext],
) -> None:
    page = sign_in_as(new_context, "marie-therese")
    page.goto("/account/delete")
    box = page.locator("#confirm").bounding_box()
    assert box is not None and box["width"] >= 24 and box["height"] >= 24, box
    row = page.locator(".radio").filter(has=page.locator("#confirm")).bounding_box()
    assert row is not None and row["height"] >= 44, row
    page.goto("/services/cantine-bordeaux")
    meals = page.locator("main input[type=checkbox]")
    if meals.count():
        meal = meals.first.bounding_box()
        assert meal is not None and meal["width"] >= 24 and meal["height"] >= 24, meal


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_buttons_of_a_choice_stand_apart(
    new_context: Callable[..., BrowserContext], portal: LivePortal, lang: str
) -> None:
    page = new_context(
        viewport={"width": 1024, "height": 900}, locale="en-GB" if lang == "en" else "fr-FR"
    ).new_page()
    sign_in_by_clicking(page)
    page.goto("/services/bib-merignac")
    cancel = page.locator("#holds a[href$='/cancel']").first.get_attribute("href")
    assert cancel
    for path in (cancel, "/link/bib-merignac/remove", "/account/delete"):
        page.goto(path)
        group = page.locator("main .button-group")
        expect(group).to_be_visible()
        assert float(group.evaluate("(e) => parseFloat(getComputedStyle(e).columnGap)")) > 0
        items = group.locator(":scope > *")
        assert items.count() == 2, path
        first, second = items.nth(0).bounding_box(), items.nth(1).bounding_box()
        assert first is not None and second is not None
        apart = second["x"] - (first["x"] + first["width"])
        below = second["y"] - (first["y"] + first["height"])
        assert apart >= 8 or below >= 8, (path, first, second)
        assert_no_axe_violations(page)
