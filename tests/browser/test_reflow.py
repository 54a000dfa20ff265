"""At 320 CSS pixels wide (a 1280 px window zoomed to 400 %, which also covers 200 %),
every page reflows into one column: nothing needs scrolling sideways (WCAG 1.4.10)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext

from tests.browser.support import LANGUAGES, NARROW, PAGES, PortalPage, sideways_scrolling

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("target", PAGES, ids=str)
def test_each_page_reflows_without_horizontal_scrolling_at_320_px(
    new_context: Callable[..., BrowserContext], target: PortalPage, lang: str
) -> None:
    page = new_context(viewport=NARROW).new_page()
    target.open(page, lang)
    problem = sideways_scrolling(page)
    assert not problem, problem
