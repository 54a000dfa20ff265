"""Proofs of ownership are limited per resident, per target account and per address,
before they reach a back-end: over real HTTP to the sandbox, which counts the proofs
each back-end checked (``GET /_admin/proof-checks``)."""

from __future__ import annotations

import html as html_lib
import re
import threading
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.extensions import db
from portal.models import LinkAttempt, ServiceLink
from tests.support import (
    DEMO_LINKS_FILE,
    Sandbox,
    ServerThread,
    empty_tables,
    portal_settings,
    sign_in,
)

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
SUMMARY_RE = re.compile(r'<div class="error-summary".*?<ul>(.*?)</ul>', re.S)
#: « 10 h 30 », with non-breaking spaces.
FRENCH_TIME = "\\d{1,2}\u00a0h\u00a0\\d{2}"
#: « jusqu'à 10 h 30 », or with the day when the end falls after midnight (a run late in
#: the evening): « jusqu'au 3 décembre à 0 h 05 ».
FRENCH_UNTIL = "jusqu'(?:à|au \\d{1,2}(?:er)? \\w+ à) " + FRENCH_TIME

ELOISE_CARD = {"card_number": "33281000129033", "pin": "2902"}
UNKNOWN_CARD = "33281999999999"


def proof_checks(sandbox: Sandbox) -> dict[str, int]:
    r = sandbox.http.get(sandbox.url + "/_admin/proof-checks")
    r.raise_for_status()
    return r.json()


def csrf(client: FlaskClient, path: str) -> str:
    match = CSRF_RE.search(client.get(path).get_data(as_text=True))
    assert match, f"no form on {path}"
    return match.group(1)


def post_link(client: FlaskClient, slug: str, **fields: str):
    return client.post(
        f"/link/{slug}", data={"csrf_token": csrf(client, f"/link/{slug}"), **fields}
    )


def wrong_pin(client: FlaskClient, card: str, slug: str = "bib-merignac"):
    return post_link(client, slug, proof="pin", card_number=card, pin="9999")


def summary(html: str) -> str:
    match = SUMMARY_RE.search(html)
    assert match, "no error summary"
    return html_lib.unescape(re.sub(r"[ \t\r\n]+", " ", match.group(1))).strip()


def attempts_counted(app: Flask) -> int:
    with app.app_context():
        return db.session.execute(sa.select(sa.func.count()).select_from(LinkAttempt)).scalar()


def linked(app: Flask) -> set[str]:
    with app.app_context():
        return set(db.session.execute(sa.select(ServiceLink.instance_slug)).scalars())


@pytest.fixture
def limits_app(
    request: pytest.FixtureRequest, database_url: str, fc_sandbox: Sandbox, connectors_file: str
) -> Iterator[Flask]:
    """The sandbox's services with the default limits, or those a test gives
    (``indirect`` parametrisation)."""
    app = create_app(
        portal_settings(
            database_url,
            fc_sandbox.issuer,
            connectors_file=connectors_file,
            demo_links_file=DEMO_LINKS_FILE,
            **getattr(request, "param", {}),
        )
    )
    yield app
    app.extensions["connectors"].close()
    empty_tables(app)
    with app.app_context():
        db.engine.dispose()  # the concurrent test opened many: give them back


def test_wrong_pins_of_other_residents_at_one_address_do_not_block_a_resident_with_the_right_pin(
    limits_app: Flask, fc_sandbox: Sandbox
) -> None:
    # A France Services desk: three residents before Éloïse, each mistyping twice.
    cards = iter(f"3328100000{n:04d}" for n in range(100))
    for resident in ("jean-baptiste", "lucas", "dartagnan"):
        client = limits_app.test_client()
        sign_in(client, resident)
        for _ in range(2):
            assert wrong_pin(client, next(cards)).status_code == 422
    assert proof_checks(fc_sandbox) == {"library/merignac": 6}
    eloise = limits_app.test_client()
    sign_in(eloise, "eloise")
    form = eloise.get("/link/bib-merignac").get_data(as_text=True)
    assert "bloqué" not in form
    r = post_link(eloise, "bib-merignac", proof="pin", **ELOISE_CARD)
    assert r.status_code == 303, summary(r.get_data(as_text=True))
    assert "bib-merignac" in linked(limits_app)


