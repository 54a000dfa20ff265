"""On a phone (320 and 375 CSS pixels wide) every page with a table reads without a word,
a date or an amount cut in two: each word of each cell sits on one line, and nothing
scrolls sideways, neither the page nor a table inside it.

A word is broken when the boxes the browser lays it out in (``Range.getClientRects``)
sit on more than one line. Words are what lies between spaces; a date or an amount
joined by non-breaking spaces counts as one word, so it must stay on one line too. A
break right after a hyphen or a slash is where words may wrap, so each side of one is
a word of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from portal.actor import Actor
from portal.extensions import db
from portal.models import Citizen, JournalEntry
from tests.browser.support import (
    LANGUAGES,
    LivePortal,
    page_problems,
    sideways_scrolling,
    sign_in_by_clicking,
)

pytestmark = pytest.mark.browser

WIDTHS = (320, 375)

#: Every page with a table, and the pages whose lists carry dates (to-do, housing).
TABLE_PAGES = (
    "/account/activity",
    "/services/bib-merignac",
    "/services/cantine-bordeaux",
    "/account/data",
    "/status",
)
LIST_PAGES = ("/services/logement-metropole", "/account/todo")

_BROKEN_WORDS = """(scope) => {
  const hidden = (node) => {
    const element = node.parentElement;
    return !element || element.closest(".visually-hidden, [hidden]")
      || getComputedStyle(element).display === "none";
  };
  const lines = (node, start, end) => {
    const range = document.createRange();
    range.setStart(node, start);
    range.setEnd(node, end);
    const tops = [...range.getClientRects()].filter((r) => r.width > 0.5).map((r) => r.top);
    if (!tops.length) return 0;
    return Math.max(...tops) - Math.min(...tops) > 2 ? 2 : 1;
  };
  const brokenIn = (root) => {
    const found = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (hidden(node)) continue;
      // Between ASCII white space; each side of a hyphen or a slash apart.
      for (const match of node.data.matchAll(/[^ \\t\\n\\r\\f\\-\\u2010\\/]+[\\-\\u2010\\/]?/g)) {
        if (lines(node, match.index, match.index + match[0].length) > 1) found.push(match[0]);
      }
    }
    return found;
  };
  const cells = [...document.querySelectorAll(scope)];
  const broken = cells
    .map((cell) => ({cell: cell.innerText.trim().slice(0, 60), words: brokenIn(cell)}))
    .filter((c) => c.words.length);
  const wraps = [...document.querySelectorAll(".table-wrap")]
    .filter((w) => w.scrollWidth > w.clientWidth + 0.5)
    .map((w) => `${w.scrollWidth} px in ${w.clientWidth} px`);
  return {cells: cells.length, broken, wraps};
}"""


def broken_words(page: Page, scope: str) -> dict[str, Any]:
    """In the elements ``scope`` selects: how many, those with a broken word, and the
    tables scrolling inside their wrapper."""
    return page.evaluate(_BROKEN_WORDS, scope)


@pytest.fixture
def portal(services_portal: LivePortal) -> LivePortal:
    """In this module the portal reads the sandbox's back-ends."""
    return services_portal


