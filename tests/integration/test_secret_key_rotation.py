"""Rotating ``PORTAL_SECRET_KEY``: with the previous key in
``PORTAL_SECRET_KEY_FALLBACKS``, a resident signed in before goes on, and a form
rendered before is accepted; without it, the old cookie signs nobody in."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from tests.support import Sandbox, empty_tables, portal_settings, sign_in

OLD = "old-secret-key-" + "o" * 40
NEW = "new-secret-key-" + "n" * 40
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture
def portals(database_url: str, fc_sandbox: Sandbox) -> Iterator[dict[str, Flask]]:
    def portal(**keys: str) -> Flask:
        return create_app(portal_settings(database_url, fc_sandbox.issuer, **keys))

    apps = {
        "before": portal(secret_key=OLD),
        "rotated": portal(secret_key=NEW, secret_key_fallbacks=OLD),
        "forgotten": portal(secret_key=NEW),
    }
    yield apps
    empty_tables(apps["before"])


def carried_to(app: Flask, client: FlaskClient) -> FlaskClient:
    """The same browser (its session cookie) on another portal process."""
    other = app.test_client()
    cookie = client.get_cookie("session")
    assert cookie is not None
    other.set_cookie("session", cookie.value, domain=cookie.domain)
    return other


def test_a_previous_key_in_the_fallbacks_keeps_residents_signed_in(portals) -> None:
    browser = portals["before"].test_client()
    assert sign_in(browser).status_code == 303
    page = browser.get("/").get_data(as_text=True)
    token = CSRF_RE.search(page)
    assert token, "the dashboard has the stay-signed-in form"

    rotated = carried_to(portals["rotated"], browser)
    assert rotated.get("/").status_code == 200
    stayed = rotated.post("/auth/session/extend", data={"csrf_token": token.group(1)})
    assert stayed.status_code == 303
    assert "/auth/login" not in stayed.headers["Location"]

    forgotten = carried_to(portals["forgotten"], browser)
    answer = forgotten.get("/")
    assert answer.status_code in (302, 303)
    assert "/auth/login" in answer.headers["Location"]


def test_an_unsubscribe_link_sent_before_a_rotation_still_works_with_the_fallback(
    portals,
) -> None:
    """A reminder's link never expires (RFC 8058): the fallback keeps it, as it keeps the
    session; once the old key is gone, the link opens nothing (a clear 404)."""
    from portal.reminders.tokens import unsubscribe_citizen, unsubscribe_token

    with portals["before"].app_context():
        token = unsubscribe_token(42)
    with portals["rotated"].app_context():
        assert unsubscribe_citizen(token) == 42
        assert unsubscribe_token(42) != token  # signed anew with the new key
    with portals["forgotten"].app_context():
        assert unsubscribe_citizen(token) is None


def test_fallbacks_too_short_are_refused_in_production() -> None:
    from portal.config import ConfigError, load_settings
    from tests.support import PRODUCTION

    with pytest.raises(ConfigError, match="PORTAL_SECRET_KEY_FALLBACKS"):
        load_settings({**PRODUCTION, "PORTAL_SECRET_KEY_FALLBACKS": "short"})
    settings = load_settings({**PRODUCTION, "PORTAL_SECRET_KEY_FALLBACKS": f"{OLD}, {'x' * 40}"})
    assert settings.secret_keys_oldest_first == ["x" * 40, OLD, "k" * 48]
