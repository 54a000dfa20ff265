"""Default configuration of the sandbox, with environment overrides.

Defaults match the portal's development setup so that ``flask --app sandbox run
--port 5001`` works with no configuration at all.
"""

from __future__ import annotations

import os
from typing import Any

DEFAULT_CLIENT_ID = "compte-territorial-dev"
DEFAULT_CLIENT_SECRET = "sandbox-secret-not-for-production"
DEFAULT_AGENT_CLIENT_ID = "compte-territorial-agents-dev"
DEFAULT_AGENT_CLIENT_SECRET = "sandbox-agents-secret-not-for-production"

_TRUE = {"1", "true", "yes", "on"}


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in _TRUE


def default_clients(client_id: str, secret: str) -> dict[str, dict[str, Any]]:
    """The portal, registered on port 5000 under both loopback names."""
    return {
        client_id: {
            "secret": secret,
            "redirect_uris": [
                "http://127.0.0.1:5000/auth/franceconnect/callback",
                "http://localhost:5000/auth/franceconnect/callback",
            ],
            "post_logout_redirect_uris": [
                "http://127.0.0.1:5000/auth/franceconnect/logged-out",
                "http://localhost:5000/auth/franceconnect/logged-out",
            ],
        }
    }


def default_agent_clients(client_id: str, secret: str) -> dict[str, dict[str, Any]]:
    """The portal's agents' side, on ProConnect: port 5000, both loopback names."""
    return {
        client_id: {
            "secret": secret,
            "redirect_uris": [
                "http://127.0.0.1:5000/agents/proconnect/callback",
                "http://localhost:5000/agents/proconnect/callback",
            ],
            "post_logout_redirect_uris": [
                "http://127.0.0.1:5000/agents/proconnect/logged-out",
                "http://localhost:5000/agents/proconnect/logged-out",
            ],
        }
    }


def default_config() -> dict[str, Any]:
    """Configuration before the ``config`` argument of ``create_app`` is applied.

    Read at app creation, not import, so tests can change the environment freely.
    """
    return {
        # None: derived from each request (request.url_root + "/api/v2").
        "SANDBOX_ISSUER": os.environ.get("SANDBOX_ISSUER") or None,
        "SANDBOX_CLIENTS": default_clients(
            os.environ.get("SANDBOX_CLIENT_ID") or DEFAULT_CLIENT_ID,
            os.environ.get("SANDBOX_CLIENT_SECRET") or DEFAULT_CLIENT_SECRET,
        ),
        "SANDBOX_LOOPBACK_ANY_PORT": _env_bool("SANDBOX_LOOPBACK_ANY_PORT", True),
        "SANDBOX_CODE_TTL_S": float(os.environ.get("SANDBOX_CODE_TTL_S") or 30),
        "SANDBOX_SIGNING_ALG": os.environ.get("SANDBOX_SIGNING_ALG") or "ES256",
        "SANDBOX_ADMIN": _env_bool("SANDBOX_ADMIN", True),
        # ProConnect look-alike, under /proconnect/api/v2 (None: derived from the request).
        "SANDBOX_PROCONNECT_ISSUER": os.environ.get("SANDBOX_PROCONNECT_ISSUER") or None,
        "SANDBOX_PROCONNECT_CLIENTS": default_agent_clients(
            os.environ.get("SANDBOX_AGENT_CLIENT_ID") or DEFAULT_AGENT_CLIENT_ID,
            os.environ.get("SANDBOX_AGENT_CLIENT_SECRET") or DEFAULT_AGENT_CLIENT_SECRET,
        ),
        "SANDBOX_PROCONNECT_CODE_TTL_S": float(
            os.environ.get("SANDBOX_PROCONNECT_CODE_TTL_S") or 60
        ),
        # What the portal sends (sandbox.outbox): the SQLite file shared with the SMTP
        # sink (None: instance/sandbox-outbox.sqlite3, or a temporary file under TESTING),
        # and where the sink listens (``python -m sandbox.mail``).
        "SANDBOX_OUTBOX": os.environ.get("SANDBOX_OUTBOX") or None,
        "SANDBOX_SMTP_HOST": os.environ.get("SANDBOX_SMTP_HOST") or "127.0.0.1",
        "SANDBOX_SMTP_PORT": int(os.environ.get("SANDBOX_SMTP_PORT") or 5025),
    }
