"""A resident signs in and out with FranceConnect (the sandbox, over real HTTP), and every
way that can go wrong ends on the sign-in page with a plain explanation and no session."""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.extensions import db
from portal.models import AuthSession, Citizen, JournalEntry
from portal.models._types import utcnow
from sandbox.idp.identities import IDENTITIES
from tests.support import (
    Sandbox,
    choose_identity,
    empty_tables,
    portal_settings,
    sign_in,
    start_sign_in,
)

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def page(client: FlaskClient, path: str) -> str:
    return client.get(path, follow_redirects=True).get_data(as_text=True)


def assert_signed_out_with(client: FlaskClient, response, message: str) -> None:
    """The person is back on the sign-in page, told what happened, and not signed in."""
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/auth/login")
    html = page(client, "/auth/login")
    assert message in html
    assert "S'identifier avec" in html
    assert client.get("/").status_code == 302  # home still needs a sign-in
    with client.session_transaction() as s:
        assert "sid" not in s


def citizens(app: Flask) -> list[Citizen]:
    with app.app_context():
        return list(db.session.execute(db.select(Citizen)).scalars())


# -- the happy path ------------------------------------------------------------------------


def test_resident_signs_in_and_is_greeted_by_name(client: FlaskClient, app: Flask) -> None:
    auth = start_sign_in(client)
    p = auth.params
    assert p["response_type"] == "code"
    assert p["acr_values"] == "eidas1"
    assert re.fullmatch(r"[0-9a-f]{64}", p["state"])
    assert re.fullmatch(r"[0-9a-f]{64}", p["nonce"])
    assert p["scope"].split() == [
        "openid",
        "given_name",
        "family_name",
        "preferred_username",
        "birthdate",
        "email",
    ]
    assert p["redirect_uri"] == "http://localhost/auth/franceconnect/callback"
    assert "prompt" not in p

    r = client.get(choose_identity(auth, "marie-therese"))
    assert r.status_code == 303 and r.headers["Location"] == "/"
    html = page(client, "/")
    # Greeted by her first given name and the name she uses, asked for by default.
    assert "Bonjour Marie-Thérèse DUBOIS" in html and "Anne" not in html
    [citizen] = citizens(app)
    assert citizen.family_name == "MARTIN" and citizen.usage_name == "DUBOIS"
    assert citizen.birthdate.isoformat() == "1962-08-24"
    assert len(citizen.sub) == 66


@pytest.mark.parametrize("identity", IDENTITIES, ids=lambda i: i.key)
def test_every_test_identity_is_greeted_with_their_exact_name(
    database_url: str, fc_sandbox: Sandbox, identity
) -> None:
    """With the usage name asked for, the greeting uses it; accents and apostrophes intact."""
    scopes = "openid given_name family_name preferred_username birthdate email"
    app = create_app(portal_settings(database_url, fc_sandbox.issuer, fc_scopes=scopes))
    client = app.test_client()
    try:
        sign_in(client, identity.key)
        html = page(client, "/")
        first = identity.given_name.split()[0]
        expected = f"{first} {identity.preferred_username or identity.family_name}"
        greeting = f'<h1 class="greeting">Bonjour {expected}</h1>'
        assert greeting.replace("'", "&#39;") in html
        [citizen] = citizens(app)
        assert citizen.family_name == identity.family_name
        assert citizen.usage_name == identity.preferred_username
        assert citizen.birthdate.isoformat() == identity.birthdate
    finally:
        empty_tables(app)


def test_signing_in_again_updates_the_same_resident(client: FlaskClient, app: Flask) -> None:
    sign_in(client, "lucas")
    client.post("/auth/logout", data={"csrf_token": csrf(client)})
    sign_in(client, "lucas")
    [citizen] = citizens(app)
    assert citizen.birthdate.isoformat() == "1978-06-01"
    with app.app_context():
        actions = [e.action for e in db.session.execute(db.select(JournalEntry)).scalars()]
    assert actions.count("sign_in") == 2 and actions.count("sign_out") == 1