def test_a_resident_cannot_lock_someone_elses_card(limits_app: Flask, fc_sandbox: Sandbox) -> None:
    attacker = limits_app.test_client()
    sign_in(attacker, "jean-baptiste")
    for _ in range(3):
        assert wrong_pin(attacker, ELOISE_CARD["card_number"]).status_code == 422
    r = wrong_pin(attacker, "3328 1000 1290 33")  # the same card, typed another way
    assert r.status_code == 429
    assert re.search(f"le numéro saisi est bloqué {FRENCH_UNTIL}", summary(r.text))
    # Blocked for everybody for this card, the back-end never reaching its lock-out (5).
    accomplice = limits_app.test_client()
    sign_in(accomplice, "lucas")
    assert wrong_pin(accomplice, ELOISE_CARD["card_number"]).status_code == 429
    assert proof_checks(fc_sandbox) == {"library/merignac": 3}
    # Another card is still open to the first resident (their own limit is 5).
    assert wrong_pin(attacker, "33281000000001").status_code == 422
    # When the hour has passed, Éloïse's card is not locked at her library.
    with limits_app.app_context():
        db.session.execute(sa.delete(LinkAttempt))
        db.session.commit()
    eloise = limits_app.test_client()
    sign_in(eloise, "eloise")
    assert post_link(eloise, "bib-merignac", proof="pin", **ELOISE_CARD).status_code == 303


