"""Water in a real browser, with and without JavaScript: a meter reading declared (and
one refused on its field, the focus on the problem), the consumption chart drawn with
its table, and the cap request sent with the plumber's invoice by keyboard alone. What
the operator holds is read from the sandbox's own API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.support import LivePortal, sign_in_by_clicking

pytestmark = pytest.mark.browser

WATER = "/services/eau-bordeaux"
CONTRACT = "ctr-bdx-4521"
ALERT = "alr-bdx-4521-1"
KEY = {"X-Api-Key": "sandbox-water-bordeaux-key"}
JS = pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def portal(services_portal: LivePortal) -> LivePortal:
    return services_portal


def operator(portal: LivePortal, path: str) -> dict:
    r = portal.sandbox.http.get(
        f"{portal.sandbox.url}/water/bordeaux/v1/contracts/{CONTRACT}{path}", headers=KEY
    )
    r.raise_for_status()
    return r.json()


def last_index(portal: LivePortal) -> int:
    trusted = [r for r in operator(portal, "/readings")["readings"] if r["kind"] != "estimated"]
    return max(trusted, key=lambda r: (r["taken_on"], r["index_m3"]))["index_m3"]


@JS
def test_a_reading_refused_on_its_field_then_declared(
    new_context: Callable[..., BrowserContext], portal: LivePortal, javascript: bool
) -> None:
    page = new_context(java_script_enabled=javascript).new_page()
    sign_in_by_clicking(page, "marie-therese")
    page.goto(WATER)
    last = last_index(portal)

    page.locator("#index_m3").fill(str(last - 10))
    page.locator("#reading button[type=submit]").click()
    summary = page.locator("#reading .error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("inférieur à celui du dernier relevé")
    expect(page.locator("#index_m3")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#index_m3")).to_have_value(str(last - 10))  # kept, to correct
    assert last_index(portal) == last

    page.locator("#index_m3").fill(str(last + 7))
    page.locator("#reading button[type=submit]").click()
    expect(page.locator("main")).to_contain_text("Votre relevé est enregistré")
    assert last_index(portal) == last + 7
    # The readings shown are the operator's, re-read after the declaration.
    expect(page.locator("#reading table")).to_contain_text("déclaré par vous")


def test_the_chart_is_drawn_beside_a_table_holding_its_figures(
    page: Page, portal: LivePortal
) -> None:
    sign_in_by_clicking(page, "marie-therese")
    page.goto(WATER)
    chart = page.locator("#consumption svg")
    expect(chart).to_be_visible()
    assert chart.get_attribute("aria-hidden") == "true"
    box = chart.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100, box
    assert page.locator("#consumption svg rect").count() >= 6
    rows = page.locator("#consumption table tbody tr")
    expect(rows).to_have_count(6)
    expect(rows.first).to_contain_text("148")
    expect(page.locator("#consumption > p").first).to_contain_text("fois la moyenne")


@JS
def test_the_cap_request_is_sent_with_the_plumbers_invoice_by_keyboard(
    new_context: Callable[..., BrowserContext],
    portal: LivePortal,
    javascript: bool,
    tmp_path: Path,
) -> None:
    invoice = tmp_path / "facture-plombier.pdf"
    invoice.write_bytes(PDF)
    not_pdf = tmp_path / "photo.pdf"
    not_pdf.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    page = new_context(java_script_enabled=javascript).new_page()
    sign_in_by_clicking(page, "marie-therese")
    page.goto(WATER)
    link = page.locator(f"#alert-{ALERT} a.button")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/alerts/{ALERT}/cap")

    page.locator("#repaired_on").focus()
    page.keyboard.type(date.today().strftime("%d%m%Y"))
    page.locator("#repair_location").focus()
    page.keyboard.type("Canalisation enterrée devant la maison")
    page.locator("#repair_invoice").set_input_files(str(not_pdf))
    page.locator("main form button[type=submit]").focus()
    page.keyboard.press("Enter")
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("n'est pas un PDF")
    assert operator(portal, "/alerts")["alerts"][0]["status"] == "open"

    page.locator("#repair_invoice").set_input_files(str(invoice))
    page.locator("main form button[type=submit]").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{WATER}#alerts")
    expect(page.locator("main")).to_contain_text("Votre demande d'écrêtement a été reçue le")
    statuses = {a["alert_id"]: a["status"] for a in operator(portal, "/alerts")["alerts"]}
    assert statuses[ALERT] == "requested"
