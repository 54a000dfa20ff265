"""The resident journeys in a real browser, over HTTP to the sandbox's back-ends: link an
account, renew a loan, book a week of meals and pay an invoice, each by clicking with
JavaScript (htmx updates the section in place, announces the result and moves the focus
to it) and without (the same forms post, the browser is sent back to the page), and
each with the keyboard alone; then renewing every loan, cancelling a hold and renewing
the housing application, with and without JavaScript. What the back-end holds
afterwards is read from the sandbox's own API, never from the portal's page only."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from sandbox.backends.demo import DEMO_ACCOUNTS, DemoAccount
from tests.browser.support import (
    ConsoleWatch,
    LivePortal,
    focus_is_visible,
    focused_element,
    sign_in_by_clicking,
    tab_to,
)

pytestmark = pytest.mark.browser

MERIGNAC = "/services/bib-merignac"
CANTEEN = "/services/cantine-bordeaux"
MARIE_PATRON = "mer-p-0417"
MARIE_FAMILY = "fam-4521"
HUGO = "enf-4521-2"
JS = pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])


@pytest.fixture
def portal(services_portal: LivePortal) -> LivePortal:
    """In this module the portal reads the sandbox's back-ends."""
    return services_portal


def open_page(new_context: Callable[..., BrowserContext], javascript: bool) -> Page:
    return new_context(java_script_enabled=javascript).new_page()


# -- what the sandbox's back-ends hold ---------------------------------------------------------


def backend_get(portal: LivePortal, path: str, key: str) -> dict:
    r = portal.sandbox.http.get(portal.sandbox.url + path, headers={"X-Api-Key": key})
    r.raise_for_status()
    return r.json()


def marie_loans(portal: LivePortal) -> dict[str, dict]:
    """Marie-Thérèse's loans at Mérignac, by title, as the library itself says."""
    body = backend_get(
        portal,
        f"/library/merignac/v1/patrons/{MARIE_PATRON}/loans",
        "sandbox-library-merignac-key",
    )
    return {loan["title"]: loan for loan in body["loans"]}


def hugo_days(portal: LivePortal, month: str) -> dict[str, dict]:
    body = backend_get(
        portal,
        f"/canteen/bordeaux/v1/families/{MARIE_FAMILY}/children/{HUGO}/reservations?month={month}",
        "sandbox-canteen-bordeaux-key",
    )
    return {day["date"]: day for day in body["days"]}


def marie_invoices(portal: LivePortal) -> dict[str, dict]:
    body = backend_get(
        portal,
        f"/canteen/bordeaux/v1/families/{MARIE_FAMILY}/invoices",
        "sandbox-canteen-bordeaux-key",
    )
    return {invoice["invoice_id"]: invoice for invoice in body["invoices"]}


def cancel_at_the_canteen(portal: LivePortal, days: list[str]) -> None:
    """Arrange, through the canteen's own API: Hugo has no meal on these days."""
    r = portal.sandbox.http.post(
        f"{portal.sandbox.url}/canteen/bordeaux/v1/families/{MARIE_FAMILY}/children/{HUGO}/reservations",
        headers={"X-Api-Key": "sandbox-canteen-bordeaux-key", "Idempotency-Key": uuid.uuid4().hex},
        json={"changes": [{"date": day, "book": False} for day in days]},
    )
    r.raise_for_status()
    assert all(result["applied"] for result in r.json()["results"]), r.json()


def next_open_week(portal: LivePortal) -> tuple[str, list[str]]:
    """The month and school days (Monday to Friday) of the first week from next Monday
    on whose every school day Hugo's booking can still be changed."""
    monday = date.today() + timedelta(days=7 - date.today().weekday())
    for _ in range(6):
        week = [monday + timedelta(days=i) for i in range(5)]
        month = week[0].strftime("%Y-%m")
        if all(d.strftime("%Y-%m") == month for d in week):
            days = hugo_days(portal, month)
            school = [d.isoformat() for d in week if days[d.isoformat()]["bookable"]]
            if len(school) >= 3:
                return month, school
        monday += timedelta(days=7)
    raise AssertionError("no open week in the next six")


# -- what a person notices ----------------------------------------------------------------------


def mark_the_document(page: Page) -> None:
    """Leave a mark in the page: it survives an htmx swap, not a navigation."""
    page.evaluate("() => { window.__samePage = true; }")


