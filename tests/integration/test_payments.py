"""A resident downloads and pays a canteen invoice — over real HTTP to the sandbox's
canteen back-end and its PayFiP-like page, which notifies the portal served on a real
loopback port, as the provider would. Refusals, abandons, a browser that never comes
back, replayed forms, forged notifications and outages included."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.extensions import db
from portal.models import Citizen, JournalEntry, Payment
from tests.support import (
    DEMO_LINKS_FILE,
    Authorize,
    Sandbox,
    ServerThread,
    as_answered,
    choose_identity,
    empty_tables,
    http_client,
    portal_settings,
    sign_in,
)

CANTEEN = "/services/cantine-bordeaux"
UNPAID = "fac-4521-2611"  # Marie-Thérèse's, 88,35 €
OTHER_UNPAID = "fac-4521-2612"
PAID = "fac-4521-2610"
SOMEONE_ELSES = "fac-6630-2611"  # the d'Artagnan-Lévêque family's
FORM_RE = re.compile(
    r'<form method="post" action="(?P<action>[^"]+/invoices/(?P<invoice>[^/"]+)/pay)">'
    r'.*?name="csrf_token" value="(?P<csrf>[^"]+)"'
    r'.*?name="idem" value="(?P<idem>[^"]+)"',
    re.S,
)


@dataclass
class LivePortal:
    app: Flask
    url: str


@pytest.fixture
def portal(database_url: str, fc_sandbox: Sandbox, connectors_file: str) -> Iterator[LivePortal]:
    """The portal served on a loopback port that is also its ``base_url``, so that the
    sandbox's payment page notifies it for real; the resident's browser is its test
    client."""
    target: dict[str, Flask] = {}
    server = ServerThread(lambda environ, start: target["app"](environ, start))
    app = create_app(
        portal_settings(
            database_url,
            fc_sandbox.issuer,
            base_url=server.url,
            connectors_file=connectors_file,
            demo_links_file=DEMO_LINKS_FILE,
        )
    )
    target["app"] = app
    server.start()
    yield LivePortal(app, server.url)
    server.stop()
    app.extensions["connectors"].close()
    empty_tables(app)
    with app.app_context():
        db.engine.dispose()  # the concurrent tests open many connections: give them back


@pytest.fixture
def browser(portal: LivePortal) -> FlaskClient:
    return portal.app.test_client()


# -- the resident's side -------------------------------------------------------------------


def text(response: Any) -> str:
    return unescape(response.get_data(as_text=True))


def pay_forms(browser: FlaskClient) -> dict[str, dict[str, str]]:
    """The pay forms on the canteen page, by invoice id."""
    html = browser.get(CANTEEN).get_data(as_text=True)
    assert "Mes factures" in html, "the canteen page shows no invoices"
    return {m["invoice"]: m.groupdict() for m in FORM_RE.finditer(html)}


def invoice_row(browser: FlaskClient, invoice_id: str) -> str:
    html = browser.get(CANTEEN).get_data(as_text=True)
    rows = [row for row in html.split("<tr>") if f"/invoices/{invoice_id}" in row]
    assert len(rows) == 1, f"no row for {invoice_id}"
    return unescape(rows[0])


def submit(browser: FlaskClient, form: dict[str, str]):
    return browser.post(form["action"], data={"csrf_token": form["csrf"], "idem": form["idem"]})


def start_paying(browser: FlaskClient, invoice_id: str = UNPAID) -> str:
    """Click "Payer" and follow the portal to the provider: the payment page's URL."""
    r = submit(browser, pay_forms(browser)[invoice_id])
    assert r.status_code == 303, text(r)
    go = browser.get(r.headers["Location"])
    assert go.status_code == 200
    assert "Continuer vers la page de paiement" in text(go)
    refresh = go.headers["Refresh"]
    assert refresh.startswith("0; url=")
    url = refresh.removeprefix("0; url=")
    assert f'href="{url}"' in go.get_data(as_text=True)
    return url


