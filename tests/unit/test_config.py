"""An operator who misconfigures the portal is told so at start, by variable name."""

from __future__ import annotations

import pytest

from portal import create_app
from portal.config import _ENV_NAMES, PROJECT_ROOT, ConfigError, load_settings

PRODUCTION = {
    "PORTAL_ENV": "production",
    "PORTAL_SECRET_KEY": "k" * 48,
    "PORTAL_BASE_URL": "https://compte.example.fr/",
    "PORTAL_FC_ISSUER": "https://fcp-low.sbx.dev-franceconnect.fr/api/v2",
    "PORTAL_FC_CLIENT_ID": "a-client-id",
    "PORTAL_FC_CLIENT_SECRET": "a-client-secret",
    "PORTAL_AGENT_ISSUER": "https://auth.agentconnect.gouv.fr/api/v2",
    "PORTAL_AGENT_CLIENT_ID": "an-agent-client-id",
    "PORTAL_AGENT_CLIENT_SECRET": "an-agent-client-secret",
    "PORTAL_DATABASE_URL": "postgresql://portal@db/portal",
    "PORTAL_ENCRYPTION_KEYS": "tmtwPrbwQLQ9PQi2Qq1SJmfcMKEXGp0DCkmOQ5ITcnw=",
}


def test_development_needs_no_configuration_at_all() -> None:
    settings = load_settings({})
    assert settings.env == "development"
    assert settings.fc_issuer == "http://127.0.0.1:5001/api/v2"
    # preferred_username: the usage name residents are greeted by.
    assert settings.scopes == [
        "openid",
        "given_name",
        "family_name",
        "preferred_username",
        "birthdate",
        "email",
    ]
    assert settings.database_url.startswith("sqlite:///")
    assert settings.redirect_uri == "http://127.0.0.1:5000/auth/franceconnect/callback"
    assert settings.agent_issuer == "http://127.0.0.1:5001/proconnect/api/v2"
    assert settings.agent_redirect_uri == "http://127.0.0.1:5000/agents/proconnect/callback"
    assert settings.agent_acr_list == ["eidas0-mfa", "eidas1-mfa", "eidas2", "eidas3"]
    assert (settings.agent_session_idle_minutes, settings.agent_session_absolute_hours) == (15, 12)


def test_a_complete_production_configuration_is_accepted() -> None:
    settings = load_settings(PRODUCTION)
    assert settings.is_production
    assert settings.base_url == "https://compte.example.fr"  # trailing slash dropped
    assert settings.redirect_uri == "https://compte.example.fr/auth/franceconnect/callback"
    assert settings.database_url == "postgresql+psycopg://portal@db/portal"


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("PORTAL_SECRET_KEY", "PORTAL_SECRET_KEY"),
        ("PORTAL_FC_CLIENT_ID", "PORTAL_FC_CLIENT_ID"),
        ("PORTAL_FC_CLIENT_SECRET", "PORTAL_FC_CLIENT_SECRET"),
        ("PORTAL_FC_ISSUER", "PORTAL_FC_ISSUER"),
        ("PORTAL_AGENT_CLIENT_ID", "PORTAL_AGENT_CLIENT_ID"),
        ("PORTAL_AGENT_CLIENT_SECRET", "PORTAL_AGENT_CLIENT_SECRET"),
        ("PORTAL_AGENT_ISSUER", "PORTAL_AGENT_ISSUER"),
    ],
)
def test_production_refuses_to_start_without_a_credential(missing: str, named: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORTAL_SECRET_KEY", "dev-only-secret-key-change-me"),
        ("PORTAL_SECRET_KEY", "short"),
        ("PORTAL_BASE_URL", "http://compte.example.fr"),
        ("PORTAL_FC_ISSUER", "http://fc.example.fr/api/v2"),
        ("PORTAL_FC_CLIENT_SECRET", "sandbox-secret-not-for-production"),
        ("PORTAL_AGENT_ISSUER", "http://proconnect.example.fr/api/v2"),
        ("PORTAL_AGENT_ISSUER", "http://127.0.0.1:5001/proconnect/api/v2"),
        ("PORTAL_AGENT_CLIENT_ID", "compte-territorial-agents-dev"),
        ("PORTAL_AGENT_CLIENT_SECRET", "sandbox-agents-secret-not-for-production"),
    ],
)
def test_production_refuses_development_defaults_and_plain_http(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({**PRODUCTION, name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORTAL_ENV", "staging"),
        ("PORTAL_BASE_URL", "not a url"),
        ("PORTAL_FC_SCOPES", "given_name family_name"),
        ("PORTAL_SESSION_IDLE_MINUTES", "soon"),
        ("PORTAL_SESSION_ABSOLUTE_HOURS", "0"),
        ("PORTAL_FC_ALLOW_HS256", "perhaps"),
        ("PORTAL_TRUSTED_PROXIES", "-1"),
        ("PORTAL_LINK_FAILURE_LIMIT", "five a day"),
        ("PORTAL_FEED_RATE_LIMIT", "lots"),
        ("PORTAL_AGENT_ACR_VALUES", " "),
        ("PORTAL_AGENT_ISSUER", "proconnect"),
        ("PORTAL_AGENT_SESSION_IDLE_MINUTES", "0"),
    ],
)
def test_nonsense_is_refused_with_the_variable_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(AttributeError):
        settings.secret_key = "changed"  # type: ignore[misc]


def test_production_headers_and_cookies(tmp_path) -> None:
    env = {**PRODUCTION, "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path}/p.db"}
    app = create_app(load_settings(env))
    r = app.test_client().get("/accessibilite")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "form-action 'self' https://fcp-low.sbx.dev-franceconnect.fr" in csp
    # The agents' sign-out form ends at ProConnect.
    assert "https://fcp-low.sbx.dev-franceconnect.fr https://auth.agentconnect.gouv.fr;" in csp
    from portal.agents.session import cookie_name

    with app.test_request_context("/agents/"):
        assert cookie_name() == "__Host-agent-session"
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_development_has_no_hsts(tmp_path) -> None:
    app = create_app(load_settings({}, database_url=f"sqlite:///{tmp_path}/p.db"))
    r = app.test_client().get("/accessibilite")
    assert "Strict-Transport-Security" not in r.headers
    assert "Content-Security-Policy" in r.headers
    assert "HX-Request" in r.headers["Vary"]


def test_every_setting_is_in_the_configuration_reference() -> None:
    reference = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [name for name in _ENV_NAMES.values() if f"`{name}`" not in reference]
    assert not missing, f"docs/configuration.md does not describe {missing}"


def test_sqlite_lets_readers_and_a_writer_work_at_once(tmp_path) -> None:
    import sqlalchemy as sa

    from portal.extensions import db

    app = create_app(
        load_settings({}, database_url=f"sqlite:///{tmp_path}/portal.sqlite3", testing=True)
    )
    with app.app_context():
        assert db.session.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(sa.text("PRAGMA busy_timeout")).scalar() == 10_000
