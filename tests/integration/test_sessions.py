"""A session that ends (idle, or signed out in another tab) or a refused form token never
leaves the resident on a blank screen, a sign-in page inside a panel or a 405: they are
told, sent to sign in, brought back to their page, and what they typed (never a secret)
comes back. Over real HTTP to the sandbox's sign-in and back-ends."""

from __future__ import annotations

import html as html_lib
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import AuthSession
from portal.models._types import utcnow
from tests.support import Authorize, choose_identity, sign_in

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
FC_LINK_RE = re.compile(r'href="(/auth/franceconnect/login[^"]*)"')
LIBRARY = "/services/bib-merignac"
RENEW_ALL = "/services/bib-merignac/loans/renew"
NOT_DONE = "votre dernière action n&#39;a pas été faite, vous pouvez recommencer"


def token(client: FlaskClient, path: str) -> str:
    match = CSRF_RE.search(client.get(path).get_data(as_text=True))
    assert match, f"no form on {path}"
    return match.group(1)


def expire(app: Flask) -> None:
    with app.app_context():
        for auth in db.session.execute(db.select(AuthSession)).scalars():
            auth.last_seen_at = utcnow() - timedelta(minutes=31)
        db.session.commit()


def sign_in_from(client: FlaskClient, login_path: str, identity: str = "marie-therese") -> str:
    """Sign in the way the sign-in page offers it; return where the portal sends back."""
    page = client.get(login_path).get_data(as_text=True)
    match = FC_LINK_RE.search(page)
    assert match, page
    r = client.get(html_lib.unescape(match.group(1)))
    assert r.status_code == 302
    url = r.headers["Location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    back = client.get(choose_identity(Authorize(url, params), identity))
    assert back.status_code == 303, back.status_code
    return back.headers["Location"]


def htmx(current: str, **headers: str) -> dict[str, str]:
    return {"HX-Request": "true", "HX-Current-URL": current, **headers}


# -- htmx on an ended session -------------------------------------------------------------


def test_htmx_on_an_expired_session_sends_the_browser_to_sign_in_and_back(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client)
    csrf = token(services_client, LIBRARY)
    expire(services_app)
    r = services_client.post(
        RENEW_ALL,
        data={"csrf_token": csrf, "loan": "x"},
        headers=htmx("http://localhost/services/bib-merignac"),
    )
    assert r.status_code == 200 and not r.get_data()
    assert "S&#39;identifier avec" not in r.get_data(as_text=True)  # no sign-in fragment
    login = r.headers["HX-Redirect"]
    assert login == "/auth/login?next=/services/bib-merignac"
    assert "Votre session a expiré" in services_client.get(login).get_data(as_text=True)
    assert sign_in_from(services_client, login) == LIBRARY
    page = services_client.get(LIBRARY).get_data(as_text=True)
    assert NOT_DONE in page


def test_htmx_after_signing_out_in_another_tab_is_sent_to_sign_in_not_a_400(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client)
    csrf = token(services_client, LIBRARY)
    services_client.post("/auth/logout", data={"csrf_token": csrf})
    r = services_client.post(
        RENEW_ALL, data={"csrf_token": csrf}, headers=htmx("http://localhost" + LIBRARY)
    )
    assert r.status_code == 200 and not r.get_data()
    assert r.headers["HX-Redirect"] == "/auth/login?next=/services/bib-merignac"
    page = services_client.get(r.headers["HX-Redirect"]).get_data(as_text=True)
    assert "Vous n&#39;êtes plus connecté(e)" in page


def test_a_card_loaded_by_htmx_on_an_expired_session_is_no_lost_action(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client)
    expire(services_app)
    r = services_client.get("/services/bib-merignac/card", headers=htmx("http://localhost/"))
    assert r.status_code == 200 and r.headers["HX-Redirect"] == "/auth/login?next=/"
    assert sign_in_from(services_client, r.headers["HX-Redirect"]) == "/"
    assert NOT_DONE not in services_client.get("/").get_data(as_text=True)


@pytest.mark.parametrize(
    "current",
    [
        "https://evil.example/services/bib-merignac",
        "//evil.example/",
        "http://localhost//evil.example/",
        "http://localhost/\\evil.example",
        "javascript:alert(1)",
        "http://localhost/services/bib-merignac/loans/renew",  # POST only: a 405 after
        "http://localhost/auth/logout",
    ],
)
def test_the_page_to_return_to_is_never_another_site_nor_a_post_address(
    services_client: FlaskClient, services_app: Flask, current: str
) -> None:
    sign_in(services_client)
    csrf = token(services_client, LIBRARY)
    expire(services_app)
    r = services_client.post(
        RENEW_ALL, data={"csrf_token": csrf}, headers=htmx(current, Referer=current)
    )
    assert r.headers["HX-Redirect"] == "/auth/login?next=/"
    assert sign_in_from(services_client, r.headers["HX-Redirect"]) == "/"


def test_a_sign_in_asked_to_return_to_a_post_address_lands_on_a_page(
    services_client: FlaskClient,
) -> None:
    assert sign_in_from(services_client, "/auth/login?next=" + RENEW_ALL) == "/"


# -- a refused form token, signed in ------------------------------------------------------


def test_a_refused_token_on_htmx_shows_a_message_in_place(services_client: FlaskClient) -> None:
    sign_in(services_client)
    r = services_client.post(
        RENEW_ALL, data={"csrf_token": "forged"}, headers=htmx("http://localhost" + LIBRARY)
    )
    assert r.status_code == 200  # htmx swaps no 4xx answer: this one must be seen
    assert r.headers["HX-Retarget"] == "#page-alert"
    assert r.headers["HX-Reswap"].startswith("innerHTML")
    body = r.get_data(as_text=True)
    assert 'role="alert"' in body and "Rien n&#39;a été enregistré" in body
    assert f'href="{LIBRARY}"' in body
    assert "<html" not in body


def test_a_refused_token_without_javascript_gives_a_page_with_a_link_back(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client)
    r = services_client.post(
        RENEW_ALL, data={"csrf_token": "forged"}, headers={"Referer": "http://localhost" + LIBRARY}
    )
    assert r.status_code == 400
    body = r.get_data(as_text=True)
    assert "Rien n&#39;a été enregistré" in body and f'href="{LIBRARY}"' in body


# -- without JavaScript, a form sent on an expired session --------------------------------


def test_a_form_sent_on_an_expired_session_comes_back_to_its_page_not_a_405(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client)
    csrf = token(services_client, LIBRARY)
    expire(services_app)
    r = services_client.post(
        RENEW_ALL, data={"csrf_token": csrf}, headers={"Referer": "http://localhost" + LIBRARY}
    )
    assert r.status_code == 303
    assert r.headers["Location"] == "/auth/login?next=/services/bib-merignac"
    back = sign_in_from(services_client, r.headers["Location"])
    assert back == LIBRARY
    r = services_client.get(back)
    assert r.status_code == 200
    assert NOT_DONE in r.get_data(as_text=True)


# -- a half-filled linking form -------------------------------------------------------------

CARD = "33281000129033"
PIN = "2902"


def test_a_linking_form_sent_on_an_expired_session_keeps_the_card_not_the_pin(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "eloise")
    csrf = token(services_client, "/link/bib-merignac")
    expire(services_app)
    r = services_client.post(
        "/link/bib-merignac",
        data={"csrf_token": csrf, "card_number": CARD, "proof": "pin", "pin": PIN},
        headers={"Referer": "http://localhost/link/bib-merignac"},
    )
    assert r.status_code == 303
    with services_client.session_transaction() as s:
        assert PIN not in repr(dict(s))
    assert sign_in_from(services_client, r.headers["Location"], "eloise") == "/link/bib-merignac"
    form = services_client.get("/link/bib-merignac").get_data(as_text=True)
    assert f'value="{CARD}"' in form
    assert PIN not in form
    assert NOT_DONE in form
    again = services_client.get("/link/bib-merignac").get_data(as_text=True)
    assert CARD not in again  # given back once


def test_a_linking_form_with_a_refused_token_keeps_the_family_number_not_the_code(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "eloise")
    r = services_client.post(
        "/link/cantine-bordeaux",
        data={"csrf_token": "stale", "family_number": "4521", "invoice_code": "SECRET1"},
        headers={"Referer": "http://localhost/link/cantine-bordeaux"},
    )
    assert r.status_code == 400
    assert 'href="/link/cantine-bordeaux"' in r.get_data(as_text=True)
    form = services_client.get("/link/cantine-bordeaux").get_data(as_text=True)
    assert 'value="4521"' in form
    assert "SECRET1" not in form


def test_a_form_posted_from_another_site_leaves_nothing_in_ours(
    services_client: FlaskClient,
) -> None:
    r = services_client.post(
        "/link/bib-merignac",
        data={"card_number": "99999999", "proof": "pin"},
        headers={"Referer": "https://evil.example/"},
    )
    assert r.status_code == 303
    assert sign_in_from(services_client, r.headers["Location"], "eloise") == "/"
    assert "99999999" not in services_client.get("/link/bib-merignac").get_data(as_text=True)


# -- the session's end, said and extended (WCAG 2.2.1) ------------------------------------

ENDS_RE = re.compile(
    r"Votre session se termine à (\d{1,2})\u00a0h\u00a0(\d{2}) faute d(?:'|&#39;)activité"
)


def test_every_page_says_when_the_session_ends_and_offers_to_stay(
    client: FlaskClient, app: Flask
) -> None:
    sign_in(client)
    with app.app_context():
        [auth] = db.session.execute(db.select(AuthSession)).scalars()
        # A minute ago, whatever the time of day the suite runs at.
        last = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=1)
        auth.last_seen_at = last
        auth.created_at = last
        db.session.commit()
    before = utcnow()
    html = client.get("/").get_data(as_text=True)
    after = utcnow()
    # This visit is activity too: 30 minutes after it, said in Paris time.
    paris = ZoneInfo("Europe/Paris")
    expected = {
        (str(t.hour), f"{t.minute:02d}")
        for t in ((moment + timedelta(minutes=30)).astimezone(paris) for moment in (before, after))
    }
    match = ENDS_RE.search(html)
    assert match, html
    assert match.groups() in expected
    assert 'action="/auth/session/extend"' in html and "Rester connecté(e)" in html
    assert 'role="alert" hidden' in html  # the warning, for the script to show in time
    english = client.get("/?lang=en").get_data(as_text=True)
    assert re.search(r"Your session ends at \d{2}:\d{2} if you do nothing", english)