def is_same_document(page: Page) -> bool:
    return page.evaluate("() => window.__samePage === true")


def expect_result_announced_and_focused(
    page: Page, section: Locator, text: str, by_keyboard: bool = False
) -> None:
    """htmx swapped the section: its status region says what happened and has the focus,
    so a screen reader reads it out at once and the keyboard goes on from there. After
    a key press the focus shows (after a click, chromium's ``:focus-visible`` rightly
    leaves a region that is not a control unmarked)."""
    result = section.locator("[role=status]")
    expect(result).to_contain_text(text)
    expect(result).to_be_focused()
    if by_keyboard:
        focused = focused_element(page)
        assert focused is not None and focus_is_visible(focused), focused


def expect_flashed(page: Page, text: str) -> None:
    expect(page.locator(".flashes .notice").filter(has_text=text)).to_have_count(1)


# -- linking an account -------------------------------------------------------------------------


def eloise_merignac() -> DemoAccount:
    return next(
        a for a in DEMO_ACCOUNTS["eloise"] if a.kind == "library" and a.tenant == "merignac"
    )


def start_linking_merignac(page: Page) -> None:
    """From Éloïse's empty dashboard to Mérignac's proof form, by clicking."""
    expect(page.get_by_text("Aucun service n'est encore relié à votre compte.")).to_be_visible()
    page.get_by_role("link", name="Relier un compte").click()
    page.get_by_role("link", name="Relier mon compte – Médiathèque de Mérignac").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Médiathèque de Mérignac")


@JS
def test_a_resident_links_a_library_card_after_a_wrong_pin(
    new_context: Callable[..., BrowserContext],
    portal: LivePortal,
    console: ConsoleWatch,
    javascript: bool,
) -> None:
    page = open_page(new_context, javascript)
    account = eloise_merignac()
    sign_in_by_clicking(page, "eloise")
    start_linking_merignac(page)

    # The consent says what the portal will read and keep before anything is typed.
    expect(page.locator(".consent")).to_contain_text("jamais votre code")

    page.get_by_label("Numéro de carte de bibliothèque").fill(account.proof["card_number"])
    page.get_by_label("Code PIN", exact=True).fill("0000")
    page.get_by_role("button", name="Relier mon compte").click()

    # Wrong PIN: the problem is said first, with the focus on it; nothing is linked.
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(page).to_have_title(re.compile("^Erreur"))
    # What was typed is kept, except the secret.
    expect(page.get_by_label("Numéro de carte de bibliothèque")).to_have_value(
        account.proof["card_number"]
    )
    expect(page.get_by_label("Code PIN", exact=True)).to_have_value("")

    page.get_by_label("Code PIN", exact=True).fill(account.proof["pin"])
    page.get_by_role("button", name="Relier mon compte").click()
    expect(page).to_have_url(portal.url + MERIGNAC)
    expect_flashed(page, "Votre compte « Médiathèque de Mérignac » est relié.")
    expect(page.get_by_role("heading", name="Mes prêts")).to_be_visible()

    # The dashboard now shows the service, and the activity both attempts.
    page.goto("/")
    expect(page.locator("#card-bib-merignac")).to_be_visible()
    page.goto("/account/activity")
    expect(page.locator("main")).to_contain_text("Médiathèque de Mérignac")
    assert not console.errors, "\n".join(console.errors)


def test_a_resident_links_a_library_card_with_the_keyboard_alone(
    page: Page, portal: LivePortal
) -> None:
    account = eloise_merignac()
    sign_in_by_clicking(page, "eloise")

    tab_to(page, page.get_by_role("link", name="Relier un compte"))
    page.keyboard.press("Enter")
    tab_to(page, page.get_by_role("link", name="Relier mon compte – Médiathèque de Mérignac"))
    page.keyboard.press("Enter")
    tab_to(page, page.get_by_label("Numéro de carte de bibliothèque"))
    page.keyboard.type(account.proof["card_number"])
    tab_to(page, page.get_by_label("Code PIN", exact=True))
    page.keyboard.type(account.proof["pin"])
    page.keyboard.press("Enter")  # submits the form from its last field

    expect(page).to_have_url(portal.url + MERIGNAC)
    expect_flashed(page, "Votre compte « Médiathèque de Mérignac » est relié.")


# -- renewing a loan ----------------------------------------------------------------------------


