"""``ResilientHTTP``: the client every connector goes through (see the package's
docstring for the status mapping).

One ``ResilientHTTP`` serves one configured instance. It is thread-safe: the httpx
client, the breaker and snapshot stores, the token cache and the read cache all are.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from connectors.base import (
    CallContext,
    ConnectorError,
    ContractBroken,
    InstanceConfig,
    LinkInvalid,
    OutcomeUnknown,
    ReadResult,
    Refused,
    Unavailable,
    new_request_id,
)
from connectors.http.admission import QUEUE_WAIT_S, Admission
from connectors.http.auth import TOKEN_MARGIN_S, Auth
from connectors.http.breaker import BreakerState, BreakerStore, MemoryBreakerStore
from connectors.http.policy import (
    MIN_ATTEMPT_S,
    READ_METHODS,
    RETRYABLE_STATUSES,
    UNAVAILABLE_STATUSES,
    Policy,
    parse_retry_after,
)
from connectors.http.problem import ErrorParser, Problem, is_json, mime, parse_problem
from connectors.http.refcache import ReferenceCache, ReferenceData
from connectors.http.snapshots import Snapshots, SnapshotStore
from connectors.http.snapshots import what as key_kind
from connectors.http.tls import shared_ssl_context

if TYPE_CHECKING:
    from connectors.contract import Contract

log = logging.getLogger("connectors.http")

T = TypeVar("T")

#: ``(instance slug, ok, duration in seconds)``, called once per logical call. ``ok`` is
#: False when the back-end was unavailable or broke its contract; a refusal or an
#: invalid link is the back-end working as intended.
OutcomeHook = Callable[[str, bool, float], None]

Accept = Literal["json", "pdf", "none"]

USER_AGENT = "compte-territorial-connectors/0.1"
#: Statuses that carry a refusal the resident can read, unless the caller says otherwise.
DEFAULT_REFUSALS: Mapping[int, Collection[str] | None] = {409: None, 422: None, 423: None}
DEFAULT_REFUSAL_REASON = "Le service a refusé la demande."
#: Transport failures that happen before a byte of the request reaches the back-end: it
#: cannot have acted. Every other failure of an attempt happens once the request may
#: have been received (timeouts while reading, a connection dropped before the answer).
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)
ACCEPT_HEADERS: Mapping[str, str] = {
    "json": "application/json, application/problem+json",
    "pdf": "application/pdf, application/problem+json",
    "none": "application/json, application/problem+json",
}


@dataclass(frozen=True, slots=True)
class HTTPResponse:
    """A successful answer: status, headers, raw bytes and, for JSON, the parsed body."""

    status: int
    headers: httpx.Headers
    content: bytes
    body: Any = None


class _Transient(Exception):
    """An attempt that failed in a way worth recording as a breaker failure.

    ``label`` is what the request log shows in place of a status (``ReadTimeout``).
    ``sent`` is True when the request may have reached the back-end and been acted on
    with no answer coming back; a status (429, 503) is an answer, so it is never "sent".
    """

    def __init__(
        self,
        reason: str,
        retry_after: float | None = None,
        status: int | None = None,
        label: str = "error",
        *,
        sent: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status
        self.label = str(status) if status is not None else label
        self.sent = sent and status is None


@contextlib.contextmanager
def _transport_errors(what: str = "", *, may_act: bool = True) -> Iterator[None]:
    """httpx's timeouts and connection failures, as transient failures of an attempt.

    ``may_act`` is False for calls that cannot act on the resident's behalf (the token
    endpoint): their failures never make the outcome of a write unknown.
    """
    try:
        yield
    except httpx.TimeoutException as exc:
        name = type(exc).__name__
        sent = may_act and not isinstance(exc, NOT_SENT_ERRORS)
        raise _Transient(f"{what}timeout ({name})", label=name, sent=sent) from None
    except httpx.TransportError as exc:
        name = type(exc).__name__
        sent = may_act and not isinstance(exc, NOT_SENT_ERRORS)
        raise _Transient(f"{what}connection failed ({name})", label=name, sent=sent) from None


@dataclass(frozen=True, slots=True)
class _Call:
    """One logical call, as the connector described it."""

    method: str
    route: str
    path: str
    params: Mapping[str, str | int] | None
    json_body: Any
    headers: Mapping[str, str] | None
    idempotency_key: str | None
    accept: Accept
    refusals: Mapping[int, Collection[str] | None]
    not_found: type[ConnectorError] | str

    @property
    def where(self) -> str:
        return f"{self.method} {self.route}"

    @property
    def shared_key(self) -> tuple[object, ...]:
        """What a GET asks, whoever asks it: two equal keys get the same answer."""
        return (
            self.path,
            tuple(sorted((self.params or {}).items())),
            tuple(sorted((k.lower(), v) for k, v in (self.headers or {}).items())),
            self.accept,
        )

    @property
    def settles_later(self) -> bool:
        """A write the back-end deduplicates by key: an unanswered one can be asked again."""
        return self.method not in READ_METHODS and bool(self.idempotency_key)


class _SharedGet:
    """A GET on its way, and its successful answer once it lands."""

    __slots__ = ("landed", "response")

    def __init__(self) -> None:
        self.landed = threading.Event()
        self.response: HTTPResponse | None = None


def _stamp_request_id(request: httpx.Request) -> None:
    """Every request this client sends carries an ``X-Request-Id``: a call's is its
    ``CallContext``'s; what has none of its own (the token request) gets the caller's."""
    if "X-Request-Id" not in request.headers:
        request.headers["X-Request-Id"] = new_request_id()


class ResilientHTTP:
    """Deadlines, retries, breaker, snapshots, auth, status mapping and logs for one instance.

    ``transport`` lets tests plug an ``httpx.MockTransport``; ``clock``, ``sleep`` and
    ``rng`` let them control time and jitter. ``contract`` checks every 2xx JSON body
    against the instance's OpenAPI spec. ``error_parser`` reads error bodies for a
    back-end whose errors are not RFC 9457 problems (the connector type's
    ``error_parser``; the standard's ``parse_problem`` by default).
    """

    def __init__(
        self,
        instance: InstanceConfig,
        *,
        breaker_store: BreakerStore | None = None,
        snapshot_store: SnapshotStore | None = None,
        reference_cache: ReferenceCache | None = None,
        on_outcome: OutcomeHook | None = None,
        contract: Contract | None = None,
        error_parser: ErrorParser | None = None,
        concurrency: int = 0,
        queue_wait_s: float = QUEUE_WAIT_S,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.instance = instance
        self.policy = Policy.from_options(instance.options)
        self.breakers: BreakerStore = breaker_store or MemoryBreakerStore()
        self.snapshots = Snapshots(
            instance.slug, snapshot_store, refresh_s=self.policy.snapshot_refresh_s
        )
        #: At most ``concurrency`` reads of this process in the back-end at once (0: no
        #: limit); the next waits ``queue_wait_s`` at most, then is unavailable. Writes
        #: (and what they read first) are not held back: a resident's action is rare,
        #: and refusing it would cost more than the thread it holds.
        self.admission = Admission(instance.slug, concurrency, queue_wait_s)
        #: Reference data (titles, library names) shared by every resident, kept for hours.
        self.reference = ReferenceData(instance.slug, reference_cache)
        self.contract = contract
        self.error_parser: ErrorParser = error_parser or parse_problem
        self._on_outcome = on_outcome
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._auth = Auth(instance)
        #: (subject, key) -> set once the read of it on its way in this process ends.
        self._in_flight: dict[tuple[str, str], threading.Event] = {}
        self._in_flight_lock = threading.Lock()
        #: Notified when a half-open probe of this process lands.
        self._probe_done = threading.Condition()
        #: GETs on their way, by what they ask: the same GET asked meanwhile shares it.
        self._gets: dict[tuple[object, ...], _SharedGet] = {}
        self._client = httpx.Client(
            base_url=instance.base_url.rstrip("/") + "/",
            transport=transport,
            # Not one context per client: loading the CA bundle is the costly part.
            verify=shared_ssl_context(),
            auth=self._auth.httpx_auth(),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            trust_env=False,
            event_hooks={"request": [_stamp_request_id]},
        )

    @property
    def slug(self) -> str:
        return self.instance.slug

    def close(self) -> None:
        self._client.close()

    def breaker_state(self) -> BreakerState:
        return self.breakers.state(self.slug, self._clock(), self.policy.breaker_cooldown_s)

    # -- reads with snapshots ------------------------------------------------------------

    def read(
        self,
        ctx: CallContext,
        key: str,
        fetch: Callable[[], Any],
        parse: Callable[[Any], T],
        keep: Callable[[Any], Any] | None = None,
    ) -> ReadResult[T]:
        """Fetch a JSON payload, turn it into dataclasses, keep it as the last good copy.

        ``keep`` trims the payload to what the copy may hold (``parse`` must accept the
        trimmed form too): a number the resident proves ownership with, for instance,
        has no business sitting in a cache.

        If the back-end is unavailable or broke its contract, the last good copy is
        returned with ``stale=True`` and its own fetch time; without one, the error
        propagates. ``key`` must identify the account (e.g. ``loans:<patron_id>``).

        With ``ctx.max_age_s`` > 0, a last good copy younger than that (in this
        process's memory, or in the store) answers at once, ``stale=False`` with its
        own fetch time, and nothing is sent; a write about ``ctx.subject`` through this
        client since then rules it out, and so does a failed read of it. Such a read
        that finds the same read on its way in this process waits for its answer.
        """
        started_at = datetime.fromtimestamp(self._clock(), UTC)
        if ctx.max_age_s > 0:
            cached = self._fresh(ctx, key, parse, started_at)
            if cached is None:
                cached = self._after_the_same_read(ctx, key, parse)
            if cached is not None:
                return cached
        flight = (ctx.subject, key)
        with self._in_flight_lock:
            landed = self._in_flight.get(flight)
            if landed is None:
                landed = self._in_flight[flight] = threading.Event()
            else:
                landed = None  # another read of it is on its way: it ends that one's wait
        try:
            return self._read(ctx, key, fetch, parse, keep, started_at)
        finally:
            if landed is not None:
                with self._in_flight_lock:
                    self._in_flight.pop(flight, None)
                landed.set()

    def _after_the_same_read(
        self, ctx: CallContext, key: str, parse: Callable[[Any], T]
    ) -> ReadResult[T] | None:
        """A read that may use a recent answer, while the same read is on its way in this
        process (a card asked a moment before the to-do list): its answer, once it lands
        (within this call's deadline), rather than a second call."""
        with self._in_flight_lock:
            landed = self._in_flight.get((ctx.subject, key))
        if landed is None or not landed.wait(timeout=ctx.remaining()):
            return None
        return self._fresh(ctx, key, parse, datetime.fromtimestamp(self._clock(), UTC))

    def _read(
        self,
        ctx: CallContext,
        key: str,
        fetch: Callable[[], Any],
        parse: Callable[[Any], T],
        keep: Callable[[Any], Any] | None,
        started_at: datetime,
    ) -> ReadResult[T]:
        try:
            if ctx.offline:
                raise Unavailable("offline: snapshots only")
            # Connectors that compose several calls (Koha) shape the payload in ``fetch``:
            # a slip there is as much a broken contract as one in ``parse``. One place in
            # the back-end for the whole read, however many calls it makes.
            with self.admission.enter(ctx) if ctx.held_back else contextlib.nullcontext():
                payload = self.parse(key, lambda _: fetch(), None)
            data = self.parse(key, parse, payload)
        except (Unavailable, ContractBroken) as exc:
            if ctx.subject and not ctx.offline:
                # The back-end fails for this account now: what was read of it before
                # no longer answers as fresh, so every part of the page says the same.
                self.snapshots.invalidate(ctx.subject, started_at)
            snapshot = self.snapshots.get(key)
            if snapshot is None:
                raise
            text, fetched_at = snapshot
            try:
                data = self.parse(key, parse, json.loads(text))
            except (ValueError, ContractBroken):
                log.warning(
                    "instance %s: snapshot of %s no longer readable", self.slug, key_kind(key)
                )
                raise exc from None
            log.info(
                "instance %s: serving snapshot of %s from %s (%s)",
                self.slug,
                key_kind(key),
                fetched_at.isoformat(),
                type(exc).__name__,
                extra={"instance": self.slug, "request_id": ctx.request_id},
            )
            return ReadResult(data=data, fetched_at=fetched_at, stale=True)
        fetched_at = datetime.fromtimestamp(self._clock(), UTC)
        self.snapshots.put(
            ctx.subject,
            key,
            keep(payload) if keep else payload,
            fetched_at,
            started_at=started_at,
        )
        return ReadResult(data=data, fetched_at=fetched_at, stale=False)

    def _fresh(
        self, ctx: CallContext, key: str, parse: Callable[[Any], T], now: datetime
    ) -> ReadResult[T] | None:
        found = self.snapshots.fresh(ctx.subject, key, ctx.max_age_s, now)
        if found is None:
            return None
        text, fetched_at = found
        try:
            data = self.parse(key, parse, json.loads(text))
        except (ValueError, ContractBroken):
            return None
        log.debug(
            "instance %s: %s answered from a copy of %s",
            self.slug,
            key_kind(key),
            fetched_at.isoformat(),
            extra={"instance": self.slug, "request_id": ctx.request_id},
        )
        return ReadResult(data=data, fetched_at=fetched_at, stale=False)

    def parse(self, what: str, parse: Callable[[Any], T], payload: Any) -> T:
        """Run ``parse(payload)``; any slip in the payload's shape becomes ``ContractBroken``.

        Connectors parse every body through this (reads do it in ``read``), so a field
        the contract check let through but the code cannot use never escapes as a bare
        ``KeyError``. ``what`` names the call in the message (its part before ``:``).
        """
        try:
            return parse(payload)
        except ContractBroken:
            raise
        except KeyError as exc:
            raise ContractBroken(
                f"instance {self.slug!r}: {key_kind(what)}: missing field {exc.args[0]!r}"
            ) from None
        except (TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ContractBroken(
                f"instance {self.slug!r}: {key_kind(what)}: unusable payload ({type(exc).__name__})"
            ) from None

    # -- one call ------------------------------------------------------------------------

    def request(
        self,
        ctx: CallContext,
        method: str,
        route: str,
        *,
        path_params: Mapping[str, object] | None = None,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        accept: Accept = "json",
        refusals: Mapping[int, Collection[str] | None] | None = None,
        not_found: type[ConnectorError] | str = LinkInvalid,
    ) -> HTTPResponse:
        """Send one call to the back-end under ``ctx``'s deadline.

        ``route`` is the template (``/v1/patrons/{patron_id}``), filled from
        ``path_params``; only the template is logged. Reads (GET) are retried with
        backoff within the deadline; writes are sent once, with ``idempotency_key``.
        A write with a key that was sent but not answered raises ``OutcomeUnknown``
        (see the module's table); one that was not sent raises ``Unavailable``.
        ``refusals`` adds statuses (optionally limited to problem codes) that mean
        "refused" for this call, e.g. ``{401: {"invalid_proof"}}`` on a proof check.
        ``not_found`` is what a 404 means here: an error class (``LinkInvalid`` by
        default: the linked account is gone), or a reason in plain words for when the 404
        is about a loan, an invoice… that is gone while the account itself is fine: then
        ``Refused(detail or reason, "not_found")`` is raised, with the back-end's own
        ``detail`` when it gave one.
        """
        if ctx.offline:
            # Nothing leaves the portal, and nothing counts for the breaker or availability.
            raise Unavailable("offline: nothing sent")
        call = _Call(
            method=method.upper(),
            route=route,
            path=self._path(route, path_params or {}),
            params=params,
            json_body=json_body,
            headers=headers,
            idempotency_key=idempotency_key,
            accept=accept,
            refusals={**DEFAULT_REFUSALS, **(refusals or {})},
            not_found=not_found,
        )
        if call.method == "GET":
            return self._shared_get(ctx, call)
        return self._logical_call(ctx, call)

    def _shared_get(self, ctx: CallContext, call: _Call) -> HTTPResponse:
        """A GET asked while the very same GET is on its way (a card's parts read side by
        side, the to-do list beside the cards) waits for that one's answer instead of
        sending it again: only a successful answer is shared; otherwise it is sent."""
        key = call.shared_key
        with self._in_flight_lock:
            leader = self._gets.get(key)
            if leader is None:
                mine = self._gets[key] = _SharedGet()
        if leader is not None:
            if leader.landed.wait(timeout=ctx.remaining()) and leader.response is not None:
                return leader.response
            return self._logical_call(ctx, call)
        try:
            mine.response = self._logical_call(ctx, call)
            return mine.response
        finally:
            with self._in_flight_lock:
                self._gets.pop(key, None)
            mine.landed.set()

    def _logical_call(self, ctx: CallContext, call: _Call) -> HTTPResponse:
        started = time.monotonic()
        ok = False
        try:
            response = self._call(ctx, call)
            ok = True
            if call.method not in READ_METHODS:
                # What was read about this account before may no longer be true.
                self._invalidate(ctx)
            return response
        except OutcomeUnknown:
            self._invalidate(ctx)  # it may have been done
            raise
        except (Refused, LinkInvalid):
            ok = True
            raise
        finally:
            self._report(ok, time.monotonic() - started)

    def _invalidate(self, ctx: CallContext) -> None:
        self.snapshots.invalidate(ctx.subject, datetime.fromtimestamp(self._clock(), UTC))

    def probe(self, ctx: CallContext, route: str) -> None:
        """Check the back-end answers and accepts the portal's credentials.

        ``route`` should name a resource that does not exist (``/v1/patrons/probe``): a
        404 behind a successful authentication is the cheapest proof of health a
        standard API allows. Raises ``Unavailable`` or ``ContractBroken`` otherwise.
        It goes through the breaker like any call, so it becomes the half-open probe
        after a cool-down.
        """
        try:
            self.request(ctx, "GET", route, accept="none")
        except (LinkInvalid, Refused):
            return

    def get_json(self, ctx: CallContext, route: str, **kwargs: Any) -> Any:
        """The parsed JSON body of a GET."""
        return self.request(ctx, "GET", route, **kwargs).body

    def _problem(self, headers: httpx.Headers, content: bytes) -> Problem:
        try:
            return self.error_parser(headers, content)
        except Exception:  # a lenient reader: an unreadable error body says nothing
            log.exception("instance %s: error parser failed", self.slug)
            return parse_problem(httpx.Headers(), b"")

    def _report(self, ok: bool, duration: float) -> None:
        if self._on_outcome is None:
            return
        try:
            self._on_outcome(self.slug, ok, duration)
        except Exception:
            log.exception("instance %s: outcome hook failed", self.slug)

    @staticmethod
    def _path(route: str, path_params: Mapping[str, object]) -> str:
        path = route
        for name, value in path_params.items():
            text = str(value)
            if not text:
                raise ValueError(f"empty path parameter {name!r} for {route}")
            path = path.replace("{" + name + "}", quote(text, safe=""))
        if "{" in path:
            raise ValueError(f"unfilled path parameter in {route}")
        return path

    def _call(self, ctx: CallContext, call: _Call) -> HTTPResponse:
        """Attempts under the breaker, retried for reads, until an answer or the deadline."""
        token_retried = False
        attempt = 0
        last: _Transient | None = None
        while True:
            attempt += 1
            remaining = ctx.remaining()
            if remaining <= 0:
                raise self._unavailable(last, "deadline reached before the call")
            now = self._clock()
            decision = self.breakers.before_call(
                self.slug,
                now,
                self.policy.breaker_cooldown_s,
                probe_ttl_s=min(remaining, self.instance.timeout_s) + 1.0,
            )
            if decision == "reject":
                if self._await_probe(ctx):
                    attempt -= 1  # waiting for another call's probe is not an attempt
                    continue
                self._log(ctx, call, "circuit-open", 0.0, attempt)
                raise self._unavailable(last, "circuit open", self._cooldown_left(now))
            probe = decision == "probe"
            try:
                status, headers, content = self._attempt(ctx, call, attempt)
            except ConnectorError:
                # The back-end answered (too much, or refused our credentials): it is up.
                self.breakers.on_success(self.slug, probe=probe)
                self._probe_landed(probe)
                raise
            except _Transient as exc:
                self.breakers.on_failure(
                    self.slug, self._clock(), self.policy.breaker_threshold, probe=probe
                )
                self._probe_landed(probe)
                last = exc
                if exc.sent and call.settles_later:
                    raise OutcomeUnknown(
                        f"instance {self.slug!r}: {call.where}: sent, no answer ({exc.reason})"
                    ) from None
                delay = self._retry_delay(ctx, call, exc, attempt)
                if delay is None:
                    raise self._unavailable(exc, exc.reason) from None
                self._sleep(delay)
                continue
            self.breakers.on_success(self.slug, probe=probe)
            self._probe_landed(probe)
            if status == 401 and self._auth.oauth and not token_retried:
                # A revoked or rotated token: the call was refused before being processed,
                # so one more try with a fresh token is safe even for a write.
                token_retried = True
                self._auth.drop_token()
                continue
            return self._interpret(call, status, headers, content)

    #: How long a call refused while another call probes the back-end waits, at most,
    #: before asking the breaker again (a probe of another process is not notified).
    PROBE_WAIT_S = 0.1

    def _await_probe(self, ctx: CallContext) -> bool:
        """Refused because another call is probing the back-end after its cool-down (the
        parts of a card read side by side): wait for that probe instead of failing, and
        say whether there is still time to ask the breaker again."""
        if self.breaker_state().state != "half_open":
            return False  # open and cooling down: nothing to wait for
        left = ctx.remaining() - MIN_ATTEMPT_S
        if left <= 0:
            return False
        with self._probe_done:
            self._probe_done.wait(timeout=min(self.PROBE_WAIT_S, left))
        return ctx.remaining() > MIN_ATTEMPT_S

    def _probe_landed(self, probe: bool) -> None:
        if probe:
            with self._probe_done:
                self._probe_done.notify_all()

    def _retry_delay(
        self, ctx: CallContext, call: _Call, failure: _Transient, attempt: int
    ) -> float | None:
        """How long to wait before the next attempt, or None to give up now.

        Only reads are retried, only on what another try may cure, and only if the wait
        and a useful attempt still fit in the deadline; a ``Retry-After`` that does not
        fit means giving up at once, telling the caller when to come back.
        """
        if call.method not in READ_METHODS or attempt >= self.policy.max_attempts:
            return None
        if failure.status is not None and failure.status not in RETRYABLE_STATUSES:
            return None
        left = ctx.remaining()
        if failure.retry_after is not None:
            delay = failure.retry_after
        else:
            ceiling = self.policy.backoff_base_s * 2 ** (attempt - 1)
            # "Full jitter": spreads the retries of many processes over the whole window.
            delay = min(self.policy.backoff_cap_s, ceiling) * self._rng()
        return delay if delay + MIN_ATTEMPT_S <= left else None

    def _cooldown_left(self, now: float) -> float | None:
        opened = self.breaker_state().opened_at
        if opened is None:
            return None
        return max(0.0, opened.timestamp() + self.policy.breaker_cooldown_s - now)

    def _unavailable(
        self, last: _Transient | None, reason: str, retry_after: float | None = None
    ) -> Unavailable:
        if retry_after is None and last is not None:
            retry_after = last.retry_after
        detail = reason if last is None or last.reason == reason else f"{reason} ({last.reason})"
        return Unavailable(f"instance {self.slug!r}: {detail}", retry_after=retry_after)

    def _timeout(self, remaining: float) -> httpx.Timeout:
        connect = min(self.instance.connect_timeout_s, remaining)
        read = min(self.instance.timeout_s, remaining)
        return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)

    def _headers(self, ctx: CallContext, call: _Call) -> dict[str, str]:
        headers = {
            "Accept": ACCEPT_HEADERS[call.accept],
            "X-Request-Id": ctx.request_id,
            **self._auth.headers(lambda: self._fetch_token(ctx)),
        }
        if call.idempotency_key:
            headers["Idempotency-Key"] = call.idempotency_key
        headers.update(call.headers or {})
        return headers

    def _attempt(
        self, ctx: CallContext, call: _Call, attempt: int
    ) -> tuple[int, httpx.Headers, bytes]:
        """Send once; return (status, headers, body) or raise ``_Transient``."""
        started = time.monotonic()
        label = "error"
        on_its_way = self.admission.call_started()  # the back-end's pace, for the limit
        try:
            headers = self._headers(ctx, call)
            remaining = ctx.remaining()
            if remaining <= 0:
                raise _Transient("deadline reached", label="deadline")
            request = self._client.build_request(
                call.method,
                call.path.lstrip("/"),
                params=call.params,
                json=call.json_body,
                headers=headers,
                timeout=self._timeout(remaining),
            )
            with _transport_errors():
                response = self._client.send(request, stream=True)
                try:
                    content = self._read_body(ctx, response)
                finally:
                    response.close()
            label = str(response.status_code)
            if response.status_code in UNAVAILABLE_STATUSES:
                retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
                if retry_after is None:
                    retry_after = self._problem(response.headers, content).retry_after
                raise _Transient(
                    f"HTTP {response.status_code}", retry_after, status=response.status_code
                )
            return response.status_code, response.headers, content
        except _Transient as exc:
            label = exc.label
            raise
        finally:
            self.admission.call_ended(on_its_way)
            self._log(ctx, call, label, time.monotonic() - started, attempt)

    def _read_body(self, ctx: CallContext, response: httpx.Response) -> bytes:
        """Read the body chunk by chunk, giving up at the deadline or past the size limit."""
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.policy.max_body_bytes:
                    raise ContractBroken(f"instance {self.slug!r}: response body too large")
                chunks.append(chunk)
                if ctx.expired:
                    raise _Transient(
                        "deadline reached while reading the body", label="deadline", sent=True
                    )
        except httpx.DecodingError:
            raise ContractBroken(f"instance {self.slug!r}: undecodable body") from None
        return b"".join(chunks)

    def _fetch_token(self, ctx: CallContext) -> tuple[str, float]:
        """OAuth2 client credentials grant (RFC 6749 §4.4), ``client_secret_post``."""
        url, form = self._auth.token_request()
        remaining = ctx.remaining()
        if remaining <= 0:
            raise _Transient("deadline reached before the token request", label="deadline")
        with _transport_errors("token endpoint: ", may_act=False):
            response = self._client.post(
                url,
                data=form,
                headers={"X-Request-Id": ctx.request_id},
                timeout=self._timeout(remaining),
            )
        if response.status_code in UNAVAILABLE_STATUSES:
            raise _Transient(f"token endpoint HTTP {response.status_code}", label="token")
        if response.status_code != 200:
            log.error(
                "instance %s: token endpoint refused the portal's client credentials (HTTP %s)",
                self.slug,
                response.status_code,
                extra={"instance": self.slug, "request_id": ctx.request_id},
            )
            raise Unavailable(f"instance {self.slug!r}: misconfigured client credentials")
        try:
            body = response.json()
            token = body["access_token"]
            expires_in = float(body.get("expires_in", 300))
            if not isinstance(token, str) or not token:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise ContractBroken(f"instance {self.slug!r}: unusable token response") from None
        return token, time.monotonic() + max(0.0, expires_in - TOKEN_MARGIN_S)

    def _interpret(
        self, call: _Call, status: int, headers: httpx.Headers, content: bytes
    ) -> HTTPResponse:
        where = f"instance {self.slug!r}: {call.where}"
        if 200 <= status < 300:
            return self._success(call, status, headers, content)
        problem = self._problem(headers, content)
        if status in call.refusals:
            codes = call.refusals[status]
            if codes is None or problem.code in codes:
                raise Refused(
                    problem.detail or DEFAULT_REFUSAL_REASON,
                    problem.code or "refused",
                    problem.reason_code,
                )
        if status == 401:
            log.error(
                "%s: the back-end refused the portal's own credentials (HTTP 401); "
                "check the instance's credentials",
                where,
                extra={"instance": self.slug},
            )
            raise Unavailable(f"{where}: misconfigured credentials (HTTP 401)")
        if status == 404:
            if isinstance(call.not_found, str):
                raise Refused(problem.detail or call.not_found, "not_found")
            raise call.not_found(f"{where}: HTTP 404")
        raise ContractBroken(f"{where}: unexpected HTTP {status}")

    def _success(
        self, call: _Call, status: int, headers: httpx.Headers, content: bytes
    ) -> HTTPResponse:
        where = f"instance {self.slug!r}: {call.where} {status}"
        content_type = headers.get("content-type", "")
        if call.accept != "json":
            if call.accept == "pdf" and (
                mime(content_type) != "application/pdf" or not content.startswith(b"%PDF")
            ):
                raise ContractBroken(f"{where}: expected a PDF document")
            if self.contract is not None:
                # The status must be one the spec declares (a DELETE answering 200 with
                # some JSON instead of 204 has not done what was asked).
                self.contract.check(self.slug, call.method, call.route, status, None)
            return HTTPResponse(status, headers, content)
        if not is_json(content_type):
            raise ContractBroken(f"{where}: expected JSON, got another content type")
        try:
            body = json.loads(content)
        except ValueError:
            raise ContractBroken(f"{where}: body is not valid JSON") from None
        if self.contract is not None:
            self.contract.check(self.slug, call.method, call.route, status, body, content)
        return HTTPResponse(status, headers, content, body)

    def _log(
        self, ctx: CallContext, call: _Call, status: str, duration: float, attempt: int
    ) -> None:
        """One line per attempt: the route *template*, never ids, bodies or secrets."""
        log.info(
            "%s %s %s -> %s in %.0f ms (attempt %d, request %s)",
            self.slug,
            call.method,
            call.route,
            status,
            # Whole milliseconds, as printed: a raw float's digits, kept in the record's
            # args, could read like part of an account number to a log scanner.
            round(duration * 1000),
            attempt,
            ctx.request_id,
            extra={
                "instance": self.slug,
                "method": call.method,
                "route": call.route,
                "status": status,
                "duration_ms": round(duration * 1000, 1),
                "attempt": attempt,
                "request_id": ctx.request_id,
            },
        )
