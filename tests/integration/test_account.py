"""A resident reads their activity, exports or deletes their data, sees in one list what
their services expect of them, and takes that list to their calendar — over real HTTP to
the sandbox's identity provider and back-ends."""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import date, datetime
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar
from itsdangerous import URLSafeSerializer

from portal import create_app
from portal.actor import Actor
from portal.crypto import SecretBox
from portal.extensions import db
from portal.models import (
    AuthSession,
    Citizen,
    ConnectorSnapshot,
    JournalEntry,
    Payment,
    ReminderDigest,
    ReminderSent,
    ReminderSettings,
    ServiceLink,
    WriteRecord,
)
from portal.models._types import utcnow
from tests.support import Sandbox, count_calls, empty_tables, portal_settings, sign_in

HX = {"HX-Request": "true"}
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
FEED_RE = re.compile(r'id="feed-url"[^>]*value="(http://localhost/calendar/([^"/]+)\.ics)"')
DATETIME_RE = re.compile(r'<time datetime="(\d{4}-\d{2}-\d{2})">')
# Éloïse's own library card at Mérignac, and its PIN (she starts with nothing linked).
ELOISE_CARD = {"card_number": "33281000129033", "pin": "2902"}
MARIE_CARD_NUMBER = "33281000041721"
MARIE_ACCOUNTS = ("mer-p-0417", "fam-4521", "dem-0871")


def text(response) -> str:
    """The body as a person reads it: apostrophes are escaped in some strings only."""
    return unescape(response.get_data(as_text=True))


def csrf(client: FlaskClient, path: str = "/account/data") -> str:
    match = CSRF_RE.search(text(client.get(path)))
    assert match, f"no form token on {path}"
    return match.group(1)


def download_my_data(client: FlaskClient):
    """'Télécharger toutes mes données': the button's form, posted with its token."""
    return client.post("/account/data.json", data={"csrf_token": csrf(client)})


def citizen_id(app: Flask, given_name_start: str) -> int:
    with app.app_context():
        return db.session.execute(
            db.select(Citizen.id).filter(Citizen.given_name.startswith(given_name_start))
        ).scalar_one()


def rows_of(app: Flask, citizen: int) -> dict[str, int]:
    """How many rows of each table are about one resident."""
    with app.app_context():
        link_ids = [
            str(i)
            for i in db.session.scalars(db.select(ServiceLink.id).filter_by(citizen_id=citizen))
        ]
        counts = {
            model.__name__: db.session.scalar(
                db.select(db.func.count()).select_from(model).filter_by(citizen_id=citizen)
            )
            for model in (
                ServiceLink,
                JournalEntry,
                WriteRecord,
                Payment,
                AuthSession,
                ReminderSettings,
                ReminderDigest,
                ReminderSent,
            )
        }
        counts["Citizen"] = db.session.scalar(
            db.select(db.func.count()).select_from(Citizen).filter_by(id=citizen)
        )
        counts["ConnectorSnapshot"] = db.session.scalar(
            db.select(db.func.count())
            .select_from(ConnectorSnapshot)
            .where(ConnectorSnapshot.subject.in_(link_ids or ["-"]))
        )
        return counts


def add_payment_and_write(app: Flask, citizen: int) -> None:
    with app.app_context():
        db.session.add(
            Payment(
                citizen_id=citizen,
                instance_slug="cantine-bordeaux",
                invoice_id="fac-4521-2612",
                payment_id=f"pay-{citizen}",
                amount_cents=2460,
                state="paid",
            )
        )
        db.session.add(
            WriteRecord(
                key=f"{citizen:032x}",
                citizen_id=citizen,
                instance_slug="bib-merignac",
                action="renew_loan",
                state="done",
                result='{"status": "done"}',
            )
        )
        # Reminders turned on, and one sent.
        db.session.add(
            ReminderSettings(
                citizen_id=citizen,
                enabled=True,
                email="marie@example.org",
                leads={"invoice_due": [7]},
            )
        )
        digest = ReminderDigest(citizen_id=citizen, day=date(2026, 12, 1), state="sent", items=1)
        db.session.add(digest)
        db.session.flush()
        db.session.add(
            ReminderSent(
                key=f"{citizen:064x}",
                citizen_id=citizen,
                digest_id=digest.id,
                kind="invoice_due",
                due_on=date(2026, 12, 8),
                lead_days=7,
            )
        )
        db.session.commit()


def backend(fc_sandbox: Sandbox, path: str, api_key: str) -> dict:
    r = fc_sandbox.http.get(fc_sandbox.url + path, headers={"X-Api-Key": api_key})
    r.raise_for_status()
    return r.json()


# -- my activity -------------------------------------------------------------------------


