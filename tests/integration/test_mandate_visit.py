"""A mandate opened at the desk and used, over real HTTP against the sandbox: the adviser
signs in with ProConnect, the resident with FranceConnect on the desk's screen (their
FranceConnect session ended at once), both confirm (the adviser with a fresh sign-in),
then the adviser acts for the resident within the mandate and nothing else."""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from portal.extensions import db
from portal.mandates import live_scopes, revoke
from portal.models import (
    AssistedSession,
    AuthSession,
    Citizen,
    DeskJournalEntry,
    DeskVisit,
    JournalEntry,
    Mandate,
)
from portal.models._types import utcnow
from tests.integration.test_actions import CHLOE, MEALS, form_to, raw, send
from tests.integration.test_desks import add_desk, agent_row, grant
from tests.support import (
    Authorize,
    Sandbox,
    agent_sign_in,
    choose_agent,
    choose_identity,
    provision_agent,
    sign_in,
)

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SIRET_A, SIRET_B = "21330063500017", "21330281300016"
LIBRARY, CANTEEN, WATER = "bib-merignac", "cantine-bordeaux", "eau-bordeaux"


def csrf(client: FlaskClient, path: str) -> str:
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code)
    match = CSRF_RE.search(r.get_data(as_text=True))
    assert match, path
    return match.group(1)


def location(r) -> str:
    assert r.status_code in (302, 303), (r.status_code, r.get_data(as_text=True)[:500])
    parts = urlsplit(r.headers["Location"])
    return parts.path + (f"?{parts.query}" if parts.query else "")


def to_provider(r) -> Authorize:
    url = r.headers["Location"]
    return Authorize(url, {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()})


@pytest.fixture
def desk(services_app: Flask) -> int:
    desk_id = add_desk(services_app, "Maison France services du Lac", SIRET_A)
    provision_agent(services_app, "claire")
    grant(services_app, "claire", "adviser", desk_id)
    return desk_id


def resident_id(app: Flask, given_name: str = "Marie-Thérèse") -> int:
    with app.app_context():
        return db.session.execute(
            db.select(Citizen.id).filter_by(given_name=given_name)
        ).scalar_one()


def start_visit(
    client: FlaskClient, desk_id: int, scopes: list[str], duration: str = "1m", channel="desk"
) -> str:
    path = f"/agents/desk/{desk_id}/mandates/new"
    token = csrf(client, path)
    data = MultiDict(
        [("csrf_token", token), ("duration", duration), ("channel", channel)]
        + [("scope", s) for s in scopes]
    )
    handover = location(client.post(path, data=data))
    assert handover.startswith("/agents/visit/")
    return handover.rsplit("/", 1)[1]


def resident_signs_in_at_desk(client: FlaskClient, visit: str, identity="marie-therese") -> str:
    """Returns the FranceConnect logout address the portal sent the browser to."""
    r = client.get(f"/agents/visit/{visit}/franceconnect")
    auth = to_provider(r)
    assert auth.params["acr_values"] == "eidas1"
    callback = choose_identity(auth, identity)
    r = client.get(callback)
    assert r.status_code == 303
    return r.headers["Location"]


def through_fc_logout(client: FlaskClient, logout_url: str) -> str:
    """Follow the provider's logout (over HTTP) back to the portal; return the portal path."""
    from tests.support import http_client

    with http_client() as http:
        r = http.get(logout_url)
    assert r.status_code in (302, 303), r.text
    back = urlsplit(r.headers["Location"])
    return location(client.get(f"{back.path}?{back.query}"))


def confirm_both(client: FlaskClient, visit: str, agent: str = "claire") -> str:
    recap = f"/agents/visit/{visit}/recap"
    token = csrf(client, recap)
    location(client.post(f"/agents/visit/{visit}/resident-confirms", data={"csrf_token": token}))
    token = csrf(client, recap)
    r = client.post(f"/agents/visit/{visit}/adviser-confirms", data={"csrf_token": token})
    auth = to_provider(r)
    assert auth.params["prompt"] == "login"
    return location(client.get(choose_agent(auth, agent)))