def test_staying_signed_in_extends_the_session(client: FlaskClient, app: Flask) -> None:
    sign_in(client)
    with app.app_context():
        [auth] = db.session.execute(db.select(AuthSession)).scalars()
        auth.last_seen_at = utcnow() - timedelta(minutes=29)
        db.session.commit()
    csrf = token(client, "/")
    r = client.post(
        "/auth/session/extend",
        data={"csrf_token": csrf},
        headers={"Referer": "http://localhost/donnees-personnelles"},
    )
    assert r.status_code == 303 and r.headers["Location"] == "/donnees-personnelles"
    with app.app_context():
        [auth] = db.session.execute(db.select(AuthSession)).scalars()
        assert utcnow() - auth.last_seen_at < timedelta(seconds=30)
    page = client.get("/donnees-personnelles").get_data(as_text=True)
    assert "Vous restez connecté(e)" in page
    with app.app_context():  # two minutes past the old end: still signed in
        [auth] = db.session.execute(db.select(AuthSession)).scalars()
        auth.last_seen_at = utcnow() - timedelta(minutes=3)
        db.session.commit()
    assert client.get("/").status_code == 200


def test_staying_signed_in_with_htmx_answers_the_new_time_only(
    client: FlaskClient, app: Flask
) -> None:
    sign_in(client)
    csrf = token(client, "/")
    r = client.post(
        "/auth/session/extend", data={"csrf_token": csrf}, headers=htmx("http://localhost/")
    )
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="session-area"') and ENDS_RE.search(body)
    assert 'data-remaining-s="1' in body  # about 1800 s


def test_staying_signed_in_needs_the_form_token(client: FlaskClient) -> None:
    sign_in(client)
    r = client.post("/auth/session/extend", headers={"Referer": "http://localhost/"})
    assert r.status_code == 400
    assert "Vous restez connecté(e)" not in client.get("/").get_data(as_text=True)
