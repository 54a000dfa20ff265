"""The canteen's meals in a real browser: the whole family's changes saved in one go,
a warning before leaving with changes not saved, touch targets a finger can hit, and
the writes disabled, with the reason, while the canteen is down. What the back-end
holds is read from the sandbox's own API."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from playwright.sync_api import BrowserContext, Dialog, Page, expect

from tests.browser.support import LivePortal, sign_in_by_clicking

pytestmark = pytest.mark.browser

CANTEEN = "/services/cantine-bordeaux"
FAMILY = "fam-4521"
CHLOE, HUGO = "enf-4521-1", "enf-4521-2"
KEY = {"X-Api-Key": "sandbox-canteen-bordeaux-key"}
JS = pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])


@pytest.fixture
def portal(services_portal: LivePortal) -> LivePortal:
    return services_portal


def next_month() -> str:
    return (date.today().replace(day=1) + timedelta(days=32)).strftime("%Y-%m")


def days_of(portal: LivePortal, child: str, month: str) -> dict[str, dict]:
    r = portal.sandbox.http.get(
        f"{portal.sandbox.url}/canteen/bordeaux/v1/families/{FAMILY}/children/{child}"
        f"/reservations?month={month}",
        headers=KEY,
    )
    r.raise_for_status()
    return {day["date"]: day for day in r.json()["days"]}


def cancel(portal: LivePortal, child: str, day: str) -> None:
    r = portal.sandbox.http.post(
        f"{portal.sandbox.url}/canteen/bordeaux/v1/families/{FAMILY}/children/{child}/reservations",
        headers={**KEY, "Idempotency-Key": uuid.uuid4().hex},
        json={"changes": [{"date": day, "book": False}]},
    )
    r.raise_for_status()


def open_day(portal: LivePortal, child: str, month: str) -> str:
    return next(d for d, day in days_of(portal, child, month).items() if day["bookable"])


@JS
def test_both_childrens_ticks_are_saved_by_one_click(
    new_context: Callable[..., BrowserContext], portal: LivePortal, javascript: bool
) -> None:
    month = next_month()
    chloe_day, hugo_day = open_day(portal, CHLOE, month), open_day(portal, HUGO, month)
    cancel(portal, CHLOE, chloe_day)
    cancel(portal, HUGO, hugo_day)
    page = new_context(java_script_enabled=javascript).new_page()
    sign_in_by_clicking(page, "marie-therese")
    page.goto(f"{CANTEEN}/meals?month={month}")

    page.locator(f"#meal-{CHLOE}-{chloe_day}").check()
    page.locator(f"#meal-{HUGO}-{hugo_day}").check()
    page.locator("#meals").get_by_role("button", name="Enregistrer les repas").click()

    expect(page.locator("main")).to_contain_text("2 modifications enregistrées")
    expect(page.locator(f"#meal-{CHLOE}-{chloe_day}")).to_be_checked()
    expect(page.locator(f"#meal-{HUGO}-{hugo_day}")).to_be_checked()
    assert days_of(portal, CHLOE, month)[chloe_day]["booked"] is True
    assert days_of(portal, HUGO, month)[hugo_day]["booked"] is True


def test_leaving_with_changes_not_saved_asks_first(page: Page, portal: LivePortal) -> None:
    month = next_month()
    sign_in_by_clicking(page, "marie-therese")
    page.goto(f"{CANTEEN}/meals?month={month}")
    dialogs: list[str] = []

    def answer(dialog: Dialog) -> None:
        dialogs.append(dialog.type)
        dialog.dismiss()  # stay on the page

    page.on("dialog", answer)
    box = page.locator(f"#meal-{HUGO}-{open_day(portal, HUGO, month)}")
    box.click()  # a change, made by a person
    page.close(run_before_unload=True)
    page.wait_for_timeout(500)
    assert dialogs == ["beforeunload"]


def test_a_saved_page_leaves_without_a_question(page: Page, portal: LivePortal) -> None:
    month = next_month()
    sign_in_by_clicking(page, "marie-therese")
    page.goto(f"{CANTEEN}/meals?month={month}")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.accept()))
    page.locator(f"#meal-{HUGO}-{open_day(portal, HUGO, month)}").click()
    page.locator("#meals button[type=submit]").click()
    expect(page.locator("#meals [role=status]")).to_be_visible()
    page.goto("/")
    assert dialogs == []


def test_each_meal_box_with_its_label_is_a_target_a_finger_can_hit(
    page: Page, portal: LivePortal
) -> None:
    sign_in_by_clicking(page, "marie-therese")
    page.goto(f"{CANTEEN}/meals?month={next_month()}")
    labels = page.locator("#meals label.choice")
    assert labels.count() > 0
    sizes = []
    for n in range(labels.count()):
        box = labels.nth(n).bounding_box()
        assert box is not None
        sizes.append((box["width"], box["height"]))
    boxes = page.locator("#meals input[type=checkbox]").first.bounding_box()
    assert boxes is not None and boxes["width"] >= 24 and boxes["height"] >= 24, boxes
    assert min(h for _, h in sizes) >= 44, sizes
    assert min(w for w, _ in sizes) >= 44, sizes
    print(f"smallest label {min(sizes)}; checkbox {boxes['width']}x{boxes['height']}")


def test_while_the_canteen_is_down_saving_and_paying_are_disabled_with_the_reason(
    page: Page, portal: LivePortal
) -> None:
    sign_in_by_clicking(page, "marie-therese")
    page.goto(CANTEEN)  # read once while it works
    portal.sandbox.fault("canteen", "bordeaux", "error500")
    try:
        page.goto(CANTEEN)
        expect(page.locator("main")).to_contain_text("Voici les dernières informations connues")
        save = page.locator("#meals").get_by_role("button", name="Enregistrer les repas")
        expect(save).to_be_disabled()
        expect(save).to_have_accessible_description(
            "Les repas ne peuvent pas être modifiés pour le moment\u00a0: le service est "
            "indisponible. Réessayez dans quelques minutes."
        )
        expect(page.locator("#meals input[type=checkbox]")).to_have_count(0)
        pay = page.get_by_role("button", name="Payer", exact=False).first
        expect(pay).to_be_disabled()
        expect(pay).to_have_accessible_description(
            "Les factures ne peuvent pas être payées pour le moment\u00a0: le service est "
            "indisponible. Réessayez dans quelques minutes."
        )
    finally:
        portal.sandbox.fault("canteen", "bordeaux", None)