def open_mandate_at_desk(client: FlaskClient, desk_id: int, scopes: list[str], **kw) -> str:
    visit = start_visit(client, desk_id, scopes, **kw)
    recap = through_fc_logout(client, resident_signs_in_at_desk(client, visit))
    assert recap == f"/agents/visit/{visit}/recap"
    return confirm_both(client, visit)


def act(client: FlaskClient, desk_id: int, reference: str, channel: str = "desk"):
    path = f"/agents/desk/{desk_id}/mandates/{reference}/act"
    token = csrf(client, "/agents/")
    return client.post(path, data={"csrf_token": token, "channel": channel})


def the_mandate(app: Flask) -> Mandate:
    with app.app_context():
        mandate = db.session.execute(db.select(Mandate).order_by(Mandate.id.desc())).scalar()
        assert mandate is not None
        db.session.expunge(mandate)
        return mandate


# -- opening ---------------------------------------------------------------------------


def test_a_mandate_is_opened_with_the_resident_at_the_desk_and_no_one_stays_signed_in(
    services_app: Flask, services_client: FlaskClient, desk: int
) -> None:
    client = services_client
    agent_sign_in(client, "claire")
    visit = start_visit(client, desk, [LIBRARY, CANTEEN], duration="1m")
    logout = resident_signs_in_at_desk(client, visit)
    # FranceConnect's session is ended at once, through its logout, with the id token.
    assert "/session/end" in logout and "id_token_hint=" in logout
    # No resident session was made in this browser.
    with services_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AuthSession)) == 0
    recap = through_fc_logout(client, logout)
    page = client.get(recap).get_data(as_text=True)
    assert "Marie-Thérèse" in page and "Médiathèque de Mérignac" in page
    assert "Restauration scolaire de Bordeaux" in page
    assert "Ce que les conseillers du guichet peuvent faire" in page
    # The adviser cannot confirm before the resident.
    token = CSRF_RE.search(page).group(1)  # type: ignore[union-attr]
    r = client.post(f"/agents/visit/{visit}/adviser-confirms", data={"csrf_token": token})
    assert location(r) == recap
    receipt = confirm_both(client, visit)
    mandate = the_mandate(services_app)
    assert mandate.reference in receipt or receipt.startswith("/agents")
    with services_app.app_context():
        row = db.session.get_one(Mandate, mandate.id)
        assert live_scopes(row) == {LIBRARY, CANTEEN}
        assert row.citizen.given_name.startswith("Marie-Thérèse")
        assert row.ends_at.date() >= (utcnow() + timedelta(days=27)).date()
        lines = db.session.scalars(db.select(DeskJournalEntry.action)).all()
        assert "mandate_opened" in lines
        opened = db.session.execute(
            db.select(JournalEntry).filter_by(citizen_id=row.citizen_id, code="mandate_opened")
        ).scalar_one()
        assert opened.params["reference"] == mandate.reference
    # The browser still holds no resident session: the home page asks to sign in.
    assert client.get("/").status_code == 302


def test_replaying_the_residents_desk_sign_in_opens_no_second_mandate(
    services_app: Flask, services_client: FlaskClient, desk: int
) -> None:
    client = services_client
    agent_sign_in(client, "claire")
    visit = start_visit(client, desk, [LIBRARY])
    r = client.get(f"/agents/visit/{visit}/franceconnect")
    callback = choose_identity(to_provider(r), "marie-therese")
    through_fc_logout(client, client.get(callback).headers["Location"])
    replay = client.get(callback)  # the same callback again
    assert replay.status_code in (302, 303, 400)
    confirm_both(client, visit)
    # Confirming again (a double click, a replayed step-up) opens nothing more.
    r = client.post(
        f"/agents/visit/{visit}/adviser-confirms",
        data={"csrf_token": csrf(client, "/agents/")},
    )
    assert r.status_code == 303
    with services_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Mandate)) == 1


def test_the_pending_desk_state_expires_after_five_minutes(
    services_app: Flask, services_client: FlaskClient, desk: int
) -> None:
    client = services_client
    agent_sign_in(client, "claire")
    visit = start_visit(client, desk, [LIBRARY])
    with services_app.app_context():
        row = db.session.get_one(DeskVisit, visit)
        row.step_at = utcnow() - timedelta(minutes=5, seconds=1)
        db.session.commit()
    r = client.get(f"/agents/visit/{visit}/franceconnect")
    assert location(r) == f"/agents/desk/{desk}/mandates/new"
    page = client.get(f"/agents/desk/{desk}/mandates/new").get_data(as_text=True)
    assert "a expiré" in page
    with services_app.app_context():
        assert db.session.get(DeskVisit, visit) is None
        assert db.session.scalar(db.select(db.func.count()).select_from(Mandate)) == 0


