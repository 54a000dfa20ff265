"""A write the back-end did, whose answer came too late: the portal says it does not know
yet, asks again with the same key, and journals the outcome once it is known.

And the other side of it: when the request was never sent or was refused before being
processed (connection refused, 503, 429, open breaker), nothing was done, and the portal
says so and lets the resident try again.

Over real HTTP to the sandbox, whose ``answer_late`` fault does the write and then holds
its answer back past the connector's read timeout (shortened here to keep tests fast).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from portal.services import answers
from tests.integration.test_actions import (
    HX,
    NOTHING_DONE,
    application,
    due_dates,
    follow,
    form_to,
    french_day,
    journal,
    koha_due_date,
    meal_days,
    next_month,
    raw,
    send,
    text,
    write_records,
)
from tests.support import (
    DEMO_LINKS_FILE,
    Sandbox,
    ServerThread,
    empty_tables,
    portal_settings,
    sandbox_connectors_file,
    sign_in,
)

#: The connectors' read timeout in these tests: the late answer comes after it.
READ_TIMEOUT_S = 0.4
LATE_S = 5
RENEW = "/services/logement-metropole/renew"
HOUSING_PAGE = "/services/logement-metropole"
NOT_KNOWN = "Nous ne savons pas encore si votre demande a été renouvelée."


@pytest.fixture(scope="module")
def quick_connectors_file(sandbox_server: ServerThread, tmp_path_factory) -> str:
    """The sandbox's instances with a short read timeout."""
    target: Path = tmp_path_factory.mktemp("quick") / "connectors.toml"
    sandbox_connectors_file(sandbox_server.url, target)
    text_ = target.read_text(encoding="utf-8")
    text_ = re.sub(
        r"^(base_url = .*)$",
        rf"\1\ntimeout_s = {READ_TIMEOUT_S}\nconnect_timeout_s = {READ_TIMEOUT_S}",
        text_,
        flags=re.M,
    )
    target.write_text(text_, encoding="utf-8")
    return str(target)


@pytest.fixture
def quick_app(
    database_url: str, fc_sandbox: Sandbox, quick_connectors_file: str
) -> Iterator[Flask]:
    app = create_quick_app(database_url, fc_sandbox, quick_connectors_file)
    yield app
    fc_sandbox.fault("housing", "metropole", None)  # lets a held answer go
    app.extensions["connectors"].close()
    empty_tables(app)


def create_quick_app(database_url: str, fc_sandbox: Sandbox, connectors_file: str) -> Flask:
    from portal import create_app

    return create_app(
        portal_settings(
            database_url,
            fc_sandbox.issuer,
            connectors_file=connectors_file,
            demo_links_file=DEMO_LINKS_FILE,
            card_deadline_s=2.0,
            page_deadline_s=2.0,
        )
    )


@pytest.fixture
def client(quick_app: Flask) -> FlaskClient:
    return quick_app.test_client()


def expires_on(fc_sandbox: Sandbox) -> date:
    return date.fromisoformat(application(fc_sandbox, "dem-0871")["expires_on"])


def renew_late(client: FlaskClient, fc_sandbox: Sandbox, headers=None):
    """Marie renews her application; the back-end renews it and answers too late."""
    sign_in(client, "marie-therese")
    form = form_to(raw(client.get(RENEW)), RENEW)
    fc_sandbox.fault("housing", "metropole", "answer_late", hang_s=LATE_S)
    return form, send(client, form, headers=headers)


# -- (a) the answer came after the read timeout ---------------------------------------------


def test_a_renewal_answered_too_late_is_not_known_yet_rather_than_nothing_done(
    client: FlaskClient, quick_app: Flask, fc_sandbox: Sandbox
) -> None:
    before = expires_on(fc_sandbox)
    form, answer = renew_late(client, fc_sandbox)

    shown = follow(client, answer)
    assert NOT_KNOWN in shown
    assert "redemandera à votre prochaine visite" in shown
    assert "rien n'a été fait" not in shown
    # The back-end did renew it: saying "nothing was done" would have been false.
    assert expires_on(fc_sandbox) == before.replace(year=before.year + 1)
    [record] = write_records(quick_app, "renew_application")
    assert record.state == "unknown" and record.key == form.value("idem")
    assert journal(quick_app, "renew_application") == [], "nothing final journaled yet"


def test_with_htmx_a_renewal_answered_too_late_is_said_in_place(
    client: FlaskClient, quick_app: Flask, fc_sandbox: Sandbox
) -> None:
    _form, answer = renew_late(client, fc_sandbox, headers=HX)
    assert answer.status_code == 200
    assert NOT_KNOWN in text(answer) and "rien n'a été fait" not in text(answer)
    assert journal(quick_app, "renew_application") == []


# -- (b) the next visit asks again with the same key ----------------------------------------


