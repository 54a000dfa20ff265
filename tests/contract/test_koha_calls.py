"""What one Koha card costs in calls, against the sandbox over HTTP: the lists carry
their titles and library names (``x-koha-embed``), a list the card's parts both need is
sent once, reference data is kept for every resident, and an older Koha that refuses
the embeds is asked without them.

Calls are counted from the connector's request log (one line per attempt, with the
route template), the only record of what was sent."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator

import pytest

from connectors.base import LinkRef
from connectors.http import MemoryReferenceCache, RedisReferenceCache
from connectors.registry import Registry
from portal.services.library.reading import library_card
from sandbox.backends import koha as koha_backend
from tests.contract.conftest import Backends, account, ctx
from tests.support import redis_keyspace

MARIE = account("marie-therese", "koha", "bordeaux")
LUCAS = account("lucas", "koha", "bordeaux")
SLUG = "bib-bordeaux"
LOOKUPS = ("/api/v1/biblios/{biblio_id}", "/api/v1/libraries/{library_id}")


class Sent(logging.Handler):
    """Each request line of the connectors' log, by route template."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.routes: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        route = getattr(record, "route", None)
        if route and getattr(record, "instance", None) == SLUG:
            self.routes[route] += 1

    def total(self) -> int:
        return sum(self.routes.values())


@pytest.fixture
def sent() -> Iterator[Sent]:
    handler = Sent()
    logger = logging.getLogger("connectors.http")
    before = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(before)


def card(reg: Registry, who=MARIE):
    view, _fetched_at, stale = library_card(reg.connector(SLUG), ctx(), LinkRef(who.external_id))
    assert not stale
    return view


def test_a_card_sends_each_list_once_with_its_titles_and_libraries(registry, sent) -> None:
    view = card(registry)
    assert view.loans and view.holds
    assert all(loan.title and loan.branch for loan in view.loans)
    assert all(hold.title and hold.pickup_place for hold in view.holds)
    # The patron, its checkouts, holds and account, and one renewal verdict per loan:
    # no title or library asked on its own, and the lists the summary shares with the
    # loans and the holds sent once.
    assert sent.routes["/api/v1/checkouts"] == 1
    assert sent.routes["/api/v1/patrons/{patron_id}/holds"] == 1
    assert not any(sent.routes[route] for route in LOOKUPS)
    assert sent.total() == 4 + len(view.loans)


def test_an_older_koha_refusing_the_embeds_gives_the_same_card(
    backends: Backends, sent, monkeypatch
) -> None:
    expected = card(backends.registry())
    monkeypatch.setattr(koha_backend, "CHECKOUT_EMBEDS", {"item", "issuer", "renewals"})
    monkeypatch.setattr(koha_backend, "HOLD_EMBEDS", {"cancellation_requested"})
    reg = backends.registry()
    try:
        sent.routes.clear()
        first = card(reg)
        assert [(loan.title, loan.branch) for loan in first.loans] == [
            (loan.title, loan.branch) for loan in expected.loans
        ]
        assert [(h.title, h.pickup_place) for h in first.holds] == [
            (h.title, h.pickup_place) for h in expected.holds
        ]
        assert any(sent.routes[route] for route in LOOKUPS)
        # Refused once (one list each, at most), never asked with the embeds again; the
        # titles and names are kept for the next view.
        sent.routes.clear()
        card(reg)
        assert not any(sent.routes[route] for route in LOOKUPS)
        assert sent.routes["/api/v1/checkouts"] == 1
    finally:
        reg.close()


def test_reference_data_is_shared_by_every_registry_using_the_cache(
    backends: Backends, sent
) -> None:
    shared = MemoryReferenceCache()
    one = backends.registry(options={"embeds": False}, reference_cache=shared)
    other = backends.registry(options={"embeds": False}, reference_cache=shared)
    try:
        card(one)
        asked = sum(sent.routes[route] for route in LOOKUPS)
        assert asked > 0
        sent.routes.clear()
        card(other)  # another process, as far as it knows: nothing looked up again
        assert not any(sent.routes[route] for route in LOOKUPS)
    finally:
        one.close()
        other.close()


def test_reference_data_is_kept_in_redis_when_there_is_one(backends: Backends, sent) -> None:
    url = "redis://127.0.0.1:6379/3"
    with redis_keyspace(url, "refcache") as prefix:
        caches = [RedisReferenceCache.from_url(url, prefix) for _ in range(2)]
        regs = [backends.registry(options={"embeds": False}, reference_cache=c) for c in caches]
        try:
            card(regs[0], LUCAS)
            assert any(sent.routes[route] for route in LOOKUPS)
            sent.routes.clear()
            card(regs[1], LUCAS)
            assert not any(sent.routes[route] for route in LOOKUPS)
        finally:
            for reg in regs:
                reg.close()


def test_the_memory_cache_is_bounded_and_forgets_what_expired() -> None:
    now = [0.0]
    cache = MemoryReferenceCache(max_items=3, clock=lambda: now[0])
    for n in range(5):
        cache.set(f"k{n}", str(n), ttl_s=10)
    assert len(cache) == 3 and cache.get("k0") is None and cache.get("k4") == "4"
    now[0] = 11.0
    assert cache.get("k4") is None