def test_the_advisers_choices_are_checked(
    services_app: Flask, services_client: FlaskClient, desk: int
) -> None:
    client = services_client
    agent_sign_in(client, "claire")
    path = f"/agents/desk/{desk}/mandates/new"
    page = client.get(path).get_data(as_text=True)
    # Payments come separately, unticked, with a warning.
    assert 'value="eau-bordeaux:payments"' in page and "l'argent de la personne" in page
    assert 'value="eau-bordeaux:payments" checked' not in page
    token = CSRF_RE.search(page).group(1)  # type: ignore[union-attr]
    for data, message in [
        ([("duration", "1m"), ("channel", "desk")], "Choisissez au moins un service."),
        ([("scope", "nowhere"), ("duration", "1m"), ("channel", "desk")], "existe pas"),
        ([("scope", LIBRARY), ("duration", "10y"), ("channel", "desk")], "Choisissez une durée."),
        ([("scope", LIBRARY), ("duration", "1m"), ("channel", "fax")], "Choisissez comment"),
    ]:
        r = client.post(path, data=MultiDict([("csrf_token", token), *data]))
        assert r.status_code == 400 and message in r.get_data(as_text=True)
    with services_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(DeskVisit)) == 0


def test_an_adviser_without_a_second_factor_cannot_confirm(
    services_app: Flask, services_client: FlaskClient, desk: int
) -> None:
    client = services_client
    agent_sign_in(client, "claire")
    visit = start_visit(client, desk, [LIBRARY])
    through_fc_logout(client, resident_signs_in_at_desk(client, visit))
    recap = f"/agents/visit/{visit}/recap"
    location(
        client.post(
            f"/agents/visit/{visit}/resident-confirms", data={"csrf_token": csrf(client, recap)}
        )
    )
    r = client.post(
        f"/agents/visit/{visit}/adviser-confirms", data={"csrf_token": csrf(client, recap)}
    )
    answer = client.get(choose_agent(to_provider(r), "claire", acr="eidas1"))
    assert answer.status_code == 403
    with services_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Mandate)) == 0


# -- acting for the resident -------------------------------------------------------------