def test_resident_sees_sign_in_and_the_demo_links_made_by_the_system(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "marie-therese")
    html = text(services_client.get("/account/activity"))
    assert "<h1>Mon activité</h1>" in html
    assert "Connexion avec FranceConnect" in html
    assert html.count("Compte relié") == 5  # the five demo accounts...
    assert "système" in html and "compte de démonstration" in html  # ...linked by the system
    for title in ("Médiathèque de Mérignac", "Restauration scolaire de Bordeaux"):
        assert title in html
    assert "réussi" in html
    # Times are in Paris, written by Babel in French, with French typography, the date
    # in one piece.
    assert re.search(r"\d{1,2}(er)?\u00a0\w+\u00a0\d{4} à \d{1,2}\u00a0h\u00a0\d{2}", html)


def test_resident_sees_each_action_with_who_did_it_and_its_outcome(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "eloise")
    token = csrf(services_client, "/link/bib-merignac")
    wrong = {"csrf_token": token, "proof": "pin", "card_number": ELOISE_CARD["card_number"]}
    assert services_client.post("/link/bib-merignac", data={**wrong, "pin": "9999"}).status_code
    r = services_client.post(
        "/link/bib-merignac", data={"csrf_token": token, "proof": "pin", **ELOISE_CARD}
    )
    assert r.status_code == 303
    services_client.post(
        "/link/bib-merignac/remove", data={"csrf_token": csrf(services_client, "/link")}
    )
    eloise = citizen_id(services_app, "Éloïse")
    with services_app.app_context():
        # A write the back-end refused, and an action this portal does not know yet.
        JournalEntry.record(
            eloise,
            "renew_loan",
            "refused",
            actor=Actor.citizen(eloise),
            connector_instance="bib-merignac",
            detail="Ce document est réservé par un autre lecteur.",
        )
        JournalEntry.record(eloise, "print_receipt", connector_instance="bib-retired")
        db.session.commit()

    html = text(services_client.get("/account/activity"))
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)[1:]  # below the header row
    cells = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "|", row)) for row in rows]
    newest = cells[0]
    assert "print_receipt" not in newest  # a code a resident cannot read is never shown
    assert "Prolongation d'un prêt" in cells[1] and "refusé" in cells[1]
    assert "réservé par un autre lecteur" in cells[1]
    assert "Compte délié" in cells[2] and "vous" in cells[2] and "réussi" in cells[2]
    assert "Compte relié" in cells[3] and "réussi" in cells[3]
    # A refused proof is an attempt, not a link.
    assert "Tentative de liaison refusée" in cells[4] and "refusé" in cells[4]
    assert "Compte relié" not in cells[4] and "invalid_proof" not in cells[4]
    assert "Médiathèque de Mérignac" in cells[4]
    assert "Connexion avec FranceConnect" in cells[-1]


def journal_rows(html: str) -> list[str]:
    """The activity table's rows below its header, as text."""
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)[1:]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "|", row)) for row in rows]


NEXT_RE = re.compile(r'href="(/account/activity\?[^"]*)" rel="next"')
PREV_RE = re.compile(r'href="(/account/activity\?[^"]*)" rel="prev"')


def link(pattern: re.Pattern[str], html: str) -> str:
    match = pattern.search(html)
    assert match, f"no {pattern.pattern} link"
    return unescape(match.group(1))


def add_unlinks(app: Flask, given_name: str, count: int, *, at: datetime | None = None) -> None:
    """``count`` entries numbered from 000, oldest first (all at ``at`` if given)."""
    resident = citizen_id(app, given_name)
    with app.app_context():
        for n in range(count):
            entry = JournalEntry.record(resident, "unlink", detail=f"entrée {n:03d}")
            if at is not None:
                entry.at = at
        db.session.commit()


def test_activity_is_paginated_20_a_page_with_previous_and_next_links(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "eloise")
    add_unlinks(services_app, "Éloïse", 44)  # with her sign-in: 45 entries
    first = text(services_client.get("/account/activity"))
    assert len(journal_rows(first)) == 20
    assert "Page 1" in first and "Page 1 sur" not in first  # the whole history never counted
    assert "entrée 043" in first and "entrée 024" in first and "entrée 023" not in first
    assert 'rel="prev"' not in first
    # Pages are reached by an opaque position, never by an offset.
    to_second = link(NEXT_RE, first)
    assert "before=" in to_second and "page=" not in to_second
    second = text(services_client.get(to_second))
    rows = journal_rows(second)
    assert len(rows) == 20 and "entrée 023" in rows[0] and "entrée 004" in rows[-1]
    assert "Page 2" in second and "<title>Mon activité – page 2" in second
    third = text(services_client.get(link(NEXT_RE, second)))
    rows = journal_rows(third)
    assert len(rows) == 5
    assert "entrée 003" in rows[0] and "Connexion avec FranceConnect" in rows[-1]
    assert "Page 3" in third and 'rel="next"' not in third  # the last page
    # Back, newer and newer: the same pages, down to the first (no previous link).
    back = text(services_client.get(link(PREV_RE, third)))
    assert journal_rows(back) == journal_rows(second) and "Page 2" in back
    first_again = text(services_client.get(link(PREV_RE, back)))
    assert journal_rows(first_again) == journal_rows(first)
    assert "Page 1" in first_again and 'rel="prev"' not in first_again


