"""The words residents read: the activity journal in the reader's language, the numbers
they know, the back-ends' refusals translated, and the name they use - over real HTTP to
the sandbox's identity provider and back-ends."""

from __future__ import annotations

import re
from html import unescape

from flask import Flask
from flask.testing import FlaskClient

from tests.integration.test_account import ELOISE_CARD, csrf
from tests.support import sign_in

ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
#: The sandbox's internal account ids (patrons, families, applications, invoices).
INTERNAL_ID = re.compile(r"\b(?:mer|pes)-p-\d+|\bfam-\d+|\bdem-\d+|\bfac-\d+-\d+")
#: A code as the portal or a back-end keeps it (``invalid_proof``, ``renew_loan``).
RAW_CODE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
FRENCH_WORDS = re.compile(
    r"\b(?:réussi|refusé|échec|vous|Compte relié|Connexion|Tentative|système|facture)\b"
)


def visible(response) -> str:
    """What a person reads on the page's main content: no tags, no attributes."""
    body = response.get_data(as_text=True)
    main = body.split("<main", 1)[-1].split("</main>", 1)[0]
    main = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", main, flags=re.S)
    return re.sub(r"[ \t\r\n]+", " ", unescape(re.sub(r"<[^>]+>", " ", main)))


def rows(response) -> list[str]:
    body = response.get_data(as_text=True)
    found = re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]
    return [re.sub(r"[ \t\r\n]+", " ", unescape(re.sub(r"<[^>]+>", " | ", row))) for row in found]


def test_the_activity_page_in_english_has_no_french_iso_date_internal_id_or_code(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "eloise")
    token = csrf(services_client, "/link/bib-merignac")
    wrong = {"csrf_token": token, "proof": "pin", "card_number": ELOISE_CARD["card_number"]}
    services_client.post("/link/bib-merignac", data={**wrong, "pin": "9999"})
    r = services_client.post(
        "/link/bib-merignac", data={"csrf_token": token, "proof": "pin", **ELOISE_CARD}
    )
    assert r.status_code == 303
    services_client.post("/account/calendar", data={"csrf_token": csrf(services_client)})

    page = services_client.get("/account/activity?lang=en")
    assert page.status_code == 200
    words = visible(page)
    assert not ISO_DATE.search(words), ISO_DATE.search(words)
    assert not INTERNAL_ID.search(words), INTERNAL_ID.search(words)
    assert not RAW_CODE.search(words), RAW_CODE.search(words)
    assert not FRENCH_WORDS.search(words), FRENCH_WORDS.search(words)
    assert "invalid_proof" not in page.get_data(as_text=True)
    # One British English date style: « 2 December 2026, 10:30 ».
    assert re.search(r"\b\d{1,2}[ \u00a0][A-Z][a-z]+[ \u00a0]\d{4}, \d{2}:\d{2}\b", words)
    lines = rows(page)
    linked = [line for line in lines if "Account linked" in line]
    attempts = [line for line in lines if "Link attempt refused" in line]
    assert len(linked) == 1 and "successful" in linked[0]
    assert len(attempts) == 1 and "refused" in attempts[0]
    assert "The details did not match." in attempts[0]


def test_a_refused_link_attempt_is_not_listed_as_a_linked_account_in_french(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "eloise")
    token = csrf(services_client, "/link/bib-merignac")
    services_client.post(
        "/link/bib-merignac",
        data={
            "csrf_token": token,
            "proof": "pin",
            "card_number": ELOISE_CARD["card_number"],
            "pin": "9999",
        },
    )
    newest = rows(services_client.get("/account/activity"))[0]
    assert "Tentative de liaison refusée" in newest and "Compte relié" not in newest
    assert "invalid_proof" not in newest and "Médiathèque de Mérignac" in newest


def test_my_data_shows_the_numbers_residents_know_masked_not_internal_ids(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "marie-therese")
    page = services_client.get("/account/data")
    words = visible(page)
    assert not INTERNAL_ID.search(words), INTERNAL_ID.search(words)
    # The family number printed on her invoices (0045217), its last four digits only.
    assert "••••\u00a05217" in words
    assert "0045217" not in words


def test_a_card_linked_by_the_resident_shows_its_masked_card_number(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "eloise")
    token = csrf(services_client, "/link/bib-merignac")
    services_client.post(
        "/link/bib-merignac", data={"csrf_token": token, "proof": "pin", **ELOISE_CARD}
    )
    words = visible(services_client.get("/account/data"))
    assert "••••\u00a0" + ELOISE_CARD["card_number"][-4:] in words
    assert ELOISE_CARD["card_number"] not in words


def test_english_library_page_translates_the_back_ends_refusal_reasons(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "marie-therese")
    english = visible(services_client.get("/services/bib-merignac?lang=en"))
    assert "Another reader has reserved this item." in english
    assert "Ce document est réservé par un autre lecteur." not in english


def test_residents_are_greeted_by_first_given_name_and_usage_name(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "marie-therese")
    home = unescape(services_client.get("/").get_data(as_text=True))
    assert re.search(r'<h1 class="greeting">Bonjour Marie-Thérèse DUBOIS</h1>', home)
    assert "Anne" not in home.split("<h1", 1)[1].split("</h1>", 1)[0]
    assert "MARTIN" not in home.split("<h1", 1)[1].split("</h1>", 1)[0]


def test_a_resident_without_usage_name_is_greeted_by_birth_name(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "eloise")
    heading = unescape(services_client.get("/").get_data(as_text=True)).split("<h1", 1)[1]
    assert heading.startswith(' class="greeting">Bonjour Éloïse NGUYEN</h1>')
