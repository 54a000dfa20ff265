"""An operator who misconfigures the portal is told so at start, by variable name."""

from __future__ import annotations

import pytest

from portal import create_app
from portal.config import _ENV_NAMES, PROJECT_ROOT, ConfigError, load_settings
from tests.support import PRODUCTION


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
        ("PORTAL_METRICS_TOKEN", "short"),
        ("PORTAL_METRICS_NETWORKS", "10.0.0.0/8, the office"),
        ("PORTAL_METRICS_NETWORKS", "10.0.0.0/33"),
        ("PORTAL_LOG_FORMAT", "xml"),
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


# -- several processes, one store --------------------------------------------------------

SEVERAL_NEED_REDIS = "PORTAL_REDIS_URL must be set in production: several web processes"


def test_production_without_redis_refuses_to_start_unless_told_it_is_one_process() -> None:
    several = {k: v for k, v in PRODUCTION.items() if k != "PORTAL_SINGLE_PROCESS"}
    with pytest.raises(ConfigError, match=SEVERAL_NEED_REDIS) as refused:
        load_settings(several)
    assert "PORTAL_SINGLE_PROCESS=1" in str(refused.value)  # the way out is named
    assert load_settings({**several, "PORTAL_REDIS_URL": "redis://redis:6379/0"}).redis_url
    assert load_settings({**several, "PORTAL_SINGLE_PROCESS": "1"}).single_process
    # Development runs without Redis whatever the processes (the database holds limits).
    assert load_settings({"WEB_CONCURRENCY": "4"}).redis_url == ""


def test_one_process_said_but_several_workers_asked_is_refused() -> None:
    with pytest.raises(ConfigError, match="PORTAL_SINGLE_PROCESS=1 says one process, but 3"):
        load_settings({**PRODUCTION, "WEB_CONCURRENCY": "3"})
    assert load_settings({**PRODUCTION, "WEB_CONCURRENCY": "1"}).web_concurrency == 1
    redis = {**PRODUCTION, "WEB_CONCURRENCY": "3", "PORTAL_REDIS_URL": "redis://redis:6379/0"}
    assert load_settings(redis).web_concurrency == 3


class FakeArbiter:
    """What gunicorn's ``on_starting`` hook reads of its arbiter: the config and a log."""

    def __init__(self, workers: int) -> None:
        self.cfg = type("Config", (), {"workers": workers})()
        self.errors: list[str] = []
        self.log = self

    def error(self, message: str, *args: object) -> None:
        self.errors.append(message % args)


def gunicorn_hook():
    import runpy

    return runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))["on_starting"]


def test_gunicorn_refuses_several_workers_in_production_without_redis(monkeypatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    on_starting = gunicorn_hook()
    arbiter = FakeArbiter(workers=2)
    with pytest.raises(SystemExit) as stopped:
        on_starting(arbiter)
    assert stopped.value.code == 1
    [message] = arbiter.errors
    assert "PORTAL_SINGLE_PROCESS=1 says one process, but 2 worker processes" in message
    on_starting(FakeArbiter(workers=1))  # one worker: starts
    monkeypatch.setenv("PORTAL_REDIS_URL", "redis://redis:6379/0")
    on_starting(FakeArbiter(workers=4))  # a shared store: starts


def test_gunicorn_development_starts_any_number_of_workers(monkeypatch) -> None:
    for name in PRODUCTION:
        monkeypatch.delenv(name, raising=False)
    gunicorn_hook()(FakeArbiter(workers=4))


def test_gunicorn_stops_at_once_on_a_configuration_error(monkeypatch) -> None:
    monkeypatch.setenv("PORTAL_ENV", "staging")
    arbiter = FakeArbiter(workers=1)
    with pytest.raises(SystemExit):
        gunicorn_hook()(arbiter)
    assert "PORTAL_ENV must be" in arbiter.errors[0]


# -- the database pool --------------------------------------------------------------------


def test_the_database_pool_is_sized_from_the_settings() -> None:
    env = {
        **PRODUCTION,
        "PORTAL_DB_POOL_SIZE": "3",
        "PORTAL_DB_MAX_OVERFLOW": "2",
        "PORTAL_DB_POOL_PRE_PING": "false",
    }
    app = create_app(load_settings(env))
    from portal.extensions import db

    with app.app_context():
        pool = db.engine.pool
        assert (pool.size(), pool._max_overflow, pool._pre_ping) == (3, 2, False)  # type: ignore[attr-defined]
    with create_app(load_settings(PRODUCTION)).app_context():
        pool = db.engine.pool
        assert (pool.size(), pool._max_overflow, pool._pre_ping) == (5, 10, True)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "value"), [("PORTAL_DB_POOL_SIZE", "0"), ("PORTAL_DB_MAX_OVERFLOW", "-1")]
)
def test_a_pool_that_cannot_serve_is_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


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