def test_one_page_of_activity_shows_no_page_links(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "eloise")
    add_unlinks(services_app, "Éloïse", 19)  # with her sign-in: 20 entries, one page
    html = text(services_client.get("/account/activity"))
    assert len(journal_rows(html)) == 20
    assert 'rel="next"' not in html and 'rel="prev"' not in html and "Page 1" not in html


def test_entries_of_the_same_moment_are_each_shown_once_in_a_stable_order(
    services_client: FlaskClient, services_app: Flask
) -> None:
    """Many entries can share a timestamp (a batch, a coarse clock): the id breaks the
    tie, so no entry is skipped or shown twice across pages."""
    sign_in(services_client, "eloise")
    add_unlinks(services_app, "Éloïse", 45, at=utcnow().replace(microsecond=0))
    seen: list[str] = []
    path: str | None = "/account/activity"
    while path:
        html = text(services_client.get(path))
        seen += [re.search(r"entrée \d{3}|Connexion", row).group(0) for row in journal_rows(html)]
        match = NEXT_RE.search(html)
        path = unescape(match.group(1)) if match else None
    numbered = [s for s in seen if s.startswith("entrée")]
    assert numbered == [f"entrée {n:03d}" for n in reversed(range(45))]
    assert len(seen) == 46
    # The same rows in the same order on every read (the page's form tokens change).
    assert journal_rows(text(services_client.get("/account/activity"))) == journal_rows(
        text(services_client.get("/account/activity"))
    )


def tampered(cursor: str) -> list[str]:
    """What a hand-edited or broken page link can carry."""
    payload, _, signature = cursor.rpartition(".")
    forged = URLSafeSerializer("not-our-secret", salt="activity-page").dumps([0, 1, 2, ""])
    return [
        # The signature's first character changed (its last may only carry padding bits).
        f"{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}",
        payload + ".",  # no signature
        cursor[: len(cursor) // 2],  # cut
        "eyJhIjoxfQ." + signature,  # another payload, the same signature
        forged,  # signed with another key
        "",
        "x" * 5000,
        "%00",
        "<script>alert(1)</script>",
        "1",
        "2",
    ]


def test_a_tampered_page_link_shows_the_newest_entries_with_a_message(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "eloise")
    eloise = citizen_id(services_app, "Éloïse")
    with services_app.app_context():
        JournalEntry.record(eloise, "renew_loan", connector_instance="bib-merignac")
        db.session.commit()
    add_unlinks(services_app, "Éloïse", 44)
    first_html = text(services_client.get("/account/activity"))
    first = journal_rows(first_html)
    to_second = link(NEXT_RE, first_html)
    cursor = parse_qs(urlsplit(to_second).query)["before"][0]
    message = "Ce lien de page n'est pas valable\u00a0: voici vos actions les plus récentes."
    for bad in tampered(cursor):
        for name in ("before", "after"):
            r = services_client.get("/account/activity", query_string={name: bad})
            assert r.status_code == 200, (name, bad)
            html = text(r)
            if bad:
                assert message in html, (name, bad)
            assert journal_rows(html) == first, (name, bad)
            assert "<script>alert" not in r.get_data(as_text=True)
    # Both directions at once, or a position made for another filter: refused too.
    both = services_client.get(
        "/account/activity", query_string={"before": cursor, "after": cursor}
    )
    assert message in text(both)
    elsewhere = services_client.get(
        "/account/activity", query_string={"before": cursor, "service": "bib-merignac"}
    )
    assert elsewhere.status_code == 200 and message in text(elsewhere)
    # An old bookmark with a page number: the first page, nothing to complain about.
    old = text(services_client.get("/account/activity?page=2"))
    assert journal_rows(old) == first and message not in old


def test_activity_pages_cost_no_count_of_the_whole_history(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "eloise")
    add_unlinks(services_app, "Éloïse", 44)
    second = link(NEXT_RE, text(services_client.get("/account/activity")))
    statements: list[tuple[str, object]] = []
    with services_app.app_context():
        engine = db.engine

    def on_statement(
        _conn: object, _cursor: object, statement: str, params: object, *_: object
    ) -> None:
        statements.append((statement, params))

    sa.event.listen(engine, "before_cursor_execute", on_statement)
    try:
        assert services_client.get(second).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_statement)
    journal = [(s, p) for s, p in statements if "journal_entry" in s]
    assert not any("count(" in s.lower() for s, _p in journal), journal
    # SQLite's dialect always writes "LIMIT ? OFFSET ?": its offset must be 0.
    offsets = [p for s, p in journal if "OFFSET" in s.upper()]
    assert all(isinstance(p, tuple) and p[-1] == 0 for p in offsets), journal