def test_adviser_renews_a_loan_and_books_a_meal_then_the_resident_revokes_one_service(
    services_app: Flask, services_client: FlaskClient, desk: int, fc_sandbox: Sandbox
) -> None:
    # The resident has their accounts linked (the demo links, at their own sign-in).
    home = services_app.test_client()
    sign_in(home, "marie-therese")
    client = services_client
    agent_sign_in(client, "claire")
    open_mandate_at_desk(client, desk, [LIBRARY, CANTEEN])
    mandate = the_mandate(services_app)
    assert location(act(client, desk, mandate.reference)) == "/"

    dashboard = client.get("/").get_data(as_text=True)
    assert "Vous agissez pour Marie-Thérèse" in dashboard and "Terminer" in dashboard
    # Only the mandated services are there: the water account is absent, not greyed.
    assert "Médiathèque de Mérignac" in dashboard
    assert "Régie de l'eau de Bordeaux" not in dashboard
    assert client.get(f"/services/{WATER}").status_code == 404
    assert client.get("/account/data").status_code == 403
    assert client.get("/account/activity").status_code == 403

    # Renew a loan.
    page = raw(client.get(f"/services/{LIBRARY}"))
    renewed = send(client, form_to(page, f"/services/{LIBRARY}/loans/mer-l-0417-5/renew"))
    assert renewed.status_code in (200, 303)
    # Book a meal next month.
    today = date.today()
    month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    url = f"{MEALS}?month={month:%Y-%m}"
    form = form_to(raw(client.get(url)), MEALS)
    day = next(d for d, booked in form.boxes(CHLOE).items() if booked)
    kept = [(k, v) for k, v in form.data() if (k, v) != ("book", f"{CHLOE}:{day}")]
    cancelled = client.post(MEALS, data=MultiDict(kept))
    assert cancelled.status_code in (200, 303)
    form = form_to(raw(client.get(url)), MEALS)
    assert form.boxes(CHLOE)[day] is False
    booked = send(client, form, extra=[("book", f"{CHLOE}:{day}")])
    assert booked.status_code in (200, 303)
    assert form_to(raw(client.get(url)), MEALS).boxes(CHLOE)[day] is True

    with services_app.app_context():
        entries = db.session.scalars(
            db.select(JournalEntry).filter_by(mandate_id=mandate.id).order_by(JournalEntry.id)
        ).all()
        done = {(e.code, e.connector_instance, e.outcome) for e in entries}
        assert ("renew_loan", LIBRARY, "success") in done
        assert any(code.startswith("book") or "meal" in code for code, _i, _o in done), done
        claire = agent_row(services_app, "claire")
        assert all(e.actor_kind == "adviser" and e.actor_id == str(claire.id) for e in entries)
        assert all(e.channel == "desk" for e in entries)

    # The resident, at home, sees both actions in Mes mandats and in Mon activité...
    mine = home.get("/account/mandates").get_data(as_text=True)
    assert "Maison France services du Lac" in mine
    assert "Astérix chez les Pictes" in mine and "Claire" in mine
    activity = home.get("/account/activity").get_data(as_text=True)
    assert "Fait pour vous par Claire" in activity and "au guichet" in activity
    # ...and revokes the library online, in one confirmed step.
    path = f"/account/mandates/{mandate.reference}/revoke"
    r = home.post(
        path, data={"csrf_token": csrf(home, f"{path}?scope={LIBRARY}"), "scope": LIBRARY}
    )
    assert r.status_code == 303
    with services_app.app_context():
        assert live_scopes(db.session.get_one(Mandate, mandate.id)) == {CANTEEN}
    # The adviser's next library request is refused; the canteen still works.
    assert client.get(f"/services/{LIBRARY}").status_code == 404
    r = send(client, form_to(page, f"/services/{LIBRARY}/loans/mer-l-0417-5/renew"))
    assert r.status_code == 404  # a form opened before the revocation
    assert client.get(f"{MEALS}?month={month:%Y-%m}").status_code == 200

    # Ending the visit closes the assisted session.
    token = csrf(client, "/")
    back = location(client.post("/agents/assisted/end", data={"csrf_token": token}))
    assert back.startswith("/agents")
    with services_app.app_context():
        session_row = db.session.execute(db.select(AssistedSession)).scalar_one()
        assert session_row.ended_at is not None
    assert client.get(f"{MEALS}?month={month:%Y-%m}").status_code == 302  # signed out