def add_activity(portal: LivePortal, given_name_start: str, count: int) -> None:
    """Entries of every kind the page shows, long ones included, across services."""
    kinds = [
        ("renew_loan", "refused", "bib-merignac", "Ce document est réservé par un autre lecteur."),
        ("pay_invoice", "success", "cantine-bordeaux", "Facture de novembre : 88,35 €"),
        ("renew_application", "failure", "logement-metropole", "Le service n'a pas répondu."),
        ("book_meals", "success", "cantine-bordeaux", "Repas du mercredi 25 novembre 2026"),
        ("cancel_hold", "success", "bib-merignac", ""),
    ]
    with portal.app.app_context():
        citizen = db.session.execute(
            db.select(Citizen.id).filter(Citizen.given_name.startswith(given_name_start))
        ).scalar_one()
        for n in range(count):
            action, outcome, slug, detail = kinds[n % len(kinds)]
            JournalEntry.record(
                citizen,
                action,
                outcome,
                connector_instance=slug,
                detail=detail,
                actor=Actor.citizen(citizen),
            )
        db.session.commit()


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("width", WIDTHS)
def test_no_word_date_or_amount_is_cut_in_a_table_on_a_phone(
    new_context: Callable[..., BrowserContext], portal: LivePortal, width: int, lang: str
) -> None:
    page = new_context(
        viewport={"width": width, "height": 640}, locale="en-GB" if lang == "en" else "fr-FR"
    ).new_page()
    sign_in_by_clicking(page)
    add_activity(portal, "Marie", 25)
    problems: list[str] = []
    cells = 0
    tally = []
    for path in TABLE_PAGES + LIST_PAGES:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        expect(page.locator("main h1")).to_be_visible()
        if path in TABLE_PAGES:
            assert page.locator("main table").count(), f"{path} shows no table"
        scope = "main th, main td" if path in TABLE_PAGES else "main li, main dd, main p"
        found = broken_words(page, scope)
        cells += found["cells"]
        tally.append(f"{path} {len(found['broken'])}/{found['cells']}")
        problems.extend(f"{path}: {c['cell']!r} cuts {c['words']}" for c in found["broken"])
        problems.extend(f"{path}: a table scrolls sideways ({w})" for w in found["wraps"])
        sideways = sideways_scrolling(page)
        if sideways:
            problems.append(sideways)
        if width == WIDTHS[0]:  # rows stacked: axe-core still passes
            problems.extend(f"{path}: {p}" for p in page_problems(page, portal, lang))
    print(f"{width} px, {lang}: {len(problems)} problems in {cells} cells;", ", ".join(tally))
    assert cells > 100, cells
    assert not problems, f"{len(problems)} problems in {cells} cells:\n" + "\n".join(problems)


def test_a_stacked_row_labels_each_value_and_keeps_the_header_for_screen_readers(
    new_context: Callable[..., BrowserContext], portal: LivePortal
) -> None:
    page = new_context(viewport={"width": 320, "height": 640}).new_page()
    sign_in_by_clicking(page)
    page.goto("/services/cantine-bordeaux")
    invoices = page.locator("main table").last
    amount = invoices.locator("tbody tr").first.locator("td").first
    label = amount.locator(".cell-label")
    expect(label).to_be_visible()
    expect(label).to_have_text("Montant")
    expect(label).to_have_attribute("aria-hidden", "true")
    # The row's name and its values stack in one column, one under the other.
    row = invoices.locator("tbody tr").first
    boxes = [row.locator(":scope > *").nth(i).bounding_box() for i in range(3)]
    assert all(b is not None for b in boxes)
    assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"], boxes
    # Wide: a table again, with the labels hidden (the column headers say it).
    page.set_viewport_size({"width": 1024, "height": 768})
    expect(label).to_be_hidden()
    expect(invoices.locator("thead")).to_be_visible()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_activity_pages_filtered_paged_or_refused_pass_axe(
    new_context: Callable[..., BrowserContext], portal: LivePortal, lang: str
) -> None:
    page = new_context(locale="en-GB" if lang == "en" else "fr-FR").new_page()
    sign_in_by_clicking(page)
    add_activity(portal, "Marie", 50)
    problems: dict[str, list[str]] = {}
    page.goto("/account/activity")
    # Filtering is a plain GET form.
    page.locator("#service").select_option("bib-merignac")
    page.locator("form.filter button[type=submit]").click()
    page.wait_for_url("**service=bib-merignac**")
    services = page.locator("main tbody td:nth-of-type(3)")
    assert services.count() == 20
    title = services.first.inner_text().split("\n")[-1]
    assert all(title in services.nth(i).inner_text() for i in range(20))
    problems["filtered"] = page_problems(page, portal, lang)
    page.locator("main a[rel=next]").click()
    page.wait_for_url("**before=**")
    assert "service=bib-merignac" in page.url
    expect(page.locator("main a[rel=prev]")).to_be_visible()
    problems["filtered, page 2"] = page_problems(page, portal, lang)
    page.goto("/account/activity?before=zzz")
    expect(page.locator("main .notice--warning")).to_be_visible()
    problems["page link refused"] = page_problems(page, portal, lang)
    page.goto("/account/activity?service=nope&page=zzz")
    expect(page.locator("main .notice--warning")).to_be_visible()
    problems["unknown service"] = page_problems(page, portal, lang)
    page.set_viewport_size({"width": 320, "height": 640})
    problems["unknown service, 320 px"] = page_problems(page, portal, lang)
    found = {k: v for k, v in problems.items() if v}
    assert not found, "\n".join(f"{k}:\n" + "\n".join(v) for k, v in found.items())
