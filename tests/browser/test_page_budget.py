"""Every page stays light for a person on a slow or metered connection: a first visit
transfers at most 40 KB (compressed, as sent) in at most 6 requests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from tests.browser.support import (
    BUDGET_BYTES,
    BUDGET_REQUESTS,
    COMPRESSED_ENCODINGS,
    PAGES,
    LivePortal,
    PageLoad,
    PortalPage,
    clear_browser_cache,
    encoded_body_sizes,
    measure_page_load,
)

pytestmark = pytest.mark.browser

#: Flask-Compress leaves smaller responses alone (``COMPRESS_MIN_SIZE``).
COMPRESS_MIN_SIZE = 256


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
    figures = (
        f"{target.key} ({target.path}): {load.requests} requests, "
        f"{load.bytes:,} bytes ({load.bytes / 1024:.1f} KB)\n" + load.describe(origin=portal.url)
    )
    print(figures)

    # What is measured is what was sent: successful text responses bigger than the
    # threshold went compressed, and the body counted is the compressed one. (Flask-Compress
    # leaves error responses alone: the 404 page is counted as sent, uncompressed.)
    for t in load.page_transfers:
        compressible = (
            200 <= t.status < 300
            and t.resource_type in {"document", "stylesheet", "script"}
            and (t.decoded_bytes or 0) > COMPRESS_MIN_SIZE
        )
        if compressible:
            assert t.encoding in COMPRESSED_ENCODINGS, f"{t.url} sent uncompressed\n{figures}"
            assert t.body_bytes < t.decoded_bytes, figures
    # The browser's Performance API agrees on each body's size on the wire.
    on_the_wire = encoded_body_sizes(page)
    for t in load.page_transfers:
        if t.url in on_the_wire:
            assert t.body_bytes == on_the_wire[t.url], f"{t.url}: {on_the_wire}\n{figures}"
    assert load.requests <= BUDGET_REQUESTS, figures
    assert load.bytes <= BUDGET_BYTES, figures
