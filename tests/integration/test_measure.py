"""Anonymous measurement, end to end: residents use their services over HTTP against the
sandbox, and what the daily roll-up counts, per journey, failure class, channel and
instance, is what they did; nothing stored names them; an objection is respected; the
satisfaction prompt never stands in the way."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from portal.extensions import db
from portal.measure.events import OPTOUT_COOKIE, paris_day
from portal.models import (
    Citizen,
    DailyVisitors,
    MeasureEvent,
    MeasureRollup,
    SatisfactionAnswer,
    VisitorKey,
)
from portal.models.measure import measure_daily, measure_journey_daily
from tests.integration.test_actions import (
    CHLOE,
    MEALS,
    follow,
    form_to,
    next_month,
    raw,
    send,
    text,
)
from tests.support import Sandbox, sign_in

RENEW = "/services/bib-merignac/loans/mer-l-0417-5/renew"
PROMPT = "De façon générale, comment ça s'est passé\u00a0?"
IP, AGENT = "203.0.113.77", "Navigateur-de-test/9.9 (très reconnaissable)"


def client_of(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": IP, "HTTP_USER_AGENT": AGENT})
    return client


def events(app: Flask, kind: str | None = None) -> list[MeasureEvent]:
    app.extensions["measure"].flush()
    with app.app_context():
        query = db.select(MeasureEvent).order_by(MeasureEvent.id)
        if kind:
            query = query.filter_by(kind=kind)
        rows = list(db.session.execute(query).scalars())
        db.session.expunge_all()
        return rows


def rollup(app: Flask, day: date | None = None) -> str:
    args = ["measure", "rollup"] + (["--day", day.isoformat()] if day else [])
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    return result.output


def rolled(app: Flask, **where: object) -> int:
    """The count summed over the day's roll-up rows matching ``where``."""
    with app.app_context():
        query = sa.select(sa.func.coalesce(sa.func.sum(MeasureRollup.count), 0)).filter_by(
            day=paris_day(), **where
        )
        return int(db.session.execute(query).scalar_one())


def renew(client: FlaskClient) -> str:
    form = form_to(raw(client.get("/services/bib-merignac")), RENEW)
    return follow(client, send(client, form))


def book_a_meal(client: FlaskClient) -> str:
    url = f"{MEALS}?month={next_month(date.today()):%Y-%m}"
    form = form_to(raw(client.get(url)), MEALS)
    day = next(d for d, booked in form.boxes(CHLOE).items() if booked)
    data = [(k, v) for k, v in form.data() if (k, v) != ("book", f"{CHLOE}:{day}")]
    return follow(client, client.post(MEALS, data=MultiDict(data)))


def csrf_of(client: FlaskClient, path: str) -> str:
    import re

    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', raw(client.get(path)))
    assert match
    return match.group(1)


def refused_proof(client: FlaskClient) -> None:
    token = csrf_of(client, "/link/bib-merignac")
    r = client.post(
        "/link/bib-merignac",
        data={"csrf_token": token, "proof": "pin", "card_number": "33281000129033", "pin": "0000"},
    )
    assert r.status_code == 422


# -- journeys, per class, channel and instance ----------------------------------------------


