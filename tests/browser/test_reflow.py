"""At 320 CSS pixels wide (a 1280 px window zoomed to 400 %, which also covers 200 %),
every page reflows into one column: nothing needs scrolling sideways (WCAG 1.4.10)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext

from tests.browser.support import LANGUAGES, PAGES, PortalPage

pytestmark = pytest.mark.browser

NARROW = {"width": 320, "height": 256}

_MEASURE = """() => {
  const width = window.innerWidth;
  const wider = [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > width + 0.5)
    .map((e) => `${e.tagName.toLowerCase()}${e.className ? "." + e.className : ""}`
      + ` (right edge ${Math.round(e.getBoundingClientRect().right)} px)`);
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width, wider};
}"""


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("target", PAGES, ids=str)
def test_each_page_reflows_without_horizontal_scrolling_at_320_px(
    new_context: Callable[..., BrowserContext], target: PortalPage, lang: str
) -> None:
    page = new_context(viewport=NARROW).new_page()
    target.open(page, lang)
    measure = page.evaluate(_MEASURE)
    assert measure["scrollWidth"] <= measure["innerWidth"], (
        f"{page.url} scrolls sideways at {measure['innerWidth']} px: content is "
        f"{measure['scrollWidth']} px wide; too wide: {measure['wider']}"
    )
