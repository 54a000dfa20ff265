"""Every connector type when its back-end misbehaves, over real HTTP.

What a resident sees depends on it: a read falls back to the last good copy (marked
stale, with when it was fetched); with none, and for every write and proof, the
failure is one of the typed errors, within the call's deadline. The breaker leaves a
failing back-end alone and lets it back in once it answers again. A back-end that is
not there at all (a closed port) or that never answers (a silent socket) costs no
more than the deadline.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import pytest

from connectors.base import (
    ContractBroken,
    HousingApplication,
    LinkRef,
    OutcomeUnknown,
    ReadResult,
    Unavailable,
)
from tests.contract.conftest import DEADLINE_S, Backends, account, ctx

#: Time a failing call may take beyond its deadline (thread scheduling, socket close).
MARGIN_S = 0.3
#: The deadline of a call to a back-end that never answers: only the deadline ends it, so
#: it is short (every such call costs all of it).
HANG_BUDGET_S = 0.3

Call = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Scenario:
    """For one instance: a read to snapshot, a read never made before, a write, a proof."""

    read: Call
    other_read: Call
    write: Call
    verify: Call


def _key() -> str:
    return uuid.uuid4().hex


_LIB = account("marie-therese", "library", "merignac")
_KOHA = account("marie-therese", "koha", "bordeaux")
_FAMILY = account("marie-therese", "canteen", "bordeaux")
_HOUSING = account("marie-therese", "housing", "metropole")

SCENARIOS: dict[str, Scenario] = {
    "bib-merignac": Scenario(
        read=lambda c, x: c.loans(x, LinkRef(_LIB.external_id)),
        other_read=lambda c, x: c.holds(x, LinkRef(_LIB.external_id)),
        write=lambda c, x: c.renew(
            x, LinkRef(_LIB.external_id), "mer-l-0417-2", idempotency_key=_key()
        ),
        verify=lambda c, x: c.verify_card(x, _LIB.proof["card_number"], pin=_LIB.proof["pin"]),
    ),
    "bib-bordeaux": Scenario(
        read=lambda c, x: c.loans(x, LinkRef(_KOHA.external_id)),
        other_read=lambda c, x: c.account(x, LinkRef(_KOHA.external_id)),
        write=lambda c, x: c.renew(x, LinkRef(_KOHA.external_id), "9002", idempotency_key=_key()),
        verify=lambda c, x: c.verify_card(
            x, _KOHA.proof["identifier"], pin=_KOHA.proof["password"]
        ),
    ),
    "cantine-bordeaux": Scenario(
        read=lambda c, x: c.invoices(x, LinkRef(_FAMILY.external_id)),
        other_read=lambda c, x: c.family(x, LinkRef(_FAMILY.external_id)),
        write=lambda c, x: c.start_payment(
            x,
            LinkRef(_FAMILY.external_id),
            "fac-4521-2611",
            return_url="http://127.0.0.1:5000/r",
            notify_url="http://127.0.0.1:5000/n",
            idempotency_key=_key(),
        ),
        verify=lambda c, x: c.verify_family(
            x, _FAMILY.proof["family_number"], _FAMILY.proof["invoice_code"]
        ),
    ),
    "logement-metropole": Scenario(
        read=lambda c, x: c.application(x, LinkRef(_HOUSING.external_id)),
        other_read=lambda c, x: c.application(x, LinkRef("dem-0415")),
        write=lambda c, x: c.renew(x, LinkRef(_HOUSING.external_id), idempotency_key=_key()),
        verify=lambda c, x: c.verify_application(
            x, _HOUSING.proof["number"], date.fromisoformat(_HOUSING.proof["birthdate"])
        ),
    ),
}

#: Injected fault → the typed error a call gets when no snapshot can stand in.
FAULTS: dict[str, type[Exception]] = {
    "hang": Unavailable,
    "reset": Unavailable,
    "error500": Unavailable,
    "rate_limit": Unavailable,
    "unavailable": Unavailable,
    "malformed": ContractBroken,
    "wrong_schema": ContractBroken,
}


#: Types whose write goes straight to the back-end with its Idempotency-Key: a write sent
#: and left unanswered (no answer, connection dropped) may have been done. (Koha reads
#: the loan first, so that read fails before anything is sent.)
SENDS_THE_WRITE_FIRST = {"bib-merignac", "cantine-bordeaux", "logement-metropole"}


def expected(slug: str, what: str, mode: str) -> type[Exception]:
    if what == "write" and mode in ("hang", "reset") and slug in SENDS_THE_WRITE_FIRST:
        return OutcomeUnknown
    return FAULTS[mode]


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.monotonic()
    result = call()
    return time.monotonic() - started, result


@pytest.mark.parametrize("mode", list(FAULTS))
@pytest.mark.parametrize("slug", list(SCENARIOS))
def test_every_fault_gives_stale_data_or_a_typed_error(
    backends: Backends, slug: str, mode: str
) -> None:
    # A high threshold keeps the breaker out of the way: each call meets the fault itself.
    reg = backends.registry(options={"breaker_threshold": 1000})
    connector, scenario = reg.connector(slug), SCENARIOS[slug]
    good: ReadResult[Any] = scenario.read(connector, ctx())
    assert not good.stale

    backends.fault(slug, mode=mode, hang_s=20, retry_after=10)
    budget = HANG_BUDGET_S if mode == "hang" else DEADLINE_S

    elapsed, stale = timed(lambda: scenario.read(connector, ctx(budget)))
    assert stale.stale, f"{mode}: the last good copy is shown"
    last_good = good.data
    if isinstance(last_good, HousingApplication):
        last_good = replace(last_good, number="")  # the copy keeps no application number
    assert stale.data == last_good
    assert stale.fetched_at == good.fetched_at
    assert elapsed < budget + MARGIN_S

    for what in ("other_read", "write", "verify"):
        call = getattr(scenario, what)
        started = time.monotonic()
        with pytest.raises(expected(slug, what, mode)) as raised:
            call(connector, ctx(budget))
        assert time.monotonic() - started < budget + MARGIN_S, f"{what} overran its deadline"
        if mode in ("rate_limit", "unavailable"):
            assert raised.value.retry_after == 10, f"{what}: the back-end's Retry-After"
    reg.close()


def test_latency_within_the_deadline_is_only_slower(backends: Backends) -> None:
    reg = backends.registry()
    scenario = SCENARIOS["bib-merignac"]
    backends.fault("bib-merignac", latency_ms=300)
    elapsed, result = timed(lambda: scenario.read(reg.connector("bib-merignac"), ctx()))
    assert not result.stale
    assert elapsed >= 0.3


@pytest.mark.parametrize("slug", list(SCENARIOS))
def test_the_breaker_opens_then_closes_when_the_back_end_recovers(
    backends: Backends, slug: str
) -> None:
    reg = backends.registry(
        options={"breaker_threshold": 2, "breaker_cooldown_s": 0.5, "max_attempts": 1}
    )
    connector, scenario = reg.connector(slug), SCENARIOS[slug]
    # 300 ms of latency on every answer: a call that returns sooner never reached it.
    backends.fault(slug, mode="error500", latency_ms=300)
    for _ in range(2):
        with pytest.raises(Unavailable):
            scenario.other_read(connector, ctx())
    assert reg.breaker_state(slug).state == "open"

    started = time.monotonic()
    with pytest.raises(Unavailable, match="circuit open"):
        scenario.other_read(connector, ctx())
    assert time.monotonic() - started < 0.1, "an open breaker fails fast, without a call"

    backends.clear(slug)
    time.sleep(0.6)
    assert reg.breaker_state(slug).state == "half_open"
    assert not scenario.other_read(connector, ctx()).stale
    state = reg.breaker_state(slug)
    assert (state.state, state.failures, state.opened_at) == ("closed", 0, None)
    reg.close()


# -- back-ends that are not there --------------------------------------------------------


@pytest.fixture
def closed_port() -> str:
    """A loopback port nobody listens on: connections are refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback port that accepts connections and never answers a byte."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.mark.parametrize("slug", list(SCENARIOS))
def test_a_back_end_that_refuses_connections_fails_within_the_deadline(
    backends: Backends, closed_port: str, slug: str
) -> None:
    reg = backends.registry(base_url=closed_port)
    connector, scenario = reg.connector(slug), SCENARIOS[slug]
    for what in ("read", "write", "verify"):
        started = time.monotonic()
        with pytest.raises(Unavailable):
            getattr(scenario, what)(connector, ctx(1.0))
        assert time.monotonic() - started < 1.0 + MARGIN_S
    reg.close()


@pytest.mark.parametrize("slug", list(SCENARIOS))
def test_a_back_end_that_never_answers_fails_within_the_deadline(
    backends: Backends, silent_server: str, slug: str
) -> None:
    reg = backends.registry(base_url=silent_server)
    connector, scenario = reg.connector(slug), SCENARIOS[slug]
    for what in ("read", "write", "verify"):
        started = time.monotonic()
        with pytest.raises(expected(slug, what, "hang")):
            getattr(scenario, what)(connector, ctx(HANG_BUDGET_S))
        assert time.monotonic() - started < HANG_BUDGET_S + MARGIN_S
    reg.close()
