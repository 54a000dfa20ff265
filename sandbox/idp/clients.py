"""Registered relying parties and redirect URI matching.

Matching is exact, like FranceConnect (even a trailing slash matters), with one
exception: the RFC 8252 §7.3 loopback rule, so that tests can run the portal on a random
port without registering every port.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Client:
    """A service provider registered with the sandbox."""

    client_id: str
    secret: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]


def load_clients(raw: Mapping[str, Mapping]) -> dict[str, Client]:
    """Build the client registry from the ``SANDBOX_CLIENTS`` configuration value."""
    return {
        client_id: Client(
            client_id=client_id,
            secret=str(entry["secret"]),
            redirect_uris=tuple(entry.get("redirect_uris", ())),
            post_logout_redirect_uris=tuple(entry.get("post_logout_redirect_uris", ())),
        )
        for client_id, entry in raw.items()
    }


def _loopback_parts(uri: str) -> tuple | None:
    """Every component of a loopback URI except its port; None if not loopback."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.hostname not in LOOPBACK_HOSTS:
        return None
    return (
        parts.scheme,
        parts.username,
        parts.password,
        parts.hostname,
        parts.path,
        parts.query,
        parts.fragment,
    )


def uri_matches(candidate: str, registered: Iterable[str], loopback_any_port: bool) -> bool:
    """Whether ``candidate`` is one of the ``registered`` URIs.

    With ``loopback_any_port``, a loopback URI also matches a registered loopback URI
    that differs only by its port (same scheme, host, path and query).
    """
    registered = tuple(registered)
    if candidate in registered:
        return True
    if not loopback_any_port:
        return False
    candidate_parts = _loopback_parts(candidate)
    if candidate_parts is None:
        return False
    return any(_loopback_parts(uri) == candidate_parts for uri in registered)