def first_renewable(page: Page) -> tuple[Locator, str]:
    """The first "Prolonger" button of the loans table, and its loan's title."""
    button = page.locator("#loans tbody").get_by_role("button").first
    name = button.inner_text()
    match = re.search(r"« (.+) »", name)
    assert match, name
    return button, match.group(1)


@JS
def test_a_resident_renews_a_loan(
    new_context: Callable[..., BrowserContext],
    portal: LivePortal,
    console: ConsoleWatch,
    javascript: bool,
) -> None:
    page = open_page(new_context, javascript)
    sign_in_by_clicking(page, "marie-therese")
    page.goto(MERIGNAC)
    button, title = first_renewable(page)
    before = marie_loans(portal)[title]
    assert before["renewable"], before

    mark_the_document(page)
    button.click()

    said = f"« {title} » est prolongé jusqu'au"
    if javascript:
        expect_result_announced_and_focused(page, page.locator("#loans"), said)
        assert is_same_document(page), "htmx should have updated the loans in place"
    else:
        expect(page).to_have_url(portal.url + MERIGNAC)
        expect_flashed(page, said)
        assert not is_same_document(page)

    after = marie_loans(portal)[title]
    assert after["due_date"] > before["due_date"], (before, after)
    assert after["renewals_done"] == before["renewals_done"] + 1, (before, after)

    # Reloading the page sends nothing again: one renewal.
    page.reload()
    assert marie_loans(portal)[title]["renewals_done"] == after["renewals_done"]
    page.goto("/account/activity")
    expect(page.locator("main")).to_contain_text(title)
    assert not console.errors, "\n".join(console.errors)


def test_a_resident_renews_a_loan_with_the_keyboard_alone(page: Page, portal: LivePortal) -> None:
    sign_in_by_clicking(page, "marie-therese")
    page.goto(MERIGNAC)
    button, title = first_renewable(page)
    before = marie_loans(portal)[title]

    tab_to(page, button)
    page.keyboard.press("Enter")

    expect_result_announced_and_focused(
        page, page.locator("#loans"), f"« {title} » est prolongé jusqu'au", by_keyboard=True
    )
    assert marie_loans(portal)[title]["due_date"] > before["due_date"]
    # The focus goes on from the result, into the updated table.
    page.keyboard.press("Tab")
    focused = focused_element(page)
    assert focused is not None and focus_is_visible(focused), focused


def koha_due_dates(portal: LivePortal) -> dict[str, str]:
    """Marie-Thérèse's loans at Bordeaux (Koha), by item: due dates, as Koha says."""
    r = portal.sandbox.http.get(
        portal.sandbox.url + "/koha/bordeaux/api/v1/checkouts",
        params={"patron_id": "51"},
        auth=("portal", "sandbox-koha-bordeaux-secret"),
    )
    r.raise_for_status()
    return {str(c["checkout_id"]): c["due_date"] for c in r.json()}


@JS
def test_a_resident_renews_all_loans_and_sees_each_outcome(
    new_context: Callable[..., BrowserContext], portal: LivePortal, javascript: bool
) -> None:
    page = open_page(new_context, javascript)
    sign_in_by_clicking(page, "marie-therese")
    page.goto("/services/bib-bordeaux")
    before = koha_due_dates(portal)
    renew_all = page.locator("#loans form[action$='/loans/renew'] button")
    mark_the_document(page)
    renew_all.click()

    # One line per loan the form offered (the one another reader reserved was not: Koha
    # says so on the page); a refusal's reason per loan is tested over HTTP.
    renewed = (
        "« L'Élégance du hérisson » est prolongé jusqu'au",
        "« Vingt mille lieues sous les mers » est prolongé jusqu'au",
    )
    if javascript:
        result = page.locator("#loans [role=status]")
        expect(result).to_be_focused()
        assert is_same_document(page)
    else:
        result = page.locator(".flashes")
        assert not is_same_document(page)
    expect(result).to_contain_text("2 prêts sur 2 ont été prolongés.")
    for line in renewed:
        expect(result.get_by_text(line)).to_have_count(1)
    after = koha_due_dates(portal)
    assert after["9003"] == before["9003"], "the reserved loan is not renewed"
    assert after["9004"] > before["9004"], (before, after)


