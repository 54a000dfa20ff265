"""``connectors.concurrent.gather``: independent calls side by side, results in order,
errors as if made one by one, and never past the deadline."""

from __future__ import annotations

import threading

import pytest

from connectors.base import CallContext, Refused, Unavailable
from connectors.concurrent import gather


def ctx(seconds: float = 5.0) -> CallContext:
    return CallContext.with_timeout(seconds)


def test_results_come_back_in_order() -> None:
    assert gather(ctx(), [lambda i=i: i * i for i in range(20)]) == [i * i for i in range(20)]
    assert gather(ctx(), []) == []


def test_the_calls_really_run_side_by_side() -> None:
    # Each of four calls waits for all four to have started: only concurrency ends it.
    barrier = threading.Barrier(4, timeout=5)
    assert gather(ctx(), [barrier.wait for _ in range(4)], max_workers=4) is not None


def test_no_more_than_max_workers_at_once() -> None:
    lock, state = threading.Lock(), {"now": 0, "most": 0}

    def call() -> None:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        with lock:
            state["now"] -= 1

    gather(ctx(), [call] * 50, max_workers=3)
    assert state["most"] <= 3


def test_the_first_error_in_order_is_raised() -> None:
    def refuse(code: str) -> None:
        raise Refused("Non.", code)

    with pytest.raises(Refused) as raised:
        gather(ctx(), [lambda: 1, lambda: refuse("first"), lambda: refuse("second")])
    assert raised.value.code == "first"


def test_an_expired_deadline_starts_nothing() -> None:
    started: list[int] = []
    with pytest.raises(Unavailable):
        gather(CallContext(deadline=0.0), [lambda: started.append(1)] * 3)
    assert started == []


def test_waiting_stops_at_the_deadline() -> None:
    release = threading.Event()
    try:
        with pytest.raises(Unavailable, match="deadline"):
            gather(ctx(0.2), [lambda: release.wait(10), lambda: release.wait(10)])
    finally:
        release.set()


def test_a_gather_inside_a_gather_cannot_starve_the_pool() -> None:
    # 40 outer calls, more than the pool's threads, each gathering two inner ones.
    inner = [lambda: 1, lambda: 2]
    outer = [lambda: gather(ctx(), inner) for _ in range(40)]
    assert gather(ctx(), outer, max_workers=40) == [[1, 2]] * 40


def test_a_gather_inside_a_gather_still_goes_side_by_side() -> None:
    # Two parts read side by side, each sending two calls side by side: the four calls
    # wait for one another, so only four at once ends them (a card's parts and calls).
    barrier = threading.Barrier(4, timeout=5)
    part = [barrier.wait, barrier.wait]
    found = gather(ctx(), [lambda: gather(ctx(), part), lambda: gather(ctx(), part)])
    assert len(found) == 2 and all(len(calls) == 2 for calls in found)


def test_after_a_failure_nothing_more_is_started() -> None:
    started: list[int] = []

    def refuse() -> None:
        raise Refused("Non.", "no")

    def call(i: int) -> None:
        started.append(i)
        threading.Event().wait(0.01)

    thunks = [refuse] + [lambda i=i: call(i) for i in range(50)]
    with pytest.raises(Refused):
        gather(ctx(), thunks, max_workers=2)
    assert len(started) < 10