def test_activity_can_be_filtered_by_service(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "marie-therese")
    marie = citizen_id(services_app, "Marie")
    with services_app.app_context():
        for n in range(25):
            JournalEntry.record(
                marie, "renew_loan", connector_instance="bib-merignac", detail=f"prêt {n:03d}"
            )
        JournalEntry.record(marie, "book_meals", connector_instance="cantine-bordeaux")
        db.session.commit()
    everything = text(services_client.get("/account/activity"))
    # A GET form: a choice of the services her activity names, and a button.
    form = re.search(r'<form method="get" action="/account/activity"(.*?)</form>', everything, re.S)
    assert form, "no filter form"
    options = re.findall(r'<option value="([^"]*)"', form.group(1))
    assert options[0] == "" and {"bib-merignac", "cantine-bordeaux"} <= set(options[1:])
    assert 'type="submit"' in form.group(1)

    only = text(services_client.get("/account/activity?service=bib-merignac"))
    rows = journal_rows(only)
    assert len(rows) == 20
    assert all("Médiathèque de Mérignac" in row for row in rows)
    assert '<option value="bib-merignac" selected>' in only
    # The next page keeps the filter.
    to_next = link(NEXT_RE, only)
    assert parse_qs(urlsplit(to_next).query)["service"] == ["bib-merignac"]
    rest = journal_rows(text(services_client.get(to_next)))
    # 25 renewals and the demo link of Mérignac's card, made at her sign-in.
    assert len(rest) == 6 and all("Médiathèque de Mérignac" in row for row in rest)
    meals = journal_rows(text(services_client.get("/account/activity?service=cantine-bordeaux")))
    assert meals and all("Restauration scolaire de Bordeaux" in row for row in meals)
    assert not any("Médiathèque de Mérignac" in row for row in meals)


@pytest.mark.parametrize(
    "service",
    ["nope", "bib-bordeaux-x", "<script>alert(1)</script>", "../../etc", "%", "x" * 5000, " "],
)
def test_an_unknown_service_filter_is_ignored_with_a_message(
    services_client: FlaskClient, services_app: Flask, service: str
) -> None:
    sign_in(services_client, "marie-therese")
    everything = journal_rows(text(services_client.get("/account/activity")))
    r = services_client.get("/account/activity", query_string={"service": service})
    assert r.status_code == 200
    html = text(r)
    assert "Ce service ne figure pas dans votre activité" in html
    assert journal_rows(html) == everything
    assert "<script>alert" not in r.get_data(as_text=True)


def test_a_service_of_another_residents_activity_is_not_offered(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "eloise")
    html = text(services_client.get("/account/activity?service=cantine-bordeaux"))
    assert "Ce service ne figure pas dans votre activité" in html
    assert 'value="cantine-bordeaux"' not in html


def test_activity_cannot_be_changed_through_the_portal(services_app: Flask) -> None:
    """Append-only in code: no account route writes to the journal except by adding."""
    for rule in services_app.url_map.iter_rules():
        if rule.rule.startswith("/account/activity"):
            assert rule.methods <= {"GET", "HEAD", "OPTIONS"}, rule
    client = services_app.test_client()
    sign_in(client, "eloise")
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/account/activity").status_code in (400, 405)


def test_account_pages_need_a_signed_in_resident(services_client: FlaskClient) -> None:
    for path in (
        "/account/activity",
        "/account/data",
        "/account/data.json",
        "/account/delete",
        "/account/todo",
        "/account/calendar",
        "/account/calendar.ics",
    ):
        r = services_client.get(path)
        assert r.status_code == 302, path
        assert r.headers["Location"].startswith("/auth/login"), path


# -- my data -----------------------------------------------------------------------------


def test_resident_reads_their_data_on_one_page(services_client: FlaskClient) -> None:
    sign_in(services_client, "marie-therese")
    html = text(services_client.get("/account/data"))
    assert "Marie-Thérèse Anne" in html and "MARTIN" in html
    assert "24\u00a0août\u00a01962" in html
    for title in (
        "Médiathèque de Mérignac",
        "Bibliothèques de Bordeaux",
        "Restauration scolaire de Bordeaux",
        "Demande de logement",
    ):
        assert title in html
    assert "système" in html  # who linked them: the demo accounts
    assert 'href="/account/activity"' in html and "actions enregistrées" in html
    assert 'action="/account/data.json"' in html and 'href="/account/delete"' in html
    assert "combien de temps" in html
    # The header leads there from every page.
    home = text(services_client.get("/"))
    assert '<nav aria-label="Mon compte">' in home
    assert 'href="/account/activity"' in home and 'href="/account/data"' in home


