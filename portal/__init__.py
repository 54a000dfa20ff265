"""Compte territorial: the residents' portal.

``create_app`` reads as the list of what the portal is made of; each step is small and
lives next to the feature it configures.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

from portal.config import PROJECT_ROOT, Settings, load_settings


def create_app(settings: Settings | None = None, **overrides: object) -> Flask:
    """Build a portal. ``settings`` wins; otherwise ``PORTAL_*`` variables, then ``overrides``."""
    settings = settings or load_settings(None, **overrides)
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
        instance_path=str(PROJECT_ROOT / "instance"),
    )
    configure_settings(app, settings)
    configure_logging(app)
    configure_extensions(app)
    configure_i18n(app)
    configure_security(app)
    configure_request_ids(app)
    configure_auth(app)
    configure_secrets(app)
    configure_connectors(app)
    configure_kinds(app)
    configure_blueprints(app)
    configure_templates(app)
    configure_metrics(app)
    configure_measure(app)
    configure_cli(app)
    return app


def configure_settings(app: Flask, settings: Settings) -> None:
    app.extensions["portal_settings"] = settings
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # Rotation: cookies and form tokens signed with a previous key still verify.
        SECRET_KEY_FALLBACKS=settings.secret_key_fallback_list,
        WTF_CSRF_SECRET_KEY=settings.secret_keys_oldest_first,
        TESTING=settings.testing,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(settings),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        BABEL_DEFAULT_LOCALE="fr",
        BABEL_DEFAULT_TIMEZONE="Europe/Paris",
        BABEL_TRANSLATION_DIRECTORIES=str(PROJECT_ROOT / "translations"),
        RATELIMIT_HEADERS_ENABLED=True,
        COMPRESS_MIMETYPES=[
            "text/html",
            "text/css",
            "text/javascript",
            "application/javascript",
            "application/json",
            "image/svg+xml",
        ],
        COMPRESS_MIN_SIZE=256,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    from portal.ratelimit import storage_settings

    # Limits hold across processes: Redis when configured, the database otherwise.
    app.config.update(
        storage_settings(settings.database_url, settings.redis_url, settings.redis_prefix)
    )
    if settings.database_url.startswith("sqlite:///"):
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )


def engine_options(settings: Settings) -> dict[str, object]:
    """The database pool of each process: its size is budgeted against PostgreSQL's
    ``max_connections`` (docs/operations.md). SQLite, one file on one server, keeps
    SQLAlchemy's own pool for it."""
    options: dict[str, object] = {"pool_pre_ping": settings.db_pool_pre_ping}
    if not settings.database_url.startswith("sqlite"):
        options.update(pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
    return options


def configure_logging(app: Flask) -> None:
    # httpx logs every URL at INFO, and ours carry patron and family ids: keep it quiet.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # The calendar feed's URL is its secret: never in clear in the access log.
    from portal.logmask import install_dev_server_mask

    install_dev_server_mask()
    if not app.debug and not app.testing:
        from portal.logformat import configure_root_logging

        settings: Settings = app.extensions["portal_settings"]
        configure_root_logging(settings.log_format)


def configure_extensions(app: Flask) -> None:
    from portal.extensions import compress, csrf, db, limiter, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    compress.init_app(app)
    import portal.models  # noqa: F401  (register the tables with the metadata)

    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        import sqlalchemy as sa

        with app.app_context():
            sa.event.listen(db.engine, "connect", _sqlite_for_concurrent_requests)


#: How long a SQLite writer waits for another to finish before giving up (ms).
SQLITE_BUSY_TIMEOUT_MS = 10_000


def _sqlite_for_concurrent_requests(dbapi_connection: object, _record: object) -> None:
    """SQLite as the embedded default serves several threads and processes at once (a
    dashboard loads its cards in parallel, and each may record a snapshot). In its default
    journal mode a reader blocks a writer's commit, and a reader that then writes can be
    refused at once ("database is locked"). Write-ahead logging lets readers and the one
    writer go on together; writers queue for up to the busy timeout."""
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; fewer fsyncs
    finally:
        cursor.close()


def configure_i18n(app: Flask) -> None:
    from portal.i18n import init_i18n

    init_i18n(app)


def configure_security(app: Flask) -> None:
    from portal.security import init_security

    init_security(app)


def configure_request_ids(app: Flask) -> None:
    """Outside the proxy fix and the host check: every answer carries its id. An id
    the proxy sent is kept only when a proxy is trusted."""
    from portal.requestid import init_request_ids

    settings: Settings = app.extensions["portal_settings"]
    init_request_ids(app, trust_incoming=settings.trusted_proxies > 0)


def configure_auth(app: Flask) -> None:
    from portal.auth.session import init_sessions

    init_sessions(app)


def configure_secrets(app: Flask) -> None:
    from portal.crypto import SecretBox, dev_key

    settings: Settings = app.extensions["portal_settings"]
    keys = settings.encryption_key_list or [dev_key(settings.secret_key)]
    app.extensions["secret_box"] = SecretBox(keys)


def configure_connectors(app: Flask) -> None:
    from portal.integrations import init_connectors

    init_connectors(app)


def configure_kinds(app: Flask) -> None:
    """The installed kinds of service (``portal.services.installed``): each registers
    itself, then brings its views and its template helpers."""
    from portal.linking.routes import init_keepable
    from portal.services import installed, kinds
    from portal.services.answers import template_helpers

    kinds.load(installed.KINDS)
    # Globals, not context processors: macros see them without being imported "with
    # context", so what a macro uses is its arguments and these.
    app.jinja_env.globals.update(template_helpers())
    for kind in kinds.kinds():
        if kind.blueprint is not None:
            app.register_blueprint(kind.blueprint)
        app.jinja_env.globals.update(kind.template_helpers)
    init_keepable()
    from portal.mandates.assisted import init_assisted

    init_assisted()


def configure_blueprints(app: Flask) -> None:
    from portal.account import bp as account_bp
    from portal.agents import bp as agents_bp
    from portal.auth import bp as auth_bp
    from portal.dashboard import bp as dashboard_bp
    from portal.dashboard import feed_bp as calendar_feed_bp
    from portal.errors import bp as errors_bp
    from portal.linking import bp as linking_bp
    from portal.main import bp as main_bp
    from portal.mandates.resident import bp as my_mandates_bp
    from portal.owners import routes as owners_routes  # noqa: F401  (on the agents' bp)
    from portal.owners.api import bp as statistics_bp
    from portal.owners.opendata import bp as opendata_bp
    from portal.payments import bp as payments_bp
    from portal.services.routes import bp as services_bp
    from portal.status import bp as status_bp

    app.register_blueprint(errors_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(main_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(services_bp)
    app.register_blueprint(linking_bp)
    app.register_blueprint(payments_bp)
    app.register_blueprint(status_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(my_mandates_bp)
    app.register_blueprint(calendar_feed_bp)
    app.register_blueprint(agents_bp)
    app.register_blueprint(statistics_bp)
    app.register_blueprint(opendata_bp)


def configure_metrics(app: Flask) -> None:
    """``/metrics`` for operators, and the counts of requests it shows."""
    from portal.metrics import init_metrics

    init_metrics(app)


def configure_measure(app: Flask) -> None:
    """Anonymous measurement: its hooks come last, so the page's journey, its resident
    and its actor are known when a page view is recorded (its clock starts first)."""
    from portal.measure.events import init_measure

    init_measure(app)


def configure_cli(app: Flask) -> None:
    from portal.cli import init_cli

    init_cli(app)


def configure_templates(app: Flask) -> None:
    from portal.formatting import init_formatting
    from portal.htmx import init_htmx
    from portal.journeys import init_journeys
    from portal.template_cache import TEMPLATES

    app.jinja_env.bytecode_cache = TEMPLATES
    init_formatting(app)
    init_htmx(app)
    init_journeys(app)

    settings: Settings = app.extensions["portal_settings"]

    @app.context_processor
    def territory() -> dict[str, object]:
        # Who runs the portal and where to get help, for every page that names them.
        return {"territory": settings}

    missing = settings.missing_identity()
    if settings.is_production and missing:
        logging.getLogger("portal").warning(
            "The legal notice, privacy page and help contact are incomplete: set %s",
            ", ".join(missing),
        )
