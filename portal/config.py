"""Settings: one frozen, typed object read from ``PORTAL_*`` environment variables.

Why one object: every setting is validated once, at start, so a misconfigured production
instance refuses to start instead of failing on the first resident's request.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from limits import parse as parse_limit

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Development defaults match the sandbox identity provider (``sandbox/``), so that
#: ``make run`` works with no configuration at all. Production refuses every one of them.
DEV_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105 (refused in production)
DEV_FC_ISSUER = "http://127.0.0.1:5001/api/v2"
DEV_FC_CLIENT_ID = "compte-territorial-dev"
DEV_FC_CLIENT_SECRET = "sandbox-secret-not-for-production"  # noqa: S105
#: The agents' side: the sandbox's ProConnect look-alike (``sandbox/idp/proconnect.py``).
DEV_AGENT_ISSUER = "http://127.0.0.1:5001/proconnect/api/v2"
DEV_AGENT_CLIENT_ID = "compte-territorial-agents-dev"
DEV_AGENT_CLIENT_SECRET = "sandbox-agents-secret-not-for-production"  # noqa: S105
#: ProConnect's 2026 rule: a second factor, whatever the agent's identity provider.
DEFAULT_AGENT_ACR_VALUES = "eidas0-mfa eidas1-mfa eidas2 eidas3"
DEFAULT_SCOPES = "openid given_name family_name preferred_username birthdate email"

#: Who runs this portal and where residents get help: shown on the sign-in, legal, privacy
#: and accessibility pages. ``make run`` shows these demonstration values; production
#: starts without them but warns, naming each variable to set.
IDENTITY_SETTINGS = {
    "territory_name": "PORTAL_TERRITORY_NAME",
    "territory_address": "PORTAL_TERRITORY_ADDRESS",
    "publication_director": "PORTAL_PUBLICATION_DIRECTOR",
    "hosting_provider": "PORTAL_HOSTING_PROVIDER",
    "data_controller": "PORTAL_DATA_CONTROLLER",
    "dpo_contact": "PORTAL_DPO_CONTACT",
    "help_phone": "PORTAL_HELP_PHONE",
    "help_email": "PORTAL_HELP_EMAIL",
    "help_url": "PORTAL_HELP_URL",
    "help_hours": "PORTAL_HELP_HOURS",
}
DEMO_IDENTITY = {
    "territory_name": "Métropole de démonstration",
    "territory_address": "1 place de l'Hôtel-de-Ville, 33000 Bordeaux (adresse de démonstration)",
    "publication_director": "la présidente de la Métropole de démonstration",
    "hosting_provider": "votre ordinateur (démonstration locale, sans hébergeur)",
    "data_controller": "Métropole de démonstration",
    "dpo_contact": "dpo@demonstration.invalid",
    "help_phone": "05 00 00 00 00",
    "help_email": "aide@demonstration.invalid",
    "help_url": "",
    "help_hours": "du lundi au vendredi, de 9 h à 17 h",
}


class ConfigError(ValueError):
    """Raised at start when the environment does not describe a runnable portal."""


@dataclass(frozen=True, slots=True)
class Settings:
    env: str = "development"
    secret_key: str = DEV_SECRET_KEY
    #: Previous secret keys, comma-separated: what they signed (session cookies, form
    #: tokens) is still accepted while ``secret_key`` signs everything new (rotation).
    secret_key_fallbacks: str = ""
    base_url: str = "http://127.0.0.1:5000"
    database_url: str = ""
    fc_issuer: str = DEV_FC_ISSUER
    fc_client_id: str = DEV_FC_CLIENT_ID
    fc_client_secret: str = DEV_FC_CLIENT_SECRET
    fc_scopes: str = DEFAULT_SCOPES
    #: Accept HS256 ID tokens signed with the client secret. Only FranceConnect v1 did
    #: this; it stays off unless an operator explicitly needs a legacy provider.
    fc_allow_hs256: bool = False
    #: Agents (advisers, service owners) sign in with ProConnect, a client of its own.
    agent_issuer: str = DEV_AGENT_ISSUER
    agent_client_id: str = DEV_AGENT_CLIENT_ID
    agent_client_secret: str = DEV_AGENT_CLIENT_SECRET
    #: The ``acr`` values accepted from ProConnect (space-separated); anything else is
    #: refused at the callback with a page saying a second factor is required.
    agent_acr_values: str = DEFAULT_AGENT_ACR_VALUES
    #: Agents' sessions are shorter when idle than residents' (ANSSI: sensitive system).
    agent_session_idle_minutes: int = 15
    agent_session_absolute_hours: int = 12
    redis_url: str = ""
    #: The operator's word that the portal runs as one process on one server (one
    #: instance, one gunicorn worker). Production needs it, or ``redis_url``: several
    #: processes without Redis would each keep breakers and availability of their own.
    single_process: bool = False
    #: Worker processes asked of gunicorn by the ``Procfile`` (``WEB_CONCURRENCY``, not a
    #: ``PORTAL_*`` variable: platforms set it); 0 when unset.
    web_concurrency: int = 0
    #: Database connections each process keeps open (SQLAlchemy ``pool_size``), and how
    #: many more it may open at a peak (``max_overflow``); see docs/operations.md for the
    #: budget against PostgreSQL's ``max_connections``. Not used with SQLite.
    db_pool_size: int = 5
    db_max_overflow: int = 10
    #: Test each pooled connection with a round trip whenever it is taken from the pool.
    #: Off, a connection the server closed is still replaced (``portal.dbpool`` looks at
    #: its socket), and one unused for ``db_ping_after_idle_s`` gets the round trip.
    db_pool_pre_ping: bool = False
    db_ping_after_idle_s: int = 30
    #: Prepended to every key the portal writes in Redis (several portals, one Redis).
    redis_prefix: str = "compte-territorial:"
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    #: Flask-Limiter syntax; applies per client address to sign-in start and callback.
    signin_rate_limit: str = "30 per minute"
    #: Proofs of ownership a resident may send, whatever the account (a success is
    #: not counted).
    link_failure_limit: str = "5 per 15 minutes"
    #: Proofs sent for one account (instance + card, family or application number), by
    #: anyone: below the back-ends' lock-out (5), so nobody can lock someone else's card.
    link_account_limit: str = "3 per hour"
    #: Proofs sent from one client address: high enough for a help desk or a carrier's
    #: NAT, only against mass abuse.
    link_address_limit: str = "300 per hour"
    #: Requests to the calendar feed, per client address. Calendar applications poll
    #: every few hours; this stops someone hammering it (or guessing its 256-bit tokens).
    feed_rate_limit: str = "30 per minute"
    #: Seconds of clock skew tolerated on ``exp``/``iat``. FranceConnect tokens live 60 s.
    jwt_leeway_s: int = 30
    #: Deadline for one call to the identity provider (discovery, token, userinfo, JWKS).
    fc_timeout_s: float = 5.0
    #: Fernet keys, comma-separated: the first encrypts, all decrypt (rotation).
    encryption_keys: str = ""
    #: Connector instances (TOML). Development defaults to the repository's file, which
    #: points at the sandbox; production has none unless configured.
    connectors_file: str = ""
    #: Accounts to link automatically at sign-in (sandbox demos only; never in production).
    demo_links_file: str = ""
    #: Budget of one dashboard card, and of one service page, in seconds.
    card_deadline_s: float = 2.5
    page_deadline_s: float = 6.0
    #: How long what the dashboard's cards just read also serves its to-do list (and the
    #: calendar), in seconds; 0 reads again every time. Cards, service pages and writes
    #: always ask the back-end.
    read_cache_s: float = 30.0
    #: Reads (a card's, a page's) this process lets into one slow back-end at once (its
    #: calls take 0.5 s or more on average; writes are not held back); the next waits
    #: 50 ms at most, then its card says the service is unavailable. Half
    #: the Procfile's 8 threads: one slow back-end cannot hold every thread (0: no
    #: limit). Per process: each gunicorn worker has its own.
    backend_concurrency: int = 4
    #: Seconds between two probes of every instance by each web process itself: a
    #: fallback for a portal run without its worker, which probes every minute (0: none).
    probe_interval_s: int = 0
    #: Where the worker's queue lives: ``redis://…``, ``postgresql://…`` or
    #: ``sqlite:///path``; empty: PORTAL_REDIS_URL, else the portal's PostgreSQL
    #: database, else ``instance/jobs.sqlite3`` (``portal.jobs.worker``).
    jobs_url: str = ""
    #: Anonymous audience measurement (``portal.measure``); off: nothing is recorded.
    measure_enabled: bool = True
    #: How many reverse proxies (load balancer, ingress) stand in front of the portal and
    #: set X-Forwarded-For/-Proto. Rate limits key on the client address they report.
    trusted_proxies: int = 0
    #: The bearer token that opens ``/metrics`` (``Authorization: Bearer <token>``);
    #: empty: no token opens it.
    metrics_token: str = ""
    #: Networks (CIDRs, comma-separated) whose clients read ``/metrics`` without a
    #: token, the client address being the one ``trusted_proxies`` resolves.
    metrics_networks: str = ""
    #: ``text`` (one line per record) or ``json`` (one JSON object per line).
    log_format: str = "text"
    #: Where residents' e-mail notices go out: ``smtp://user:password@host:port``
    #: (STARTTLS on port 587) or ``smtps://…``; unset, none is sent.
    mail_url: str = ""
    #: The notices' sender address.
    mail_from: str = ""
    #: An SMS provider's HTTP endpoint (``portal.reminders.notifiers.SmsNotifier``): it is
    #: sent ``{"to": …, "text": …}`` as JSON; unset, no SMS goes out.
    sms_url: str = ""
    #: The key that signs the statistics API's URLs (``flask statistics sign-url``); empty:
    #: a key derived from ``secret_key``. Changing it voids every URL signed before.
    statistics_key: str = ""
    territory_name: str = ""
    territory_address: str = ""
    publication_director: str = ""
    hosting_provider: str = ""
    data_controller: str = ""
    dpo_contact: str = ""
    help_phone: str = ""
    help_email: str = ""
    help_url: str = ""
    help_hours: str = ""
    testing: bool = False
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def redirect_uri(self) -> str:
        return self.base_url + "/auth/franceconnect/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return self.base_url + "/auth/franceconnect/logged-out"

    @property
    def agent_redirect_uri(self) -> str:
        return self.base_url + "/agents/proconnect/callback"

    @property
    def agent_post_logout_redirect_uri(self) -> str:
        return self.base_url + "/agents/proconnect/logged-out"

    @property
    def agent_acr_list(self) -> list[str]:
        return self.agent_acr_values.split()

    @property
    def secret_key_fallback_list(self) -> list[str]:
        return [k.strip() for k in self.secret_key_fallbacks.split(",") if k.strip()]

    @property
    def secret_keys_oldest_first(self) -> list[str]:
        """Every key that may have signed a cookie or a token, the signing key last
        (itsdangerous's order for a list of keys)."""
        return [*reversed(self.secret_key_fallback_list), self.secret_key]

    @property
    def encryption_key_list(self) -> list[str]:
        return [k.strip() for k in self.encryption_keys.split(",") if k.strip()]

    @property
    def metrics_network_list(self) -> list[IPv4Network | IPv6Network]:
        """``metrics_networks`` parsed (``validate`` refused anything unreadable)."""
        return [
            ip_network(part.strip(), strict=False)
            for part in self.metrics_networks.split(",")
            if part.strip()
        ]

    @property
    def scopes(self) -> list[str]:
        return self.fc_scopes.split()

    def missing_identity(self) -> list[str]:
        """The variables of the territory's identity left empty (the legal notice, the
        privacy page and the help contact need them). One way to reach help is enough."""
        required = (
            "territory_name",
            "territory_address",
            "publication_director",
            "hosting_provider",
            "data_controller",
            "dpo_contact",
        )
        missing = [IDENTITY_SETTINGS[name] for name in required if not getattr(self, name)]
        if not (self.help_phone or self.help_email or self.help_url):
            missing.append("PORTAL_HELP_PHONE, PORTAL_HELP_EMAIL or PORTAL_HELP_URL")
        return missing

    def shared_store_problems(self, workers: int) -> list[str]:
        """Why production cannot run ``workers`` processes per server with this store.

        Rate limits live in the database without Redis, shared by every process; the
        connectors' circuit breakers and the availability ``/status`` shows do not: each
        process would open its own breakers and count its own calls. Production
        therefore needs ``PORTAL_REDIS_URL``, unless the operator says the portal runs
        as one process on one server, which is then checked against the workers asked.
        """
        if self.redis_url:
            return []
        if not self.single_process:
            return [
                "PORTAL_REDIS_URL must be set in production: several web processes or "
                "servers share circuit breakers, availability and rate limits through it "
                "(or set PORTAL_SINGLE_PROCESS=1 if the portal runs as one process on "
                "one server)"
            ]
        if workers > 1:
            return [
                f"PORTAL_SINGLE_PROCESS=1 says one process, but {workers} worker processes "
                "were asked (WEB_CONCURRENCY or gunicorn --workers): set PORTAL_REDIS_URL, "
                "or run one worker"
            ]
        return []

    def validate(self) -> Settings:
        """Fail fast with a message an operator can act on."""
        problems: list[str] = []
        if self.env not in {"development", "production"}:
            problems.append("PORTAL_ENV must be 'development' or 'production'")
        for name, value in (
            ("PORTAL_BASE_URL", self.base_url),
            ("PORTAL_FC_ISSUER", self.fc_issuer),
            ("PORTAL_AGENT_ISSUER", self.agent_issuer),
        ):
            parts = urlsplit(value)
            if parts.scheme not in {"http", "https"} or not parts.netloc:
                problems.append(f"{name} must be an absolute http(s) URL, got {value!r}")
        if "openid" not in self.scopes:
            problems.append("PORTAL_FC_SCOPES must contain 'openid'")
        if not self.agent_acr_list:
            problems.append("PORTAL_AGENT_ACR_VALUES must name at least one acr value")
        if self.agent_session_idle_minutes <= 0 or self.agent_session_absolute_hours <= 0:
            problems.append(
                "PORTAL_AGENT_SESSION_IDLE_MINUTES and PORTAL_AGENT_SESSION_ABSOLUTE_HOURS "
                "must be positive"
            )
        if self.session_idle_minutes <= 0 or self.session_absolute_hours <= 0:
            problems.append(
                "PORTAL_SESSION_IDLE_MINUTES and PORTAL_SESSION_ABSOLUTE_HOURS must be positive"
            )
        if self.trusted_proxies < 0:
            problems.append("PORTAL_TRUSTED_PROXIES must be 0 or more")
        if self.card_deadline_s <= 0 or self.page_deadline_s <= 0:
            problems.append("PORTAL_CARD_DEADLINE_S and PORTAL_PAGE_DEADLINE_S must be positive")
        if not 0 <= self.read_cache_s <= 300:
            problems.append("PORTAL_READ_CACHE_S must be between 0 and 300 seconds")
        if self.backend_concurrency < 0:
            problems.append("PORTAL_BACKEND_CONCURRENCY must be 0 (no limit) or more")
        for key in self.encryption_key_list:
            try:
                if len(base64.urlsafe_b64decode(key.encode("ascii"))) != 32:
                    raise ValueError
            except (ValueError, UnicodeEncodeError):
                problems.append("PORTAL_ENCRYPTION_KEYS holds a value that is not a Fernet key")
                break
        for name, value in (
            ("PORTAL_SIGNIN_RATE_LIMIT", self.signin_rate_limit),
            ("PORTAL_LINK_FAILURE_LIMIT", self.link_failure_limit),
            ("PORTAL_LINK_ACCOUNT_LIMIT", self.link_account_limit),
            ("PORTAL_LINK_ADDRESS_LIMIT", self.link_address_limit),
            ("PORTAL_FEED_RATE_LIMIT", self.feed_rate_limit),
        ):
            try:
                parse_limit(value)
            except ValueError:
                problems.append(f"{name} must read like '5 per 15 minutes', got {value!r}")
        if self.help_url and urlsplit(self.help_url).scheme not in {"http", "https"}:
            problems.append(f"PORTAL_HELP_URL must be an http(s) URL, got {self.help_url!r}")
        if self.help_email and "@" not in self.help_email:
            problems.append(f"PORTAL_HELP_EMAIL must be an e-mail address, got {self.help_email!r}")
        if self.mail_url and (
            urlsplit(self.mail_url).scheme not in {"smtp", "smtps"}
            or not urlsplit(self.mail_url).hostname
        ):
            problems.append("PORTAL_MAIL_URL must read like smtp://user:password@host:587")
        if self.mail_from and "@" not in self.mail_from:
            problems.append(f"PORTAL_MAIL_FROM must be an e-mail address, got {self.mail_from!r}")
        if self.sms_url and (
            urlsplit(self.sms_url).scheme not in {"http", "https"}
            or not urlsplit(self.sms_url).hostname
        ):
            problems.append("PORTAL_SMS_URL must be an http(s) URL")
        if self.statistics_key and len(self.statistics_key) < 32:
            problems.append("PORTAL_STATISTICS_KEY must be 32 characters or more when set")
        if self.metrics_token and len(self.metrics_token) < 32:
            problems.append("PORTAL_METRICS_TOKEN must be 32 characters or more when set")
        try:
            self.metrics_network_list  # noqa: B018 (parsed to be checked)
        except ValueError:
            problems.append(
                "PORTAL_METRICS_NETWORKS must be CIDRs separated by commas "
                f"(e.g. 10.0.0.0/8, 192.0.2.7/32), got {self.metrics_networks!r}"
            )
        if self.log_format not in {"text", "json"}:
            problems.append(f"PORTAL_LOG_FORMAT must be 'text' or 'json', got {self.log_format!r}")
        if self.db_ping_after_idle_s < 0:
            problems.append("PORTAL_DB_PING_AFTER_IDLE_S must be 0 or more")
        if self.db_pool_size < 1 or self.db_max_overflow < 0:
            problems.append(
                "PORTAL_DB_POOL_SIZE must be 1 or more and PORTAL_DB_MAX_OVERFLOW 0 or more"
            )
        if self.is_production:
            problems.extend(self.shared_store_problems(self.web_concurrency))
        if self.probe_interval_s < 0:
            problems.append("PORTAL_PROBE_INTERVAL_S must be 0 or more")
        jobs_scheme = urlsplit(self.jobs_url).scheme
        if self.jobs_url and (
            jobs_scheme not in {"redis", "rediss", "sqlite", "postgres", "postgresql"}
            and not jobs_scheme.startswith("postgresql+")
        ):
            problems.append(
                "PORTAL_JOBS_URL must be a redis://, postgresql:// or sqlite:/// URL, "
                f"got {jobs_scheme or self.jobs_url!r}"
            )
        elif jobs_scheme == "sqlite" and not self.jobs_url.startswith("sqlite:///"):
            problems.append("PORTAL_JOBS_URL must read sqlite:///path/to/jobs.sqlite3")
        if self.is_production and self.demo_links_file:
            problems.append("PORTAL_DEMO_LINKS_FILE is for sandbox demos, not production")
        if self.is_production:
            if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
                problems.append("PORTAL_SECRET_KEY must be set to a random value of 32+ characters")
            if any(len(key) < 32 for key in self.secret_key_fallback_list):
                problems.append("PORTAL_SECRET_KEY_FALLBACKS must hold keys of 32+ characters")
            if not self.fc_client_id or self.fc_client_id == DEV_FC_CLIENT_ID:
                problems.append("PORTAL_FC_CLIENT_ID must be set")
            if not self.fc_client_secret or self.fc_client_secret == DEV_FC_CLIENT_SECRET:
                problems.append("PORTAL_FC_CLIENT_SECRET must be set")
            if self.fc_issuer == DEV_FC_ISSUER:
                problems.append("PORTAL_FC_ISSUER must be set")
            if not self.agent_client_id or self.agent_client_id == DEV_AGENT_CLIENT_ID:
                problems.append("PORTAL_AGENT_CLIENT_ID must be set")
            if not self.agent_client_secret or self.agent_client_secret == DEV_AGENT_CLIENT_SECRET:
                problems.append("PORTAL_AGENT_CLIENT_SECRET must be set")
            if self.agent_issuer == DEV_AGENT_ISSUER:
                problems.append("PORTAL_AGENT_ISSUER must be set")
            if urlsplit(self.agent_issuer).scheme != "https":
                problems.append("PORTAL_AGENT_ISSUER must use https in production")
            if urlsplit(self.base_url).scheme != "https":
                problems.append("PORTAL_BASE_URL must use https in production")
            if urlsplit(self.fc_issuer).scheme != "https":
                problems.append("PORTAL_FC_ISSUER must use https in production")
            if not self.encryption_keys:
                problems.append("PORTAL_ENCRYPTION_KEYS must be set (Fernet keys, comma-separated)")
        if problems:
            raise ConfigError("Invalid configuration: " + "; ".join(problems))
        return self


_ENV_NAMES = {
    "env": "PORTAL_ENV",
    "secret_key": "PORTAL_SECRET_KEY",
    "secret_key_fallbacks": "PORTAL_SECRET_KEY_FALLBACKS",
    "base_url": "PORTAL_BASE_URL",
    "database_url": "PORTAL_DATABASE_URL",
    "fc_issuer": "PORTAL_FC_ISSUER",
    "fc_client_id": "PORTAL_FC_CLIENT_ID",
    "fc_client_secret": "PORTAL_FC_CLIENT_SECRET",
    "fc_scopes": "PORTAL_FC_SCOPES",
    "fc_allow_hs256": "PORTAL_FC_ALLOW_HS256",
    "agent_issuer": "PORTAL_AGENT_ISSUER",
    "agent_client_id": "PORTAL_AGENT_CLIENT_ID",
    "agent_client_secret": "PORTAL_AGENT_CLIENT_SECRET",
    "agent_acr_values": "PORTAL_AGENT_ACR_VALUES",
    "agent_session_idle_minutes": "PORTAL_AGENT_SESSION_IDLE_MINUTES",
    "agent_session_absolute_hours": "PORTAL_AGENT_SESSION_ABSOLUTE_HOURS",
    "redis_url": "PORTAL_REDIS_URL",
    "redis_prefix": "PORTAL_REDIS_PREFIX",
    "single_process": "PORTAL_SINGLE_PROCESS",
    "web_concurrency": "WEB_CONCURRENCY",
    "db_pool_size": "PORTAL_DB_POOL_SIZE",
    "db_max_overflow": "PORTAL_DB_MAX_OVERFLOW",
    "db_pool_pre_ping": "PORTAL_DB_POOL_PRE_PING",
    "db_ping_after_idle_s": "PORTAL_DB_PING_AFTER_IDLE_S",
    "session_idle_minutes": "PORTAL_SESSION_IDLE_MINUTES",
    "session_absolute_hours": "PORTAL_SESSION_ABSOLUTE_HOURS",
    "signin_rate_limit": "PORTAL_SIGNIN_RATE_LIMIT",
    "trusted_proxies": "PORTAL_TRUSTED_PROXIES",
    "link_failure_limit": "PORTAL_LINK_FAILURE_LIMIT",
    "link_account_limit": "PORTAL_LINK_ACCOUNT_LIMIT",
    "link_address_limit": "PORTAL_LINK_ADDRESS_LIMIT",
    "feed_rate_limit": "PORTAL_FEED_RATE_LIMIT",
    "encryption_keys": "PORTAL_ENCRYPTION_KEYS",
    "connectors_file": "PORTAL_CONNECTORS_FILE",
    "demo_links_file": "PORTAL_DEMO_LINKS_FILE",
    "card_deadline_s": "PORTAL_CARD_DEADLINE_S",
    "page_deadline_s": "PORTAL_PAGE_DEADLINE_S",
    "read_cache_s": "PORTAL_READ_CACHE_S",
    "backend_concurrency": "PORTAL_BACKEND_CONCURRENCY",
    "probe_interval_s": "PORTAL_PROBE_INTERVAL_S",
    "jobs_url": "PORTAL_JOBS_URL",
    "metrics_token": "PORTAL_METRICS_TOKEN",
    "metrics_networks": "PORTAL_METRICS_NETWORKS",
    "log_format": "PORTAL_LOG_FORMAT",
    "mail_url": "PORTAL_MAIL_URL",
    "mail_from": "PORTAL_MAIL_FROM",
    "sms_url": "PORTAL_SMS_URL",
    "measure_enabled": "PORTAL_MEASURE_ENABLED",
    "statistics_key": "PORTAL_STATISTICS_KEY",
    **IDENTITY_SETTINGS,
}


def _coerce(name: str, raw: str, kind: type) -> object:
    if kind is bool:
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    return raw.strip()


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from the environment (or ``environ``), then apply ``overrides``.

    Environment production settings are refused individually when they are left at
    a development default, so the refusal names the variable to set.
    """
    environ = os.environ if environ is None else environ
    defaults = Settings()
    values: dict[str, object] = {}
    types = {f.name: type(getattr(defaults, f.name)) for f in fields(Settings)}
    for attr, var in _ENV_NAMES.items():
        if var in environ:
            values[attr] = _coerce(var, environ[var], types[attr])
    if values.get("env") == "production":
        # In production nothing falls back to a development default.
        for attr in (
            "secret_key",
            "fc_client_id",
            "fc_client_secret",
            "fc_issuer",
            "agent_client_id",
            "agent_client_secret",
            "agent_issuer",
        ):
            values.setdefault(attr, "")
    if values.get("env", defaults.env) == "development":
        # The sandbox's instances and demo accounts, so `make run` shows full dashboards.
        values.setdefault("connectors_file", str(PROJECT_ROOT / "connectors.toml"))
        values.setdefault("demo_links_file", str(PROJECT_ROOT / "demo-links.toml"))
        # A whole demonstration identity, unless the operator started writing their own.
        if not any(var in environ for var in IDENTITY_SETTINGS.values()):
            for attr, value in DEMO_IDENTITY.items():
                values.setdefault(attr, value)
    # Values by field name, each coerced to its field's type (overrides are the caller's).
    changes: dict[str, Any] = {**values, **overrides}
    settings = replace(defaults, **changes)
    settings = replace(
        settings,
        base_url=settings.base_url.rstrip("/"),
        fc_issuer=settings.fc_issuer.rstrip("/"),
        agent_issuer=settings.agent_issuer.rstrip("/"),
        database_url=normalise_database_url(settings.database_url or default_database_url()),
    )
    return settings.validate()


def default_database_url() -> str:
    return "sqlite:///" + str(PROJECT_ROOT / "instance" / "portal.sqlite3")


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the operator gave."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def current_settings() -> Settings:
    """The settings of the app handling the current request."""
    from flask import current_app

    return current_app.extensions["portal_settings"]