def test_a_mandate_past_its_end_stops_the_adviser_at_once(
    services_app: Flask,
    services_client: FlaskClient,
    desk: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sign_in(services_app.test_client(), "marie-therese")
    client = services_client
    agent_sign_in(client, "claire")
    open_mandate_at_desk(client, desk, [CANTEEN], duration="1d")
    mandate = the_mandate(services_app)
    act(client, desk, mandate.reference)
    assert client.get(f"/services/{CANTEEN}").status_code == 200
    # A day and a minute later, the same adviser's next request is refused.
    import portal.mandates.assisted as assisted

    later = utcnow() + timedelta(days=1, minutes=1)
    monkeypatch.setattr(assisted, "utcnow", lambda: later)
    r = client.get(f"/services/{CANTEEN}")
    assert location(r) == f"/agents/desk/{desk}" or location(r) == "/agents/"
    monkeypatch.undo()
    assert client.get(f"/services/{CANTEEN}").status_code == 302  # no one signed in here
    # And the mandate cannot be used again.
    with services_app.app_context():
        assert live_scopes(db.session.get_one(Mandate, mandate.id), later) == set()


def test_a_mandate_revoked_whole_stops_the_adviser_at_once(
    services_app: Flask, services_client: FlaskClient, desk: int
) -> None:
    sign_in(services_app.test_client(), "marie-therese")
    client = services_client
    agent_sign_in(client, "claire")
    open_mandate_at_desk(client, desk, [CANTEEN])
    mandate = the_mandate(services_app)
    act(client, desk, mandate.reference)
    with services_app.app_context():
        revoke(db.session.get_one(Mandate, mandate.id), None, by_kind="citizen")
        db.session.commit()
    r = client.get(f"/services/{CANTEEN}")
    assert location(r).startswith("/agents")
    assert client.get(f"/services/{CANTEEN}").status_code == 302
    assert act(client, desk, mandate.reference).status_code == 303  # refused, back to desk
    assert client.get(f"/services/{CANTEEN}").status_code == 302


def test_an_adviser_of_another_desk_cannot_see_or_use_the_mandate(
    services_app: Flask, services_client: FlaskClient, desk: int
) -> None:
    sign_in(services_app.test_client(), "marie-therese")
    agent_sign_in(services_client, "claire")
    open_mandate_at_desk(services_client, desk, [CANTEEN])
    mandate = the_mandate(services_app)
    other = add_desk(services_app, "France services de Pessac", SIRET_B)
    provision_agent(services_app, "karim")
    grant(services_app, "karim", "adviser", other)
    karim = services_app.test_client()
    agent_sign_in(karim, "karim")
    # Through his own desk, or through the first one's address.
    assert act(karim, other, mandate.reference).status_code == 404
    assert act(karim, desk, mandate.reference).status_code == 403
    assert karim.get(f"/services/{CANTEEN}").status_code == 302  # no resident here


def test_an_adviser_cannot_reach_a_service_outside_the_mandate_by_any_slug_or_id(
    services_app: Flask, services_client: FlaskClient, desk: int
) -> None:
    sign_in(services_app.test_client(), "marie-therese")
    client = services_client
    agent_sign_in(client, "claire")
    open_mandate_at_desk(client, desk, [CANTEEN])
    act(client, desk, the_mandate(services_app).reference)
    for path in [
        f"/services/{LIBRARY}",
        f"/services/{WATER}",
        f"/services/{LIBRARY}/card",
        f"/link/{LIBRARY}",
        f"/services/{WATER}/invoices/f-1/pay",
        f"/link/{CANTEEN}/remove",
        "/account/calendar",
        "/account/data",
    ]:
        r = client.get(path)
        assert r.status_code in (403, 404, 405), (path, r.status_code)
    token = csrf(client, "/")
    for path in [
        f"/services/{LIBRARY}/loans/mer-l-0417-5/renew",
        f"/services/{WATER}/invoices/f-1/pay",
        f"/link/{CANTEEN}/remove",
        "/account/delete",
        "/auth/logout",
    ]:
        r = client.post(path, data={"csrf_token": token})
        assert r.status_code in (403, 404), (path, r.status_code)
    # The canteen, mandated but without payments: no pay button.
    page = client.get(f"/services/{CANTEEN}").get_data(as_text=True)
    assert "/pay" not in page and "Délier ce compte" not in page
    # And the linking page offers only the mandated service.
    linking = client.get("/link").get_data(as_text=True)
    assert "Restauration scolaire de Bordeaux" in linking
    assert "Médiathèque de Mérignac" not in linking


def test_a_phone_session_carries_its_channel_and_idle_closes_it(
    services_app: Flask, services_client: FlaskClient, desk: int
) -> None:
    sign_in(services_app.test_client(), "marie-therese")
    client = services_client
    agent_sign_in(client, "claire")
    open_mandate_at_desk(client, desk, [CANTEEN])
    mandate = the_mandate(services_app)
    assert location(act(client, desk, mandate.reference, channel="phone")) == "/"
    assert "Par téléphone" in client.get("/").get_data(as_text=True)
    with services_app.app_context():
        row = db.session.execute(db.select(AssistedSession)).scalar_one()
        assert row.channel == "phone"
        row.last_seen_at = utcnow() - timedelta(minutes=16)
        db.session.commit()
    r = client.get(f"/services/{CANTEEN}")
    assert location(r).startswith("/agents")
    with services_app.app_context():
        assert db.session.execute(db.select(AssistedSession)).scalar_one().ended_at is not None
        lines = set(db.session.scalars(db.select(DeskJournalEntry.action)))
        assert {"phone_session", "visit_ended"} <= lines


def test_signing_the_adviser_out_closes_the_residents_space(
    services_app: Flask, services_client: FlaskClient, desk: int
) -> None:
    sign_in(services_app.test_client(), "marie-therese")
    client = services_client
    agent_sign_in(client, "claire")
    open_mandate_at_desk(client, desk, [CANTEEN], duration="visit")
    mandate = the_mandate(services_app)
    act(client, desk, mandate.reference)
    assert client.get(f"/services/{CANTEEN}").status_code == 200
    client.post("/agents/logout", data={"csrf_token": csrf(client, "/agents/")})
    assert client.get(f"/services/{CANTEEN}").status_code == 302
    with services_app.app_context():
        assert db.session.execute(db.select(AssistedSession)).scalar_one().ended_at is not None
        # A visit-only mandate ends with its visit.
        assert live_scopes(db.session.get_one(Mandate, mandate.id)) == set()


def test_a_new_mandate_replaces_the_desks_active_one_for_the_same_services(
    services_app: Flask, services_client: FlaskClient, desk: int
) -> None:
    client = services_client
    agent_sign_in(client, "claire")
    open_mandate_at_desk(client, desk, [CANTEEN, LIBRARY])
    first = the_mandate(services_app)
    open_mandate_at_desk(client, desk, [CANTEEN])
    second = the_mandate(services_app)
    assert second.id != first.id
    with services_app.app_context():
        assert live_scopes(db.session.get_one(Mandate, first.id)) == set()
        assert live_scopes(db.session.get_one(Mandate, second.id)) == {CANTEEN}
        [replaced] = db.session.get_one(Mandate, first.id).revocations
        assert replaced.by_kind == "replaced" and replaced.scope is None


def test_the_assisted_pages_say_when_the_visit_closes_and_it_can_be_kept_open(
    services_app: Flask, services_client: FlaskClient, desk: int
) -> None:
    sign_in(services_app.test_client(), "marie-therese")
    client = services_client
    agent_sign_in(client, "claire")
    open_mandate_at_desk(client, desk, [CANTEEN])
    act(client, desk, the_mandate(services_app).reference)
    page = client.get("/").get_data(as_text=True)
    assert 'action="/agents/assisted/extend"' in page
    with services_app.app_context():
        row = db.session.execute(db.select(AssistedSession)).scalar_one()
        row.last_seen_at = utcnow() - timedelta(minutes=14)
        db.session.commit()
    token = CSRF_RE.search(page).group(1)  # type: ignore[union-attr]
    r = client.post(
        "/agents/assisted/extend", data={"csrf_token": token}, headers={"HX-Request": "true"}
    )
    assert r.status_code == 200 and "session-area" in r.get_data(as_text=True)
    with services_app.app_context():
        row = db.session.execute(db.select(AssistedSession)).scalar_one()
        assert utcnow() - row.last_seen_at < timedelta(minutes=1)
    assert client.get(f"/services/{CANTEEN}").status_code == 200


def test_the_resident_gets_an_e_mail_when_the_mandate_is_opened(
    database_url: str, fc_sandbox: Sandbox, connectors_file: str
) -> None:
    from portal import create_app
    from tests.integration.test_mandates_resident import SmtpSink
    from tests.support import empty_tables, portal_settings

    sink = SmtpSink()
    app = create_app(
        portal_settings(
            database_url,
            fc_sandbox.issuer,
            connectors_file=connectors_file,
            mail_url=f"smtp://127.0.0.1:{sink.port}",
            mail_from="ne-pas-repondre@demonstration.invalid",
        )
    )
    try:
        desk_id = add_desk(app, "Maison France services du Lac", SIRET_A)
        provision_agent(app, "claire")
        grant(app, "claire", "adviser", desk_id)
        client = app.test_client()
        agent_sign_in(client, "claire")
        open_mandate_at_desk(client, desk_id, [CANTEEN])
        [message] = sink.messages
        with app.app_context():
            email = db.session.execute(db.select(Citizen.email)).scalar_one()
        assert email and email in str(message["rcpt"])
        assert the_mandate(app).reference in str(message["data"])
    finally:
        sink.close()
        app.extensions["connectors"].close()
        empty_tables(app)
