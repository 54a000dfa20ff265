"""Water, the fourth kind, end to end over real HTTP to the sandbox's two operators: a
resident links a contract, reads their consumption, declares a meter reading (accepted,
refused here, refused by the operator, operator down), sees the abnormal-consumption
alert and sends the cap request with the plumber's invoice (too big, not a PDF, refused
by the operator), finds the deadlines in the to-do list and the calendar, pays an
invoice through the shared flow, and never reaches someone else's contract."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import JournalEntry, ServiceLink, WriteRecord
from tests.integration.test_payments import (
    LivePortal,
    choose_on_payfip,
    come_back,
)
from tests.integration.test_payments import browser as browser
from tests.integration.test_payments import portal as portal
from tests.support import Sandbox, as_answered, count_calls, sign_in

BORDEAUX = "/services/eau-bordeaux"
PESSAC = "/services/eau-pessac"
BORDEAUX_KEY = "sandbox-water-bordeaux-key"
PESSAC_KEY = "sandbox-water-pessac-key"
MARIE_CONTRACT = "ctr-bdx-4521"
MARIE_ALERT = "alr-bdx-4521-1"
JEAN_ALERT = "alr-pes-0101-1"
HX = {"HX-Request": "true"}
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def text(response: Any) -> str:
    return unescape(response.get_data(as_text=True))


def spaced(value: str) -> str:
    """What the resident reads, with the non-breaking spaces of dates and units as spaces."""
    return value.replace("\u00a0", " ").replace("\u202f", " ")


def token(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]+)"', page)
    assert match, f"no {name} in the page"
    return match.group(1)


def backend(fc_sandbox: Sandbox, path: str, key: str = BORDEAUX_KEY) -> Any:
    r = httpx.get(fc_sandbox.url + path, headers={"X-Api-Key": key}, timeout=10)
    r.raise_for_status()
    return r.json()


def readings(fc_sandbox: Sandbox, contract: str, key: str = BORDEAUX_KEY) -> list[dict]:
    tenant = "bordeaux" if key == BORDEAUX_KEY else "pessac"
    return backend(fc_sandbox, f"/water/{tenant}/v1/contracts/{contract}/readings", key)["readings"]


def last_trusted(fc_sandbox: Sandbox, contract: str, key: str = BORDEAUX_KEY) -> dict:
    return max(
        (r for r in readings(fc_sandbox, contract, key) if r["kind"] != "estimated"),
        key=lambda r: (r["taken_on"], r["index_m3"]),
    )


def alert(fc_sandbox: Sandbox, alert_id: str = MARIE_ALERT) -> dict:
    alerts = backend(fc_sandbox, f"/water/bordeaux/v1/contracts/{MARIE_CONTRACT}/alerts")["alerts"]
    return next(a for a in alerts if a["alert_id"] == alert_id)


def reading_form(client: FlaskClient, page: str = BORDEAUX) -> dict[str, str]:
    html = client.get(page).get_data(as_text=True)
    assert 'action="' + page + '/reading"' in html, "no reading form on the page"
    return {"csrf_token": token(html, "csrf_token"), "idem": token(html, "idem")}


def declare(client: FlaskClient, index: Any, on: date, page: str = BORDEAUX, headers=None):
    form = reading_form(client, page)
    return client.post(
        page + "/reading",
        data={**form, "index_m3": str(index), "taken_on": on.isoformat()},
        headers=headers or {},
    )


def records(app: Flask, action: str) -> list[WriteRecord]:
    with app.app_context():
        return list(db.session.execute(db.select(WriteRecord).filter_by(action=action)).scalars())


def journal(app: Flask, action: str) -> list[JournalEntry]:
    with app.app_context():
        return list(db.session.execute(db.select(JournalEntry).filter_by(action=action)).scalars())


def cap_form(client: FlaskClient, alert_id: str = MARIE_ALERT, page: str = BORDEAUX) -> dict:
    html = client.get(f"{page}/alerts/{alert_id}/cap").get_data(as_text=True)
    return {"csrf_token": token(html, "csrf_token"), "idem": token(html, "idem")}


def send_cap(
    client: FlaskClient,
    document: bytes | None,
    *,
    alert_id: str = MARIE_ALERT,
    page: str = BORDEAUX,
    repaired_on: date | None = None,
    name: str = "facture.pdf",
):
    from io import BytesIO

    data: dict[str, Any] = {
        **cap_form(client, alert_id, page),
        "repaired_on": (repaired_on or date.today() - timedelta(days=2)).isoformat(),
        "repair_location": "Canalisation enterrée entre le compteur et la maison",
    }
    if document is not None:
        data["repair_invoice"] = (BytesIO(document), name, "application/pdf")
    return client.post(
        f"{page}/alerts/{alert_id}/cap", data=data, content_type="multipart/form-data"
    )


# -- linking ---------------------------------------------------------------------------------


def test_a_resident_links_a_contract_typed_as_printed_on_the_invoice(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "eloise")  # starts with nothing linked
    page = services_client.get("/link/eau-pessac")
    assert page.status_code == 200
    assert "Numéro de contrat" in text(page) and "Référence client" in text(page)
    csrf = token(page.get_data(as_text=True), "csrf_token")
    wrong = services_client.post(
        "/link/eau-pessac",
        data={
            "csrf_token": csrf,
            "contract_number": "PS-33318-001290",
            "customer_reference": "AAAA1111",
        },
    )
    assert wrong.status_code == 422
    with services_app.app_context():
        assert db.session.execute(db.select(ServiceLink)).scalars().all() == []
    r = services_client.post(
        "/link/eau-pessac",
        data={
            "csrf_token": csrf,
            "contract_number": "ps 33318-001290",
            "customer_reference": "e2n7-g3uy",
        },
    )
    assert r.status_code == 303, text(r)[:800]
    page = text(services_client.get(PESSAC))
    assert "Éloïse Nguyen" in page
    assert "trop récent pour comparer" in page  # moved in eight months ago


def test_a_locked_contract_is_refused_with_what_to_do(services_client: FlaskClient) -> None:
    sign_in(services_client, "eloise")
    page = services_client.get("/link/eau-pessac").get_data(as_text=True)
    r = services_client.post(
        "/link/eau-pessac",
        data={
            "csrf_token": token(page, "csrf_token"),
            "contract_number": "PS-33318-003112",
            "customer_reference": "P4C3S1NV",
        },
    )
    assert r.status_code == 422
    assert "bloqué" in text(r)


# -- the page: consumption, chart, alert -------------------------------------------------------


def test_the_page_says_the_consumption_in_a_sentence_a_chart_and_a_table(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "marie-therese")
    r = services_client.get(BORDEAUX)
    assert r.status_code == 200
    page = spaced(text(r))
    assert "12 rue des Faures, 33000 Bordeaux" in page
    # The latest period (148 m³) is three times the average of the same period of the
    # three previous years (52, 55 and 53: 53 m³).
    assert "vous avez consommé 148 m³, soit 2,8 fois la moyenne" in page
    assert re.search(r"<svg[^>]*aria-hidden=\"true\"", r.get_data(as_text=True))
    assert "<table>" in r.get_data(as_text=True) and "Un an plus tôt" in page
    assert "en hausse de" in page
    # The alert, what the law allows and the one-month deadline.
    assert "Consommation anormale du" in page
    assert "la loi vous permet de ne payer que le double" in page
    assert "Demander l'écrêtement" in page


def test_the_card_says_the_trend_the_alert_and_the_next_due_date(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "marie-therese")
    card = spaced(text(services_client.get(BORDEAUX + "/card")))
    assert "Dernière période : 148 m³, en hausse de" in card
    assert "vous pouvez demander un écrêtement jusqu'au" in card
    assert "Prochaine échéance" in card


# -- declaring a meter reading ------------------------------------------------------------


def test_a_reading_is_declared_and_the_operator_has_it(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    last = last_trusted(fc_sandbox, MARIE_CONTRACT)
    r = declare(services_client, last["index_m3"] + 9, date.today())
    assert r.status_code == 303
    page = spaced(text(services_client.get(r.headers["Location"])))
    assert f"Votre relevé est enregistré : {last['index_m3'] + 9:,} m³".replace(",", " ") in page
    assert last_trusted(fc_sandbox, MARIE_CONTRACT)["index_m3"] == last["index_m3"] + 9
    assert last_trusted(fc_sandbox, MARIE_CONTRACT)["kind"] == "declared"
    assert [e.outcome for e in journal(services_app, "declare_reading")] == ["success"]


def test_a_reading_below_the_last_one_is_refused_here_and_nothing_is_sent(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    before = readings(fc_sandbox, MARIE_CONTRACT)
    last = last_trusted(fc_sandbox, MARIE_CONTRACT)
    r = declare(services_client, last["index_m3"] - 5, date.today())
    assert r.status_code == 422
    page = spaced(text(r))
    assert "Il y a un problème" in page
    assert "Cet index est inférieur à celui du dernier relevé" in page
    assert f'value="{last["index_m3"] - 5}"' in r.get_data(as_text=True)  # kept to correct
    # With htmx, the section alone, with the same error, as a 200 htmx swaps in.
    r = declare(services_client, last["index_m3"] - 5, date.today(), headers=HX)
    assert r.status_code == 200
    assert 'id="reading"' in r.get_data(as_text=True) and "<html" not in r.get_data(as_text=True)
    assert "Cet index est inférieur" in spaced(text(r))
    assert readings(fc_sandbox, MARIE_CONTRACT) == before
    assert records(services_app, "declare_reading") == []


@pytest.mark.parametrize(
    ("value", "on", "error"),
    [
        ("", 0, "Indiquez l'index de votre compteur."),
        ("12,5", 0, "Indiquez l'index en chiffres"),
        ("-3", 0, "Indiquez l'index en chiffres"),
        ("999999999999", 0, "Indiquez l'index en chiffres"),
        ("12³", 0, "Indiquez l'index en chiffres"),
        ("١٢٣٤", 0, "Indiquez l'index en chiffres"),
        ("1300", 3, "ne peut pas être dans le futur"),
        ("1300", -4000, "ne peut pas être antérieure au dernier relevé"),
    ],
)
def test_a_reading_that_cannot_be_one_is_said_on_its_field(
    services_client: FlaskClient, services_app: Flask, value: str, on: int, error: str
) -> None:
    sign_in(services_client, "marie-therese")
    r = declare(services_client, value, date.today() + timedelta(days=on))
    assert r.status_code == 422
    assert error in spaced(text(r))
    assert records(services_app, "declare_reading") == []


def test_a_digit_too_many_is_caught_here_the_rest_is_the_operators_call(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "dartagnan")
    last = last_trusted(fc_sandbox, "ctr-bdx-6630")
    days = (date.today() - date.fromisoformat(last["taken_on"])).days or 1
    # A digit too many: refused here, with the reason.
    r = declare(services_client, last["index_m3"] * 10, date.today())
    assert r.status_code == 422
    assert "Vérifiez qu'il n'y a pas un chiffre en trop" in spaced(text(r))
    assert records(services_app, "declare_reading") == []
    # Fifteen times the usual daily use: plausible to the portal, not to the operator,
    # whose refusal and reason are shown as they are; nothing recorded at the operator.
    r = declare(services_client, last["index_m3"] + 5 * days, date.today())
    assert r.status_code == 303
    page = spaced(text(services_client.get(r.headers["Location"])))
    assert "Votre relevé n'a pas été enregistré" in page
    assert "bien supérieure à votre consommation habituelle" in page
    assert last_trusted(fc_sandbox, "ctr-bdx-6630") == last
    assert [e.outcome for e in journal(services_app, "declare_reading")] == ["refused"]


def test_an_operator_down_gets_nothing_claimed(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    last = last_trusted(fc_sandbox, MARIE_CONTRACT)
    fc_sandbox.fault("water", "bordeaux", "error500", writes_only=True)
    r = declare(services_client, last["index_m3"] + 3, date.today())
    assert r.status_code == 303
    page = spaced(text(services_client.get(r.headers["Location"])))
    assert "Le service n'a pas répondu : rien n'a été fait." in page
    assert "relevé est enregistré" not in page
    fc_sandbox.fault("water", "bordeaux", None)
    assert last_trusted(fc_sandbox, MARIE_CONTRACT) == last


def test_a_closed_contract_offers_no_reading_and_refuses_one(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "lucas")
    html = services_client.get(BORDEAUX).get_data(as_text=True)
    assert 'action="/services/eau-bordeaux/reading"' not in html
    assert "Ce contrat est résilié" in unescape(html)
    r = services_client.post(
        BORDEAUX + "/reading",
        data={
            "csrf_token": token(html, "csrf_token"),
            "idem": "a" * 32,
            "index_m3": "3000",
            "taken_on": date.today().isoformat(),
        },
    )
    assert r.status_code == 303
    assert "il n'est plus possible d'y déclarer un relevé" in text(
        services_client.get(r.headers["Location"])
    )


# -- the abnormal-consumption alert and the cap request ----------------------------------------


def test_the_cap_request_reaches_the_operator_with_the_plumbers_invoice(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    page = spaced(text(services_client.get(f"{BORDEAUX}/alerts/{MARIE_ALERT}/cap")))
    assert "Envoyez votre demande au plus tard le" in page
    assert "n'est pas conservé par le portail" in page
    r = send_cap(services_client, PDF)
    assert r.status_code == 303, text(r)[:800]
    after = spaced(text(services_client.get(r.headers["Location"])))
    assert "Votre demande d'écrêtement a été reçue le" in after
    assert "Votre demande d'écrêtement a été reçue. Le service de l'eau l'examine" in after
    assert alert(fc_sandbox)["status"] == "requested"
    # The portal kept nothing of the document.
    with services_app.app_context():
        stored = db.session.execute(
            db.select(WriteRecord).filter_by(action="request_cap")
        ).scalar_one()
        assert "PDF" not in (stored.result or "")
    assert [e.outcome for e in journal(services_app, "request_cap")] == ["success"]


def test_a_repair_invoice_too_heavy_or_not_a_pdf_is_refused_before_anything_is_sent(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    r = send_cap(services_client, b"%PDF-1.4\n" + b"0" * (5 * 1024 * 1024) + b"\n%%EOF\n")
    assert r.status_code == 422
    assert "Le fichier dépasse 5 Mo" in spaced(text(r))
    r = send_cap(services_client, PNG, name="facture.pdf")
    assert r.status_code == 422
    assert "Ce fichier n'est pas un PDF" in spaced(text(r))
    r = send_cap(services_client, None)
    assert r.status_code == 422
    assert "Joignez la facture du plombier" in spaced(text(r))
    r = send_cap(services_client, PDF, repaired_on=date.today() + timedelta(days=2))
    assert r.status_code == 422
    assert "ne peut pas être dans le futur" in spaced(text(r))
    # Far above the limit: refused before the body is read, with a page that says so.
    r = send_cap(services_client, b"%PDF-" + b"0" * (9 * 1024 * 1024))
    assert r.status_code == 413
    assert "trop volumineux" in text(r)
    assert alert(fc_sandbox)["status"] == "open"
    assert records(services_app, "request_cap") == []


def test_a_body_too_large_elsewhere_keeps_the_small_limit(services_client: FlaskClient) -> None:
    sign_in(services_client, "marie-therese")
    page = services_client.get(BORDEAUX).get_data(as_text=True)
    r = services_client.post(
        BORDEAUX + "/reading",
        data={
            "csrf_token": token(page, "csrf_token"),
            "idem": token(page, "idem"),
            "index_m3": "1" * (300 * 1024),
            "taken_on": date.today().isoformat(),
        },
    )
    assert r.status_code == 413


def test_the_operator_refusing_the_cap_request_is_said_with_its_reason(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "jean-baptiste")  # his alert's month has passed
    page = spaced(text(services_client.get(PESSAC)))
    assert "Le délai pour demander l'écrêtement a pris fin le" in page
    cap_page = services_client.get(f"{PESSAC}/alerts/{JEAN_ALERT}/cap")
    assert "Cette alerte n'attend plus de demande" in text(cap_page)
    # A form opened before the deadline passed, sent after: the operator refuses it.
    r = services_client.post(
        f"{PESSAC}/alerts/{JEAN_ALERT}/cap",
        data={
            "csrf_token": token(cap_page.get_data(as_text=True), "csrf_token"),
            "idem": "b" * 32,
            "repaired_on": (date.today() - timedelta(days=40)).isoformat(),
            "repair_location": "Sous l'évier",
            "repair_invoice": (__import__("io").BytesIO(PDF), "facture.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 303
    after = spaced(text(services_client.get(r.headers["Location"])))
    assert "Votre demande d'écrêtement n'a pas été envoyée" in after
    assert "Le délai pour demander l'écrêtement a pris fin" in after
    assert [e.outcome for e in journal(services_app, "request_cap")] == ["refused"]


# -- someone else's contract ---------------------------------------------------------------


def test_someone_elses_contract_and_alert_are_not_found_like_nothing(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "dartagnan")  # linked at Bordeaux, not at Pessac
    theirs = services_client.get(f"{BORDEAUX}/alerts/{MARIE_ALERT}/cap")
    nothing = services_client.get(f"{BORDEAUX}/alerts/alr-nope/cap")
    assert theirs.status_code == nothing.status_code == 404
    # The same page, but for the address itself (the language links point back to it).
    assert as_answered(text(theirs), MARIE_ALERT) == as_answered(text(nothing), "alr-nope")
    page = services_client.get(BORDEAUX).get_data(as_text=True)
    r = services_client.post(
        f"{BORDEAUX}/alerts/{MARIE_ALERT}/cap",
        data={
            "csrf_token": token(page, "csrf_token"),
            "idem": "c" * 32,
            "repaired_on": date.today().isoformat(),
            "repair_location": "x",
            "repair_invoice": (__import__("io").BytesIO(PDF), "facture.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 404
    assert alert(fc_sandbox)["status"] == "open"
    assert services_client.get(PESSAC).status_code == 404
    assert services_client.get(PESSAC + "/reading").status_code in (404, 405)


# -- to-do, calendar and payment -----------------------------------------------------------------


def test_the_deadlines_join_the_todo_list_and_the_calendar(services_client: FlaskClient) -> None:
    sign_in(services_client, "marie-therese")
    todo = spaced(text(services_client.get("/account/todo")))
    assert "Demander l'écrêtement de votre facture d'eau après une fuite" in todo
    ics = services_client.get("/account/calendar.ics").get_data(as_text=True)
    assert "écrêtement" in ics.replace("\r\n ", "")
    services_client.post("/auth/logout")
    sign_in(services_client, "amina")
    assert "Relever votre compteur d'eau et déclarer l'index" in spaced(
        text(services_client.get("/account/todo"))
    )


def test_a_water_invoice_is_paid_through_the_shared_payment_flow(
    browser: FlaskClient,
    portal: LivePortal,
) -> None:
    sign_in(browser, "jean-baptiste")  # an invoice due in a week
    html = browser.get(PESSAC).get_data(as_text=True)
    match = re.search(
        r'<form method="post" action="(?P<action>/services/eau-pessac/invoices/[^"]+/pay)">'
        r'.*?name="csrf_token" value="(?P<csrf>[^"]+)".*?name="idem" value="(?P<idem>[^"]+)"',
        html,
        re.S,
    )
    assert match, "no pay form on the water page"
    r = browser.post(match["action"], data={"csrf_token": match["csrf"], "idem": match["idem"]})
    assert r.status_code == 303
    go = browser.get(r.headers["Location"])
    payfip = go.headers["Refresh"].removeprefix("0; url=")
    result = come_back(browser, choose_on_payfip(payfip, "pay"))
    assert "Paiement confirmé" in text(result)
    invoice = match["action"].split("/invoices/")[1].split("/")[0]
    rows = [
        row for row in browser.get(PESSAC).get_data(as_text=True).split("<tr>") if invoice in row
    ]
    assert rows and "payée" in unescape(rows[0])


def test_the_page_in_english_is_english_and_marks_the_operators_words(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "marie-therese")
    page = services_client.get(BORDEAUX + "?lang=en").get_data(as_text=True)
    said = spaced(unescape(page))
    assert "My consumption" in said and "Meter reading" in said
    assert "Abnormal consumption from" in said
    assert '<span lang="fr">Tarif domestique</span>' in page
    for french in ("Ma consommation", "Relevé du compteur", "Consommation anormale du"):
        assert french not in said


def test_an_htmx_declaration_the_operator_refuses_reads_the_contract_once(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    calls = count_calls(services_app)
    sign_in(services_client, "dartagnan")
    last = last_trusted(fc_sandbox, "ctr-bdx-6630")
    days = (date.today() - date.fromisoformat(last["taken_on"])).days or 1
    form = reading_form(services_client)
    before = calls["eau-bordeaux"]
    r = services_client.post(
        BORDEAUX + "/reading",
        data={**form, "index_m3": str(last["index_m3"] + 5 * days), "taken_on": date.today()},
        headers=HX,
    )
    assert r.status_code == 200 and "bien supérieure" in text(r)
    # One read of the contract (its five parts, side by side) and the refused declaration:
    # the section shown after it is that read, since nothing changed.
    assert calls["eau-bordeaux"] - before == 5 + 1
