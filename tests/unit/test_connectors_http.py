"""The resilient HTTP layer, against fake back-ends (``httpx.MockTransport``) and, where
only a real socket can show it, a loopback socket that never answers.

Each test is a promise the portal relies on: a resident's page never waits past its
budget, a write is never sent twice, a back-end in trouble is left alone for a while,
the last good data is shown while it is down, and nothing secret reaches the logs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from connectors.base import (
    CallContext,
    ContractBroken,
    InstanceConfig,
    LinkInvalid,
    OutcomeUnknown,
    Refused,
    Unavailable,
)
from connectors.contract import Contract
from connectors.http import (
    MemoryBreakerStore,
    MemorySnapshotStore,
    RedisBreakerStore,
    ResilientHTTP,
)
from connectors.library.koha import KohaLibraryConnector
from tests.contract.support import connector_logs_enabled  # noqa: F401 (autouse)

Handler = Callable[[httpx.Request], httpx.Response]

SECRET_KEY = "k-very-secret-api-key"
CARD = "33281000041721"
PIN = "2408"


class FakeClock:
    """Wall-clock time the breaker sees; tests move it forward instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def instance(base_url: str = "http://backend.test/lib", **fields: object) -> InstanceConfig:
    values: dict[str, object] = {
        "slug": "bib-test",
        "type": "library-standard",
        "title": "Bibliothèque de test",
        "communes": ("Testville",),
        "base_url": base_url,
        "credentials": {"api_key": SECRET_KEY},
    }
    values.update(fields)
    return InstanceConfig(**values)  # type: ignore[arg-type]