def payment_id_of(payfip_url: str) -> str:
    return payfip_url.rsplit("/", 1)[1]


def choose_on_payfip(payfip_url: str, action: str) -> httpx.Response:
    """The resident on the provider's page: ``pay``, ``refuse`` or ``abandon``."""
    with http_client() as http:
        page = http.get(payfip_url)
        assert page.status_code == 200 and "Paiement de votre facture" in page.text
        return http.post(payfip_url, data={"action": action})


def come_back(browser: FlaskClient, decision: httpx.Response):
    """The browser follows the provider's redirect back to the portal."""
    assert decision.status_code == 303, decision.text
    location = urlsplit(decision.headers["Location"])
    assert location.path == "/payments/return"
    return browser.get(f"{location.path}?{location.query}")


# -- what the portal recorded --------------------------------------------------------------


def payments(app: Flask) -> list[Payment]:
    with app.app_context():
        rows = list(db.session.execute(db.select(Payment).order_by(Payment.id)).scalars())
        db.session.expunge_all()
        return rows


def payment_state(app: Flask, payment_id: str) -> str:
    with app.app_context():
        return db.session.execute(
            db.select(Payment.state).filter_by(payment_id=payment_id)
        ).scalar_one()


def activity(app: Flask) -> list[tuple[str, str, str, str, dict]]:
    """The resident's journal of payments: (outcome, actor kind, instance, code, params)."""
    with app.app_context():
        return [
            (e.outcome, e.actor_kind, e.connector_instance, e.code, e.params or {})
            for e in db.session.execute(
                db.select(JournalEntry).filter_by(action="pay_invoice").order_by(JournalEntry.id)
            ).scalars()
        ]


def eventually(check: Callable[[], bool], timeout_s: float = 8.0) -> None:
    end = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < end, "it never happened"
        time.sleep(0.05)


def notifications(fc_sandbox: Sandbox) -> list[dict[str, Any]]:
    return fc_sandbox.http.get(fc_sandbox.url + "/_admin/payfip").json()["notifications"]


def delivered(fc_sandbox: Sandbox, count: int = 1) -> Callable[[], bool]:
    def check() -> bool:
        sent = notifications(fc_sandbox)
        return len(sent) >= count and all(n["status"] is not None for n in sent)

    return check


# -- paying ----------------------------------------------------------------------------------


def test_resident_sees_their_invoices_with_what_is_left_to_pay(browser: FlaskClient) -> None:
    sign_in(browser, "marie-therese")
    assert "à payer" in invoice_row(browser, UNPAID)
    assert "Payer 88,35" in invoice_row(browser, UNPAID)
    paid = invoice_row(browser, PAID)
    assert "payée" in paid and "Payer" not in paid
    assert "Télécharger la facture (PDF)" in paid
    # The oldest invoice's document is no longer online: no link to a dead end.
    assert "Document non disponible en ligne" in text(browser.get(CANTEEN))
    assert set(pay_forms(browser)) == {UNPAID, OTHER_UNPAID}


def test_resident_pays_an_invoice_and_sees_it_paid(
    browser: FlaskClient, portal: LivePortal, fc_sandbox: Sandbox
) -> None:
    sign_in(browser, "marie-therese")
    payfip = start_paying(browser)
    payment_id = payment_id_of(payfip)
    assert "paiement en cours" in invoice_row(browser, UNPAID)

    result = come_back(browser, choose_on_payfip(payfip, "pay"))
    assert result.status_code == 200
    assert "Paiement confirmé" in text(result)
    assert "88,35" in text(result)
    assert "payée" in invoice_row(browser, UNPAID)
    assert payment_state(portal.app, payment_id) == "paid"

    # The provider's notification arrived too, and changed nothing more.
    eventually(delivered(fc_sandbox))
    assert notifications(fc_sandbox)[0]["status"] == 204
    # The resident's activity: the confirmation only (by whichever of the notification
    # and the browser's return asked the back-end first), once; starting is not an outcome.
    assert [(outcome, code) for outcome, _, _, code, _ in activity(portal.app)] == [
        ("success", "payment_paid")
    ]
    assert activity(portal.app)[0][4]["amount_cents"] == 8835