@JS
def test_renewing_all_from_a_page_left_open_says_which_loan_was_refused_and_why(
    new_context: Callable[..., BrowserContext], portal: LivePortal, javascript: bool
) -> None:
    context = new_context(java_script_enabled=javascript)
    page = context.new_page()
    sign_in_by_clicking(page, "marie-therese")
    page.goto(MERIGNAC)
    before = marie_loans(portal)

    # Meanwhile, in another tab, « L'Anomalie » is renewed for the last time allowed.
    other = context.new_page()
    other.goto(MERIGNAC)
    other.get_by_role("button", name="Prolonger « L'Anomalie »").click()
    expect(other.get_by_text("« L'Anomalie » est prolongé jusqu'au")).to_be_visible()
    other.close()

    # The first tab still offers to renew both; the library refuses one, with its reason.
    page.locator("#loans form[action$='/loans/renew'] button").click()
    result = page.locator("#loans [role=status]" if javascript else ".flashes")
    expect(result).to_contain_text("1 prêt sur 2 a été prolongé.")
    expect(result).to_contain_text(
        "« L'Anomalie » n'a pas pu être prolongé : Vous avez déjà prolongé ce document "
        "le nombre de fois autorisé."
    )
    expect(result).to_contain_text("« Astérix chez les Pictes » est prolongé jusqu'au")
    if javascript:
        expect(result).to_be_focused()
    after = marie_loans(portal)
    assert after["L'Anomalie"]["renewals_done"] == before["L'Anomalie"]["renewals_done"] + 1
    asterix = "Astérix chez les Pictes"
    assert after[asterix]["renewals_done"] == before[asterix]["renewals_done"] + 1


@JS
def test_a_resident_cancels_a_hold_after_confirming(
    new_context: Callable[..., BrowserContext], portal: LivePortal, javascript: bool
) -> None:
    page = open_page(new_context, javascript)
    sign_in_by_clicking(page, "marie-therese")
    page.goto(MERIGNAC)
    assert "mer-h-0417-2" in marie_hold_ids(portal)
    page.get_by_role("link", name="Annuler cette réservation : « Petit Pays »").click()

    # The question first: in place with JavaScript (and the focus on it), on its own
    # page without. Nothing is cancelled yet.
    question = page.get_by_text("Annuler votre réservation de « Petit Pays » ?")
    expect(question).to_be_visible()
    if javascript:
        expect(page).to_have_url(portal.url + MERIGNAC)
        expect(page.locator(":focus")).to_contain_text("Annuler votre réservation")
    else:
        expect(page).to_have_url(re.compile(r"/holds/mer-h-0417-2/cancel$"))
    assert "mer-h-0417-2" in marie_hold_ids(portal)

    page.get_by_role("button", name="Oui, annuler la réservation").click()
    said = "Votre réservation de « Petit Pays » est annulée."
    if javascript:
        expect_result_announced_and_focused(page, page.locator("#holds"), said)
    else:
        expect(page).to_have_url(portal.url + MERIGNAC)
        expect_flashed(page, said)
    expect(page.locator("#holds ul.list")).not_to_contain_text("Petit Pays")
    assert "mer-h-0417-2" not in marie_hold_ids(portal)


def marie_hold_ids(portal: LivePortal) -> set[str]:
    body = backend_get(
        portal,
        f"/library/merignac/v1/patrons/{MARIE_PATRON}/holds",
        "sandbox-library-merignac-key",
    )
    return {hold["hold_id"] for hold in body["holds"]}


@JS
def test_a_resident_renews_the_housing_application_in_its_window(
    new_context: Callable[..., BrowserContext], portal: LivePortal, javascript: bool
) -> None:
    page = open_page(new_context, javascript)
    sign_in_by_clicking(page, "marie-therese")
    page.goto("/services/logement-metropole")
    before = marie_application(portal)
    page.get_by_role("link", name="Renouveler ma demande").click()
    question = page.get_by_text(f"Renouveler votre demande n° {before['number']} ?")
    expect(question).to_be_visible()
    if javascript:
        expect(page.locator(":focus")).to_contain_text("Renouveler votre demande")
    page.get_by_role("button", name="Oui, renouveler ma demande").click()

    said = "Votre demande est renouvelée jusqu'au"
    if javascript:
        expect_result_announced_and_focused(page, page.locator("#application"), said)
    else:
        expect_flashed(page, said)
    after = marie_application(portal)
    assert after["expires_on"] > before["expires_on"], (before, after)