def test_resident_returns_to_the_page_they_asked_for(client: FlaskClient) -> None:
    r = client.get("/donnees-personnelles")
    assert r.status_code == 200  # public page, no detour
    login = client.get("/")
    assert login.headers["Location"] == "/auth/login?next=/"
    r = client.get("/auth/franceconnect/login?next=/accessibilite")
    location = r.headers["Location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    from tests.support import Authorize

    r = client.get(choose_identity(Authorize(location, params), "amina"))
    assert r.headers["Location"] == "/accessibilite"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example"])
def test_sign_in_never_redirects_off_site(client: FlaskClient, target: str) -> None:
    r = client.get("/auth/franceconnect/login", query_string={"next": target})
    location = r.headers["Location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    from tests.support import Authorize

    r = client.get(choose_identity(Authorize(location, params), "amina"))
    assert r.headers["Location"] == "/"


def csrf(client: FlaskClient) -> str:
    html = client.get("/").get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, "no CSRF token on the home page"
    return match.group(1)


def test_resident_signs_out_of_the_portal_and_of_franceconnect(
    client: FlaskClient, app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(client, "eloise")
    token = csrf(client)
    with app.app_context():
        [auth] = db.session.execute(db.select(AuthSession)).scalars()
        id_token = auth.id_token
    r = client.post("/auth/logout", data={"csrf_token": token})
    assert r.status_code == 303
    end = urlsplit(r.headers["Location"])
    assert f"{end.scheme}://{end.netloc}{end.path}" == fc_sandbox.issuer + "/session/end"
    q = {k: v[0] for k, v in parse_qs(end.query).items()}
    assert q["id_token_hint"] == id_token
    assert q["post_logout_redirect_uri"] == "http://localhost/auth/franceconnect/logged-out"
    assert re.fullmatch(r"[0-9a-f]{64}", q["state"])
    # The session is gone on our side before FranceConnect even answers.
    with app.app_context():
        assert db.session.execute(db.select(AuthSession)).first() is None
    assert client.get("/").status_code == 302

    back = httpx.get(r.headers["Location"], timeout=10)
    assert back.status_code in (302, 303)
    ret = urlsplit(back.headers["Location"])
    html = client.get(f"{ret.path}?{ret.query}").get_data(as_text=True)
    assert "Vous êtes déconnecté(e)" in html
    assert "et de FranceConnect" in html


def test_a_logout_return_with_a_foreign_state_is_not_taken_at_its_word(
    client: FlaskClient,
) -> None:
    sign_in(client)
    client.post("/auth/logout", data={"csrf_token": csrf(client)})
    html = client.get("/auth/franceconnect/logged-out?state=" + "0" * 64).get_data(as_text=True)
    assert "Vous êtes déconnecté(e)" in html
    assert "pas pu confirmer la fin de votre session FranceConnect" in html


def test_sign_out_without_the_form_token_is_refused_and_changes_nothing(
    client: FlaskClient,
) -> None:
    sign_in(client)
    r = client.post("/auth/logout")
    assert r.status_code == 400
    assert "Le formulaire a expiré" in r.get_data(as_text=True)
    assert client.get("/").status_code == 200


def test_signing_in_starts_a_new_session(client: FlaskClient) -> None:
    with client.session_transaction() as s:
        s["planted"] = "by an attacker"
        s["sid"] = "a-session-id-chosen-by-an-attacker"
    sign_in(client)
    with client.session_transaction() as s:
        assert "planted" not in s
        first = s["sid"]
    assert first != "a-session-id-chosen-by-an-attacker"
    client.post("/auth/logout", data={"csrf_token": csrf(client)})
    sign_in(client)
    with client.session_transaction() as s:
        assert s["sid"] != first


@pytest.mark.parametrize(
    ("field", "delta"),
    [("last_seen_at", timedelta(minutes=31)), ("created_at", timedelta(hours=12, seconds=1))],
)
def test_idle_and_absolute_timeouts_end_the_session(
    client: FlaskClient, app: Flask, field: str, delta: timedelta
) -> None:
    sign_in(client)
    with app.app_context():
        [auth] = db.session.execute(db.select(AuthSession)).scalars()
        setattr(auth, field, utcnow() - delta)
        if field == "created_at":
            auth.last_seen_at = utcnow()
        db.session.commit()
    r = client.get("/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/auth/login")
    assert "Votre session a expiré" in page(client, "/auth/login")
    with app.app_context():
        assert db.session.execute(db.select(AuthSession)).first() is None


def test_a_resident_in_use_stays_signed_in_and_their_session_is_not_held_open(
    client: FlaskClient, app: Flask
) -> None:
    """Each request records that the session is in use (at most once a minute), for good:
    a resident who keeps using the portal is not signed out as idle, and no request keeps
    that write pending while it works (on SQLite, that locked the whole database)."""
    sign_in(client)
    stale = utcnow() - timedelta(minutes=20)
    with app.app_context():
        [auth] = db.session.execute(db.select(AuthSession)).scalars()
        auth.last_seen_at = stale
        db.session.commit()
    assert client.get("/").status_code == 200
    with app.app_context():
        [auth] = db.session.execute(db.select(AuthSession)).scalars()
        assert auth.last_seen_at > stale + timedelta(minutes=19), auth.last_seen_at


# -- state, iss and the provider's own errors ---------------------------------------------


def test_a_callback_with_a_mismatched_state_is_refused(client: FlaskClient) -> None:
    auth = start_sign_in(client)
    callback = choose_identity(auth, "amina").replace(auth.params["state"], "f" * 64)
    r = client.get(callback)
    assert_signed_out_with(client, r, "Votre demande de connexion n&#39;a pas pu être vérifiée")


def test_a_callback_without_state_is_refused(client: FlaskClient) -> None:
    auth = start_sign_in(client)
    callback = re.sub(r"state=[^&]+&?", "", choose_identity(auth, "amina"))
    r = client.get(callback)
    assert_signed_out_with(client, r, "Votre demande de connexion n&#39;a pas pu être vérifiée")


def test_a_callback_that_did_not_start_here_is_refused(client: FlaskClient, app: Flask) -> None:
    auth = start_sign_in(client)
    callback = choose_identity(auth, "amina")
    other = app.test_client()  # another browser, with no sign-in under way
    r = other.get(callback)
    assert_signed_out_with(other, r, "Votre demande de connexion n&#39;a pas pu être vérifiée")


def test_a_callback_from_another_issuer_is_refused(
    client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    fc_sandbox.behave(callback_iss="https://attacker.example/api/v2")
    r = sign_in(client)
    assert_signed_out_with(client, r, "La réponse de FranceConnect n&#39;a pas pu être vérifiée")


def test_a_callback_without_iss_is_still_accepted(client: FlaskClient, fc_sandbox: Sandbox) -> None:
    fc_sandbox.behave(callback_iss="omit")
    r = sign_in(client)
    assert r.headers["Location"] == "/"


@pytest.mark.parametrize(
    ("name", "second"),
    [("iss", "https://attacker.example/api/v2"), ("state", "f" * 64), ("code", "c" * 32)],
)
def test_a_callback_with_a_duplicated_parameter_is_refused(
    client: FlaskClient, app: Flask, name: str, second: str
) -> None:
    auth = start_sign_in(client)
    callback = choose_identity(auth, "amina")
    assert f"{name}=" in callback
    r = client.get(f"{callback}&{name}={second}")
    assert r.status_code == 400
    assert "Votre demande de connexion n&#39;a pas pu être vérifiée" in r.get_data(as_text=True)
    with client.session_transaction() as s:
        assert "sid" not in s
    assert client.get("/").status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AuthSession)) == 0
    # The same answer, once each, is spent too: the sign-in starts again, and works.
    assert client.get(callback).status_code in (302, 303)
    assert client.get("/").status_code == 302
    assert sign_in(client).headers["Location"] == "/"


def test_resident_who_cancels_on_franceconnect_can_try_again(client: FlaskClient) -> None:
    auth = start_sign_in(client)
    r = client.get(choose_identity(auth, None, cancel=True))
    assert_signed_out_with(client, r, "Vous avez annulé la connexion avec FranceConnect")


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("temporarily_unavailable", "FranceConnect est momentanément indisponible"),
        ("server_error", "FranceConnect est momentanément indisponible"),
        ("invalid_scope", "La connexion avec FranceConnect n&#39;a pas pu aboutir"),
        ("Y030106", "La connexion avec FranceConnect n&#39;a pas pu aboutir"),
    ],
)
def test_provider_errors_on_the_callback_are_explained(
    client: FlaskClient, error: str, message: str
) -> None:
    auth = start_sign_in(client)
    r = client.get(
        "/auth/franceconnect/callback",
        query_string={"error": error, "error_description": "x", "state": auth.params["state"]},
    )
    assert_signed_out_with(client, r, message)