def test_resident_whose_payment_is_refused_can_pay_again(
    browser: FlaskClient, portal: LivePortal
) -> None:
    sign_in(browser, "marie-therese")
    payfip = start_paying(browser)
    page = text(come_back(browser, choose_on_payfip(payfip, "refuse")))
    assert "Paiement refusé : Paiement refusé par la banque" in page
    assert "Votre facture reste à payer" in page
    row = invoice_row(browser, UNPAID)
    assert "à payer" in row and "payée" not in row
    assert UNPAID in pay_forms(browser)
    assert [(a[0], a[3]) for a in activity(portal.app)] == [("refused", "payment_refused")]
    assert "refusé par la banque" in activity(portal.app)[-1][4]["reason"]


def test_resident_who_abandons_the_payment_finds_the_invoice_still_to_pay(
    browser: FlaskClient, portal: LivePortal
) -> None:
    sign_in(browser, "marie-therese")
    payfip = start_paying(browser)
    page = text(come_back(browser, choose_on_payfip(payfip, "abandon")))
    assert "Paiement abandonné" in page
    assert "à payer" in invoice_row(browser, UNPAID)
    assert [(a[0], a[3]) for a in activity(portal.app)] == [("failure", "payment_abandoned")]


def test_the_notification_alone_marks_the_invoice_paid_when_the_browser_never_returns(
    browser: FlaskClient, portal: LivePortal, fc_sandbox: Sandbox
) -> None:
    sign_in(browser, "marie-therese")
    fc_sandbox.http.post(
        fc_sandbox.url + "/_admin/payfip", json={"suppress_redirect": True}
    ).raise_for_status()
    payfip = start_paying(browser)
    decision = choose_on_payfip(payfip, "pay")
    assert decision.status_code == 200 and "vous pouvez fermer cette page" in decision.text

    eventually(delivered(fc_sandbox))
    assert notifications(fc_sandbox)[0]["status"] == 204
    assert payment_state(portal.app, payment_id_of(payfip)) == "paid"
    assert "payée" in invoice_row(browser, UNPAID)
    outcome, actor_kind, _, code, _ = activity(portal.app)[-1]
    assert (outcome, actor_kind, code) == ("success", "system", "payment_paid")


def test_resident_back_before_the_provider_confirms_is_told_to_wait(
    browser: FlaskClient, portal: LivePortal
) -> None:
    sign_in(browser, "marie-therese")
    payfip = start_paying(browser)
    # Straight back to the portal, without choosing anything on the provider's page.
    page = text(browser.get(f"/payments/return?payment_id={payment_id_of(payfip)}"))
    assert "Paiement en cours de confirmation" in page
    assert "Ne payez pas une deuxième fois" in page
    assert "Reprendre le paiement" in page
    assert "paiement en cours" in invoice_row(browser, UNPAID)
    # Clicking "Payer" again, from an old tab, leads to the same payment, not a second one.
    assert UNPAID not in pay_forms(browser)


def spaced(response: Any) -> str:
    """The page's text with its non-breaking spaces (before "€", for one) as spaces."""
    return text(response).replace("\u00a0", " ").replace("\u202f", " ")


def test_a_payment_waiting_for_its_confirmation_is_not_counted_or_listed_as_to_pay(
    browser: FlaskClient, portal: LivePortal
) -> None:
    sign_in(browser, "marie-therese")
    card = spaced(browser.get(f"{CANTEEN}/card"))
    assert "2 factures à payer (112,95 €)" in card  # 88,35 € + 24,60 €
    todo = spaced(browser.get("/account/todo"))
    assert "Payer « Restauration scolaire — novembre 2026 » (88,35 €)" in todo

    start_paying(browser)  # and never back: the provider has said nothing yet

    card = spaced(browser.get(f"{CANTEEN}/card"))
    assert "1 facture à payer (24,60 €)" in card
    assert "1 paiement en cours de confirmation" in card
    todo = spaced(browser.get("/account/todo"))
    assert "Payer « Restauration scolaire — novembre 2026 »" not in todo
    assert "Payer « Accueil périscolaire du matin — novembre 2026 » (24,60 €)" in todo


