"""The fresh-snapshot read cache against the sandbox: parts of one page share what one of
them just read (``CallContext.max_age_s``), and a write makes the next read ask again.

Calls are counted with the registry's outcome hook, called once per call sent to a
back-end (the sandbox has no counter of received calls)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from connectors.base import CallContext, LinkRef
from connectors.registry import Registry
from tests.contract.conftest import DEADLINE_S, Backends, account

MARIE = account("marie-therese", "library", "merignac")
SLUG = "bib-merignac"


def cached(max_age_s: float = 60.0) -> CallContext:
    return CallContext.with_timeout(DEADLINE_S, actor="test", subject="link-1", max_age_s=max_age_s)


@pytest.fixture
def counted(backends: Backends) -> Iterator[tuple[Registry, Counter[str]]]:
    calls: Counter[str] = Counter()
    reg = backends.registry(on_outcome=lambda slug, ok, duration: calls.update([slug]))
    yield reg, calls
    reg.close()


def test_a_second_read_within_max_age_sends_nothing(counted, backends: Backends) -> None:
    reg, calls = counted
    merignac = reg.connector(SLUG)
    link = LinkRef(MARIE.external_id)
    first = merignac.loans(cached(), link)
    assert calls[SLUG] == 1
    backends.fault(SLUG, mode="error500")  # proves the answer is not the back-end's
    again = merignac.loans(cached(), link)
    assert calls[SLUG] == 1
    assert not again.stale and again.fetched_at == first.fetched_at and again.data == first.data


def test_without_max_age_the_back_end_is_asked(counted) -> None:
    reg, calls = counted
    merignac = reg.connector(SLUG)
    link = LinkRef(MARIE.external_id)
    merignac.loans(cached(0.0), link)
    merignac.loans(cached(0.0), link)
    assert calls[SLUG] == 2


def test_after_a_renewal_the_loans_are_read_again(counted) -> None:
    reg, calls = counted
    merignac = reg.connector(SLUG)
    link = LinkRef(MARIE.external_id)
    before = merignac.loans(cached(), link).data
    loan = next(loan for loan in before if loan.renewable)
    outcome = merignac.renew(cached(), link, loan.id, idempotency_key="cache-renew-1")
    assert outcome.renewed
    sent = calls[SLUG]
    after = merignac.loans(cached(), link).data
    assert calls[SLUG] == sent + 1
    renewed = next(item for item in after if item.id == loan.id)
    assert renewed.due_date == outcome.new_due_date != loan.due_date


def test_after_a_failed_read_of_the_account_nothing_answers_as_fresh(
    counted, backends: Backends
) -> None:
    reg, calls = counted
    merignac = reg.connector(SLUG)
    link = LinkRef(MARIE.external_id)
    merignac.loans(cached(), link)
    merignac.patron(cached(), link)
    backends.fault(SLUG, mode="error500")
    # The patron is read again and fails: the last good copy, said stale.
    patron = merignac.patron(cached(0.0), link)
    assert patron.stale
    sent = calls[SLUG]
    # The loans read a moment before no longer count as fresh: asked again, stale too.
    loans = merignac.loans(cached(), link)
    assert calls[SLUG] > sent
    assert loans.stale


def test_a_read_that_may_reuse_waits_for_the_same_read_on_its_way(
    counted, backends: Backends
) -> None:
    import threading
    import time

    reg, calls = counted
    merignac = reg.connector(SLUG)
    link = LinkRef(MARIE.external_id)
    backends.fault(SLUG, mode=None, latency_ms=400)
    first: list = []
    card = threading.Thread(target=lambda: first.append(merignac.loans(cached(0.0), link)))
    card.start()
    time.sleep(0.1)  # the card's read is on its way
    todo = merignac.loans(cached(), link)
    card.join()
    assert calls[SLUG] == 1
    assert todo.data == first[0].data and todo.fetched_at == first[0].fetched_at
    assert not todo.stale
    # One that may not reuse (a card, a page) never waits on another: it asks.
    merignac.loans(cached(0.0), link)
    assert calls[SLUG] == 2