def test_resident_downloads_all_their_data_without_any_secret(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "marie-therese")
    marie = citizen_id(services_app, "Marie")
    box: SecretBox = services_app.extensions["secret_box"]
    with services_app.app_context():
        link = db.session.execute(
            db.select(ServiceLink).filter_by(citizen_id=marie, instance_slug="bib-bordeaux")
        ).scalar_one()
        link.secret_ciphertext = box.encrypt("koha-password-of-marie")
        ciphertext = link.secret_ciphertext
        db.session.commit()
    add_payment_and_write(services_app, marie)

    r = download_my_data(services_client)
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and ".json" in disposition
    assert r.headers["Cache-Control"] == "no-store"
    raw = text(r)
    assert ciphertext not in raw and "koha-password-of-marie" not in raw
    data = json.loads(raw)
    assert data["identity"]["given_name"] == "Marie-Thérèse Anne"
    assert data["identity"]["birthdate"] == "1962-08-24"
    assert len(data["identity"]["franceconnect_sub"]) == 66
    links = {link["service"]: link for link in data["links"]}
    assert set(links) == {
        "bib-merignac",
        "bib-bordeaux",
        "cantine-bordeaux",
        "logement-metropole",
        "eau-bordeaux",
    }
    assert links["bib-bordeaux"]["has_stored_secret"] is True
    assert links["bib-merignac"]["external_id"] == "mer-p-0417"
    assert links["bib-merignac"]["linked_by"] == "system"
    actions = [entry["action"] for entry in data["activity"]]
    assert "sign_in" in actions and actions.count("link") == 5 and "export_data" in actions
    assert data["payments"][0]["invoice_id"] == "fac-4521-2612"
    assert data["requests_sent_to_services"][0]["action"] == "renew_loan"
    assert data["calendar_feed"] == {"exists": False}
    reminders = data["reminders"]
    assert reminders["enabled"] is True and reminders["email"] == "marie@example.org"
    assert reminders["kinds"] == {"invoice_due": [7]}
    assert reminders["sent"] == [
        {"kind": "invoice_due", "deadline": "2026-12-08", "days_before": 7}
    ]


# -- deleting the account --------------------------------------------------------------