def test_a_replayed_pay_form_starts_one_payment(browser: FlaskClient, portal: LivePortal) -> None:
    sign_in(browser, "marie-therese")
    form = pay_forms(browser)[UNPAID]
    first = submit(browser, form)
    again = submit(browser, form)
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    assert len(payments(portal.app)) == 1


def test_a_double_click_on_pay_starts_one_payment(
    browser: FlaskClient, portal: LivePortal, fc_sandbox: Sandbox
) -> None:
    """Two submissions of one form at the same moment, as a double click sends them."""
    sign_in(browser, "marie-therese")
    form = pay_forms(browser)[UNPAID]
    cookie = browser.get_cookie("session")
    assert cookie is not None
    # A slow back-end: the second click arrives while the first is still being answered.
    fc_sandbox.fault("canteen", "bordeaux", None, latency_ms=300)
    answers: list[httpx.Response] = []

    def click() -> None:
        with httpx.Client(base_url=portal.url, cookies={"session": cookie.value}) as http:
            answers.append(
                http.post(
                    form["action"],
                    data={"csrf_token": form["csrf"], "idem": form["idem"]},
                    timeout=10,
                )
            )

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join()
    assert [a.status_code for a in answers] == [303, 303]
    assert answers[0].headers["Location"] == answers[1].headers["Location"]
    assert len(payments(portal.app)) == 1
    assert activity(portal.app) == []  # journaled at its outcome, not at its start


def started_at_the_provider(fc_sandbox: Sandbox, invoice_id: str) -> list[dict[str, Any]]:
    """The payments the sandbox's payment service was asked for, for ``invoice_id``."""
    listed = fc_sandbox.http.get(fc_sandbox.url + "/_admin/payfip").json()["payments"]
    return [p for p in listed if p["invoice_id"] == invoice_id]


#: Tabs and devices of one resident clicking "Payer" on one invoice at the same moment.
TABS = 8