@pytest.mark.parametrize(
    "limits_app", [{"link_failure_limit": "100 per 15 minutes"}], indirect=True
)
def test_forty_concurrent_wrong_pins_reach_the_back_end_at_most_the_limit(
    limits_app: Flask, fc_sandbox: Sandbox
) -> None:
    client = limits_app.test_client()
    sign_in(client, "jean-baptiste")
    token = csrf(client, "/link/bib-merignac")
    cookies = "; ".join(f"{c.key}={c.value}" for c in client._cookies.values())
    server = ServerThread(limits_app).start()
    statuses: list[int] = []
    wrong = {"card_number": ELOISE_CARD["card_number"]}
    start = threading.Barrier(40)

    def one() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            start.wait()
            r = http.post(
                "/link/bib-merignac",
                data={"csrf_token": token, "proof": "pin", "pin": "9999", **wrong},
                headers={"Cookie": cookies},
            )
            statuses.append(r.status_code)

    threads = [threading.Thread(target=one) for _ in range(40)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        server.stop()
    reached = proof_checks(fc_sandbox).get("library/merignac", 0)
    print(f"\n40 concurrent wrong PINs: {reached} reached the back-end; statuses {statuses}")
    assert len(statuses) == 40
    assert reached <= 3
    assert statuses.count(422) == reached and statuses.count(429) == 40 - reached
    assert attempts_counted(limits_app) == 3 * reached  # one row per key, refusals forgotten


@pytest.mark.parametrize(
    ("slug", "fields", "message"),
    [
        (
            "bib-merignac",
            {"card_number": "3328100012903A", "proof": "pin", "pin": "2902"},
            "ne contient que des chiffres",
        ),
        (
            "bib-merignac",
            {"card_number": "332", "proof": "pin", "pin": "2902"},
            "entre 4 et 32 caractères",
        ),
        (
            "bib-merignac",  # a paste longer than a card: refused, never cut to fit
            {"card_number": "3" * 33, "proof": "pin", "pin": "2902"},
            "entre 4 et 32 caractères",
        ),
        (
            "bib-merignac",
            {"card_number": "33281000129033", "proof": "pin", "pin": "29🙂2"},
            "émoji",
        ),
        (
            "bib-merignac",
            {"card_number": "33281000129033", "proof": "pin", "pin": "29\x0002"},
            "caractère invisible",
        ),
        (
            "bib-bordeaux",
            {"card_number": "2330000005🙂", "proof": "pin", "pin": "mtd-bdx-2408"},
            "ne contient que des chiffres",
        ),
        (
            "cantine-bordeaux",
            {"family_number": "00452I7", "invoice_code": "KX4M7P"},
            "ne contient que des chiffres",
        ),
        (
            "cantine-bordeaux",
            {"family_number": "0045217", "invoice_code": "KX4M7\u200b"},
            "lettres sans accent et des chiffres",
        ),
        (
            "logement-metropole",
            {"number": "03326110229é4", "birthdate": "2004-02-29"},
            "chiffres et des lettres sans accent",
        ),
    ],
)
def test_what_cannot_be_a_proof_is_refused_here_without_spending_an_attempt(
    limits_app: Flask, fc_sandbox: Sandbox, slug: str, fields: dict[str, str], message: str
) -> None:
    client = limits_app.test_client()
    sign_in(client, "eloise")
    r = post_link(client, slug, **fields)
    assert r.status_code == 422
    assert message in summary(r.text)
    assert 'aria-invalid="true"' in r.text
    assert proof_checks(fc_sandbox) == {}
    assert attempts_counted(limits_app) == 0
    assert "maxlength" not in client.get(f"/link/{slug}").get_data(as_text=True)


@pytest.mark.parametrize("limits_app", [{"link_failure_limit": "2 per 15 minutes"}], indirect=True)
def test_a_blocked_form_says_until_when_before_the_resident_types(
    limits_app: Flask, fc_sandbox: Sandbox
) -> None:
    client = limits_app.test_client()
    sign_in(client, "eloise")
    assert wrong_pin(client, "33281000000001").status_code == 422
    assert wrong_pin(client, "33318000000002", slug="bib-pessac").status_code == 422
    for slug in ("bib-merignac", "cantine-bordeaux"):  # every service: the resident's limit
        r = client.get(f"/link/{slug}")
        assert r.status_code == 200
        notice = re.search(
            r'<p class="notice notice--warning" id="link-blocked"[^>]*>(.*?)</p>',
            html_lib.unescape(r.text),
        )
        assert notice, "the form does not say it is blocked"
        assert re.search(f"ce formulaire est bloqué {FRENCH_UNTIL}\u00a0:", notice.group(1))
        assert '<fieldset class="link-fields" disabled' in r.text
    english = html_lib.unescape(client.get("/link/bib-merignac?lang=en").get_data(as_text=True))
    assert re.search(r"this form is blocked until \d{2}:\d{2}: too many", english)
    assert "\u00a0h\u00a0" not in english
    # Posting anyway changes nothing and reaches no back-end.
    r = post_link(client, "bib-merignac", proof="pin", **ELOISE_CARD)
    assert r.status_code == 429
    assert proof_checks(fc_sandbox) == {"library/merignac": 1, "library/pessac": 1}


def test_lock_out_words_are_the_same_for_an_existing_and_an_unknown_card(
    limits_app: Flask, fc_sandbox: Sandbox
) -> None:
    said: dict[str, list[str]] = {}
    for card, resident in (
        (ELOISE_CARD["card_number"], "jean-baptiste"),
        (UNKNOWN_CARD, "dartagnan"),
    ):
        client = limits_app.test_client()
        sign_in(client, resident)
        said[card] = [summary(wrong_pin(client, card).text) for _ in range(3)]
        blocked = wrong_pin(client, card)
        assert blocked.status_code == 429
        said[card].append(re.sub(FRENCH_TIME, "HH", summary(blocked.text)))
    assert said[ELOISE_CARD["card_number"]] == said[UNKNOWN_CARD]
    # A card the library itself has locked is refused in the same words as a wrong PIN.
    other = limits_app.test_client()
    sign_in(other, "lucas")
    locked = post_link(other, "bib-pessac", proof="pin", card_number="33318000311260", pin="111")
    unknown = post_link(other, "bib-pessac", proof="pin", card_number="33318999999999", pin="111")
    assert summary(locked.text) == summary(unknown.text) == said[UNKNOWN_CARD][0]