# -- the code ------------------------------------------------------------------------------


def test_a_replayed_code_is_refused(client: FlaskClient) -> None:
    auth = start_sign_in(client)
    callback = choose_identity(auth, "amina")
    assert client.get(callback).headers["Location"] == "/"
    client.post("/auth/logout", data={"csrf_token": csrf(client)})
    # A new sign-in attempt, fed the old (already used) code.
    fresh = start_sign_in(client)
    replay = callback.replace(auth.params["state"], fresh.params["state"])
    r = client.get(replay)
    assert_signed_out_with(client, r, "La connexion avec FranceConnect n&#39;a pas pu aboutir")


def test_an_expired_code_is_refused(client: FlaskClient, fc_sandbox: Sandbox) -> None:
    fc_sandbox.behave(code_ttl_s=0)
    r = sign_in(client)
    assert_signed_out_with(client, r, "La connexion avec FranceConnect n&#39;a pas pu aboutir")


def test_a_token_endpoint_in_trouble_is_explained(client: FlaskClient, fc_sandbox: Sandbox) -> None:
    fc_sandbox.behave(token_status=503)
    r = sign_in(client)
    assert_signed_out_with(client, r, "FranceConnect ne répond pas pour le moment")


# -- the ID token and userinfo -------------------------------------------------------------