def test_several_tabs_paying_one_invoice_at_once_start_one_payment(
    portal: LivePortal, fc_sandbox: Sandbox
) -> None:
    """Truly concurrent: each tab its own signed-in session and its own form (its own
    idempotency key), all released at once against a slow back-end."""
    tabs = []
    for _ in range(TABS):
        client = portal.app.test_client()
        sign_in(client, "marie-therese")
        form = pay_forms(client)[OTHER_UNPAID]
        cookie = client.get_cookie("session")  # once it holds the form's CSRF secret
        assert cookie is not None
        tabs.append((cookie.value, form))
    assert len({form["idem"] for _, form in tabs}) == TABS
    fc_sandbox.fault("canteen", "bordeaux", None, latency_ms=300)
    barrier = threading.Barrier(TABS)
    answers: list[httpx.Response | None] = [None] * TABS

    def click(index: int) -> None:
        cookie, form = tabs[index]
        with httpx.Client(base_url=portal.url, cookies={"session": cookie}) as http:
            barrier.wait()
            answers[index] = http.post(
                form["action"],
                data={"csrf_token": form["csrf"], "idem": form["idem"]},
                timeout=30,
            )

    threads = [threading.Thread(target=click, args=(i,)) for i in range(TABS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fc_sandbox.fault("canteen", "bordeaux", None)

    assert [a.status_code if a else None for a in answers] == [303] * TABS
    started = started_at_the_provider(fc_sandbox, OTHER_UNPAID)
    assert len(started) == 1, started
    payment_id = started[0]["payment_id"]
    # Every tab is sent to that one payment.
    assert {a.headers["Location"] for a in answers if a} == {f"/payments/{payment_id}/go"}
    recorded = [(p.invoice_id, p.payment_id, p.state) for p in payments(portal.app)]
    assert recorded == [(OTHER_UNPAID, payment_id, "pending")]
    assert activity(portal.app) == []  # started, no outcome yet: nothing journaled

    # Paying it on the provider's page: paid once, recorded once.
    browser = portal.app.test_client()
    sign_in(browser, "marie-therese")
    page = text(browser.get(f"/payments/{payment_id}/go"))
    assert "Continuer vers la page de paiement" in page
    payfip = fc_sandbox.url + f"/payfip/pay/{payment_id}"
    assert "Paiement confirmé" in text(come_back(browser, choose_on_payfip(payfip, "pay")))
    assert [p["state"] for p in started_at_the_provider(fc_sandbox, OTHER_UNPAID)] == ["paid"]
    assert [p.state for p in payments(portal.app)] == ["paid"]


def test_a_payment_of_an_invoice_paid_meanwhile_is_refused_with_a_plain_message(
    browser: FlaskClient, portal: LivePortal, fc_sandbox: Sandbox
) -> None:
    sign_in(browser, "marie-therese")
    payfip = start_paying(browser, OTHER_UNPAID)
    assert "Payer 24,60" in httpx.get(payfip, timeout=10).text  # the resident's page, open
    # Meanwhile the other parent pays the same invoice, straight with the back-end.
    api = f"{fc_sandbox.url}/canteen/bordeaux/v1/families/fam-4521"
    other = fc_sandbox.http.post(
        f"{api}/invoices/{OTHER_UNPAID}/payments",
        headers={"X-Api-Key": "sandbox-canteen-bordeaux-key", "Idempotency-Key": "parent-2"},
        json={"return_url": "http://127.0.0.1:9/r", "notify_url": "http://127.0.0.1:9/n"},
    )
    assert other.status_code == 201
    paid = httpx.post(other.json()["redirect_url"], data={"action": "pay"}, timeout=10)
    assert paid.status_code == 303

    # The resident's "Payer" on the page left open takes nothing, and says why.
    decision = httpx.post(payfip, data={"action": "pay"}, timeout=10)
    page = spaced(come_back(browser, decision))
    assert "Paiement refusé" in page
    assert "Cette facture est déjà réglée : ce paiement n'a pas été effectué" in page
    assert "Cette facture est déjà réglée : vous n'avez rien d'autre à payer." in page
    assert "reste à payer" not in page
    assert "payée" in invoice_row(browser, OTHER_UNPAID)
    states = sorted(p["state"] for p in started_at_the_provider(fc_sandbox, OTHER_UNPAID))
    assert states == ["paid", "refused"]
    assert payment_state(portal.app, payment_id_of(payfip)) == "refused"


def forget_payments_after(fc_sandbox: Sandbox, seconds: float | None) -> None:
    """The payment service's session lifetime: an unfinished payment is then unknown."""
    fc_sandbox.http.post(
        fc_sandbox.url + "/_admin/payfip", json={"session_lifetime_s": seconds}
    ).raise_for_status()


def test_resident_whose_payment_the_provider_forgot_sees_it_abandoned_and_pays_again(
    browser: FlaskClient, portal: LivePortal, fc_sandbox: Sandbox
) -> None:
    sign_in(browser, "marie-therese")
    forget_payments_after(fc_sandbox, 0.3)
    forgotten = payment_id_of(start_paying(browser))
    time.sleep(0.4)  # the resident left the provider's page open too long
    assert "paiement en cours" in invoice_row(browser, UNPAID)

    page = text(browser.get(f"/payments/return?payment_id={forgotten}"))
    assert "Paiement abandonné" in page
    assert "Votre facture reste à payer" in page
    assert payment_state(portal.app, forgotten) == "abandoned"
    browser.get(f"/payments/return?payment_id={forgotten}")  # again: changes nothing
    assert (
        httpx.post(
            portal.url + "/payments/notify", json={"payment_id": forgotten}, timeout=10
        ).status_code
        == 204
    )
    row = invoice_row(browser, UNPAID)
    assert "à payer" in row and "paiement en cours" not in row

    forget_payments_after(fc_sandbox, None)
    payfip = start_paying(browser)
    assert payment_id_of(payfip) != forgotten
    assert "Paiement confirmé" in text(come_back(browser, choose_on_payfip(payfip, "pay")))
    # Journaled once per real outcome: the forgotten payment, then the one paid.
    assert [(a[0], a[3], a[4].get("forgotten")) for a in activity(portal.app)] == [
        ("failure", "payment_abandoned", True),
        ("success", "payment_paid", False),
    ]


def test_an_old_tab_pays_again_once_the_provider_forgot_the_payment(
    browser: FlaskClient, portal: LivePortal, fc_sandbox: Sandbox
) -> None:
    sign_in(browser, "marie-therese")
    old_tab = pay_forms(browser)[UNPAID]
    forget_payments_after(fc_sandbox, 0.3)
    forgotten = payment_id_of(start_paying(browser))
    time.sleep(0.4)

    r = submit(browser, old_tab)
    assert r.status_code == 303
    fresh = r.headers["Location"].split("/")[2]
    assert fresh != forgotten
    assert payment_state(portal.app, forgotten) == "abandoned"
    assert payment_state(portal.app, fresh) == "pending"
    assert len(started_at_the_provider(fc_sandbox, UNPAID)) == 1  # the forgotten one is gone


def test_a_start_left_unfinished_by_a_request_that_died_stops_blocking_the_invoice(
    browser: FlaskClient, portal: LivePortal, fc_sandbox: Sandbox
) -> None:
    sign_in(browser, "marie-therese")
    form = pay_forms(browser)[UNPAID]
    with portal.app.app_context():
        citizen_id = db.session.execute(db.select(Citizen.id)).scalar_one()
        db.session.add(
            Payment(
                citizen_id=citizen_id,
                instance_slug="cantine-bordeaux",
                invoice_id=UNPAID,
                amount_cents=8835,
                state="starting",
                created_at=datetime.now(UTC) - timedelta(minutes=3),
            )
        )
        db.session.commit()
    assert "paiement en cours" in invoice_row(browser, UNPAID)

    r = submit(browser, form)
    assert r.status_code == 303
    assert len(started_at_the_provider(fc_sandbox, UNPAID)) == 1
    assert [(p.state, p.payment_id is None) for p in payments(portal.app)] == [
        ("failed", True),
        ("pending", False),
    ]


def test_a_back_end_down_during_the_hand_off_does_nothing(
    browser: FlaskClient, portal: LivePortal, fc_sandbox: Sandbox
) -> None:
    sign_in(browser, "marie-therese")
    form = pay_forms(browser)[UNPAID]
    # The hand-off fails while the invoices can still be read.
    fc_sandbox.fault("canteen", "bordeaux", "error500", writes_only=True)
    r = submit(browser, form)
    assert r.status_code == 503
    assert "rien n'a été fait" in text(r)
    assert payments(portal.app) == []
    assert activity(portal.app) == []  # nothing was done: nothing to journal
    # Once it is back, the same form works.
    fc_sandbox.fault("canteen", "bordeaux", None)
    assert submit(browser, form).status_code == 303


def test_a_pay_form_sent_from_elsewhere_is_refused(
    browser: FlaskClient, portal: LivePortal
) -> None:
    sign_in(browser, "marie-therese")
    form = pay_forms(browser)[UNPAID]
    r = browser.post(form["action"], data={"idem": form["idem"]})  # no CSRF token
    assert r.status_code == 400
    assert "Rien n'a été enregistré" in text(r)
    assert payments(portal.app) == []


def test_paying_someone_elses_invoice_is_not_found(
    browser: FlaskClient, portal: LivePortal
) -> None:
    sign_in(browser, "marie-therese")
    form = pay_forms(browser)[UNPAID]
    for invoice_id in (SOMEONE_ELSES, "fac-0000-0000"):
        forged = {**form, "action": form["action"].replace(UNPAID, invoice_id)}
        assert submit(browser, forged).status_code == 404
    assert payments(portal.app) == []


# -- coming back -------------------------------------------------------------------------------


def test_a_payment_is_only_shown_to_the_resident_who_made_it(
    portal: LivePortal,
) -> None:
    marie = portal.app.test_client()
    sign_in(marie, "marie-therese")
    payment_id = payment_id_of(start_paying(marie))
    other = portal.app.test_client()
    sign_in(other, "dartagnan")
    assert other.get(f"/payments/return?payment_id={payment_id}").status_code == 404
    assert other.get(f"/payments/{payment_id}/go").status_code == 404
    assert other.get("/payments/return?payment_id=pay-unknown").status_code == 404
    assert other.get("/payments/return").status_code == 404
    assert payment_state(portal.app, payment_id) == "pending"


def test_resident_whose_session_expired_signs_in_again_and_sees_the_result(
    browser: FlaskClient, portal: LivePortal
) -> None:
    sign_in(browser, "marie-therese")
    payfip = start_paying(browser)
    decision = choose_on_payfip(payfip, "pay")
    browser.delete_cookie("session")  # the session ended while they were paying

    back = urlsplit(decision.headers["Location"])
    r = browser.get(f"{back.path}?{back.query}")
    assert r.status_code == 302
    login = urlsplit(r.headers["Location"])
    assert login.path == "/auth/login"
    target = parse_qs(login.query)["next"][0]
    assert target == f"{back.path}?{back.query}"

    start = browser.get("/auth/franceconnect/login", query_string={"next": target})
    url = start.headers["Location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    signed_in = browser.get(choose_identity(Authorize(url, params), "marie-therese"))
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == target
    assert "Paiement confirmé" in text(browser.get(target))


# -- the provider's notification ---------------------------------------------------------------


def test_a_forged_notification_does_not_mark_an_invoice_paid(
    browser: FlaskClient, portal: LivePortal
) -> None:
    sign_in(browser, "marie-therese")
    payment_id = payment_id_of(start_paying(browser))
    forged = httpx.post(
        portal.url + "/payments/notify",
        json={"payment_id": payment_id, "state": "paid"},
        timeout=10,
    )
    assert forged.status_code == 204  # heard, and checked with the back-end: still pending
    assert payment_state(portal.app, payment_id) == "pending"
    row = invoice_row(browser, UNPAID)
    assert "paiement en cours" in row and "payée" not in row
    assert activity(portal.app) == []  # still pending: no outcome journaled yet


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"payment_id": "pay-0000000000000000", "state": "paid"}, 404),
        ({"state": "paid"}, 400),
        ({"payment_id": ["pay-1"]}, 400),
        ("not json", 400),
    ],
)
def test_the_notification_endpoint_answers_machines_plainly(
    portal: LivePortal, body: Any, status: int
) -> None:
    if isinstance(body, str):
        r = httpx.post(portal.url + "/payments/notify", content=body, timeout=10)
    else:
        r = httpx.post(portal.url + "/payments/notify", json=body, timeout=10)
    assert r.status_code == status
    assert r.headers["Content-Type"].startswith("text/plain")


