"""The per-back-end concurrency limit (``connectors.http.admission``): at most so many
operations of this process in a slow back-end, the next waits briefly then is
unavailable without sending anything; one operation's threads share one place; a
back-end that keeps pace is never held back. And the shared GET: the same GET asked
while it is on its way is sent once."""

from __future__ import annotations

import threading

import httpx
import pytest

from connectors.base import CallContext, Unavailable
from connectors.concurrent import gather
from connectors.http import Admission, MemorySnapshotStore
from tests.unit.test_connectors_http import Recorder, json_response, loans_parser, make_http


def ctx(seconds: float = 5.0) -> CallContext:
    return CallContext.with_timeout(seconds, actor="test", subject="link-1")


def slow(limit: int, wait_s: float) -> Admission:
    """A limit on a back-end whose calls took a second each: it applies."""
    admission = Admission("bib-test", limit, wait_s=wait_s)
    admission.observe(1.0)
    assert admission.slow
    return admission


def test_past_the_limit_an_operation_waits_then_is_refused() -> None:
    admission = slow(2, wait_s=0.05)
    with admission.enter(ctx()), admission.enter(ctx()):
        with pytest.raises(Unavailable, match="2 requests already"), admission.enter(ctx()):
            pass  # pragma: no cover
        counters = admission.counters()
        assert (counters.in_use, counters.admitted, counters.refused) == (2, 2, 1)
    assert admission.counters().in_use == 0 and admission.counters().peak == 2


def test_a_freed_place_lets_a_waiting_operation_in() -> None:
    admission = slow(1, wait_s=5.0)
    inside, leave = threading.Event(), threading.Event()

    def first() -> None:
        with admission.enter(ctx()):
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(5)
    threading.Timer(0.05, leave.set).start()
    with admission.enter(ctx()):
        pass
    thread.join(5)
    counters = admission.counters()
    assert (counters.admitted, counters.waited, counters.refused, counters.peak) == (2, 1, 0, 1)


def test_one_operation_holds_one_place_whatever_its_threads() -> None:
    admission = slow(1, wait_s=0.05)
    one = ctx()
    barrier = threading.Barrier(4, timeout=5)

    def part() -> None:
        with admission.enter(one):
            barrier.wait()  # the four are inside at once, on one place

    with admission.enter(one):
        gather(one, [part] * 4, max_workers=4)
    counters = admission.counters()
    assert (counters.admitted, counters.peak, counters.refused) == (1, 1, 0)


def test_a_back_end_that_keeps_pace_is_never_held_back_until_it_slows() -> None:
    admission = Admission("bib-test", 1, wait_s=0.05)
    for _ in range(5):
        admission.observe(0.2)  # far away, but healthy
    with admission.enter(ctx()), admission.enter(ctx()), admission.enter(ctx()):
        assert admission.counters().in_use == 3
    assert admission.counters().refused == 0
    for _ in range(5):
        admission.observe(0.7)  # now slow (within its deadline)
    assert admission.slow
    with admission.enter(ctx()), pytest.raises(Unavailable), admission.enter(ctx()):
        pass  # pragma: no cover
    assert admission.counters().refused == 1


def test_no_limit_lets_everything_in() -> None:
    admission = Admission("bib-test", 0)
    with admission.enter(ctx()), admission.enter(ctx()), admission.enter(ctx()):
        pass
    assert admission.counters().refused == 0


def test_a_refused_read_sends_nothing_and_serves_its_last_copy() -> None:
    backend = Recorder(json_response(200, {"loans": [{"loan_id": "l-1"}]}))
    http = make_http(
        backend, snapshot_store=MemorySnapshotStore(), concurrency=1, queue_wait_s=0.01
    )
    http.admission.observe(5.0)  # a slow back-end

    def read(context: CallContext) -> object:
        return http.read(
            context,
            "loans:p-1",
            lambda: http.get_json(context, "/v1/patrons/p-1/loans"),
            loans_parser,
        )

    assert not read(ctx()).stale
    sent = len(backend.requests)
    with http.admission.enter(ctx()):  # another operation holds the only place
        copy = read(ctx())
    assert copy.stale and copy.data == ("l-1",)
    assert len(backend.requests) == sent
    assert http.admission.counters().refused == 1


def test_the_same_get_on_its_way_is_sent_once() -> None:
    release = threading.Event()
    arrived = threading.Semaphore(0)

    def slow(request: httpx.Request) -> httpx.Response:
        arrived.release()
        release.wait(5)
        return json_response(200, {"loans": []})

    backend = Recorder(slow)
    http = make_http(backend)
    results: list[object] = []

    def get() -> None:
        results.append(http.get_json(ctx(), "/v1/patrons/p-1/loans"))

    threads = [threading.Thread(target=get) for _ in range(3)]
    threads[0].start()
    assert arrived.acquire(timeout=5)  # the first is on its way
    for thread in threads[1:]:
        thread.start()
    threading.Timer(0.1, release.set).start()
    for thread in threads:
        thread.join(5)
    assert results == [{"loans": []}] * 3
    assert len(backend.requests) == 1
    http.get_json(ctx(), "/v1/patrons/p-1/loans")  # once landed, asked again
    assert len(backend.requests) == 2


def test_what_a_write_reads_first_is_never_held_back() -> None:
    backend = Recorder(json_response(200, {"loans": [{"loan_id": "l-1"}]}))
    http = make_http(backend, concurrency=1, queue_wait_s=0.01)
    http.admission.observe(5.0)  # a slow back-end
    for_write = CallContext.with_timeout(5.0, actor="test", subject="link-1", held_back=False)
    with http.admission.enter(ctx()):  # the only place is taken
        found = http.read(
            for_write,
            "loans:p-1",
            lambda: http.get_json(for_write, "/v1/patrons/p-1/loans"),
            loans_parser,
        )
    assert not found.stale and len(backend.requests) == 1
    assert http.admission.counters().refused == 0


def test_a_call_still_on_its_way_counts_before_it_ends() -> None:
    # The first readers of a back-end that just slowed down teach the next ones at once.
    admission = Admission("bib-test", 1, slow_s=0.0)
    assert not admission.slow  # nothing known yet: let in
    token = admission.call_started()
    assert admission.slow
    admission.call_ended(token)
    assert admission.counters().typical_call_s is not None
