"""A resident acts on their services: renews loans, cancels a hold, books and cancels
canteen meals, renews a housing application — over real HTTP to the sandbox's back-ends,
with forms sent as a browser sends them, with and without htmx, healthy back-ends or not.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from portal.extensions import db
from portal.models import JournalEntry, ServiceLink, WriteRecord
from portal.writes import new_key
from tests.support import Sandbox, count_calls, sign_in

HX = {"HX-Request": "true"}
MEALS = "/services/cantine-bordeaux/meals"
CHLOE, HUGO = "enf-4521-1", "enf-4521-2"
NOTHING_DONE = "Le service n'a pas répondu : rien n'a été fait. Vous pouvez réessayer."
MERIGNAC_KEY = "sandbox-library-merignac-key"
CANTEEN_KEY = "sandbox-canteen-bordeaux-key"
HOUSING_KEY = "sandbox-housing-metropole-key"
KOHA_AUTH = ("portal", "sandbox-koha-bordeaux-secret")
MARIE_LOANS = "/library/merignac/v1/patrons/mer-p-0417/loans"
MARIE_HOLDS = "/library/merignac/v1/patrons/mer-p-0417/holds"
MONTHS = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
]


# -- reading pages as a browser does -------------------------------------------------------


@dataclass
class Form:
    action: str
    attrs: dict[str, str]
    inputs: list[dict[str, str]] = field(default_factory=list)

    def data(self) -> list[tuple[str, str]]:
        """What the browser sends: every hidden field and every checked box."""
        sent = []
        for field_ in self.inputs:
            kind = field_.get("type", "text")
            if kind == "hidden" or (kind == "checkbox" and "checked" in field_):
                sent.append((field_["name"], field_.get("value", "")))
        return sent

    def value(self, name: str) -> str:
        return next(f.get("value", "") for f in self.inputs if f.get("name") == name)

    def boxes(self, child: str = "") -> dict[str, bool]:
        """Day (ISO) -> checked, for one child of the canteen calendar (``child:day``)."""
        prefix = f"{child}:"
        return {
            f["value"].removeprefix(prefix): "checked" in f
            for f in self.inputs
            if f.get("type") == "checkbox" and f.get("value", "").startswith(prefix)
        }


class FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = Form(values.get("action", ""), values)
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None:
            self._current.inputs.append(values)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms(page: str) -> list[Form]:
    parser = FormParser()
    parser.feed(page)
    return parser.forms


def form_to(page: str, action: str) -> Form:
    found = [form for form in forms(page) if form.action == action]
    assert len(found) == 1, f"{len(found)} forms to {action}"
    return found[0]


def text(response) -> str:
    """What the person reads (entities decoded)."""
    return html.unescape(response.get_data(as_text=True))


def raw(response) -> str:
    return response.get_data(as_text=True)


def send(client: FlaskClient, form: Form, extra=(), headers=None, without=()):
    data = [(k, v) for k, v in form.data() if k not in without] + list(extra)
    return client.post(form.action, data=MultiDict(data), headers=headers or {})


def follow(client: FlaskClient, response) -> str:
    """The page a plain post sends the browser back to, with its flashed result."""
    assert response.status_code == 303, (response.status_code, text(response)[:500])
    return text(client.get(response.headers["Location"]))


def csrf(client: FlaskClient, path: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', raw(client.get(path)))
    assert match
    return match.group(1)


def fresh_key() -> str:
    """The key a freshly rendered form would carry."""
    return new_key()


# -- the back-ends' own word ----------------------------------------------------------------


def backend(fc_sandbox: Sandbox, path: str, api_key: str, **params: str) -> dict:
    r = fc_sandbox.http.get(fc_sandbox.url + path, headers={"X-Api-Key": api_key}, params=params)
    r.raise_for_status()
    return r.json()


def due_dates(fc_sandbox: Sandbox, path: str = MARIE_LOANS) -> dict[str, str]:
    return {
        loan["loan_id"]: loan["due_date"]
        for loan in backend(fc_sandbox, path, MERIGNAC_KEY)["loans"]
    }


def koha_due_date(fc_sandbox: Sandbox, checkout_id: int) -> date:
    r = fc_sandbox.http.get(
        f"{fc_sandbox.url}/koha/bordeaux/api/v1/checkouts/{checkout_id}", auth=KOHA_AUTH
    )
    r.raise_for_status()
    return date.fromisoformat(r.json()["due_date"][:10])


def meal_days(fc_sandbox: Sandbox, family: str, child: str, month: date) -> dict[str, dict]:
    body = backend(
        fc_sandbox,
        f"/canteen/bordeaux/v1/families/{family}/children/{child}/reservations",
        CANTEEN_KEY,
        month=month.strftime("%Y-%m"),
    )
    return {day["date"]: day for day in body["days"]}


def application(fc_sandbox: Sandbox, application_id: str) -> dict:
    return backend(fc_sandbox, f"/housing/metropole/v1/applications/{application_id}", HOUSING_KEY)


def journal(app: Flask, action: str) -> list[JournalEntry]:
    with app.app_context():
        return list(
            db.session.execute(
                db.select(JournalEntry).filter_by(action=action).order_by(JournalEntry.id)
            ).scalars()
        )


def write_records(app: Flask, action: str) -> list[WriteRecord]:
    with app.app_context():
        return list(db.session.execute(db.select(WriteRecord).filter_by(action=action)).scalars())


def french_day(value: date) -> str:
    """How the portal writes a date in French (Babel's long format), its parts joined by
    non-breaking spaces."""
    first = "1er" if value.day == 1 else str(value.day)
    return f"{first}\u00a0{MONTHS[value.month - 1]}\u00a0{value.year}"


def next_month(today: date) -> date:
    return (today.replace(day=1) + timedelta(days=32)).replace(day=1)


# -- library -------------------------------------------------------------------------------


def test_resident_renews_a_loan_and_its_due_date_moves(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    before = date.fromisoformat(due_dates(fc_sandbox)["mer-l-0417-5"])
    page = raw(services_client.get("/services/bib-merignac"))
    form = form_to(page, "/services/bib-merignac/loans/mer-l-0417-5/renew")
    assert form.attrs["method"] == "post"
    assert form.attrs["hx-post"] == form.action and form.attrs["hx-target"] == "#loans"
    assert form.value("csrf_token") and re.fullmatch(r"[0-9a-f]{32}", form.value("idem"))

    shown = follow(services_client, send(services_client, form))

    after = date.fromisoformat(due_dates(fc_sandbox)["mer-l-0417-5"])
    assert after == before + timedelta(days=21)
    assert f"« Astérix chez les Pictes » est prolongé jusqu'au {french_day(after)}." in shown
    [entry] = journal(services_app, "renew_loan")
    assert entry.outcome == "success" and entry.connector_instance == "bib-merignac"
    assert entry.params["title"] == "Astérix chez les Pictes"


def test_overdue_and_due_soon_loans_stand_out_and_only_renewable_ones_have_a_button(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "marie-therese")
    page = raw(services_client.get("/services/bib-merignac"))
    assert 'class="row--overdue"' in page and 'class="row--due-soon"' in page
    actions = {form.action for form in forms(page)}
    assert "/services/bib-merignac/loans/mer-l-0417-5/renew" in actions
    # Overdue, reserved by another reader, renewed too often: no button, the reason.
    for loan_id in ("mer-l-0417-1", "mer-l-0417-3", "mer-l-0417-4"):
        assert f"/services/bib-merignac/loans/{loan_id}/renew" not in actions
    assert "réservé par un autre lecteur" in html.unescape(page)


def test_resident_renews_all_loans_from_a_stale_page_and_sees_each_outcome(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    before = due_dates(fc_sandbox)
    page = raw(services_client.get("/services/bib-merignac"))
    renew_all = form_to(page, "/services/bib-merignac/loans/renew")
    assert [v for k, v in renew_all.data() if k == "loan"] == ["mer-l-0417-2", "mer-l-0417-5"]
    # In another tab, « L'Anomalie » is renewed for the second and last time.
    one = form_to(page, "/services/bib-merignac/loans/mer-l-0417-2/renew")
    assert send(services_client, one).status_code == 303

    shown = follow(services_client, send(services_client, renew_all))

    after = due_dates(fc_sandbox)
    assert (
        after["mer-l-0417-5"]
        == (date.fromisoformat(before["mer-l-0417-5"]) + timedelta(days=21)).isoformat()
    )
    assert (
        after["mer-l-0417-2"]
        == (date.fromisoformat(before["mer-l-0417-2"]) + timedelta(days=21)).isoformat()
    ), "renewed once, not twice"
    assert "1 prêt sur 2 a été prolongé." in shown
    assert "« Astérix chez les Pictes » est prolongé jusqu'au" in shown
    assert (
        "« L'Anomalie » n'a pas pu être prolongé : Vous avez déjà prolongé ce document "
        "le nombre de fois autorisé."
    ) in shown
    outcomes = sorted(entry.outcome for entry in journal(services_app, "renew_loan"))
    assert outcomes == ["refused", "success", "success"]


def test_a_refused_renewal_shows_the_librarys_reason(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    before = due_dates(fc_sandbox)["mer-l-0417-1"]
    token = csrf(services_client, "/services/bib-merignac")
    # The loan became overdue while the page was open.
    r = services_client.post(
        "/services/bib-merignac/loans/mer-l-0417-1/renew",
        data={"csrf_token": token, "idem": fresh_key()},
    )
    shown = follow(services_client, r)
    assert "« Au revoir là-haut » n'a pas pu être prolongé : Le retour de ce document" in shown
    assert due_dates(fc_sandbox)["mer-l-0417-1"] == before
    [entry] = journal(services_app, "renew_loan")
    assert entry.outcome == "refused" and "en retard" in entry.params["reason"]
    assert entry.params["reason_code"] == "loan_overdue"


def test_an_htmx_renewal_reads_the_loans_once_unless_it_changed_them(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    """The loans the page has just read find the loan (the read cache), and are shown
    again when the renewal changed nothing. After a renewal done, they are read again,
    once: the library answers with the new due date only, while the loan's renewals done
    and whether it can be renewed again change too, and only the library knows them."""
    sign_in(services_client, "marie-therese")
    before = date.fromisoformat(due_dates(fc_sandbox)["mer-l-0417-5"])
    token = csrf(services_client, "/services/bib-merignac")
    counted = count_calls(services_app)

    def renew(loan_id: str, key: str) -> tuple[str, int]:
        calls = counted["bib-merignac"]
        r = services_client.post(
            f"/services/bib-merignac/loans/{loan_id}/renew",
            data={"csrf_token": token, "idem": key},
            headers=HX,
        )
        assert r.status_code == 200
        return text(r), counted["bib-merignac"] - calls

    # An unusable form: nothing looked up or sent; the loans are read once, to be shown.
    shown, one_read = renew("mer-l-0417-5", "not-a-key")
    assert "Ce formulaire n'est pas valide" in shown and one_read > 0
    # Refused: the loans just shown find it and are shown again; one call, the renewal.
    shown, calls = renew("mer-l-0417-1", fresh_key())
    assert "«\u00a0Au revoir là-haut\u00a0» n'a pas pu être prolongé" in shown
    assert calls == 1
    assert french_day(before) in shown
    # Done: the renewal, then the loans read again, as the library now holds them.
    shown, calls = renew("mer-l-0417-5", fresh_key())
    after = before + timedelta(days=21)
    assert (
        f"«\u00a0Astérix chez les Pictes\u00a0» est prolongé jusqu'au {french_day(after)}." in shown
    )
    assert calls == one_read + 1
    assert french_day(before) not in shown


def test_koha_refuses_a_loan_another_reader_reserved_and_renews_the_others(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    token = csrf(services_client, "/services/bib-bordeaux")
    reserved = services_client.post(
        "/services/bib-bordeaux/loans/9003/renew",
        data={"csrf_token": token, "idem": fresh_key()},
        headers=HX,
    )
    assert reserved.status_code == 200
    assert "« Le Consentement » n'a pas pu être prolongé : " in text(reserved)
    before = koha_due_date(fc_sandbox, 9004)
    renewed = services_client.post(
        "/services/bib-bordeaux/loans/9004/renew",
        data={"csrf_token": token, "idem": fresh_key()},
        headers=HX,
    )
    assert koha_due_date(fc_sandbox, 9004) == before + timedelta(days=21)
    assert "« Vingt mille lieues sous les mers » est prolongé jusqu'au" in text(renewed)


def test_resident_cancels_a_hold_after_confirming_it(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    page = raw(services_client.get("/services/bib-merignac"))
    confirm_url = "/services/bib-merignac/holds/mer-h-0417-2/cancel"
    assert f'href="{confirm_url}"' in page and f'hx-get="{confirm_url}"' in page
    assert "hx-confirm" not in page

    confirm = services_client.get(confirm_url)  # without JavaScript: a page of its own
    assert confirm.status_code == 200 and raw(confirm).startswith("<!doctype html>")
    assert "Annuler votre réservation de « Petit Pays » ?" in text(confirm)
    assert "Vous perdrez votre place dans la file d'attente." in text(confirm)
    form = form_to(raw(confirm), confirm_url)
    assert mer_h_0417_2_is_held(fc_sandbox)  # nothing happens before the second step

    shown = follow(services_client, send(services_client, form))

    assert not mer_h_0417_2_is_held(fc_sandbox)
    assert "Votre réservation de « Petit Pays » est annulée." in shown
    assert "Petit Pays" not in shown.split("Votre réservation de « Petit Pays » est annulée.")[1]
    [entry] = journal(services_app, "cancel_hold")
    assert entry.outcome == "success" and entry.params == {"title": "Petit Pays"}


def mer_h_0417_2_is_held(fc_sandbox: Sandbox) -> bool:
    holds = backend(fc_sandbox, MARIE_HOLDS, MERIGNAC_KEY)["holds"]
    return any(hold["hold_id"] == "mer-h-0417-2" for hold in holds)


def test_with_htmx_the_hold_is_confirmed_in_place_then_the_holds_are_swapped(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    confirm_url = "/services/bib-merignac/holds/mer-h-0417-2/cancel"
    question = services_client.get(confirm_url, headers=HX)
    assert question.status_code == 200
    assert not raw(question).startswith("<!doctype") and "autofocus" in raw(question)
    form = form_to(raw(question), confirm_url)
    assert form.attrs["hx-target"] == "#holds"

    answer = send(services_client, form, headers=HX)

    assert answer.status_code == 200
    fragment = raw(answer)
    assert fragment.lstrip().startswith('<section id="holds"')
    assert re.search(r'role="status" tabindex="-1" autofocus', fragment)
    assert "Votre réservation de « Petit Pays » est annulée." in text(answer)
    assert "HX-Request" in answer.headers.get("Vary", "")
    assert not mer_h_0417_2_is_held(fc_sandbox)


def test_a_hold_already_on_its_way_cannot_be_cancelled_and_says_why(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "amina")
    page = raw(services_client.get("/services/bib-merignac"))
    assert "/holds/mer-h-0958-1/cancel" not in page  # in transit: no link
    token = csrf(services_client, "/services/bib-merignac")
    r = services_client.post(
        "/services/bib-merignac/holds/mer-h-0958-1/cancel",
        data={"csrf_token": token, "idem": fresh_key()},
    )
    assert "déjà en route vers votre bibliothèque" in follow(services_client, r)


# -- canteen -------------------------------------------------------------------------------


def test_resident_sees_a_month_of_meals_with_deadlines_and_moves_between_months(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    month = next_month(date.today())
    page = services_client.get(f"/services/cantine-bordeaux/meals?month={month:%Y-%m}")
    assert page.status_code == 200
    shown = text(page)
    assert f"Repas de Chloé en {MONTHS[month.month - 1]} {month.year}" in shown
    assert "Modifiable jusqu'au" in shown
    assert f"?month={month.replace(day=1) - timedelta(days=1):%Y-%m}" in raw(page)
    assert f"?month={next_month(month):%Y-%m}" in raw(page)
    form = form_to(raw(page), MEALS)
    days = meal_days(fc_sandbox, "fam-4521", CHLOE, month)
    changeable = {d for d, day in days.items() if day["bookable"]}
    assert set(form.boxes(CHLOE)) == changeable  # one box per day that can still change
    assert all(form.boxes(CHLOE)[d] == days[d]["booked"] for d in changeable)
    # The invoices stay on the page.
    assert "Mes factures" in shown


def test_resident_cancels_then_books_meals_and_a_day_past_its_deadline_is_refused(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    today = date.today()
    month = next_month(today)
    url = f"{MEALS}?month={month:%Y-%m}"
    form = form_to(raw(services_client.get(url)), MEALS)
    day = next(d for d, booked in form.boxes(CHLOE).items() if booked)
    # A day already past its deadline, as a page left open since then would send it.
    last_month = today.replace(day=1) - timedelta(days=1)
    past = next(
        d
        for d, meal in meal_days(fc_sandbox, "fam-4521", CHLOE, last_month).items()
        if meal["booked"]
    )
    data = [(k, v) for k, v in form.data() if (k, v) != ("book", f"{CHLOE}:{day}")]
    data.append(("day", f"{CHLOE}:{past}:1"))  # shown booked, box now unticked

    r = services_client.post(MEALS, data=MultiDict(data))

    shown = follow(services_client, r)
    assert r.headers["Location"].endswith(f"/meals?month={month:%Y-%m}")
    assert meal_days(fc_sandbox, "fam-4521", CHLOE, month)[day]["booked"] is False
    assert meal_days(fc_sandbox, "fam-4521", CHLOE, last_month)[past]["booked"] is True
    assert "1 modification enregistrée." in shown
    assert "Chloé, " in shown and "repas annulé." in shown
    assert "non modifié. La date limite de modification est dépassée" in shown
    [entry] = journal(services_app, "book_meals")
    assert entry.outcome == "success" and entry.params["child"] == "Chloé"
    assert day in entry.params["cancelled"]

    # Ticked again, with htmx this time: the family's month comes back with the result.
    form = form_to(raw(services_client.get(url)), MEALS)
    assert form.boxes(CHLOE)[day] is False
    answer = send(services_client, form, extra=[("book", f"{CHLOE}:{day}")], headers=HX)
    assert answer.status_code == 200 and raw(answer).lstrip().startswith('<section id="meals"')
    assert 'role="status" tabindex="-1" autofocus' in raw(answer)
    assert "repas réservé." in text(answer)
    assert meal_days(fc_sandbox, "fam-4521", CHLOE, month)[day]["booked"] is True
    assert form_to(raw(answer), MEALS).boxes(CHLOE)[day] is True  # re-read from the back-end


def test_a_form_whose_every_day_is_past_its_deadline_changes_nothing(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    last_month = date.today().replace(day=1) - timedelta(days=1)
    past = next(
        d
        for d, meal in meal_days(fc_sandbox, "fam-4521", "enf-4521-2", last_month).items()
        if not meal["booked"] and meal["note"] == "Délai de modification dépassé."
    )
    token = csrf(services_client, "/services/cantine-bordeaux")
    r = services_client.post(
        MEALS,
        data={
            "csrf_token": token,
            "idem": fresh_key(),
            "day": f"{HUGO}:{past}:0",
            "book": f"{HUGO}:{past}",
        },
        headers=HX,
    )
    assert "Hugo : aucune modification n'a été enregistrée." in text(r)
    assert "La date limite de modification est dépassée" in text(r)
    assert meal_days(fc_sandbox, "fam-4521", "enf-4521-2", last_month)[past]["booked"] is False
    [entry] = journal(services_app, "book_meals")
    assert entry.outcome == "refused"


def test_one_submission_saves_every_childs_changes(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    """Both children's tables are one form: Chloé's and Hugo's changes go together, and
    neither is lost (saving one child's used to throw away the other's ticks)."""
    sign_in(services_client, "marie-therese")
    month = next_month(date.today())
    form = form_to(raw(services_client.get(f"{MEALS}?month={month:%Y-%m}")), MEALS)
    chloe_day = next(d for d, booked in form.boxes(CHLOE).items() if booked)
    hugo_day = next(d for d, booked in form.boxes(HUGO).items() if booked)
    data = [
        (k, v)
        for k, v in form.data()
        if (k, v) not in (("book", f"{CHLOE}:{chloe_day}"), ("book", f"{HUGO}:{hugo_day}"))
    ]

    answer = services_client.post(MEALS, data=MultiDict(data), headers=HX)

    assert answer.status_code == 200
    assert "2 modifications enregistrées." in text(answer)
    assert "Chloé, " in text(answer) and "Hugo, " in text(answer)
    assert meal_days(fc_sandbox, "fam-4521", CHLOE, month)[chloe_day]["booked"] is False
    assert meal_days(fc_sandbox, "fam-4521", HUGO, month)[hugo_day]["booked"] is False
    shown = form_to(raw(answer), MEALS)
    assert shown.boxes(CHLOE)[chloe_day] is False and shown.boxes(HUGO)[hugo_day] is False
    entries = journal(services_app, "book_meals")
    assert len(entries) == 2 and {"Chloé", "Hugo"} == {e.params["child"] for e in entries}


def test_a_refused_day_says_whose_and_the_page_shows_what_was_saved(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    today = date.today()
    month = next_month(today)
    form = form_to(raw(services_client.get(f"{MEALS}?month={month:%Y-%m}")), MEALS)
    chloe_day, chloe_was = next(iter(form.boxes(CHLOE).items()))
    # Hugo's day closed while the page was open: its deadline is past.
    last_month = today.replace(day=1) - timedelta(days=1)
    hugo_last_month = meal_days(fc_sandbox, "fam-4521", HUGO, last_month)
    past = next(d for d, meal in hugo_last_month.items() if meal["served"])
    was = hugo_last_month[past]["booked"]
    data = [(k, v) for k, v in form.data() if (k, v) != ("book", f"{CHLOE}:{chloe_day}")]
    if not chloe_was:
        data.append(("book", f"{CHLOE}:{chloe_day}"))
    data.append(("day", f"{HUGO}:{past}:{1 if was else 0}"))
    if not was:
        data.append(("book", f"{HUGO}:{past}"))  # ticked, or (booked) unticked

    answer = services_client.post(MEALS, data=MultiDict(data), headers=HX)

    said = text(answer)
    assert "1 modification enregistrée." in said
    assert "les repas affichés sont ceux que le service a enregistrés" in said
    assert "Hugo : aucune modification n'a été enregistrée." in said
    assert "La date limite de modification est dépassée" in said
    assert meal_days(fc_sandbox, "fam-4521", HUGO, last_month)[past]["booked"] is was
    assert meal_days(fc_sandbox, "fam-4521", CHLOE, month)[chloe_day]["booked"] is not chloe_was
    assert form_to(raw(answer), MEALS).boxes(CHLOE)[chloe_day] is not chloe_was
    outcomes = sorted(e.outcome for e in journal(services_app, "book_meals"))
    assert outcomes == ["refused", "success"]


def test_the_month_lists_only_days_with_service_and_each_box_says_what_it_does(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    month = next_month(date.today())
    page = raw(services_client.get(f"{MEALS}?month={month:%Y-%m}"))
    weekdays = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
    rows = [
        html.unescape(r)
        for r in re.findall(r'<th scope="row">([^<]+)</th>', page)
        if r.split()[0] in weekdays
    ]
    days = meal_days(fc_sandbox, "fam-4521", CHLOE, month)
    served = [d for d, day in days.items() if day["served"]]
    assert len(rows) == 2 * len(served)  # two children, one row per day with service
    assert not [r for r in rows if r.split()[0] in ("mercredi", "samedi", "dimanche")]
    assert "Pas de restauration scolaire" not in html.unescape(page)
    assert ">réservé<" not in page
    day = next(d for d in served if days[d]["bookable"])
    label = re.search(rf'for="meal-{CHLOE}-{day}">(.*?)</label>', page)
    assert label and "Repas le " in html.unescape(label.group(1))


def test_while_the_canteen_is_down_its_writes_are_disabled_and_a_form_sent_anyway_does_nothing(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    month = next_month(date.today())
    # Read once while it works: the last known copies the portal keeps.
    services_client.get("/services/cantine-bordeaux")
    services_client.get("/account/todo")
    form = form_to(raw(services_client.get(f"{MEALS}?month={month:%Y-%m}")), MEALS)
    pay_url = "/services/cantine-bordeaux/invoices/fac-4521-2611/pay"
    pay = form_to(raw(services_client.get("/services/cantine-bordeaux")), pay_url)
    day = next(d for d, booked in form.boxes(CHLOE).items() if booked)
    fc_sandbox.fault("canteen", "bordeaux", "error500")

    page = raw(services_client.get(f"{MEALS}?month={month:%Y-%m}"))
    said = html.unescape(page)
    assert "Voici les dernières informations connues" in said
    assert 'type="checkbox"' not in page
    assert re.search(
        r'<button type="submit" class="button" disabled[^>]*>Enregistrer les repas', page
    )
    assert "Les repas ne peuvent pas être modifiés pour le moment" in said
    assert "Les factures ne peuvent pas être payées pour le moment" in said
    assert f'action="{pay_url}"' not in page
    assert re.search(r'<button type="button" class="button" disabled[^>]*>Payer ', page)
    card = text(services_client.get("/services/cantine-bordeaux/card", headers=HX))
    assert "Réservations et paiements impossibles pour le moment" in card
    todo = text(services_client.get("/account/todo"))
    assert "Impossible pour le moment : le service est indisponible." in todo
    assert 'href="/services/cantine-bordeaux#invoices-title"' not in todo

    # The forms of a page left open from before, sent anyway: nothing is tried.
    data = [(k, v) for k, v in form.data() if (k, v) != ("book", f"{CHLOE}:{day}")]
    answer = services_client.post(MEALS, data=MultiDict(data), headers=HX)
    assert "temporairement indisponible : rien n'a été fait" in text(answer)
    paid = send(services_client, pay)
    assert paid.status_code == 503 and "rien n'a été fait" in text(paid)
    assert write_records(services_app, "book_meals") == []
    assert write_records(services_app, "pay_invoice") == []
    fc_sandbox.fault("canteen", "bordeaux", None)
    assert meal_days(fc_sandbox, "fam-4521", CHLOE, month)[day]["booked"] is True


def test_sending_the_calendar_unchanged_sends_nothing(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "marie-therese")
    page = raw(
        services_client.get(
            f"/services/cantine-bordeaux/meals?month={next_month(date.today()):%Y-%m}"
        )
    )
    form = form_to(page, MEALS)
    assert "Vous n'avez rien changé : rien n'a été envoyé." in follow(
        services_client, send(services_client, form)
    )
    assert journal(services_app, "book_meals") == []


# -- housing -------------------------------------------------------------------------------


def test_resident_renews_the_housing_application_during_its_window(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    before = date.fromisoformat(application(fc_sandbox, "dem-0871")["expires_on"])
    page = raw(services_client.get("/services/logement-metropole"))
    assert 'href="/services/logement-metropole/renew"' in page
    assert "Renouveler ma demande" in page and not forms_posting_to_renew(page)

    confirm = services_client.get("/services/logement-metropole/renew")
    assert "Renouveler votre demande n° 0332511008712 ?" in text(confirm)
    form = form_to(raw(confirm), "/services/logement-metropole/renew")

    shown = follow(services_client, send(services_client, form))

    after = date.fromisoformat(application(fc_sandbox, "dem-0871")["expires_on"])
    assert after == before.replace(year=before.year + 1)
    assert f"Votre demande est renouvelée jusqu'au {french_day(after)}." in shown
    assert f"Expire le</dt><dd>{french_day(after)}" in shown
    [entry] = journal(services_app, "renew_application")
    assert entry.outcome == "success" and "0332511008712" not in str(entry.params)


def forms_posting_to_renew(page: str) -> list[Form]:
    return [form for form in forms(page) if form.action.endswith("/renew")]


def test_with_htmx_the_renewal_is_confirmed_in_place_and_the_application_swapped(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    question = services_client.get("/services/logement-metropole/renew", headers=HX)
    assert not raw(question).startswith("<!doctype")
    form = form_to(raw(question), "/services/logement-metropole/renew")
    assert form.attrs["hx-target"] == "#application"
    answer = send(services_client, form, headers=HX)
    after = date.fromisoformat(application(fc_sandbox, "dem-0871")["expires_on"])
    assert raw(answer).lstrip().startswith('<section id="application"')
    assert f"Votre demande est renouvelée jusqu'au {french_day(after)}." in text(answer)
    assert "Renouvellement de la demande en ligne" in text(answer)  # history, re-read


def test_an_application_outside_its_window_explains_when_it_can_be_renewed(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "dartagnan")
    record = application(fc_sandbox, "dem-1544")
    opens = date.fromisoformat(record["renewal_opens_on"])
    page = text(services_client.get("/services/logement-metropole"))
    assert f"Vous pourrez renouveler votre demande du {french_day(opens)}" in page
    assert "/services/logement-metropole/renew" not in page
    confirm = services_client.get("/services/logement-metropole/renew")
    assert confirm.status_code == 200 and not forms_posting_to_renew(raw(confirm))
    assert "Vous pourrez renouveler votre demande du" in text(confirm)

    # A form sent anyway: the back-end refuses, and says when.
    token = csrf(services_client, "/services/logement-metropole")
    r = services_client.post(
        "/services/logement-metropole/renew", data={"csrf_token": token, "idem": fresh_key()}
    )
    shown = follow(services_client, r)
    assert "Votre demande n'a pas été renouvelée : Le renouvellement de cette demande" in shown
    assert application(fc_sandbox, "dem-1544")["expires_on"] == record["expires_on"]
    [entry] = journal(services_app, "renew_application")
    assert entry.outcome == "refused"


def test_an_expired_application_says_a_new_one_is_needed(services_client: FlaskClient) -> None:
    sign_in(services_client, "amina")
    page = text(services_client.get("/services/logement-metropole"))
    assert "elle ne peut plus être renouvelée. Il faut déposer une nouvelle demande." in page


# -- idempotency -----------------------------------------------------------------------------


def test_a_loan_form_sent_twice_renews_once_and_answers_the_same(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    before = date.fromisoformat(due_dates(fc_sandbox)["mer-l-0417-5"])
    page = raw(services_client.get("/services/bib-merignac"))
    form = form_to(page, "/services/bib-merignac/loans/mer-l-0417-5/renew")
    first = follow(services_client, send(services_client, form))
    again = follow(services_client, send(services_client, form))
    new_due = french_day(before + timedelta(days=21))
    expected = f"« Astérix chez les Pictes » est prolongé jusqu'au {new_due}."
    assert expected in first and expected in again
    assert due_dates(fc_sandbox)["mer-l-0417-5"] == (before + timedelta(days=21)).isoformat()
    assert len(journal(services_app, "renew_loan")) == 1
    assert [r.state for r in write_records(services_app, "renew_loan")] == ["done"]


def test_a_koha_renewal_sent_twice_renews_once(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    """Koha itself does not deduplicate renewals: the portal must."""
    sign_in(services_client, "marie-therese")
    before = koha_due_date(fc_sandbox, 9004)
    form = form_to(
        raw(services_client.get("/services/bib-bordeaux")),
        "/services/bib-bordeaux/loans/9004/renew",
    )
    for headers in ({}, HX):
        send(services_client, form, headers=headers)
    assert koha_due_date(fc_sandbox, 9004) == before + timedelta(days=21)
    assert len(journal(services_app, "renew_loan")) == 1


def test_renew_all_sent_twice_renews_each_loan_once(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    before = due_dates(fc_sandbox)
    form = form_to(
        raw(services_client.get("/services/bib-merignac")), "/services/bib-merignac/loans/renew"
    )
    first = text(send(services_client, form, headers=HX))
    again = text(send(services_client, form, headers=HX))
    assert (
        "2 prêts sur 2 ont été prolongés." in first and "2 prêts sur 2 ont été prolongés." in again
    )
    after = due_dates(fc_sandbox)
    for loan_id in ("mer-l-0417-2", "mer-l-0417-5"):
        moved = date.fromisoformat(after[loan_id]) - date.fromisoformat(before[loan_id])
        assert moved == timedelta(days=21)
    assert len(journal(services_app, "renew_loan")) == 2


def test_meals_and_housing_forms_sent_twice_act_once(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    month = next_month(date.today())
    form = form_to(raw(services_client.get(f"{MEALS}?month={month:%Y-%m}")), MEALS)
    day = next(d for d, booked in form.boxes(CHLOE).items() if booked)
    data = [(k, v) for k, v in form.data() if (k, v) != ("book", f"{CHLOE}:{day}")]
    first = services_client.post(MEALS, data=MultiDict(data), headers=HX)
    again = services_client.post(MEALS, data=MultiDict(data), headers=HX)
    assert "1 modification enregistrée." in text(first) and "1 modification enregistrée." in text(
        again
    )
    assert len(journal(services_app, "book_meals")) == 1

    before = date.fromisoformat(application(fc_sandbox, "dem-0871")["expires_on"])
    confirm = raw(services_client.get("/services/logement-metropole/renew"))
    form = form_to(confirm, "/services/logement-metropole/renew")
    follow(services_client, send(services_client, form))
    shown = follow(services_client, send(services_client, form))
    after = date.fromisoformat(application(fc_sandbox, "dem-0871")["expires_on"])
    assert after == before.replace(year=before.year + 1)
    assert f"Votre demande est renouvelée jusqu'au {french_day(after)}." in shown
    assert len(journal(services_app, "renew_application")) == 1


def test_a_cancelled_hold_sent_again_shows_the_first_answer(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "marie-therese")
    confirm_url = "/services/bib-merignac/holds/mer-h-0417-2/cancel"
    form = form_to(raw(services_client.get(confirm_url)), confirm_url)
    follow(services_client, send(services_client, form))
    # The hold is gone from the account, yet the same form gets the same answer, not a 404.
    again = send(services_client, form)
    assert "Votre réservation de « Petit Pays » est annulée." in follow(services_client, again)
    assert len(journal(services_app, "cancel_hold")) == 1


# -- back-ends failing in the middle of a write ----------------------------------------------


# (A write left unanswered, "hang", may have been done: see test_unknown_outcome.py.)
@pytest.mark.parametrize("mode", ["error500", "unavailable"])
def test_a_library_failing_mid_renewal_does_nothing_and_the_same_form_can_retry(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox, mode: str
) -> None:
    sign_in(services_client, "marie-therese")
    before = due_dates(fc_sandbox)["mer-l-0417-5"]
    page = raw(services_client.get("/services/bib-merignac"))  # the loans, read once
    form = form_to(page, "/services/bib-merignac/loans/mer-l-0417-5/renew")
    # The renewal fails, the reads still work (a library down altogether is stale,
    # and then nothing is even tried: see the canteen's test below).
    fc_sandbox.fault("library", "merignac", mode, hang_s=10, writes_only=True)

    answer = send(services_client, form, headers=HX)

    assert answer.status_code == 200 and NOTHING_DONE in text(answer)
    fc_sandbox.fault("library", "merignac", None)
    assert due_dates(fc_sandbox)["mer-l-0417-5"] == before
    [record] = write_records(services_app, "renew_loan")
    assert record.state == "failed"
    entries = journal(services_app, "renew_loan")
    assert [e.outcome for e in entries] == ["failure"]
    assert entries[0].code == "renew_loan_not_done"

    # The back-end is back: the very same form now renews.
    registry = services_app.extensions["connectors"]
    http = registry._http["bib-merignac"]
    http._clock = lambda: 10**10  # any open breaker has cooled down
    retried = follow(services_client, send(services_client, form))
    assert "« Astérix chez les Pictes » est prolongé jusqu'au" in retried
    assert due_dates(fc_sandbox)["mer-l-0417-5"] != before
    assert [r.state for r in write_records(services_app, "renew_loan")] == ["done"]


@pytest.mark.parametrize(
    ("kind", "tenant", "path"),
    [
        ("canteen", "bordeaux", MEALS),
        ("housing", "metropole", "/services/logement-metropole/renew"),
    ],
)
def test_a_canteen_or_housing_back_end_failing_mid_write_records_no_success(
    services_client: FlaskClient,
    services_app: Flask,
    fc_sandbox: Sandbox,
    kind: str,
    tenant: str,
    path: str,
) -> None:
    sign_in(services_client, "marie-therese")
    month = next_month(date.today())
    if kind == "canteen":
        form = form_to(
            raw(services_client.get(f"/services/cantine-bordeaux/meals?month={month:%Y-%m}")),
            path,
        )
        day = next(d for d, booked in form.boxes(CHLOE).items() if booked)
        data = [(k, v) for k, v in form.data() if (k, v) != ("book", f"{CHLOE}:{day}")]
    else:
        data = form_to(raw(services_client.get(path)), path).data()
    # The write fails, the reads still work: the page is not stale, the form is used.
    fc_sandbox.fault(kind, tenant, "error500", writes_only=True)

    r = services_client.post(path, data=MultiDict(data))

    assert NOTHING_DONE in follow(services_client, r)
    fc_sandbox.fault(kind, tenant, None)
    action = "book_meals" if kind == "canteen" else "renew_application"
    assert [w.state for w in write_records(services_app, action)] == ["failed"]
    assert [e.outcome for e in journal(services_app, action)] == ["failure"]
    if kind == "canteen":
        assert meal_days(fc_sandbox, "fam-4521", "enf-4521-1", month)[day]["booked"] is True
    else:
        assert application(fc_sandbox, "dem-0871")["history"][-1]["label"].startswith("Courrier")


def test_a_link_the_library_no_longer_knows_asks_to_relink_and_does_nothing(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "amina")
    form = form_to(
        raw(services_client.get("/services/bib-merignac")),
        "/services/bib-merignac/loans/mer-l-0958-1/renew",
    )
    with services_app.app_context():
        link = db.session.execute(
            db.select(ServiceLink).filter_by(instance_slug="bib-merignac")
        ).scalar_one()
        link.external_id = "mer-p-9999"  # the card was cancelled at the library
        db.session.commit()
    answer = send(services_client, form, headers=HX)
    assert "Il faut le relier à nouveau." in text(answer)
    assert 'href="/link/bib-merignac"' in raw(answer)
    shown = follow(services_client, send(services_client, form))  # without htmx: flashed
    assert "Il faut le relier à nouveau." in shown and 'href="/link/bib-merignac"' in shown
    assert journal(services_app, "renew_loan") == []


# -- authorisation ---------------------------------------------------------------------------


def same_404(client: FlaskClient, method: str, theirs: str, unknown: str, **kwargs) -> None:
    """Someone else's id and an id that does not exist get the very same answer."""
    a = client.open(theirs, method=method, **kwargs)
    b = client.open(unknown, method=method, **kwargs)
    assert a.status_code == b.status_code == 404
    # The page links to itself (language switch), its sign-out form carries a CSRF token
    # signed with the current second and its session timer counts seconds: nothing else
    # may differ.
    assert comparable(a, theirs) == comparable(b, unknown)


def comparable(response, path: str) -> str:
    page = raw(response).replace(path, "X")
    page = re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token"', page)
    page = re.sub(r'data-remaining-s="\d+"', "data-remaining-s", page)
    return re.sub(r"\d{1,2}(:| h )\d{2}", "HH:MM", page)


def test_a_resident_cannot_renew_someone_elses_loan(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    before = due_dates(fc_sandbox)
    sign_in(services_client, "amina")  # Mérignac too, another card
    data = {"csrf_token": csrf(services_client, "/services/bib-merignac"), "idem": fresh_key()}
    same_404(
        services_client,
        "POST",
        "/services/bib-merignac/loans/mer-l-0417-5/renew",
        "/services/bib-merignac/loans/mer-l-0417-9/renew",
        data=data,
    )
    # In a "renew all" form: nothing is sent for loans that are not on her card.
    r = services_client.post(
        "/services/bib-merignac/loans/renew",
        data={**data, "loan": ["mer-l-0417-5", "mer-l-0417-9"]},
    )
    shown = follow(services_client, r)
    assert shown.count("Un prêt n'apparaît plus sur votre compte") == 2
    assert due_dates(fc_sandbox) == before


def test_a_resident_cannot_renew_someone_elses_koha_loan(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    before = koha_due_date(fc_sandbox, 9004)
    sign_in(services_client, "lucas")  # Bordeaux (Koha), another card
    data = {"csrf_token": csrf(services_client, "/services/bib-bordeaux"), "idem": fresh_key()}
    same_404(
        services_client,
        "POST",
        "/services/bib-bordeaux/loans/9004/renew",
        "/services/bib-bordeaux/loans/99999/renew",
        data=data,
    )
    assert koha_due_date(fc_sandbox, 9004) == before


def test_a_resident_cannot_cancel_someone_elses_hold(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "amina")
    data = {"csrf_token": csrf(services_client, "/services/bib-merignac"), "idem": fresh_key()}
    theirs = "/services/bib-merignac/holds/mer-h-0417-2/cancel"
    unknown = "/services/bib-merignac/holds/mer-h-0417-9/cancel"
    same_404(services_client, "GET", theirs, unknown)
    same_404(services_client, "POST", theirs, unknown, data=data)
    assert mer_h_0417_2_is_held(fc_sandbox)


def test_a_resident_cannot_book_meals_for_someone_elses_child(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    month = next_month(date.today())
    days = meal_days(fc_sandbox, "fam-4521", "enf-4521-1", month)
    day = next(d for d, meal in days.items() if meal["bookable"] and meal["booked"])
    sign_in(services_client, "dartagnan")  # the same canteen, another family
    data = {
        "csrf_token": csrf(services_client, "/services/cantine-bordeaux"),
        "idem": fresh_key(),
        "month": f"{month:%Y-%m}",
    }
    theirs = services_client.post(MEALS, data={**data, "day": f"{CHLOE}:{day}:1"})
    unknown = services_client.post(MEALS, data={**data, "day": f"enf-4521-9:{day}:1"})
    assert theirs.status_code == unknown.status_code == 404
    assert comparable(theirs, MEALS) == comparable(unknown, MEALS)
    assert meal_days(fc_sandbox, "fam-4521", "enf-4521-1", month)[day]["booked"] is True


def test_a_resident_can_only_renew_their_own_housing_application(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    before = application(fc_sandbox, "dem-0871")
    sign_in(services_client, "eloise")  # nothing linked
    token = csrf(services_client, "/")
    data = {"csrf_token": token, "idem": fresh_key()}
    same_404(
        services_client,
        "POST",
        "/services/logement-metropole/renew",
        "/services/does-not-exist/renew",
        data=data,
    )
    sign_in(services_client, "amina")  # her own application expired
    token = csrf(services_client, "/services/logement-metropole")
    r = services_client.post(
        "/services/logement-metropole/renew",
        data={"csrf_token": token, "idem": fresh_key(), "application_id": "dem-0871"},
    )
    assert "a expiré" in follow(services_client, r)
    assert application(fc_sandbox, "dem-0871") == before


def test_actions_of_one_kind_of_service_do_not_exist_on_another(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "marie-therese")
    data = {"csrf_token": csrf(services_client, "/services/bib-merignac"), "idem": fresh_key()}
    assert (
        services_client.post("/services/cantine-bordeaux/loans/x/renew", data=data).status_code
        == 404
    )
    assert services_client.get("/services/bib-merignac/meals").status_code == 404
    assert services_client.post("/services/bib-merignac/renew", data=data).status_code == 404


def test_actions_need_a_signed_in_resident_and_a_csrf_token(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    r = services_client.get("/services/bib-merignac/holds/mer-h-0417-2/cancel")
    assert r.status_code == 302 and r.headers["Location"].startswith("/auth/login")
    sign_in(services_client, "marie-therese")
    before = due_dates(fc_sandbox)
    r = services_client.post(
        "/services/bib-merignac/loans/mer-l-0417-5/renew", data={"idem": fresh_key()}
    )
    assert r.status_code == 400 and "Rien n'a été enregistré" in text(r)
    assert due_dates(fc_sandbox) == before


# -- htmx or not, and garbage ------------------------------------------------------------------


def test_htmx_gets_the_updated_section_and_a_plain_post_a_303(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "marie-therese")
    page = raw(services_client.get("/services/bib-merignac"))
    form = form_to(page, "/services/bib-merignac/loans/mer-l-0417-5/renew")
    plain = send(services_client, form)
    assert plain.status_code == 303 and plain.headers["Location"] == "/services/bib-merignac"

    form = form_to(page, "/services/bib-merignac/loans/mer-l-0417-2/renew")
    fragment = send(services_client, form, headers=HX)
    assert fragment.status_code == 200
    assert raw(fragment).lstrip().startswith('<section id="loans"')
    assert "<!doctype" not in raw(fragment) and "<h1" not in raw(fragment)
    assert 'role="status" tabindex="-1" autofocus' in raw(fragment)
    assert "HX-Request" in fragment.headers["Vary"]
    # Boosted requests want pages.
    form = form_to(page, "/services/bib-merignac/loans/renew")
    boosted = send(services_client, form, headers={**HX, "HX-Boosted": "true"})
    assert boosted.status_code == 303


def test_a_form_without_a_valid_key_does_nothing(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    before = due_dates(fc_sandbox)
    page = raw(services_client.get("/services/bib-merignac"))
    form = form_to(page, "/services/bib-merignac/loans/mer-l-0417-5/renew")
    missing = send(services_client, form, without=("idem",))
    assert missing.status_code == 400 and "rien n'a été fait" in text(missing)
    bad = send(services_client, form, without=("idem",), extra=[("idem", "1234")], headers=HX)
    assert bad.status_code == 200 and "rien n'a été fait" in text(bad)
    assert due_dates(fc_sandbox) == before
    assert write_records(services_app, "renew_loan") == []


GARBAGE_GETS = [
    "/services/cantine-bordeaux/meals?month=garbage",
    "/services/cantine-bordeaux/meals?month=2026-13",
    "/services/cantine-bordeaux/meals?month=0000-01",
    "/services/cantine-bordeaux/meals?month=99999-01",
    "/services/cantine-bordeaux/meals?month=",
    "/services/cantine-bordeaux/meals?month=2026-02-30",
    "/services/bib-merignac/holds/%00/cancel",
    "/services/bib-merignac/holds/" + "x" * 300 + "/cancel",
    "/services/bib-merignac/holds/..%2F..%2Fpatrons/cancel",
    "/services/bib-bordeaux/holds/not-a-number/cancel",
    "/services/logement-metropole/renew?x=%ff",
]


@pytest.mark.parametrize("path", GARBAGE_GETS)
def test_garbage_in_a_url_never_gets_a_server_error(
    services_client: FlaskClient, path: str
) -> None:
    sign_in(services_client, "marie-therese")
    for headers in ({}, HX):
        assert services_client.get(path, headers=headers).status_code < 500


GARBAGE_POSTS = [
    ("/services/bib-merignac/loans/%00/renew", {}),
    ("/services/bib-merignac/loans/" + "9" * 300 + "/renew", {}),
    ("/services/bib-bordeaux/loans/not-a-number/renew", {}),
    ("/services/bib-merignac/loans/renew", {"loan": ["", "\x00", "x" * 500]}),
    ("/services/bib-merignac/loans/renew", {"loan": [str(n) for n in range(150)]}),
    ("/services/bib-merignac/holds/mer-h-0417-2/cancel", {"idem": "g" * 32}),
    (MEALS, {"day": "garbage"}),
    (MEALS, {"day": "enf-4521-1:2026-02-30:1"}),
    (MEALS, {"day": "enf-4521-1:2026-05-04:7"}),
    (MEALS, {"day": "2026-05-04:1"}),
    (MEALS, {"day": "enf-4521-1:1999-01-04:1", "book": "x"}),
    (MEALS, {"day": "enf-4521-1:1999-01-04:1", "book": "enf-4521-1:1999-01-04"}),
    (MEALS, {"day": ["enf-4521-1:2026-05-04:1"] * 100}),
    (MEALS, {"day": [f"c{n}:2026-05-04:1" for n in range(20)]}),
    (MEALS, {"month": "2026-99", "book": "?"}),
    ("/services/logement-metropole/renew", {"idem": ""}),
]


@pytest.mark.parametrize(("path", "fields"), GARBAGE_POSTS)
def test_garbage_in_a_form_never_gets_a_server_error(
    services_client: FlaskClient, path: str, fields: dict
) -> None:
    sign_in(services_client, "marie-therese")
    token = csrf(services_client, "/services/bib-merignac")
    for headers in ({}, HX):
        data = {"csrf_token": token, "idem": fresh_key(), **fields}
        assert services_client.post(path, data=data, headers=headers).status_code < 500