INVALID = "La réponse de FranceConnect n&#39;a pas pu être vérifiée"


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param({"id_token_nonce": "0" * 64}, id="wrong-nonce"),
        pytest.param({"tamper_signature": True}, id="tampered-signature"),
        pytest.param({"id_token_alg": "none"}, id="alg-none"),
        pytest.param({"id_token_alg": "HS256"}, id="hs256-without-legacy-setting"),
        pytest.param({"id_token_aud": "someone-else"}, id="wrong-aud"),
        pytest.param({"id_token_iss": "https://attacker.example/api/v2"}, id="wrong-iss"),
        pytest.param({"id_token_exp_offset": -600}, id="expired"),
        pytest.param({"id_token_exp_offset": 600}, id="issued-in-the-future"),
        pytest.param({"id_token_acr": "eidas0"}, id="acr-too-low"),
        pytest.param({"userinfo_sub": "a" * 64 + "v1"}, id="userinfo-sub-differs"),
    ],
)
def test_an_id_token_or_userinfo_that_fails_verification_signs_nobody_in(
    client: FlaskClient, app: Flask, fc_sandbox: Sandbox, behaviour: dict
) -> None:
    fc_sandbox.behave(**behaviour)
    r = sign_in(client)
    assert_signed_out_with(client, r, INVALID)
    assert citizens(app) == []


def test_hs256_is_accepted_only_under_the_legacy_setting(
    database_url: str, fc_sandbox: Sandbox
) -> None:
    app = create_app(portal_settings(database_url, fc_sandbox.issuer, fc_allow_hs256=True))
    fc_sandbox.behave(id_token_alg="HS256")
    try:
        r = sign_in(app.test_client())
        assert r.headers["Location"] == "/"
    finally:
        from tests.support import empty_tables

        empty_tables(app)


def test_rs256_and_plain_json_userinfo_are_accepted(
    client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    fc_sandbox.behave(signing_alg="RS256", userinfo_format="json")
    r = sign_in(client, "paul-antoine")
    assert r.headers["Location"] == "/"
    assert "Bonjour Paul-Antoine CASANOVA" in page(client, "/")


def test_keys_rotated_by_the_provider_are_fetched_again(
    client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(client)  # the portal now holds the provider's keys
    client.post("/auth/logout", data={"csrf_token": csrf(client)})
    fc_sandbox.rotate_keys()  # next ID token carries a kid the portal has never seen
    r = sign_in(client)
    assert r.headers["Location"] == "/"
    assert "Bonjour" in page(client, "/")


# -- the provider unreachable, and too many attempts ---------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_provider_unreachable_gives_a_clear_page_and_no_session(database_url: str) -> None:
    issuer = f"http://127.0.0.1:{_closed_port()}/api/v2"
    app = create_app(portal_settings(database_url, issuer))
    client = app.test_client()
    r = client.get("/auth/franceconnect/login")
    assert_signed_out_with(client, r, "FranceConnect ne répond pas pour le moment")


def test_provider_that_hangs_is_given_up_on(database_url: str) -> None:
    """A server that accepts the connection and never answers: the deadline applies."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        issuer = f"http://127.0.0.1:{listener.getsockname()[1]}/api/v2"
        settings = portal_settings(database_url, issuer)
        from dataclasses import replace

        app = create_app(replace(settings, fc_timeout_s=0.5))
        client = app.test_client()
        r = client.get("/auth/franceconnect/login")
        assert_signed_out_with(client, r, "FranceConnect ne répond pas pour le moment")


def test_too_many_sign_in_attempts_are_slowed_down(database_url: str, fc_sandbox: Sandbox) -> None:
    app = create_app(
        portal_settings(database_url, fc_sandbox.issuer, signin_rate_limit="2 per minute")
    )
    client = app.test_client()
    assert client.get("/auth/franceconnect/login").status_code == 302
    assert client.get("/auth/franceconnect/login").status_code == 302
    r = client.get("/auth/franceconnect/login")
    assert r.status_code == 429
    assert "Trop de tentatives" in r.get_data(as_text=True)
    assert "Retry-After" in r.headers
