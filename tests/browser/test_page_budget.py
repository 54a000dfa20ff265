"""Every page stays light for a person on a slow or metered connection: a first visit
transfers at most 40 KB (compressed, as sent) in at most 6 requests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from tests.browser.support import (
    PAGES,
    LivePortal,
    PageLoad,
    PortalPage,
    budget_problems,
    clear_browser_cache,
    measure_page_load,
)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("target", PAGES, ids=str)
def test_first_visit_to_each_page_stays_within_budget(
    page: Page,
    portal: LivePortal,
    target: PortalPage,
    page_budget_report: dict[str, PageLoad],
    record_property: Callable[[str, object], None],
) -> None:
    target.prepare(page, "fr")
    clear_browser_cache(page)
    load = measure_page_load(page, lambda: target.load(page, "fr"))
    page_budget_report[target.key] = load
    record_property("requests", load.requests)
    record_property("transferred_bytes", load.bytes)
    figures = load.figures(f"{target.key} ({target.path})", origin=portal.url)
    print(figures)

    problems = budget_problems(page, load)
    assert not problems, "\n".join(problems) + "\n" + figures