def marie_application(portal: LivePortal) -> dict:
    return backend_get(
        portal, "/housing/metropole/v1/applications/dem-0871", "sandbox-housing-metropole-key"
    )


# -- booking a week of meals --------------------------------------------------------------------


def meals_of_hugo(page: Page) -> Locator:
    return page.locator(f"#meals-{HUGO}")


def day_box(page: Page, day: str) -> Locator:
    return page.locator(f"#meal-{HUGO}-{day}")


@JS
def test_a_resident_books_a_week_of_meals(
    new_context: Callable[..., BrowserContext],
    portal: LivePortal,
    console: ConsoleWatch,
    javascript: bool,
) -> None:
    month, week = next_open_week(portal)
    cancel_at_the_canteen(portal, week)
    page = open_page(new_context, javascript)
    sign_in_by_clicking(page, "marie-therese")
    page.goto(f"{CANTEEN}/meals?month={month}")

    for day in week:
        expect(day_box(page, day)).not_to_be_checked()
        day_box(page, day).check()
    mark_the_document(page)
    page.locator("#meals").get_by_role("button", name="Enregistrer les repas").click()

    if javascript:
        expect_result_announced_and_focused(
            page, page.locator("#meals"), f"{len(week)} modifications enregistrées"
        )
        assert is_same_document(page), "htmx should have updated the meals in place"
    else:
        expect(page).to_have_url(re.compile(re.escape(f"{portal.url}{CANTEEN}")))
        expect_flashed(page, f"{len(week)} modifications enregistrées")
    for day in week:
        expect(day_box(page, day)).to_be_checked()

    days = hugo_days(portal, month)
    assert [days[day]["booked"] for day in week] == [True] * len(week), days
    page.goto("/account/activity")
    expect(page.locator("main")).to_contain_text("Hugo")
    assert not console.errors, "\n".join(console.errors)


def test_a_resident_books_a_week_of_meals_with_the_keyboard_alone(
    page: Page, portal: LivePortal
) -> None:
    month, week = next_open_week(portal)
    cancel_at_the_canteen(portal, week)
    sign_in_by_clicking(page, "marie-therese")
    page.goto(f"{CANTEEN}/meals?month={month}")

    for day in week:
        tab_to(page, day_box(page, day), max_presses=200)
        page.keyboard.press("Space")
        expect(day_box(page, day)).to_be_checked()
    tab_to(page, page.locator("#meals button[type=submit]"), max_presses=200)
    page.keyboard.press("Enter")

    expect_result_announced_and_focused(
        page, page.locator("#meals"), "modifications enregistrées", by_keyboard=True
    )
    days = hugo_days(portal, month)
    assert all(days[day]["booked"] for day in week), days


# -- paying an invoice ----------------------------------------------------------------------------

UNPAID = "fac-4521-2611"
UNPAID_LABEL = "Restauration scolaire — novembre 2026"


def pay_button(page: Page) -> Locator:
    return page.get_by_role("button", name=re.compile(r"^Payer .* – " + re.escape(UNPAID_LABEL)))


def at_payfip(page: Page) -> None:
    expect(page).to_have_url(re.compile(re.escape("/payfip/pay/")))
    expect(page.get_by_role("heading", level=1)).to_have_text("Paiement de votre facture")


@JS
def test_a_resident_pays_an_invoice(
    new_context: Callable[..., BrowserContext],
    portal: LivePortal,
    console: ConsoleWatch,
    javascript: bool,
) -> None:
    page = open_page(new_context, javascript)
    sign_in_by_clicking(page, "marie-therese")
    page.goto(CANTEEN)
    assert marie_invoices(portal)[UNPAID]["paid_on"] is None

    pay_button(page).click()
    # The portal's hand-off page leaves for the provider's by itself.
    at_payfip(page)
    page.get_by_role("button", name=re.compile(r"^Payer ")).click()

    # Back on the portal, which asked the back-end itself before saying "paid".
    expect(page.get_by_role("heading", level=1)).to_have_text("Paiement confirmé")
    expect(page.locator(".notice--success")).to_contain_text("votre facture est réglée")
    assert marie_invoices(portal)[UNPAID]["paid_on"] is not None

    page.get_by_role("link", name="Revenir à mes factures").click()
    row = page.locator("tr").filter(has_text=UNPAID_LABEL)
    expect(row).to_contain_text("payée")
    expect(pay_button(page)).to_have_count(0)
    assert not console.errors, "\n".join(console.errors)