def test_the_next_visit_asks_again_with_the_same_key_and_journals_the_renewal_once(
    client: FlaskClient, quick_app: Flask, fc_sandbox: Sandbox, monkeypatch
) -> None:
    before = expires_on(fc_sandbox)
    renewed = before.replace(year=before.year + 1)
    _form, answer = renew_late(client, fc_sandbox)
    follow(client, answer)
    monkeypatch.setattr(answers, "ASK_AGAIN_AFTER_S", 0.0)  # "a while later"

    # Still no answer: still not known, still nothing journaled.
    still = text(client.get(HOUSING_PAGE))
    assert NOT_KNOWN in still and "rien n'a été fait" not in still
    assert journal(quick_app, "renew_application") == []

    # The back-end answers again: its stored answer for the key settles the write.
    fc_sandbox.fault("housing", "metropole", None)
    settled = text(client.get(HOUSING_PAGE))
    assert f"Votre demande est renouvelée jusqu'au {french_day(renewed)}." in settled
    assert NOT_KNOWN not in settled
    assert expires_on(fc_sandbox) == renewed, "no second renewal at the back-end"
    [record] = write_records(quick_app, "renew_application")
    assert record.state == "done"
    [entry] = journal(quick_app, "renew_application")
    assert entry.outcome == "success"

    # Later visits neither ask again nor journal it twice.
    later = text(client.get(HOUSING_PAGE))
    assert "Votre demande est renouvelée" not in later
    assert len(journal(quick_app, "renew_application")) == 1
    assert expires_on(fc_sandbox) == renewed


def test_sending_the_same_form_again_settles_it_without_renewing_twice(
    client: FlaskClient, quick_app: Flask, fc_sandbox: Sandbox
) -> None:
    before = expires_on(fc_sandbox)
    form, answer = renew_late(client, fc_sandbox)
    follow(client, answer)
    fc_sandbox.fault("housing", "metropole", None)

    shown = follow(client, send(client, form))

    renewed = before.replace(year=before.year + 1)
    assert f"Votre demande est renouvelée jusqu'au {french_day(renewed)}." in shown
    assert expires_on(fc_sandbox) == renewed
    assert [e.outcome for e in journal(quick_app, "renew_application")] == ["success"]


def test_a_loan_renewal_answered_too_late_is_settled_on_the_next_visit(
    client: FlaskClient, quick_app: Flask, fc_sandbox: Sandbox, monkeypatch
) -> None:
    """The library's renewals share the same path."""
    sign_in(client, "marie-therese")
    before = due_dates(fc_sandbox)["mer-l-0417-5"]
    action = "/services/bib-merignac/loans/mer-l-0417-5/renew"
    form = form_to(raw(client.get("/services/bib-merignac")), action)
    fc_sandbox.fault("library", "merignac", "answer_late", hang_s=LATE_S)
    try:
        answer = send(client, form, headers=HX)
        said = "Nous ne savons pas encore si «\u00a0Astérix chez les Pictes\u00a0» a été prolongé."
        assert said in text(answer)
        assert due_dates(fc_sandbox)["mer-l-0417-5"] != before
        assert journal(quick_app, "renew_loan") == []
        # The loans shown again carry the same key for that loan.
        assert form_to(raw(answer), action).value("idem") == form.value("idem")
    finally:
        fc_sandbox.fault("library", "merignac", None)
    after = due_dates(fc_sandbox)["mer-l-0417-5"]
    monkeypatch.setattr(answers, "ASK_AGAIN_AFTER_S", 0.0)
    page = text(client.get("/services/bib-merignac"))
    assert "«\u00a0Astérix chez les Pictes\u00a0» est prolongé jusqu'au" in page
    assert due_dates(fc_sandbox)["mer-l-0417-5"] == after, "renewed once"
    assert [e.outcome for e in journal(quick_app, "renew_loan")] == ["success"]


def test_a_hold_cancelled_with_a_late_answer_is_settled_by_the_same_form(
    client: FlaskClient, quick_app: Flask, fc_sandbox: Sandbox
) -> None:
    """The hold is gone from the account by then: the same form still gets its answer."""
    sign_in(client, "marie-therese")
    confirm_url = "/services/bib-merignac/holds/mer-h-0417-2/cancel"
    form = form_to(raw(client.get(confirm_url)), confirm_url)
    fc_sandbox.fault("library", "merignac", "answer_late", hang_s=LATE_S)
    try:
        answer = send(client, form, headers=HX)
        assert "Nous ne savons pas encore si votre réservation de" in text(answer)
    finally:
        fc_sandbox.fault("library", "merignac", None)
    again = follow(client, send(client, form))
    assert "Votre réservation de «\u00a0Petit Pays\u00a0» est annulée." in again
    assert [e.outcome for e in journal(quick_app, "cancel_hold")] == ["success"]


