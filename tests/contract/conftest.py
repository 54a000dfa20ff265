"""Every connector type against the real sandbox over HTTP.

The sandbox (``sandbox.create_app``) runs on a loopback port for the whole session
(``sandbox_server`` in ``tests/conftest.py``); each test starts from freshly reset
records and no injected fault. Connectors are built from the repository's own
``connectors.toml``, pointed at that port, so the file ``make run`` uses is tested too.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import CallContext, InstanceConfig
from connectors.http import MemoryBreakerStore, MemorySnapshotStore
from connectors.registry import Registry, parse_instances
from sandbox.backends.demo import DEMO_ACCOUNTS, DemoAccount
from tests.contract.support import connector_logs_enabled  # noqa: F401 (autouse)
from tests.support import ServerThread, http_client

REPO_FILE = Path(__file__).resolve().parents[2] / "connectors.toml"
DEV_SANDBOX = "http://127.0.0.1:5001"

#: instance slug → (sandbox kind, tenant)
TENANTS = {
    "bib-bordeaux": ("koha", "bordeaux"),
    "bib-merignac": ("library", "merignac"),
    "bib-pessac": ("library", "pessac"),
    "cantine-bordeaux": ("canteen", "bordeaux"),
    "logement-metropole": ("housing", "metropole"),
}

#: Deadline of an ordinary call in these tests (the portal gives a card 2.5 s).
DEADLINE_S = 3.0


def ctx(seconds: float = DEADLINE_S, subject: str = "link-1") -> CallContext:
    return CallContext.with_timeout(seconds, actor="test", subject=subject)


def account(owner: str, kind: str, tenant: str) -> DemoAccount:
    """A demo account from the sandbox's own list (never a copy of its data)."""
    for candidate in DEMO_ACCOUNTS[owner]:
        if (candidate.kind, candidate.tenant) == (kind, tenant):
            return candidate
    raise LookupError(f"{owner} has no {kind}/{tenant} account in the sandbox")


@dataclass
class Backends:
    """The running sandbox's back-ends and their test controls."""

    url: str
    http: httpx.Client = field(default_factory=http_client)

    def reset(self) -> None:
        self.http.post(self.url + "/_admin/reset").raise_for_status()

    def fault(self, slug: str, **behaviour: Any) -> None:
        kind, tenant = TENANTS[slug]
        response = self.http.post(f"{self.url}/_admin/faults/{kind}/{tenant}", json=behaviour)
        response.raise_for_status()

    def clear(self, slug: str) -> None:
        kind, tenant = TENANTS[slug]
        self.http.delete(f"{self.url}/_admin/faults/{kind}/{tenant}").raise_for_status()

    def instances(
        self, base_url: str | None = None, options: dict[str, Any] | None = None
    ) -> list[InstanceConfig]:
        """The repository's instances, served by this sandbox (or by ``base_url``)."""
        text = REPO_FILE.read_text(encoding="utf-8").replace(DEV_SANDBOX, base_url or self.url)
        instances = parse_instances(tomllib.loads(text), {})
        if options:
            instances = [
                dataclasses.replace(i, options={**i.options, **options}) for i in instances
            ]
        return instances

    def registry(
        self, base_url: str | None = None, options: dict[str, Any] | None = None, **kw: Any
    ) -> Registry:
        kw.setdefault("breaker_store", MemoryBreakerStore())
        kw.setdefault("snapshot_store", MemorySnapshotStore())
        return Registry(self.instances(base_url, options), **kw)


@pytest.fixture
def backends(sandbox_server: ServerThread) -> Iterator[Backends]:
    box = Backends(sandbox_server.url)
    box.reset()
    yield box
    box.reset()
    box.http.close()


@pytest.fixture
def registry(backends: Backends) -> Iterator[Registry]:
    reg = backends.registry()
    yield reg
    reg.close()