def test_journeys_done_over_http_are_counted_per_class_channel_and_instance(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    marie = client_of(services_app)
    sign_in(marie, "marie-therese")
    assert "est prolongé jusqu'au" in renew(marie)
    assert "repas annulé." in book_a_meal(marie)
    # The library's renewals fail (its reads still work): nothing done, back-end down.
    fc_sandbox.fault("library", "merignac", "error500", writes_only=True)
    form = form_to(raw(marie.get("/services/bib-merignac")), RENEW.replace("-5/", "-2/"))
    assert "rien n'a été fait" in follow(marie, send(marie, form))
    fc_sandbox.fault("library", "merignac", None)
    eloise = client_of(services_app)
    sign_in(eloise, "eloise")
    refused_proof(eloise)

    rollup(services_app, paris_day())

    web = {"channel": "web", "assisted": False}
    assert rolled(services_app, kind="journey_started", step="renew_loan", **web) == 2
    assert (
        rolled(
            services_app,
            kind="journey_completed",
            step="renew_loan",
            instance="bib-merignac",
            category="library",
            **web,
        )
        == 1
    )
    assert (
        rolled(
            services_app,
            kind="journey_failed",
            step="renew_loan",
            failure="unavailable",
            instance="bib-merignac",
        )
        == 1
    )
    assert rolled(services_app, kind="journey_failed", step="renew_loan", failure="refused") == 0
    assert (
        rolled(
            services_app,
            kind="journey_completed",
            step="book_meals",
            instance="cantine-bordeaux",
            category="canteen",
        )
        == 1
    )
    assert (
        rolled(services_app, kind="link_attempt", outcome="refused", instance="bib-merignac") == 1
    )
    assert rolled(services_app, kind="journey_failed", step="link", failure="refused") == 1
    assert rolled(services_app, kind="journey_started", step="link", instance="bib-merignac") == 1
    assert rolled(services_app, kind="action", step="renew_loan", outcome="success", **web) == 1
    assert rolled(services_app, kind="action", step="renew_loan", outcome="failure") == 1
    # Page views of the library's page, with their server time; connector calls with
    # their latency, per instance.
    assert rolled(services_app, kind="page_view", instance="bib-merignac", step="page") >= 2
    with services_app.app_context():
        calls = db.session.execute(
            db.select(MeasureRollup).filter_by(kind="connector_call", instance="bib-merignac")
        ).scalars()
        outcomes = {row.outcome: row for row in calls}
    assert outcomes["ok"].count >= 1 and outcomes["error"].count >= 1
    assert sum(outcomes["ok"].histogram or []) == outcomes["ok"].count
    assert outcomes["ok"].value_sum >= 0


def test_a_journey_started_and_never_ended_counts_as_given_up(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    eloise = client_of(services_app)
    sign_in(eloise, "eloise")
    assert eloise.get("/link/bib-merignac").status_code == 200  # shown, never sent
    assert eloise.get("/link/logement-metropole").status_code == 200
    refused_proof(eloise)  # shows the form again (started), then refused

    rollup(services_app, paris_day())

    assert rolled(services_app, kind="journey_started", step="link") == 3
    assert rolled(services_app, kind="journey_failed", step="link", failure="refused") == 1
    assert (
        rolled(services_app, kind="journey_failed", failure="given_up", instance="bib-merignac")
        == 1
    )
    assert (
        rolled(
            services_app, kind="journey_failed", failure="given_up", instance="logement-metropole"
        )
        == 1
    )


def test_invalid_input_is_its_own_failure_class(services_app: Flask, fc_sandbox: Sandbox) -> None:
    marie = client_of(services_app)
    sign_in(marie, "marie-therese")
    token = csrf_of(marie, "/services/bib-merignac")
    r = marie.post(RENEW, data={"csrf_token": token, "idem": "not-a-key"})
    assert r.status_code == 400
    rollup(services_app, paris_day())
    assert rolled(services_app, kind="journey_failed", step="renew_loan", failure="invalid") == 1


# -- unique visitors, the day's key ---------------------------------------------------------


def test_one_session_counts_once_a_day_and_two_count_twice(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    one, two = client_of(services_app), client_of(services_app)
    sign_in(one, "marie-therese")
    for _ in range(3):
        assert one.get("/services/bib-merignac").status_code == 200
    assert two.get("/accessibilite").status_code == 200
    assert two.get("/mentions-legales").status_code == 200  # no session: the day's cookie

    rollup(services_app, paris_day())

    with services_app.app_context():
        visitors = {
            row.instance: row.visitors
            for row in db.session.execute(
                db.select(DailyVisitors).filter_by(day=paris_day())
            ).scalars()
        }
    assert visitors[""] == 3  # Marie before signing in (the day's cookie), signed in, two
    assert visitors["bib-merignac"] == 1
    hashes = {e.visitor for e in events(services_app, "page_view") if e.visitor}
    assert all(len(h) == 32 for h in hashes)
    cookie = two.get_cookie("measure_day")
    assert cookie is not None and cookie.expires is not None
    assert cookie.expires.date() <= date.today() + timedelta(days=1)


def test_a_past_days_key_is_deleted_by_the_rollup_and_todays_is_kept(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    yesterday = paris_day() - timedelta(days=1)
    with services_app.app_context():
        db.session.add(VisitorKey(day=yesterday, key="ab" * 32))
        db.session.commit()
    assert client_of(services_app).get("/accessibilite").status_code == 200  # today's key

    rollup(services_app)

    with services_app.app_context():
        days = set(db.session.execute(db.select(VisitorKey.day)).scalars())
    assert days == {paris_day()}


def test_the_purge_deletes_past_keys_and_raw_events_past_thirteen_months(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    from datetime import UTC, datetime

    old = datetime.now(UTC) - timedelta(days=400)
    with services_app.app_context():
        db.session.add(VisitorKey(day=paris_day() - timedelta(days=2), key="cd" * 32))
        db.session.add(MeasureEvent(at=old, day=old.date(), kind="page_view"))
        db.session.add(MeasureEvent(day=paris_day(), kind="page_view"))
        db.session.commit()
    result = services_app.test_cli_runner().invoke(args=["purge"])
    assert "1 measurement event(s) older than 396 days deleted" in result.output
    assert "1 past day(s)' visitor key(s) deleted" in result.output
    assert [e.day for e in events(services_app)] == [paris_day()]


def test_rolling_up_twice_changes_nothing(services_app: Flask, fc_sandbox: Sandbox) -> None:
    marie = client_of(services_app)
    sign_in(marie, "marie-therese")
    renew(marie)

    def snapshot() -> list[tuple]:
        with services_app.app_context():
            rows = db.session.execute(
                sa.select(MeasureRollup).order_by(MeasureRollup.kind, MeasureRollup.step)
            ).scalars()
            rollups = [
                (r.day, r.kind, r.category, r.instance, r.step, r.outcome, r.failure,
                 r.channel, r.assisted, r.count, r.visitors, r.value_sum, r.histogram)
                for r in rows
            ]  # fmt: skip
            visitors = [
                (v.day, v.instance, v.visitors)
                for v in db.session.execute(sa.select(DailyVisitors)).scalars()
            ]
            return sorted(rollups, key=str) + sorted(visitors) + summaries(services_app)

    rollup(services_app, paris_day())
    first = snapshot()
    rollup(services_app, paris_day())
    assert snapshot() == first and first


def summaries(app: Flask) -> list[tuple]:
    """Every row of the daily summaries, without their ids."""
    with app.app_context():
        found = []
        for table in (measure_daily, measure_journey_daily):
            columns = [c for c in table.c if c.name != "id"]
            found += sorted(tuple(row) for row in db.session.execute(sa.select(*columns)))
        return found


def test_a_day_rolled_up_without_its_summaries_is_summarised_by_the_next_run(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    marie = client_of(services_app)
    sign_in(marie, "marie-therese")
    renew(marie)
    eloise = client_of(services_app)
    sign_in(eloise, "eloise")
    refused_proof(eloise)
    rollup(services_app, paris_day())
    written = summaries(services_app)
    assert any(row[1] == "bib-merignac" for row in written)
    with services_app.app_context():
        db.session.execute(sa.delete(measure_daily))
        db.session.execute(sa.delete(measure_journey_daily))
        db.session.commit()
    assert summaries(services_app) == []
    output = rollup(services_app)  # no --day: the day is rolled up, only its summary lacks
    assert f"{paris_day().isoformat()}: " in output and "summary row(s)" in output
    assert summaries(services_app) == written
    assert "summary row(s)" not in rollup(services_app)


# -- objection --------------------------------------------------------------------------------


def test_a_resident_who_objects_is_not_counted_at_all(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    marie = client_of(services_app)
    page = marie.get("/donnees-personnelles")
    assert "Refuser la mesure d'audience" in text(page)
    token = csrf_of(marie, "/donnees-personnelles")
    r = marie.post(
        "/donnees-personnelles/mesure-d-audience", data={"csrf_token": token, "choice": "optout"}
    )
    assert r.status_code == 303
    assert marie.get_cookie(OPTOUT_COOKIE).value == "1"
    before = len(events(services_app))
    sign_in(marie, "marie-therese")
    renew(marie)
    marie.get("/")
    assert "Vos visites depuis ce navigateur ne sont pas mesurées." in text(
        marie.get("/donnees-personnelles")
    )
    assert len(events(services_app)) == before  # no page, no call, no action, no journey
    assert PROMPT not in renew(marie)

    # Opting back in: counted again.
    token = csrf_of(marie, "/donnees-personnelles")
    marie.post(
        "/donnees-personnelles/mesure-d-audience", data={"csrf_token": token, "choice": "optin"}
    )
    marie.get("/accessibilite")
    assert len(events(services_app)) > before


def test_global_privacy_control_is_an_objection(services_app: Flask, fc_sandbox: Sandbox) -> None:
    marie = client_of(services_app)
    marie.environ_base["HTTP_SEC_GPC"] = "1"
    sign_in(marie, "marie-therese")
    renew(marie)
    assert events(services_app) == []
    assert "Global Privacy Control" in text(marie.get("/donnees-personnelles"))


# -- nothing stored names anyone ---------------------------------------------------------------


def test_no_stored_value_names_a_resident_or_their_browser(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    marie = client_of(services_app)
    sign_in(marie, "marie-therese")
    shown = renew(marie)
    assert PROMPT in shown
    answer_prompt(
        marie, shown, comment="Écrivez-moi à marie.dupont@example.fr ou au 06 12 34 56 78"
    )
    book_a_meal(marie)
    eloise = client_of(services_app)
    sign_in(eloise, "eloise")
    refused_proof(eloise)
    rollup(services_app, paris_day())

    with services_app.app_context():
        residents = list(db.session.execute(db.select(Citizen)).scalars())
        sessions = [
            str(s) for s in db.session.execute(sa.text("select id from auth_session")).scalars()
        ]
        secrets_ = {IP, AGENT, *sessions}
        ids = set()
        for person in residents:
            ids.add(str(person.id))
            for value in (person.sub, person.given_name, person.family_name, person.email,
                          person.usage_name):  # fmt: skip
                if value:
                    secrets_.add(str(value))
        stored: list[str] = []
        for table in ("measure_event", "measure_rollup", "daily_visitors",
                      "satisfaction_answer", "visitor_key", "measure_daily",
                      "measure_journey_daily"):  # fmt: skip
            for row in db.session.execute(sa.text(f"select * from {table}")).mappings():  # noqa: S608
                for name, value in row.items():
                    if name in ("id", "count", "visitors", "value_sum", "value_ms", "clarity"):
                        continue
                    if table.endswith("_daily") and isinstance(value, int):
                        continue  # the summaries' counters
                    stored.append(
                        value if isinstance(value, str) else json.dumps(value, default=str)
                    )
    assert stored
    for value in stored:
        for secret in secrets_:
            assert secret.lower() not in value.lower(), (secret, value)
        assert value not in ids
    assert any("[adresse retirée]" in v for v in stored)


def answer_prompt(client: FlaskClient, page: str, comment: str = "") -> None:
    import re

    prompt_id = re.search(r'name="prompt" value="([^"]+)"', page)
    assert prompt_id, "no prompt on the page"
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    base = [("csrf_token", token.group(1)), ("prompt", prompt_id.group(1)), ("back", "/")]
    r = client.post("/avis", data=MultiDict([*base, ("satisfaction", "good")]))
    assert r.status_code == 303
    step2 = text(client.get("/"))
    assert "Qu'avez-vous pensé des informations et des instructions fournies\u00a0?" in step2
    assert "N'écrivez pas d'informations personnelles (nom, numéro de dossier…)" in step2
    r = client.post(
        "/avis",
        data=MultiDict([*base, ("clarity", "4"), ("help", "desk"), ("comment", comment)]),
    )
    assert r.status_code == 303
    step3 = text(client.get("/"))
    assert "Avez-vous réussi à obtenir de l'aide\u00a0?" in step3
    r = client.post(
        "/avis", data=MultiDict([*base, ("reached_desk", "yes"), ("quality_desk", "5")])
    )
    assert r.status_code == 303
    assert "Merci pour votre réponse." in text(client.get("/"))


# -- the satisfaction prompt --------------------------------------------------------------------


def test_the_prompt_after_a_renewal_is_answered_stored_anonymously_and_not_asked_again(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    marie = client_of(services_app)
    sign_in(marie, "marie-therese")
    shown = renew(marie)
    assert PROMPT in shown
    answer_prompt(marie, shown, comment="Très bien, ma carte 33281000129033 a marché")

    with services_app.app_context():
        [answer] = db.session.execute(db.select(SatisfactionAnswer)).scalars()
    assert (answer.satisfaction, answer.clarity) == ("good", 4)
    assert answer.help == {"desk": {"reached": True, "quality": 5}}
    assert answer.comment == "Très bien, ma carte [numéro retiré] a marché"
    assert (answer.category, answer.instance, answer.journey) == (
        "library",
        "bib-merignac",
        "renew_loan",
    )
    assert (answer.channel, answer.assisted) == ("web", False)
    # The same journey again in this session: not asked again; the page after "thanks"
    # no longer shows anything either.
    again = renew(marie)
    assert PROMPT not in again and "Merci pour votre réponse." not in again


def test_the_prompt_never_blocks_ignored_it_goes_dismissed_it_stays_away(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    import re

    marie = client_of(services_app)
    sign_in(marie, "marie-therese")
    shown = renew(marie)
    assert PROMPT in shown
    # Ignored: the page works (another renewal goes through) and the prompt is gone.
    page = marie.get("/services/bib-merignac")
    assert page.status_code == 200 and PROMPT not in text(page)
    assert "repas annulé." in book_a_meal(marie)  # another journey: asked for it
    shown = text(marie.get("/"))  # a page later, unanswered: gone
    assert PROMPT not in shown
    # Dismissed, with htmx: the prompt is swapped for nothing, and not asked again.
    form = form_to(raw(marie.get("/services/bib-merignac")), RENEW.replace("-5/", "-2/"))
    answer = send(marie, form, headers={"HX-Request": "true"})
    assert answer.status_code == 200
    assert 'id="satisfaction" hx-swap-oob="true"' in raw(answer) and PROMPT in text(answer)
    prompt_id = re.search(r'name="prompt" value="([^"]+)"', raw(answer)).group(1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', raw(answer)).group(1)
    r = marie.post(
        "/avis",
        data={"csrf_token": token, "prompt": prompt_id, "dismiss": "1"},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200 and raw(r).strip() == '<div id="satisfaction">\n\n</div>'
    assert PROMPT not in renew(marie)
    with services_app.app_context():
        assert db.session.execute(sa.select(sa.func.count(SatisfactionAnswer.id))).scalar() == 0


def test_an_answer_without_a_prompt_or_a_choice_stores_nothing(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    marie = client_of(services_app)
    sign_in(marie, "marie-therese")
    token = csrf_of(marie, "/")
    assert (
        marie.post("/avis", data={"csrf_token": token, "satisfaction": "good"}).status_code == 303
    )
    shown = renew(marie)
    import re

    prompt_id = re.search(r'name="prompt" value="([^"]+)"', raw_page(marie, shown)).group(1)
    r = marie.post("/avis", data={"csrf_token": token, "prompt": prompt_id, "satisfaction": "x"},
                   headers={"HX-Request": "true"})  # fmt: skip
    assert r.status_code == 200 and "Choisissez une réponse" in text(r)
    with services_app.app_context():
        assert db.session.execute(sa.select(sa.func.count(SatisfactionAnswer.id))).scalar() == 0


def raw_page(_client: FlaskClient, shown: str) -> str:
    return shown


# -- the recorder never fails a page ----------------------------------------------------------


def test_a_database_error_while_recording_does_not_fail_a_page(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    marie = client_of(services_app)
    sign_in(marie, "marie-therese")
    with services_app.app_context():
        db.session.execute(sa.text("ALTER TABLE measure_event RENAME TO measure_event_away"))
        db.session.execute(sa.text("ALTER TABLE visitor_key RENAME TO visitor_key_away"))
        db.session.commit()
    services_app.extensions["measure_keys"].forget()  # the page must ask for the day's key
    try:
        assert marie.get("/services/bib-merignac").status_code == 200
        assert "est prolongé jusqu'au" in renew(marie)
        assert services_app.extensions["measure"].flush() == 0  # what a flush thread does
        assert services_app.extensions["measure"].dropped > 0
    finally:
        with services_app.app_context():
            db.session.execute(sa.text("ALTER TABLE measure_event_away RENAME TO measure_event"))
            db.session.execute(sa.text("ALTER TABLE visitor_key_away RENAME TO visitor_key"))
            db.session.commit()
    assert marie.get("/accessibilite").status_code == 200
    assert events(services_app, "page_view")  # recording again


# -- an adviser's action ------------------------------------------------------------------------


def test_an_advisers_renewal_counts_as_assisted_at_the_desk(
    services_app: Flask, services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    from tests.integration.test_desks import add_desk, grant
    from tests.integration.test_mandate_visit import (
        CANTEEN,
        LIBRARY,
        SIRET_A,
        act,
        location,
        open_mandate_at_desk,
        the_mandate,
    )
    from tests.support import agent_sign_in, provision_agent

    desk = add_desk(services_app, "Maison France services du Lac", SIRET_A)
    provision_agent(services_app, "claire")
    grant(services_app, "claire", "adviser", desk)
    sign_in(services_app.test_client(), "marie-therese")  # the accounts, linked
    client = services_client
    agent_sign_in(client, "claire")
    open_mandate_at_desk(client, desk, [LIBRARY, CANTEEN])
    assert location(act(client, desk, the_mandate(services_app).reference)) == "/"
    renew(client)

    [action] = [e for e in events(services_app, "action") if e.step == "renew_loan"]
    assert (action.channel, action.assisted, action.outcome) == ("desk", True, "success")
    rollup(services_app, paris_day())
    assert rolled(services_app, kind="journey_completed", step="renew_loan", channel="desk",
                  assisted=True) == 1  # fmt: skip
    assert rolled(services_app, kind="page_view", instance="bib-merignac", assisted=True) >= 1


@pytest.mark.parametrize("path", ["/healthz", "/static/css/portal.css", "/agents/"])
def test_health_checks_files_and_the_agents_area_are_not_measured(
    services_app: Flask, fc_sandbox: Sandbox, path: str
) -> None:
    client_of(services_app).get(path)
    assert events(services_app) == []