def test_a_notification_while_the_back_end_is_down_asks_to_be_sent_again(
    browser: FlaskClient, portal: LivePortal, fc_sandbox: Sandbox
) -> None:
    sign_in(browser, "marie-therese")
    payment_id = payment_id_of(start_paying(browser))
    fc_sandbox.fault("canteen", "bordeaux", "error500")
    r = httpx.post(portal.url + "/payments/notify", json={"payment_id": payment_id}, timeout=10)
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert payment_state(portal.app, payment_id) == "pending"


# -- the invoice's PDF -------------------------------------------------------------------------


def test_resident_downloads_an_invoice_as_a_pdf(browser: FlaskClient) -> None:
    sign_in(browser, "marie-therese")
    html = browser.get(CANTEEN).get_data(as_text=True)
    link = f"{CANTEEN}/invoices/{UNPAID}.pdf"
    assert f'href="{link}"' in html
    r = browser.get(link)
    assert r.status_code == 200
    assert r.mimetype == "application/pdf"
    assert r.headers["Content-Disposition"] == f'attachment; filename="facture-{UNPAID}.pdf"'
    assert r.data.startswith(b"%PDF")
    assert "no-store" in r.headers["Cache-Control"]


def test_someone_elses_or_an_unknown_invoice_pdf_is_not_found(browser: FlaskClient) -> None:
    sign_in(browser, "marie-therese")
    not_mine = browser.get(f"{CANTEEN}/invoices/{SOMEONE_ELSES}.pdf")
    unknown = browser.get(f"{CANTEEN}/invoices/fac-0000-0000.pdf")
    assert not_mine.status_code == unknown.status_code == 404
    # Nothing tells an invoice that exists elsewhere from one that does not exist.
    assert as_answered(text(not_mine), SOMEONE_ELSES) == as_answered(text(unknown), "fac-0000-0000")