def json_response(status: int, body: object, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def problem(status: int, code: str, detail: str = "", **extra: object) -> httpx.Response:
    body = {"type": "about:blank", "title": code, "status": status, "code": code, **extra}
    if detail:
        body["detail"] = detail
    headers = {"content-type": "application/problem+json"}
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


class Recorder:
    """A fake back-end answering from a script, recording every request it receives."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[0] if len(self.answers) == 1 else self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer


def make_http(
    handler: Handler | httpx.BaseTransport,
    *,
    clock: FakeClock | None = None,
    sleeps: list[float] | None = None,
    options: dict[str, object] | None = None,
    **kwargs: object,
) -> ResilientHTTP:
    transport = (
        handler if isinstance(handler, httpx.BaseTransport) else httpx.MockTransport(handler)
    )
    recorded = sleeps if sleeps is not None else []
    inst_fields = {k: kwargs.pop(k) for k in list(kwargs) if k in ("credentials", "timeout_s")}
    return ResilientHTTP(
        instance(options=options or {}, **inst_fields),
        transport=transport,
        clock=clock or FakeClock(),
        sleep=recorded.append,
        rng=lambda: 1.0,
        **kwargs,  # type: ignore[arg-type]
    )


def ctx(seconds: float = 5.0) -> CallContext:
    return CallContext.with_timeout(seconds, request_id="req-1", subject="link-1")


LOANS = "/v1/patrons/{patron_id}/loans"


def get_loans(http: ResilientHTTP, context: CallContext | None = None) -> object:
    return http.get_json(context or ctx(), LOANS, path_params={"patron_id": "p-123"})


# -- deadlines ---------------------------------------------------------------------------


@pytest.fixture
def silent_socket() -> Iterator[str]:
    """A TCP socket that accepts connections (kernel backlog) and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_a_hanging_back_end_costs_no_more_than_the_deadline(silent_socket: str) -> None:
    http = ResilientHTTP(instance(silent_socket, timeout_s=30.0, connect_timeout_s=30.0))
    started = time.monotonic()
    with pytest.raises(Unavailable):
        get_loans(http, ctx(0.5))
    assert time.monotonic() - started < 0.5 + 0.25
    http.close()


class HangingTransport(httpx.BaseTransport):
    """Waits as long as the request's read timeout allows, then times out: shows which
    timeouts the layer asked for without a real socket."""

    def __init__(self) -> None:
        self.timeouts: list[dict[str, float]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions["timeout"]
        self.timeouts.append(timeout)
        time.sleep(timeout["read"])
        raise httpx.ReadTimeout("no answer", request=request)


def test_timeouts_of_each_attempt_fit_within_what_is_left_of_the_deadline() -> None:
    transport = HangingTransport()
    http = ResilientHTTP(instance(timeout_s=10.0, connect_timeout_s=10.0), transport=transport)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        get_loans(http, ctx(0.3))
    elapsed = time.monotonic() - started
    assert elapsed < 0.3 + 0.15
    assert transport.timeouts, "the transport was never called"
    for timeout in transport.timeouts:
        assert timeout["read"] <= 0.3 and timeout["connect"] <= 0.3


def test_the_instance_timeouts_apply_when_the_deadline_is_far() -> None:
    transport = HangingTransport()
    http = ResilientHTTP(
        instance(timeout_s=0.05, connect_timeout_s=0.02),
        transport=transport,
        sleep=lambda s: None,
    )
    with pytest.raises(Unavailable):
        get_loans(http, ctx(30))
    assert transport.timeouts[0]["read"] == pytest.approx(0.05)
    assert transport.timeouts[0]["connect"] == pytest.approx(0.02)
    assert len(transport.timeouts) == 3, "a read that timed out is retried"


def test_a_call_with_no_time_left_never_touches_the_network() -> None:
    backend = Recorder(json_response(200, {"loans": []}))
    http = make_http(backend)
    with pytest.raises(Unavailable, match="deadline"):
        get_loans(http, CallContext(deadline=time.monotonic() - 1))
    assert backend.requests == []


# -- retries -----------------------------------------------------------------------------


def test_a_read_is_retried_with_backoff_and_jitter_until_it_succeeds() -> None:
    backend = Recorder(
        problem(503, "unavailable"), problem(502, "bad_gateway"), json_response(200, {"ok": 1})
    )
    sleeps: list[float] = []
    http = make_http(backend, sleeps=sleeps)
    assert get_loans(http) == {"ok": 1}
    assert len(backend.requests) == 3
    # full jitter (rng pinned to 1.0 here): 0.1 then 0.2 seconds
    assert sleeps == pytest.approx([0.1, 0.2])


def test_jitter_spreads_the_waits_below_the_exponential_ceiling() -> None:
    backend = Recorder(problem(504, "timeout"), problem(504, "timeout"), json_response(200, {}))
    sleeps: list[float] = []
    http = ResilientHTTP(
        instance(), transport=httpx.MockTransport(backend), sleep=sleeps.append, rng=lambda: 0.25
    )
    get_loans(http)
    assert sleeps == pytest.approx([0.025, 0.05])


def test_connection_errors_and_timeouts_are_retried_for_reads() -> None:
    backend = Recorder(
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        json_response(200, {"loans": []}),
    )
    http = make_http(backend)
    assert get_loans(http) == {"loans": []}
    assert len(backend.requests) == 3


def test_a_write_is_sent_once_with_its_idempotency_key() -> None:
    backend = Recorder(problem(503, "unavailable"))
    http = make_http(backend)
    with pytest.raises(Unavailable):
        http.request(
            ctx(),
            "POST",
            "/v1/patrons/{patron_id}/loans/{loan_id}/renewal",
            path_params={"patron_id": "p-1", "loan_id": "l-1"},
            idempotency_key="idem-42",
        )
    assert len(backend.requests) == 1
    assert backend.requests[0].headers["Idempotency-Key"] == "idem-42"


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")])
def test_a_delete_that_failed_in_transit_is_not_retried(failure: Exception) -> None:
    backend = Recorder(failure)
    http = make_http(backend)
    with pytest.raises(Unavailable):
        http.request(
            ctx(), "DELETE", "/v1/holds/{hold_id}", path_params={"hold_id": "h"}, accept="none"
        )
    assert len(backend.requests) == 1


def test_retries_stop_when_the_next_wait_would_pass_the_deadline() -> None:
    backend = Recorder(problem(503, "unavailable"))
    http = ResilientHTTP(
        instance(options={"backoff_base_s": 1.0}),
        transport=httpx.MockTransport(backend),
        rng=lambda: 1.0,
    )
    started = time.monotonic()
    with pytest.raises(Unavailable):
        get_loans(http, ctx(0.4))
    assert time.monotonic() - started < 0.1, "it gave up instead of sleeping past the deadline"
    assert len(backend.requests) == 1


def test_retries_are_bounded_by_max_attempts() -> None:
    backend = Recorder(problem(503, "unavailable"))
    http = make_http(backend, options={"max_attempts": 2})
    with pytest.raises(Unavailable):
        get_loans(http)
    assert len(backend.requests) == 2


def test_retry_after_is_honoured_when_it_fits_in_the_deadline() -> None:
    backend = Recorder(
        problem(429, "rate_limited", retry_after=1), json_response(200, {"loans": []})
    )
    sleeps: list[float] = []
    http = make_http(backend, sleeps=sleeps)
    assert get_loans(http, ctx(5)) == {"loans": []}
    assert sleeps == [1.0]


def test_retry_after_as_an_http_date_is_understood() -> None:
    clock = FakeClock()
    when = datetime.fromtimestamp(clock.now + 2, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    backend = Recorder(
        httpx.Response(503, headers={"Retry-After": when}), json_response(200, {"loans": []})
    )
    sleeps: list[float] = []
    http = make_http(backend, clock=clock, sleeps=sleeps)
    get_loans(http, ctx(5))
    assert sleeps == pytest.approx([2.0], abs=1.0)


def test_retry_after_beyond_the_deadline_gives_up_at_once_and_says_when() -> None:
    backend = Recorder(problem(429, "rate_limited", retry_after=30))
    sleeps: list[float] = []
    http = make_http(backend, sleeps=sleeps)
    with pytest.raises(Unavailable) as raised:
        get_loans(http, ctx(2))
    assert raised.value.retry_after == 30
    assert sleeps == []
    assert len(backend.requests) == 1


def test_a_500_is_not_retried() -> None:
    backend = Recorder(problem(500, "internal_error"))
    http = make_http(backend)
    with pytest.raises(Unavailable):
        get_loans(http)
    assert len(backend.requests) == 1


# -- circuit breaker ---------------------------------------------------------------------


@pytest.fixture
def redis_client() -> Iterator[object]:
    redis = pytest.importorskip("redis")
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis on 127.0.0.1:6379 is needed for the shared breaker: {exc}")
    yield client
    client.close()


@pytest.fixture(params=["memory", "redis"])
def breaker_store(request: pytest.FixtureRequest) -> Iterator[object]:
    if request.param == "memory":
        yield MemoryBreakerStore()
        return
    client = request.getfixturevalue("redis_client")
    prefix = f"test-{uuid.uuid4().hex}:"
    yield RedisBreakerStore(client, prefix=prefix)  # type: ignore[arg-type]
    for key in client.scan_iter(match=prefix + "*"):  # type: ignore[attr-defined]
        client.delete(key)  # type: ignore[attr-defined]


class Switch:
    """A back-end that can be broken and mended."""

    def __init__(self) -> None:
        self.broken = True
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.broken:
            return problem(503, "unavailable")
        return json_response(200, {"loans": []})


def breaker_http(store: object, backend: Switch, clock: FakeClock) -> ResilientHTTP:
    return make_http(
        backend,
        clock=clock,
        breaker_store=store,
        options={"max_attempts": 1, "breaker_threshold": 3, "breaker_cooldown_s": 30},
    )


def test_the_breaker_opens_after_n_failures_and_then_fails_fast(breaker_store: object) -> None:
    backend, clock = Switch(), FakeClock()
    http = breaker_http(breaker_store, backend, clock)
    for _ in range(3):
        with pytest.raises(Unavailable):
            get_loans(http)
    state = http.breaker_state()
    assert state.state == "open"
    assert state.failures == 3
    assert state.opened_at == datetime.fromtimestamp(clock.now, UTC)

    with pytest.raises(Unavailable, match="circuit open") as raised:
        get_loans(http)
    assert backend.calls == 3, "an open breaker does not call the back-end"
    assert raised.value.retry_after == pytest.approx(30)


def test_a_reset_breaker_is_closed_and_calls_the_back_end_again(breaker_store: object) -> None:
    backend, clock = Switch(), FakeClock()
    http = breaker_http(breaker_store, backend, clock)
    for _ in range(3):
        with pytest.raises(Unavailable):
            get_loans(http)
    assert http.breaker_state().state == "open"

    breaker_store.reset(http.slug)  # type: ignore[attr-defined]

    assert http.breaker_state().state == "closed"
    assert http.breaker_state().failures == 0
    backend.broken = False
    assert get_loans(http) == {"loans": []}
    assert backend.calls == 4, "the call after the reset reached the back-end, at once"


def test_a_successful_half_open_probe_closes_the_breaker(breaker_store: object) -> None:
    backend, clock = Switch(), FakeClock()
    http = breaker_http(breaker_store, backend, clock)
    for _ in range(3):
        with pytest.raises(Unavailable):
            get_loans(http)
    clock.advance(31)
    assert http.breaker_state().state == "half_open"
    backend.broken = False
    assert get_loans(http) == {"loans": []}
    assert http.breaker_state().state == "closed"
    assert http.breaker_state().failures == 0


def test_a_failed_probe_opens_the_breaker_for_another_cool_down(breaker_store: object) -> None:
    backend, clock = Switch(), FakeClock()
    http = breaker_http(breaker_store, backend, clock)
    for _ in range(3):
        with pytest.raises(Unavailable):
            get_loans(http)
    clock.advance(31)
    with pytest.raises(Unavailable):
        get_loans(http)
    assert backend.calls == 4
    state = http.breaker_state()
    assert state.state == "open"
    assert state.opened_at == datetime.fromtimestamp(clock.now, UTC)
    with pytest.raises(Unavailable, match="circuit open"):
        get_loans(http)
    assert backend.calls == 4


def test_half_open_lets_a_single_probe_through(breaker_store: object) -> None:
    store: MemoryBreakerStore = breaker_store  # type: ignore[assignment]
    now = 1000.0
    for _ in range(2):
        store.on_failure("bib-x", now, threshold=2, probe=False)
    assert store.before_call("bib-x", now + 1, 30, 5) == "reject"
    assert store.before_call("bib-x", now + 31, 30, 5) == "probe"
    assert store.before_call("bib-x", now + 31.5, 30, 5) == "reject", "one probe at a time"
    # a probe whose process died frees its turn after its time-to-live
    assert store.before_call("bib-x", now + 37, 30, 5) == "probe"
    store.on_success("bib-x", probe=True)
    assert store.before_call("bib-x", now + 38, 30, 5) == "closed"


def test_a_late_success_does_not_close_an_open_breaker(breaker_store: object) -> None:
    store: MemoryBreakerStore = breaker_store  # type: ignore[assignment]
    for _ in range(2):
        store.on_failure("bib-x", 1000.0, threshold=2, probe=False)
    store.on_success("bib-x", probe=False)  # a call sent before the breaker opened
    assert store.state("bib-x", 1001.0, 30).state == "open"


def test_successes_reset_the_count_of_consecutive_failures(breaker_store: object) -> None:
    store: MemoryBreakerStore = breaker_store  # type: ignore[assignment]
    store.on_failure("bib-x", 1000.0, threshold=3, probe=False)
    store.on_failure("bib-x", 1000.0, threshold=3, probe=False)
    store.on_success("bib-x", probe=False)
    store.on_failure("bib-x", 1000.0, threshold=3, probe=False)
    assert store.state("bib-x", 1000.0, 30).state == "closed"


def test_two_processes_share_the_redis_breaker(redis_client: object) -> None:
    prefix = f"test-{uuid.uuid4().hex}:"
    backend, clock = Switch(), FakeClock()
    first = breaker_http(RedisBreakerStore(redis_client, prefix), backend, clock)  # type: ignore[arg-type]
    second = breaker_http(RedisBreakerStore(redis_client, prefix), backend, clock)  # type: ignore[arg-type]
    try:
        for _ in range(3):
            with pytest.raises(Unavailable):
                get_loans(first)
        assert second.breaker_state().state == "open"
        with pytest.raises(Unavailable, match="circuit open"):
            get_loans(second)
        assert backend.calls == 3
    finally:
        for key in redis_client.scan_iter(match=prefix + "*"):  # type: ignore[attr-defined]
            redis_client.delete(key)  # type: ignore[attr-defined]


def test_an_unreachable_redis_lets_calls_through(caplog: pytest.LogCaptureFixture) -> None:
    store = RedisBreakerStore.from_url("redis://127.0.0.1:1/0", timeout_s=0.05)
    http = make_http(Recorder(json_response(200, {"loans": []})), breaker_store=store)
    assert get_loans(http) == {"loans": []}
    assert http.breaker_state().state == "closed"
    assert "breaker store unreachable" in caplog.text


def test_refusals_and_dead_links_do_not_count_as_failures() -> None:
    backend = Recorder(problem(404, "unknown_patron"))
    http = make_http(backend, options={"breaker_threshold": 1})
    for _ in range(3):
        with pytest.raises(LinkInvalid):
            get_loans(http)
    assert http.breaker_state().state == "closed"


# -- last-good snapshots -----------------------------------------------------------------


def loans_parser(body: object) -> tuple[str, ...]:
    return tuple(loan["loan_id"] for loan in body["loans"])  # type: ignore[index]


def read_loans(http: ResilientHTTP) -> object:
    return http.read(ctx(), "loans:p-123", lambda: get_loans(http), loans_parser)


@pytest.mark.parametrize(
    "failure",
    [
        problem(503, "unavailable"),
        httpx.ConnectError("refused"),
        httpx.Response(
            200, content=b"<html>proxy error</html>", headers={"content-type": "text/html"}
        ),
        json_response(200, {"status": "ok", "data": None}),
    ],
    ids=["503", "connection", "not-json", "wrong-shape"],
)
def test_a_failed_read_serves_the_last_good_copy_with_its_time(
    failure: httpx.Response | Exception,
) -> None:
    clock = FakeClock()
    backend = Recorder(json_response(200, {"loans": [{"loan_id": "l-1"}]}))
    snapshots = MemorySnapshotStore()
    http = make_http(backend, clock=clock, snapshot_store=snapshots, options={"max_attempts": 1})
    first = read_loans(http)
    assert first.data == ("l-1",) and not first.stale

    clock.advance(3600)
    backend.answers = [failure]
    second = read_loans(http)
    assert second.stale
    assert second.data == ("l-1",)
    assert second.fetched_at == first.fetched_at == datetime.fromtimestamp(clock.now - 3600, UTC)


def test_without_a_snapshot_the_failure_is_raised() -> None:
    http = make_http(
        Recorder(problem(503, "unavailable")),
        snapshot_store=MemorySnapshotStore(),
        options={"max_attempts": 1},
    )
    with pytest.raises(Unavailable):
        read_loans(http)


def test_a_dead_link_is_never_hidden_behind_a_snapshot() -> None:
    backend = Recorder(json_response(200, {"loans": [{"loan_id": "l-1"}]}))
    http = make_http(backend, snapshot_store=MemorySnapshotStore())
    read_loans(http)
    backend.answers = [problem(404, "unknown_patron")]
    with pytest.raises(LinkInvalid):
        read_loans(http)


def test_snapshots_are_kept_per_account_with_their_subject() -> None:
    snapshots = MemorySnapshotStore()
    http = make_http(
        Recorder(json_response(200, {"loans": [{"loan_id": "l-1"}]})), snapshot_store=snapshots
    )
    read_loans(http)
    stored = snapshots.get("bib-test", "loans:p-123")
    assert stored is not None
    assert json.loads(stored[0]) == {"loans": [{"loan_id": "l-1"}]}
    snapshots.purge_subject("link-1")
    assert snapshots.get("bib-test", "loans:p-123") is None


def test_a_broken_snapshot_store_never_breaks_a_read() -> None:
    class Broken:
        def get(self, *args: object) -> None:
            raise RuntimeError("database down")

        def put(self, *args: object) -> None:
            raise RuntimeError("database down")

    backend = Recorder(json_response(200, {"loans": [{"loan_id": "l-1"}]}))
    http = make_http(backend, snapshot_store=Broken(), options={"max_attempts": 1})
    assert read_loans(http).data == ("l-1",)
    backend.answers = [problem(503, "unavailable")]
    with pytest.raises(Unavailable):
        read_loans(http)


class CountingStore(MemorySnapshotStore):
    """A snapshot store that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.puts: list[tuple[str, str, datetime]] = []
        self.fail_next = False

    def put(self, instance_slug: str, key: str, subject: str, text: str, at: datetime) -> None:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database down")
        self.puts.append((key, subject, at))
        super().put(instance_slug, key, subject, text, at)


def loans_answer(*ids: str) -> httpx.Response:
    return json_response(200, {"loans": [{"loan_id": i} for i in ids]})


def test_an_unchanged_read_is_not_written_again_but_says_when_it_was_fetched() -> None:
    clock, store = FakeClock(), CountingStore()
    http = make_http(Recorder(loans_answer("l-1")), clock=clock, snapshot_store=store)
    first = read_loans(http)
    clock.advance(60)
    second = read_loans(http)
    assert len(store.puts) == 1
    # The caller always gets the real fetch time; the store keeps the first one.
    assert second.fetched_at == datetime.fromtimestamp(clock.now, UTC) > first.fetched_at
    assert store.get("bib-test", "loans:p-123")[1] == first.fetched_at  # type: ignore[index]


def test_a_changed_read_is_written_at_once() -> None:
    clock, store = FakeClock(), CountingStore()
    backend = Recorder(loans_answer("l-1"))
    http = make_http(backend, clock=clock, snapshot_store=store)
    read_loans(http)
    clock.advance(1)
    backend.answers = [loans_answer("l-1", "l-2")]
    read_loans(http)
    assert len(store.puts) == 2
    stored = store.get("bib-test", "loans:p-123")
    assert stored is not None and json.loads(stored[0])["loans"][1] == {"loan_id": "l-2"}
    assert stored[1] == datetime.fromtimestamp(clock.now, UTC)


def test_an_unchanged_read_is_written_again_once_the_stored_time_is_too_old() -> None:
    clock, store = FakeClock(), CountingStore()
    http = make_http(Recorder(loans_answer("l-1")), clock=clock, snapshot_store=store)
    read_loans(http)
    clock.advance(299)
    read_loans(http)
    assert len(store.puts) == 1
    clock.advance(2)  # 301 s after the stored fetch time
    read_loans(http)
    assert len(store.puts) == 2
    assert store.puts[-1][2] == datetime.fromtimestamp(clock.now, UTC)


def test_the_refresh_interval_is_an_instance_option() -> None:
    clock, store = FakeClock(), CountingStore()
    http = make_http(
        Recorder(loans_answer("l-1")),
        clock=clock,
        snapshot_store=store,
        options={"snapshot_refresh_s": 0},
    )
    read_loans(http)
    read_loans(http)
    assert len(store.puts) == 2


def test_the_same_payload_for_another_subject_is_written() -> None:
    """A card unlinked then linked again is a new link: its copy must exist for it."""
    store = CountingStore()
    http = make_http(Recorder(loans_answer("l-1")), snapshot_store=store)
    for subject in ("link-1", "link-2"):
        context = CallContext.with_timeout(5.0, subject=subject)
        http.read(context, "loans:p-123", lambda: get_loans(http), loans_parser)
    assert [p[1] for p in store.puts] == ["link-1", "link-2"]


def test_a_failed_write_is_tried_again_on_the_next_read() -> None:
    store = CountingStore()
    http = make_http(Recorder(loans_answer("l-1")), snapshot_store=store)
    store.fail_next = True
    assert read_loans(http).data == ("l-1",)
    read_loans(http)
    read_loans(http)
    assert len(store.puts) == 1


def test_unchanged_reads_from_many_threads_write_once_each_change() -> None:
    clock, store = FakeClock(), CountingStore()
    http = make_http(Recorder(loans_answer("l-1")), clock=clock, snapshot_store=store)
    read_loans(http)
    threads = [threading.Thread(target=read_loans, args=(http,)) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.puts) == 1


# -- the fresh-snapshot read cache -----------------------------------------------------


def cached_ctx(max_age_s: float = 30.0, subject: str = "link-1") -> CallContext:
    return CallContext.with_timeout(5.0, subject=subject, max_age_s=max_age_s)


def read_cached(http: ResilientHTTP, context: CallContext) -> object:
    return http.read(context, "loans:p-123", lambda: get_loans(http, context), loans_parser)


def test_a_young_answer_is_reused_without_asking_the_back_end() -> None:
    clock = FakeClock()
    backend = Recorder(loans_answer("l-1"))
    http = make_http(backend, clock=clock)  # no store at all: this process's memory
    first = read_cached(http, cached_ctx())
    clock.advance(29)
    again = read_cached(http, cached_ctx())
    assert len(backend.requests) == 1
    assert (again.data, again.stale, again.fetched_at) == (first.data, False, first.fetched_at)
    clock.advance(2)  # 31 s: too old
    read_cached(http, cached_ctx())
    assert len(backend.requests) == 2


def test_without_max_age_every_read_asks() -> None:
    backend = Recorder(loans_answer("l-1"))
    http = make_http(backend, snapshot_store=MemorySnapshotStore())
    read_cached(http, cached_ctx(0.0))
    read_cached(http, cached_ctx(0.0))
    assert len(backend.requests) == 2


def test_a_young_snapshot_in_the_store_answers_for_another_process() -> None:
    clock, store = FakeClock(), MemorySnapshotStore()
    writer = make_http(Recorder(loans_answer("l-1")), clock=clock, snapshot_store=store)
    first = read_cached(writer, cached_ctx(0.0))
    clock.advance(5)
    backend = Recorder(loans_answer("l-9"))
    other = make_http(backend, clock=clock, snapshot_store=store)
    answer = read_cached(other, cached_ctx(10.0))
    assert backend.requests == []
    assert (answer.data, answer.stale, answer.fetched_at) == (("l-1",), False, first.fetched_at)
    assert read_cached(other, cached_ctx(4.0)).data == ("l-9",)  # older than asked: read


def test_a_write_about_the_same_account_makes_the_next_read_ask() -> None:
    clock, store = FakeClock(), MemorySnapshotStore()
    backend = Recorder(loans_answer("l-1"))
    http = make_http(backend, clock=clock, snapshot_store=store)
    read_cached(http, cached_ctx())
    read_cached(http, cached_ctx(subject="link-2"))
    clock.advance(1)
    backend.answers = [json_response(200, {"loan_id": "l-1", "renewed": True})]
    writes = len(backend.requests)
    http.request(cached_ctx(), "POST", "/v1/loans/{id}/renewal", path_params={"id": "l-1"})
    assert len(backend.requests) == writes + 1  # a write always goes out
    clock.advance(1)
    backend.answers = [loans_answer("l-2")]
    assert read_cached(http, cached_ctx()).data == ("l-2",)  # neither memory nor store
    assert len(backend.requests) == writes + 2
    # Another account's cached reads are left alone; the re-read is cached again.
    read_cached(http, cached_ctx(subject="link-2"))
    assert read_cached(http, cached_ctx()).data == ("l-2",)
    assert len(backend.requests) == writes + 2


def test_a_write_with_an_unknown_outcome_also_makes_the_next_read_ask() -> None:
    backend = Recorder(loans_answer("l-1"))
    http = make_http(backend)
    read_cached(http, cached_ctx())
    backend.answers = [httpx.ReadTimeout("no answer")]
    with pytest.raises(OutcomeUnknown):
        http.request(cached_ctx(), "POST", "/v1/renewal", idempotency_key="k-1")
    backend.answers = [loans_answer("l-2")]
    assert read_cached(http, cached_ctx()).data == ("l-2",)


def test_a_refused_write_changed_nothing_and_keeps_the_cache() -> None:
    backend = Recorder(loans_answer("l-1"))
    http = make_http(backend)
    read_cached(http, cached_ctx())
    backend.answers = [problem(409, "not_renewable", "Non.")]
    with pytest.raises(Refused):
        http.request(cached_ctx(), "POST", "/v1/renewal", idempotency_key="k-1")
    calls = len(backend.requests)
    assert read_cached(http, cached_ctx()).data == ("l-1",)
    assert len(backend.requests) == calls


# -- checking answers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(
            200, content=b'{"loans": [1, 2, <html>', headers={"content-type": "application/json"}
        ),
        httpx.Response(200, content=b"<html>hello</html>", headers={"content-type": "text/html"}),
        httpx.Response(200, content=b""),
    ],
    ids=["truncated-json", "html", "empty"],
)
def test_an_answer_that_is_not_json_breaks_the_contract(answer: httpx.Response) -> None:
    http = make_http(Recorder(answer))
    with pytest.raises(ContractBroken, match="bib-test"):
        get_loans(http)


def test_a_body_of_the_wrong_shape_breaks_the_contract_not_the_portal() -> None:
    http = make_http(Recorder(json_response(200, {"status": "ok", "data": None})))
    with pytest.raises(ContractBroken, match="missing field 'loans'"):
        read_loans(http)


def test_the_spec_is_checked_on_every_json_answer() -> None:
    contract = Contract(
        "library.yaml",
        {
            "openapi": "3.1.0",
            "paths": {
                LOANS: {
                    "get": {
                        "responses": {
                            "200": {
                                "content": {
                                    "application/json": {
                                        "schema": {"type": "object", "required": ["loans"]}
                                    }
                                }
                            }
                        }
                    }
                }
            },
        },
    )
    http = make_http(Recorder(json_response(200, {"data": []})), contract=contract)
    with pytest.raises(ContractBroken, match=r"GET /v1/patrons/\{patron_id\}/loans 200.*'loans'"):
        get_loans(http)


def test_a_body_past_the_size_limit_breaks_the_contract() -> None:
    http = make_http(
        Recorder(httpx.Response(200, content=b"x" * 2048)), options={"max_body_bytes": 1024}
    )
    with pytest.raises(ContractBroken, match="too large"):
        get_loans(http)


def test_a_pdf_must_be_a_pdf() -> None:
    route = "/v1/families/{family_id}/invoices/{invoice_id}/pdf"
    params = {"family_id": "f", "invoice_id": "i"}
    good = httpx.Response(200, content=b"%PDF-1.4 ...", headers={"content-type": "application/pdf"})
    http = make_http(Recorder(good))
    assert http.request(ctx(), "GET", route, path_params=params, accept="pdf").content.startswith(
        b"%PDF"
    )
    http = make_http(Recorder(json_response(200, {"pdf": "nope"})))
    with pytest.raises(ContractBroken, match="PDF"):
        http.request(ctx(), "GET", route, path_params=params, accept="pdf")


# -- status mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (problem(404, "unknown_patron"), LinkInvalid),
        (problem(409, "not_renewable", "Réservé par un autre lecteur."), Refused),
        (problem(422, "invalid_request", "Date invalide."), Refused),
        (problem(423, "card_locked", "Carte bloquée."), Refused),
        (problem(401, "unauthorized"), Unavailable),
        (problem(429, "rate_limited"), Unavailable),
        (problem(500, "internal_error"), Unavailable),
        (problem(502, "bad_gateway"), Unavailable),
        (problem(503, "unavailable"), Unavailable),
        (problem(504, "timeout"), Unavailable),
        (problem(400, "invalid_request"), ContractBroken),
        (problem(403, "forbidden"), ContractBroken),
        (problem(418, "teapot"), ContractBroken),
        (httpx.Response(302, headers={"Location": "/elsewhere"}), ContractBroken),
    ],
    ids=lambda v: str(v.status_code) if isinstance(v, httpx.Response) else v.__name__,
)
def test_statuses_map_to_the_four_typed_errors(answer: httpx.Response, error: type) -> None:
    http = make_http(Recorder(answer), options={"max_attempts": 1})
    with pytest.raises(error):
        get_loans(http)


def test_a_refusal_carries_the_back_ends_reason_and_code() -> None:
    http = make_http(Recorder(problem(409, "not_cancellable", "Le document est en route.")))
    with pytest.raises(Refused) as raised:
        http.request(ctx(), "DELETE", "/v1/holds/{hold_id}", path_params={"hold_id": "h"})
    assert raised.value.reason == "Le document est en route."
    assert raised.value.code == "not_cancellable"


def test_koha_errors_are_read_by_the_koha_type() -> None:
    koha = httpx.Response(400, json={"error": "Validation failed", "error_code": "invalid"})
    http = make_http(Recorder(koha), error_parser=KohaLibraryConnector.error_parser)
    with pytest.raises(Refused) as raised:
        http.request(ctx(), "POST", "/api/v1/auth/password/validation", refusals={400: None})
    assert raised.value.reason == "Validation failed"
    assert raised.value.code == "invalid"


def test_the_generic_parser_reads_only_rfc_9457_problems() -> None:
    koha = httpx.Response(400, json={"error": "Validation failed", "error_code": "invalid"})
    http = make_http(Recorder(koha))
    with pytest.raises(Refused) as raised:
        http.request(ctx(), "POST", "/api/v1/auth/password/validation", refusals={400: None})
    assert (raised.value.reason, raised.value.code) == (
        "Le service a refusé la demande.",
        "refused",
    )


def test_a_401_is_a_refused_proof_only_with_the_proof_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    verify = "/v1/patrons/verify"
    http = make_http(Recorder(problem(401, "invalid_proof", "Carte ou code incorrect.")))
    with pytest.raises(Refused, match="invalid_proof"):
        http.request(ctx(), "POST", verify, refusals={401: {"invalid_proof"}})

    http = make_http(Recorder(problem(401, "unauthorized", "Clé d'API invalide.")))
    with (
        caplog.at_level(logging.ERROR, logger="connectors.http"),
        pytest.raises(Unavailable, match="misconfigured"),
    ):
        http.request(ctx(), "POST", verify, refusals={401: {"invalid_proof"}})
    assert any(
        r.levelno == logging.ERROR and "credentials" in r.getMessage() for r in caplog.records
    )


def test_a_404_under_an_account_can_be_a_refusal_instead_of_a_dead_link() -> None:
    route = "/v1/patrons/{patron_id}/loans/{loan_id}/renewal"
    params = {"patron_id": "p", "loan_id": "l"}
    http = make_http(Recorder(problem(404, "unknown_loan", "Cet emprunt a déjà été rendu.")))
    with pytest.raises(Refused) as raised:
        http.request(ctx(), "POST", route, path_params=params, not_found="Prêt introuvable.")
    assert (raised.value.reason, raised.value.code) == (
        "Cet emprunt a déjà été rendu.",
        "not_found",
    )

    http = make_http(Recorder(httpx.Response(404)))
    with pytest.raises(Refused, match="not_found") as raised:
        http.request(ctx(), "POST", route, path_params=params, not_found="Prêt introuvable.")
    assert raised.value.reason == "Prêt introuvable."


def test_path_parameters_are_escaped() -> None:
    backend = Recorder(json_response(200, {}))
    http = make_http(backend)
    http.get_json(ctx(), LOANS, path_params={"patron_id": "../admin?x=1"})
    assert backend.requests[0].url.raw_path == b"/lib/v1/patrons/..%2Fadmin%3Fx%3D1/loans"


# -- authentication ----------------------------------------------------------------------


def test_an_api_key_goes_in_its_header_with_the_request_id() -> None:
    backend = Recorder(json_response(200, {}))
    get_loans(make_http(backend))
    sent = backend.requests[0]
    assert sent.headers["X-Api-Key"] == SECRET_KEY
    assert sent.headers["X-Request-Id"] == "req-1"
    assert "Idempotency-Key" not in sent.headers


def test_koha_gets_http_basic() -> None:
    backend = Recorder(json_response(200, {}))
    http = make_http(backend, credentials={"username": "portal", "password": "s3cret"})
    get_loans(http)
    expected = "Basic " + base64.b64encode(b"portal:s3cret").decode()
    assert backend.requests[0].headers["Authorization"] == expected


class OAuthBackend:
    """Issues numbered tokens; the API accepts only the latest one."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.expires_in = expires_in
        self.issued = 0
        self.token_forms: list[dict[str, list[str]]] = []
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            from urllib.parse import parse_qs

            self.token_forms.append(parse_qs(request.content.decode()))
            self.issued += 1
            return json_response(
                200,
                {
                    "access_token": f"tok-{self.issued}",
                    "token_type": "Bearer",
                    "expires_in": self.expires_in,
                },
            )
        auth = request.headers.get("Authorization", "")
        self.seen.append(auth)
        if auth != f"Bearer tok-{self.issued}":
            return problem(401, "unauthorized")
        return json_response(200, {"loans": []})


OAUTH = {"client_id": "portal", "client_secret": "oauth-secret", "token_url": "/v1/oauth/token"}


def test_an_oauth_token_is_fetched_once_and_reused() -> None:
    backend = OAuthBackend()
    http = make_http(backend, credentials=OAUTH)
    get_loans(http)
    get_loans(http)
    assert backend.issued == 1
    assert backend.token_forms[0] == {
        "grant_type": ["client_credentials"],
        "client_id": ["portal"],
        "client_secret": ["oauth-secret"],
    }
    assert backend.seen == ["Bearer tok-1", "Bearer tok-1"]


def test_an_oauth_token_is_renewed_shortly_before_it_expires() -> None:
    backend = OAuthBackend(expires_in=10)  # under the 30 s margin: renewed every time
    http = make_http(backend, credentials=OAUTH)
    get_loans(http)
    get_loans(http)
    assert backend.issued == 2


def test_a_revoked_token_is_replaced_once_even_for_a_write() -> None:
    backend = OAuthBackend()
    http = make_http(backend, credentials=OAUTH)
    get_loans(http)
    backend.issued += 1  # the back-end rotated its tokens: tok-1 is no longer valid
    http.request(
        ctx(),
        "POST",
        "/v1/patrons/{patron_id}/loans",
        path_params={"patron_id": "p"},
        idempotency_key="k",
    )
    assert backend.seen[-2:] == ["Bearer tok-1", "Bearer tok-3"]


def test_refused_client_credentials_are_a_misconfiguration() -> None:
    def backend(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid_client"})

    http = make_http(backend, credentials=OAUTH)
    with pytest.raises(Unavailable, match="misconfigured"):
        get_loans(http)


# -- logs and outcomes -------------------------------------------------------------------


def test_logs_never_show_card_numbers_pins_secrets_or_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = Recorder(
        problem(401, "invalid_proof", f"Carte {CARD} inconnue"),
        json_response(200, {"patron_id": "p-98765", "display_name": "Marie-Thérèse Durand"}),
        json_response(200, {"loans": []}),
    )
    http = make_http(backend)
    with caplog.at_level(logging.DEBUG):
        for _ in range(2):
            with contextlib.suppress(Refused):
                http.request(
                    ctx(),
                    "POST",
                    "/v1/patrons/verify",
                    json_body={"card_number": CARD, "pin": PIN},
                    refusals={401: {"invalid_proof"}},
                )
        http.get_json(ctx(), LOANS, path_params={"patron_id": "p-98765"})
    ours = [r for r in caplog.records if r.name.startswith("connectors")]
    assert ours, "the calls were logged"
    # Timestamps, thread and process ids are numbers that may contain the PIN's digits.
    volatile = {"created", "msecs", "relativeCreated", "thread", "process", "taskName"}
    text = "\n".join(
        r.getMessage() + " " + repr({k: v for k, v in r.__dict__.items() if k not in volatile})
        for r in ours
    )
    for secret in (CARD, PIN, SECRET_KEY, "p-98765", "Marie-Thérèse"):
        assert secret not in text
    assert "POST /v1/patrons/verify -> 401" in text
    assert "GET /v1/patrons/{patron_id}/loans -> 200" in text
    loans_record = next(r for r in ours if getattr(r, "route", "") == LOANS)
    assert loans_record.instance == "bib-test"  # type: ignore[attr-defined]
    assert loans_record.request_id == "req-1"  # type: ignore[attr-defined]
    assert loans_record.attempt == 1  # type: ignore[attr-defined]
    assert loans_record.status == "200"  # type: ignore[attr-defined]


def test_each_retry_is_logged_with_its_attempt(caplog: pytest.LogCaptureFixture) -> None:
    http = make_http(Recorder(problem(503, "x"), httpx.ConnectError("no"), json_response(200, {})))
    with caplog.at_level(logging.INFO, logger="connectors.http"):
        get_loans(http)
    attempts = [(r.attempt, r.status) for r in caplog.records if hasattr(r, "attempt")]
    assert attempts == [(1, "503"), (2, "ConnectError"), (3, "200")]


def test_the_outcome_hook_sees_every_call() -> None:
    outcomes: list[tuple[str, bool, float]] = []
    backend = Recorder(
        json_response(200, {}),
        problem(409, "not_renewable"),
        problem(404, "unknown_patron"),
        problem(500, "boom"),
        json_response(200, {"status": "ok"}),
    )
    http = make_http(backend, on_outcome=lambda *o: outcomes.append(o))
    get_loans(http)
    for error in (Refused, LinkInvalid, Unavailable):
        with pytest.raises(error):
            http.request(ctx(), "POST", "/v1/x")
    http.contract = Contract(
        "t",
        {"paths": {"/v1/y": {"get": {"responses": {"204": {"description": "no content"}}}}}},
    )
    with pytest.raises(ContractBroken):
        http.request(ctx(), "GET", "/v1/y")
    assert [(slug, ok) for slug, ok, _ in outcomes] == [
        ("bib-test", True),
        ("bib-test", True),
        ("bib-test", True),
        ("bib-test", False),
        ("bib-test", False),
    ]
    assert all(duration >= 0 for *_, duration in outcomes)


def test_a_failing_outcome_hook_does_not_fail_the_call() -> None:
    def hook(*args: object) -> None:
        raise RuntimeError("metrics down")

    http = make_http(Recorder(json_response(200, {"loans": []})), on_outcome=hook)
    assert get_loans(http) == {"loans": []}


def test_the_layer_is_safe_to_share_between_threads() -> None:
    http = make_http(Recorder(json_response(200, {"loans": []})))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                get_loans(http)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# -- sent, no answer: the outcome of a write is unknown ------------------------------------

RENEWAL = "/v1/applications/{application_id}/renewal"


def renew(http: ResilientHTTP, key: str | None = "idem-7", context: CallContext | None = None):
    return http.request(
        context or ctx(),
        "POST",
        RENEWAL,
        path_params={"application_id": "dem-1"},
        idempotency_key=key,
    )


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("no answer in time"),
        httpx.ReadError("connection reset while reading"),
        httpx.RemoteProtocolError("server disconnected without sending a response"),
        httpx.WriteTimeout("stalled while sending the body"),
        httpx.WriteError("broken pipe while sending the body"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_a_write_sent_without_an_answer_has_an_unknown_outcome(failure: Exception) -> None:
    backend = Recorder(failure)
    http = make_http(backend)
    with pytest.raises(OutcomeUnknown):
        renew(http)
    assert len(backend.requests) == 1, "a write whose outcome is unknown is never re-sent"


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("no connection in time"),
        httpx.PoolTimeout("no free connection"),
        problem(503, "unavailable", retry_after=5),
        problem(429, "rate_limited", retry_after=5),
        problem(500, "internal_error"),
    ],
    ids=lambda v: str(v.status_code) if isinstance(v, httpx.Response) else type(v).__name__,
)
def test_a_write_not_sent_or_refused_before_processing_did_nothing(
    failure: Exception | httpx.Response,
) -> None:
    backend = Recorder(failure)
    http = make_http(backend)
    with pytest.raises(Unavailable) as raised:
        renew(http)
    assert not isinstance(raised.value, OutcomeUnknown)
    assert len(backend.requests) == 1


def test_an_open_breaker_refuses_a_write_before_sending_it() -> None:
    backend = Recorder(httpx.ReadTimeout("slow"))
    http = make_http(backend, options={"breaker_threshold": 1, "breaker_cooldown_s": 30})
    with pytest.raises(OutcomeUnknown):
        renew(http, "idem-1")
    with pytest.raises(Unavailable, match="circuit open") as raised:
        renew(http, "idem-2")
    assert not isinstance(raised.value, OutcomeUnknown)
    assert len(backend.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped")],
    ids=lambda exc: type(exc).__name__,
)
def test_reads_and_writes_without_a_key_stay_unavailable(failure: Exception) -> None:
    """Nothing to settle later: a read is asked again anyway, a proof check has no key."""
    with pytest.raises(Unavailable) as raised:
        get_loans(make_http(Recorder(failure), options={"max_attempts": 1}))
    assert not isinstance(raised.value, OutcomeUnknown)
    with pytest.raises(Unavailable) as raised:
        renew(make_http(Recorder(failure)), key=None)
    assert not isinstance(raised.value, OutcomeUnknown)


def test_a_token_endpoint_timing_out_before_a_write_did_nothing() -> None:
    def backend(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            raise httpx.ReadTimeout("token endpoint slow", request=request)
        raise AssertionError("the write must not be sent without a token")

    creds = {"client_id": "portal", "client_secret": "s", "token_url": "/oauth/token"}
    http = make_http(backend, credentials=creds)
    with pytest.raises(Unavailable) as raised:
        renew(http)
    assert not isinstance(raised.value, OutcomeUnknown)


def test_a_write_unanswered_within_the_deadline_over_a_real_socket_is_unknown(
    silent_socket: str,
) -> None:
    """The socket accepts the connection and the request, and never answers."""
    http = ResilientHTTP(instance(silent_socket, timeout_s=0.2, connect_timeout_s=0.2))
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown):
        renew(http, context=ctx(2.0))
    assert time.monotonic() - started < 0.2 + 0.25
    http.close()


def test_a_write_to_a_closed_port_did_nothing() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nobody listens: the connection is refused
    http = ResilientHTTP(instance(f"http://127.0.0.1:{port}", timeout_s=0.5))
    with pytest.raises(Unavailable) as raised:
        renew(http)
    assert not isinstance(raised.value, OutcomeUnknown)
    http.close()


def test_a_connection_dropped_after_the_request_was_read_is_unknown() -> None:
    """A server that reads the whole request, then closes without a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(2)
            data = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    http = ResilientHTTP(instance(f"http://127.0.0.1:{server.getsockname()[1]}", timeout_s=2.0))
    try:
        with pytest.raises(OutcomeUnknown):
            renew(http)
    finally:
        http.close()
        thread.join(2)
        server.close()
