"""Every HTTP client of the process shares one SSL context per verification setting:
loading the CA bundle once, not once per client, is most of what ``create_app`` saved."""

from __future__ import annotations

import ssl
import threading

import certifi

from connectors.base import InstanceConfig
from connectors.http import ResilientHTTP, shared_ssl_context
from portal.auth.oidc import FranceConnectClient


def instance(slug: str) -> InstanceConfig:
    return InstanceConfig(
        slug=slug,
        type="library-standard",
        title="Bibliothèque",
        communes=("Testville",),
        base_url="https://backend.test/lib",
    )


def pool_context(client: object) -> object:
    return client._transport._pool._ssl_context  # type: ignore[attr-defined]


def test_the_context_is_built_once_and_verifies() -> None:
    context = shared_ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert shared_ssl_context() is context
    assert shared_ssl_context(trust_env=True) is not context
    assert shared_ssl_context(False).verify_mode == ssl.CERT_NONE


def test_threads_racing_for_it_get_the_same_one() -> None:
    seen: list[ssl.SSLContext] = []
    start = threading.Barrier(8)

    def take() -> None:
        start.wait()
        seen.append(shared_ssl_context(certifi.where()))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and all(c is seen[0] for c in seen)


def test_every_connector_client_and_the_identity_provider_share_it() -> None:
    a, b = ResilientHTTP(instance("bib-a")), ResilientHTTP(instance("bib-b"))
    try:
        assert pool_context(a._client) is pool_context(b._client) is shared_ssl_context()
    finally:
        a.close()
        b.close()
    oidc = FranceConnectClient(
        issuer="https://idp.test",
        client_id="client",
        client_secret="secret",
        scopes=["openid"],
        redirect_uri="https://portal.test/cb",
    )
    assert pool_context(oidc._http) is shared_ssl_context(trust_env=True)
    # The client of one sign-in flow too (its token is its own; its SSL context is not).
    with oidc._oauth() as first, oidc._oauth() as second:
        assert first is not second
        assert pool_context(first) is pool_context(second) is shared_ssl_context(trust_env=True)