def test_a_pdf_while_the_back_end_is_down_is_a_clear_page(
    browser: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(browser, "marie-therese")
    fc_sandbox.fault("canteen", "bordeaux", "error500")
    r = browser.get(f"{CANTEEN}/invoices/{UNPAID}.pdf")
    assert r.status_code == 503
    assert r.mimetype == "text/html"
    assert "ne peut pas être téléchargée pour le moment" in text(r)


def test_invoices_and_payments_need_a_signed_in_resident(browser: FlaskClient) -> None:
    for path in (f"{CANTEEN}/invoices/{UNPAID}.pdf", "/payments/return?payment_id=pay-1"):
        r = browser.get(path)
        assert r.status_code == 302 and r.headers["Location"].startswith("/auth/login")


# -- the words residents read --------------------------------------------------------------


def test_the_payment_result_names_the_invoice_by_its_title(browser: FlaskClient) -> None:
    sign_in(browser, "marie-therese")
    page = text(come_back(browser, choose_on_payfip(start_paying(browser), "pay")))
    facts = page.split('<dl class="details">', 1)[1].split("</dl>", 1)[0]
    assert "Restauration scolaire" in facts
    assert UNPAID not in page


def journal_rows(browser: FlaskClient, lang: str = "fr") -> list[str]:
    body = text(browser.get(f"/account/activity?lang={lang}"))
    found = re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]
    return [re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " | ", row)) for row in found]