def test_meals_changed_with_a_late_answer_are_settled_on_the_next_visit(
    client: FlaskClient, quick_app: Flask, fc_sandbox: Sandbox, monkeypatch
) -> None:
    """Canteen bookings share the path: the next visit to the month sends the same
    changes with the same key, and they are journaled once."""
    sign_in(client, "marie-therese")
    month = next_month(date.today())
    url = f"/services/cantine-bordeaux/meals?month={month:%Y-%m}"
    action = "/services/cantine-bordeaux/meals"
    form = form_to(raw(client.get(url)), action)
    day = next(d for d, booked in form.boxes("enf-4521-1").items() if booked)
    data = [(k, v) for k, v in form.data() if (k, v) != ("book", f"enf-4521-1:{day}")]
    fc_sandbox.fault("canteen", "bordeaux", "answer_late", hang_s=LATE_S)
    try:
        answer = client.post(action, data=MultiDict(data), headers=HX)
        said = "Nous ne savons pas encore si vos changements de repas ont été enregistrés."
        assert said in text(answer) and "rien n'a été fait" not in text(answer)
        assert journal(quick_app, "book_meals") == []
    finally:
        fc_sandbox.fault("canteen", "bordeaux", None)
    assert meal_days(fc_sandbox, "fam-4521", "enf-4521-1", month)[day]["booked"] is False
    monkeypatch.setattr(answers, "ASK_AGAIN_AFTER_S", 0.0)
    page = text(client.get(url))
    assert "1 modification enregistrée." in page
    assert [e.outcome for e in journal(quick_app, "book_meals")] == ["success"]
    assert [w.state for w in write_records(quick_app, "book_meals")] == ["done"]


def test_koha_which_ignores_idempotency_keys_is_never_asked_twice(
    client: FlaskClient, quick_app: Flask, fc_sandbox: Sandbox, monkeypatch
) -> None:
    """Sending a Koha renewal again could renew it twice: the outcome stays unknown and
    the resident is sent to the loans list, which shows the truth."""
    sign_in(client, "marie-therese")
    before = koha_due_date(fc_sandbox, 9004)
    action = "/services/bib-bordeaux/loans/9004/renew"
    form = form_to(raw(client.get("/services/bib-bordeaux")), action)
    fc_sandbox.fault("koha", "bordeaux", "answer_late", hang_s=LATE_S)
    try:
        answer = send(client, form, headers=HX)
        assert "Nous ne savons pas encore si" in text(answer)
        assert "Vérifiez ce que montre votre compte" in text(answer)
    finally:
        fc_sandbox.fault("koha", "bordeaux", None)
    assert koha_due_date(fc_sandbox, 9004) == before + timedelta(days=21)
    monkeypatch.setattr(answers, "ASK_AGAIN_AFTER_S", 0.0)
    client.get("/services/bib-bordeaux")
    again = send(client, form, headers=HX)  # the same form, sent again
    assert "Nous ne savons pas encore si" in text(again)
    assert koha_due_date(fc_sandbox, 9004) == before + timedelta(days=21), "renewed once"
    assert journal(quick_app, "renew_loan") == []


# -- (c) not sent, or refused before being processed: nothing was done --------------------


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.mark.parametrize("failure", ["refused", "unavailable", "rate_limit", "breaker"])
def test_a_renewal_never_processed_says_nothing_was_done_and_can_be_retried(
    client: FlaskClient, quick_app: Flask, fc_sandbox: Sandbox, failure: str
) -> None:
    sign_in(client, "marie-therese")
    before = expires_on(fc_sandbox)
    form = form_to(raw(client.get(RENEW)), RENEW)
    http = quick_app.extensions["connectors"]._http["logement-metropole"]
    real_base = http._client.base_url
    if failure == "refused":
        http._client.base_url = f"http://127.0.0.1:{closed_port()}/housing/metropole/"
    elif failure == "breaker":
        http.breakers.on_failure(http.slug, http._clock(), 1, probe=True)
    else:  # the write refused before processing, reads still answered
        fc_sandbox.fault("housing", "metropole", failure, retry_after=30, writes_only=True)

    shown = follow(client, send(client, form))

    assert "rien n'a été fait" in shown and "Nous ne savons pas encore" not in shown
    if failure in ("refused", "breaker"):
        # Reads fail too: the page holds only the last known copy, so nothing is sent.
        assert write_records(quick_app, "renew_application") == []
    else:
        assert NOTHING_DONE in shown
        assert [w.state for w in write_records(quick_app, "renew_application")] == ["failed"]
        assert [e.outcome for e in journal(quick_app, "renew_application")] == ["failure"]

    http._client.base_url = real_base
    http.breakers.reset(http.slug)
    fc_sandbox.fault("housing", "metropole", None)
    assert expires_on(fc_sandbox) == before, "nothing was done"
    retried = follow(client, send(client, form))
    assert "Votre demande est renouvelée jusqu'au" in retried
    assert expires_on(fc_sandbox) == before.replace(year=before.year + 1)