def test_resident_deletes_their_account_and_everything_goes(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    # Someone else uses the portal too: nothing of theirs may go.
    other = services_app.test_client()
    sign_in(other, "amina")
    other.get("/account/todo", headers=HX)
    amina = citizen_id(services_app, "Amina")

    sign_in(services_client, "marie-therese")
    marie = citizen_id(services_app, "Marie")
    services_client.get("/account/todo", headers=HX)  # leaves snapshots of every service
    add_payment_and_write(services_app, marie)
    services_client.post("/account/calendar", data={"csrf_token": csrf(services_client)})
    before = rows_of(services_app, marie)
    assert all(count > 0 for count in before.values()), before
    amina_before = rows_of(services_app, amina)
    assert amina_before["ConnectorSnapshot"] > 0
    with services_app.app_context():
        id_token = db.session.execute(
            db.select(AuthSession.id_token).filter_by(citizen_id=marie)
        ).scalar_one()

    page = text(services_client.get("/account/delete"))
    for title in (
        "Médiathèque de Mérignac",
        "Bibliothèques de Bordeaux",
        "Restauration scolaire de Bordeaux",
        "Demande de logement social",
    ):
        assert f"« {title} » : votre compte chez ce service n'est pas modifié" in page
    assert "contactez directement ce service" in page
    for what in ("identité", "comptes reliés", "copies", "activité", "paiements", "sessions"):
        assert what in page
    token = CSRF_RE.search(page).group(1)

    # Without the box ticked: explained, and nothing is deleted.
    r = services_client.post("/account/delete", data={"csrf_token": token})
    assert r.status_code == 422
    assert "Il y a un problème" in text(r) and "Cochez la case" in text(r)
    assert 'aria-invalid="true"' in text(r)
    assert rows_of(services_app, marie) == before
    assert services_client.get("/").status_code == 200

    # Without the form token: refused, nothing deleted.
    assert services_client.post("/account/delete", data={"confirm": "y"}).status_code == 400
    assert rows_of(services_app, marie) == before

    r = services_client.post("/account/delete", data={"csrf_token": token, "confirm": "y"})
    assert r.status_code == 303
    assert all(count == 0 for count in rows_of(services_app, marie).values())
    assert rows_of(services_app, amina) == amina_before
    # Signed out here...
    with services_client.session_transaction() as s:
        assert "sid" not in s
    assert services_client.get("/").status_code == 302
    # ...and sent to FranceConnect to end the session there, as signing out does.
    end = urlsplit(r.headers["Location"])
    assert f"{end.scheme}://{end.netloc}{end.path}" == fc_sandbox.issuer + "/session/end"
    q = {k: v[0] for k, v in parse_qs(end.query).items()}
    assert q["id_token_hint"] == id_token
    assert q["post_logout_redirect_uri"] == "http://localhost/auth/franceconnect/logged-out"

    back = httpx.get(r.headers["Location"], timeout=10)
    assert back.status_code in (302, 303)
    ret = urlsplit(back.headers["Location"])
    html = text(services_client.get(f"{ret.path}?{ret.query}"))
    assert "Votre compte a été supprimé" in html
    assert "et de FranceConnect" in html
    # The message is shown once: a later visit is an ordinary signed-out page.
    again = text(services_client.get("/auth/franceconnect/logged-out"))
    assert "Votre compte a été supprimé" not in again
    # The other resident is still signed in and still has everything.
    assert other.get("/").status_code == 200


def test_signing_in_after_deleting_starts_an_empty_account(services_client: FlaskClient) -> None:
    sign_in(services_client, "eloise")
    token = csrf(services_client, "/account/delete")
    services_client.post("/account/delete", data={"csrf_token": token, "confirm": "y"})
    sign_in(services_client, "eloise")
    data = download_my_data(services_client).json
    actions = [entry["action"] for entry in data["activity"]]
    assert actions == ["sign_in", "export_data"]
    assert data["links"] == []


# -- another resident's data never shows -------------------------------------------------


def test_a_resident_never_sees_another_residents_data(
    services_client: FlaskClient, services_app: Flask
) -> None:
    marie_client = services_app.test_client()
    sign_in(marie_client, "marie-therese")
    marie_client.post("/account/calendar", data={"csrf_token": csrf(marie_client)})
    sign_in(services_client, "amina")  # Mérignac library and housing only

    marie_markers = ("Marie-Thérèse", "MARTIN", *MARIE_ACCOUNTS, "Chloé", "Au revoir là-haut")
    pages = {
        path: text(services_client.get(path, headers=headers))
        for path, headers in (
            ("/account/activity", {}),
            ("/account/data", {}),
            ("/account/delete", {}),
            ("/account/todo", HX),
            ("/account/calendar.ics", {}),
        )
    }
    pages["/account/data.json"] = text(download_my_data(services_client))
    for path, body in pages.items():
        for marker in marie_markers:
            assert marker not in body, (path, marker)
    assert "Restauration scolaire de Bordeaux" not in pages["/account/todo"]
    assert "Restauration scolaire de Bordeaux" not in pages["/account/activity"]
    export = json.loads(pages["/account/data.json"])
    assert export["identity"]["given_name"] == "Amina"
    assert {link["service"] for link in export["links"]} == {
        "bib-merignac",
        "logement-metropole",
        "eau-bordeaux",
    }
    assert export["calendar_feed"] == {"exists": False}  # Marie-Thérèse's feed is hers


# -- what to do next -----------------------------------------------------------------------


def test_the_dashboard_shell_loads_the_list_without_waiting_for_it(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "marie-therese")
    calls = count_calls(services_app)
    html = text(services_client.get("/"))
    placeholder = re.search(r'<p id="todo-list">(.*?)</p>', html, re.S)
    assert placeholder, "no placeholder for the to-do list"
    link = placeholder.group(1)
    assert 'href="/account/todo"' in link  # works without JavaScript
    assert 'hx-get="/account/todo"' in link and 'hx-trigger="load"' in link
    assert not calls, f"the shell called a back-end: {dict(calls)}"


def test_resident_sees_what_to_do_next_across_services_sorted_by_date(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    r = services_client.get("/account/todo", headers=HX)
    assert r.status_code == 200
    html = text(r)
    assert not html.lstrip().startswith("<!doctype")
    assert html.lstrip().startswith('<div id="todo-list"')
    assert 'hx-swap-oob="beforeend"' in html and "À faire :" in html  # announced politely

    dates = DATETIME_RE.findall(html)
    assert len(dates) >= 8
    assert dates == sorted(dates)
    today = date.today().isoformat()
    assert dates[0] < today  # the overdue loan comes first...
    assert "en retard" in html  # ...and says so

    loans = backend(
        fc_sandbox, "/library/merignac/v1/patrons/mer-p-0417/loans", "sandbox-library-merignac-key"
    )["loans"]
    for loan in loans:
        assert f"Rendre « {loan['title']} »" in html
    assert 'href="/services/bib-merignac#loans"' in html
    assert 'href="/services/bib-merignac#holds"' in html  # a hold ready to collect
    assert 'href="/services/bib-bordeaux#loans"' in html  # Koha too
    family = backend(
        fc_sandbox, "/canteen/bordeaux/v1/families/fam-4521", "sandbox-canteen-bordeaux-key"
    )
    for child in family["children"]:
        assert f"Réserver ou annuler le repas de {child['first_name']} du" in html
        assert f'href="/services/cantine-bordeaux#meals-{child["child_id"]}"' in html
    assert "Payer « Accueil périscolaire du matin" in html
    assert 'href="/services/cantine-bordeaux#invoices-title"' in html
    assert "Renouveler votre demande de logement" in html
    assert 'href="/services/logement-metropole#renewal"' in html
    assert "pas pu être consulté" not in html
    # Each link leads to the section where it can be done.
    for path, anchor in set(re.findall(r'href="(/services/[^"#]+)#([^"]+)"', html)):
        assert f'id="{anchor}"' in text(services_client.get(path)), (path, anchor)
    # Without htmx, the same list is a page of its own.
    page = text(services_client.get("/account/todo"))
    assert page.startswith("<!doctype html>")
    assert "<h1>À faire prochainement</h1>" in page
    assert DATETIME_RE.findall(page) == dates
    assert "hx-swap-oob" not in page


#: The to-do list's deadline (the cards'), when one back-end hangs: short, since it is
#: what ends the wait, with room for the healthy back-ends to answer on a busy runner.
TODO_DEADLINE_S = 1.0


@pytest.mark.deadlines(card_deadline_s=TODO_DEADLINE_S)
def test_a_hanging_back_end_is_named_and_the_list_still_comes(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    fc_sandbox.fault("library", "merignac", "hang", hang_s=10)
    started = time.monotonic()
    r = services_client.get("/account/todo", headers=HX)
    elapsed = time.monotonic() - started
    assert r.status_code == 200
    # Well under the 10 s hang, with room for a busy runner's other back-ends.
    assert elapsed < TODO_DEADLINE_S + 5, f"the list waited {elapsed:.1f} s for a hanging back-end"
    html = text(r)
    assert "Ce service n'a pas pu être consulté : Médiathèque de Mérignac." in html
    assert "Certains services n'ont pas pu être consultés." in html
    assert 'href="/services/bib-merignac#' not in html
    # Every other service is in the list.
    assert 'href="/services/bib-bordeaux#loans"' in html
    assert "Réserver ou annuler le repas de" in html
    assert "Renouveler votre demande de logement" in html


def test_a_link_the_back_end_no_longer_knows_is_named_with_the_way_to_relink_it(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "amina")
    with services_app.app_context():
        link = db.session.execute(
            db.select(ServiceLink).filter_by(instance_slug="bib-merignac")
        ).scalar_one()
        link.external_id = "mer-p-9999"  # the card was cancelled at the library
        db.session.commit()
    html = text(services_client.get("/account/todo", headers=HX))
    assert "« Médiathèque de Mérignac » ne reconnaît plus votre compte" in html
    assert 'href="/link/bib-merignac"' in html
    assert "Ce service n'a pas pu être consulté" not in html  # waiting will not help
    # Nothing to wait for either on the calendar's side: the feed answers.
    services_client.post("/account/calendar", data={"csrf_token": csrf(services_client)})
    url, _token = FEED_RE.search(text(services_client.get("/account/calendar"))).groups()
    assert services_app.test_client().get(urlsplit(url).path).status_code == 200


def test_a_resident_with_nothing_linked_has_nothing_to_do(services_client: FlaskClient) -> None:
    sign_in(services_client, "eloise")
    assert 'id="todo-list"' not in text(services_client.get("/"))
    assert "Rien à faire pour le moment." in text(services_client.get("/account/todo"))


# -- the calendar feed -----------------------------------------------------------------


def events_of(body: bytes) -> list:
    calendar = Calendar.from_ical(body)
    return list(calendar.walk("VEVENT"))


def test_resident_subscribes_their_calendar_then_revokes_it(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "marie-therese")
    marie = citizen_id(services_app, "Marie")
    page = text(services_client.get("/account/calendar"))
    assert "Créer mon lien d'agenda" in page
    r = services_client.post("/account/calendar", data={"csrf_token": csrf(services_client)})
    assert r.status_code == 303 and r.headers["Location"] == "/account/calendar"
    page = text(services_client.get("/account/calendar"))
    match = FEED_RE.search(page)
    assert match, "the new feed URL is not shown"
    url, token = match.groups()
    assert len(token) >= 43  # 32 random bytes
    assert 'href="webcal://localhost/calendar/' in page
    with services_app.app_context():
        stored = db.session.get(Citizen, marie).calendar_token_hash
    assert stored == hashlib.sha256(token.encode()).hexdigest()  # only the hash is kept
    # Shown once: coming back does not show it again.
    assert token not in text(services_client.get("/account/calendar"))

    # The calendar application has no session: the token is enough.
    calendar_app = services_app.test_client()
    feed_path = urlsplit(url).path
    r = calendar_app.get(feed_path)
    assert r.status_code == 200
    assert r.mimetype == "text/calendar"
    events = events_of(r.data)
    summaries = [str(e["SUMMARY"]) for e in events]
    assert "Rendre « Au revoir là-haut » – Médiathèque de Mérignac" in summaries
    assert any(s.startswith("Réserver ou annuler le repas de Chloé") for s in summaries)
    assert any(s.startswith("Payer « ") for s in summaries)
    assert any(s.startswith("Renouveler votre demande de logement") for s in summaries)
    for event in events:
        start, end = event.decoded("DTSTART"), event.decoded("DTEND")
        assert type(start) is date and (end - start).days == 1  # all-day
        assert str(event["URL"]).startswith("http://localhost/services/")
        assert "#" in str(event["URL"])  # to the section where it is done
    uids = [str(e["UID"]) for e in events]
    assert len(set(uids)) == len(uids)
    # Nothing that identifies the accounts themselves.
    body = r.data.decode()
    for secret in (MARIE_CARD_NUMBER, *MARIE_ACCOUNTS, "Marie", "MARTIN"):
        assert secret not in body
    # Stable: the next fetch updates the same events rather than adding new ones.
    assert [str(e["UID"]) for e in events_of(calendar_app.get(feed_path).data)] == uids

    # The same events, once, as a file.
    download = services_client.get("/account/calendar.ics")
    assert download.status_code == 200 and download.mimetype == "text/calendar"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert sorted(str(e["UID"]) for e in events_of(download.data)) == sorted(uids)

    # A new link replaces the old one.
    services_client.post("/account/calendar", data={"csrf_token": csrf(services_client)})
    new_url, _new_token = FEED_RE.search(text(services_client.get("/account/calendar"))).groups()
    assert calendar_app.get(feed_path).status_code == 404
    assert calendar_app.get(urlsplit(new_url).path).status_code == 200

    r = services_client.post(
        "/account/calendar/revoke", data={"csrf_token": csrf(services_client, "/account/calendar")}
    )
    assert r.status_code == 303
    assert "il ne donne plus accès à rien" in text(services_client.get("/account/calendar"))
    assert calendar_app.get(urlsplit(new_url).path).status_code == 404
    with services_app.app_context():
        assert db.session.get(Citizen, marie).calendar_token_hash is None
    actions = [e["action"] for e in download_my_data(services_client).json["activity"]]
    assert actions.count("create_calendar_feed") == 2 and "revoke_calendar_feed" in actions


@pytest.mark.parametrize(
    "token",
    ["x", "a" * 43, "A" * 200, "..%2F..%2Fetc%2Fpasswd", "%00" * 10, "é" * 43, "a b"],
)
def test_a_garbage_feed_token_is_not_found(services_client: FlaskClient, token: str) -> None:
    assert services_client.get(f"/calendar/{token}.ics").status_code == 404


def test_the_calendar_feed_is_rate_limited(services_client: FlaskClient) -> None:
    statuses = [services_client.get(f"/calendar/{'b' * 43}.ics").status_code for _ in range(31)]
    assert statuses[:30] == [404] * 30
    assert statuses[30] == 429


def test_the_calendar_feed_limit_is_a_setting(
    database_url: str, fc_sandbox: Sandbox, connectors_file: str
) -> None:
    app = create_app(
        portal_settings(
            database_url,
            fc_sandbox.issuer,
            connectors_file=connectors_file,
            feed_rate_limit="3 per minute",
        )
    )
    try:
        client = app.test_client()
        statuses = [client.get(f"/calendar/{'c' * 43}.ics").status_code for _ in range(4)]
        assert statuses == [404, 404, 404, 429]
    finally:
        empty_tables(app)
        app.extensions["connectors"].close()


def test_a_feed_whose_service_is_down_asks_the_calendar_to_keep_its_copy(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "amina")
    services_client.post("/account/calendar", data={"csrf_token": csrf(services_client)})
    url, _token = FEED_RE.search(text(services_client.get("/account/calendar"))).groups()
    fc_sandbox.fault("housing", "metropole", "error500")
    r = services_app.test_client().get(urlsplit(url).path)
    assert r.status_code == 503
    assert int(r.headers["Retry-After"]) > 0
    # The resident's own download still works, with what could be read.
    assert services_client.get("/account/calendar.ics").status_code == 200


# -- downloading my data cannot be triggered by another site ------------------------------


def test_downloading_my_data_needs_the_form_and_its_token(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "amina")
    amina = citizen_id(services_app, "Amina")

    def exports() -> int:
        with services_app.app_context():
            return db.session.scalar(
                db.select(db.func.count())
                .select_from(JournalEntry)
                .filter_by(citizen_id=amina, action="export_data")
            )

    # A GET (what an image or a link on another site sends) shows the page, nothing more.
    r = services_client.get("/account/data.json")
    assert r.status_code == 303 and r.headers["Location"] == "/account/data"
    assert r.mimetype != "application/json"
    # A POST from elsewhere has no form token: refused.
    forged = services_client.post("/account/data.json", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 400
    assert "Le formulaire a expiré" in text(forged)
    assert exports() == 0
    # The page's button posts the form with its token.
    page = text(services_client.get("/account/data"))
    assert re.search(r'<form method="post" action="/account/data.json">', page)
    assert "<button" in page and "Télécharger toutes mes données" in page
    r = download_my_data(services_client)
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert exports() == 1