@pytest.mark.parametrize(
    ("choice", "title", "notice"),
    [
        ("Simuler un refus de paiement", "Paiement refusé", ".notice--error"),
        ("Abandonner", "Paiement abandonné", ".notice--warning"),
    ],
)
def test_a_refused_or_abandoned_payment_says_so_and_the_invoice_stays_to_pay(
    page: Page, portal: LivePortal, choice: str, title: str, notice: str
) -> None:
    sign_in_by_clicking(page, "marie-therese")
    page.goto(CANTEEN)
    pay_button(page).click()
    at_payfip(page)
    page.get_by_role("button", name=choice).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.locator(notice)).to_be_visible()
    expect(page.locator("main")).to_contain_text("Votre facture reste à payer.")
    assert marie_invoices(portal)[UNPAID]["paid_on"] is None
    page.get_by_role("link", name="Revenir à mes factures").click()
    expect(pay_button(page)).to_be_visible()


def test_a_resident_pays_an_invoice_with_the_keyboard_alone(page: Page, portal: LivePortal) -> None:
    sign_in_by_clicking(page, "marie-therese")
    page.goto(CANTEEN)

    tab_to(page, pay_button(page), max_presses=300)
    page.keyboard.press("Enter")
    at_payfip(page)
    tab_to(page, page.get_by_role("button", name=re.compile(r"^Payer ")))
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_have_text("Paiement confirmé")
    assert marie_invoices(portal)[UNPAID]["paid_on"] is not None


def payments_at_the_provider(portal: LivePortal, invoice_id: str) -> list[dict]:
    listed = portal.sandbox.http.get(portal.sandbox.url + "/_admin/payfip").json()["payments"]
    return [p for p in listed if p["invoice_id"] == invoice_id]


def test_two_tabs_paying_one_invoice_lead_to_one_payment(
    page: Page, portal: LivePortal, console: ConsoleWatch
) -> None:
    sign_in_by_clicking(page, "marie-therese")
    page.goto(CANTEEN)
    other_tab = page.context.new_page()
    other_tab.goto(CANTEEN)
    portal.sandbox.fault("canteen", "bordeaux", None, latency_ms=300)

    # Both tabs' "Payer", the second while the first is still being answered.
    pay_button(other_tab).click(no_wait_after=True)
    pay_button(page).click()
    at_payfip(page)
    at_payfip(other_tab)
    portal.sandbox.fault("canteen", "bordeaux", None)
    assert page.url == other_tab.url
    assert len(payments_at_the_provider(portal, UNPAID)) == 1

    page.get_by_role("button", name=re.compile(r"^Payer ")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Paiement confirmé")
    other_tab.reload()
    expect(other_tab.get_by_role("heading", level=1)).to_have_text("Paiement terminé")
    expect(other_tab.get_by_role("button", name=re.compile(r"^Payer "))).to_have_count(0)
    assert [p["state"] for p in payments_at_the_provider(portal, UNPAID)] == ["paid"]
    assert not console.errors, "\n".join(console.errors)


def test_a_payment_the_provider_forgot_is_abandoned_and_the_invoice_can_be_paid_again(
    page: Page, portal: LivePortal
) -> None:
    sign_in_by_clicking(page, "marie-therese")
    portal.sandbox.http.post(
        portal.sandbox.url + "/_admin/payfip", json={"session_lifetime_s": 0.5}
    ).raise_for_status()
    page.goto(CANTEEN)
    pay_button(page).click()
    at_payfip(page)
    page.wait_for_timeout(600)  # the resident left the payment page open too long
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Paiement introuvable")

    page.goto(CANTEEN)
    row = page.locator("tr").filter(has_text=UNPAID_LABEL)
    expect(row).to_contain_text("paiement en cours")
    row.get_by_role("link", name=re.compile("Voir où en est le paiement")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Paiement abandonné")
    expect(page.locator("main")).to_contain_text("Votre facture reste à payer.")
    page.get_by_role("link", name="Revenir à mes factures").click()
    expect(pay_button(page)).to_be_visible()

    portal.sandbox.http.post(
        portal.sandbox.url + "/_admin/payfip", json={"session_lifetime_s": None}
    ).raise_for_status()
    pay_button(page).click()
    at_payfip(page)
    page.get_by_role("button", name=re.compile(r"^Payer ")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Paiement confirmé")
