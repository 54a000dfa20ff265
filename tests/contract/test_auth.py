"""The portal's own credentials against the sandbox: API keys, HTTP Basic for Koha, OAuth2
client credentials for every back-end, and what a wrong credential looks like."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from connectors.base import LinkRef, Unavailable
from connectors.http import MemoryBreakerStore
from connectors.registry import Registry
from tests.contract.conftest import TENANTS, Backends, ctx
from tests.contract.test_faults import SCENARIOS


def oauth(slug: str) -> dict[str, str]:
    kind, tenant = TENANTS[slug]
    token_path = "/api/v1/oauth/token" if kind == "koha" else "/oauth/token"
    return {
        "client_id": "portal",
        "client_secret": f"sandbox-{kind}-{tenant}-secret",
        "token_url": token_path,
    }


def registry_with(backends: Backends, slug: str, credentials: dict[str, str]) -> Registry:
    instances = [
        dataclasses.replace(i, credentials=credentials)
        for i in backends.instances()
        if i.slug == slug
    ]
    return Registry(instances, breaker_store=MemoryBreakerStore())


@pytest.mark.parametrize("slug", list(SCENARIOS))
def test_every_back_end_accepts_oauth2_client_credentials(backends: Backends, slug: str) -> None:
    reg = registry_with(backends, slug, oauth(slug))
    connector = reg.connector(slug)
    scenario = SCENARIOS[slug]
    assert not scenario.read(connector, ctx()).stale
    assert not scenario.other_read(connector, ctx()).stale  # the same token, reused
    reg.close()


@pytest.mark.parametrize("slug", list(SCENARIOS))
def test_a_wrong_credential_is_a_logged_misconfiguration(
    backends: Backends, slug: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = (
        {"username": "portal", "password": "wrong"}
        if slug == "bib-bordeaux"
        else {"api_key": "wrong-key"}
    )
    reg = registry_with(backends, slug, wrong)
    scenario = SCENARIOS[slug]
    with caplog.at_level(logging.ERROR, logger="connectors.http"):
        for call in (scenario.read, scenario.verify):
            with pytest.raises(Unavailable, match="misconfigured"):
                call(reg.connector(slug), ctx())
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and all("credentials" in r.getMessage() for r in errors)
    assert "wrong" not in caplog.text
    reg.close()


def test_a_wrong_client_secret_is_a_misconfiguration(backends: Backends) -> None:
    credentials = {**oauth("cantine-bordeaux"), "client_secret": "nope"}
    reg = registry_with(backends, "cantine-bordeaux", credentials)
    with pytest.raises(Unavailable, match="misconfigured"):
        reg.connector("cantine-bordeaux").family(ctx(), LinkRef("fam-4521"))
    reg.close()