def test_a_refused_payment_is_journaled_once_as_refused_never_as_successful(
    browser: FlaskClient,
) -> None:
    sign_in(browser, "marie-therese")
    come_back(browser, choose_on_payfip(start_paying(browser), "refuse"))
    all_rows = journal_rows(browser, "en")
    payments_rows = [row for row in all_rows if "Payment" in row or "88" in row]
    assert len(payments_rows) == 1, all_rows
    assert "Payment refused" in payments_rows[0] and "successful" not in payments_rows[0]
    assert "€88.35" in payments_rows[0] and UNPAID not in payments_rows[0]
    # The bank's own words are French: marked so on the English page.
    body = text(browser.get("/account/activity?lang=en"))
    assert '<span lang="fr">Paiement refusé par la banque' in body


def test_an_abandoned_payment_is_journaled_once_as_abandoned(browser: FlaskClient) -> None:
    sign_in(browser, "marie-therese")
    come_back(browser, choose_on_payfip(start_paying(browser), "abandon"))
    payment_rows = [row for row in journal_rows(browser) if "88,35" in row]
    assert len(payment_rows) == 1, payment_rows
    assert "Paiement abandonné" in payment_rows[0] and "réussi" not in payment_rows[0]
    assert "88,35\u00a0€" in payment_rows[0]


def test_the_payment_result_in_english_marks_the_bank_s_french_words(
    browser: FlaskClient,
) -> None:
    sign_in(browser, "marie-therese")
    start = start_paying(browser)
    decision = choose_on_payfip(start, "refuse")
    browser.get("/?lang=en")
    page = text(come_back(browser, decision))
    assert "Payment refused" in page
    assert '<span lang="fr">Paiement refusé par la banque' in page
