"""The one resilient HTTP layer every connector goes through.

Why one layer: a resident's page must never wait on a slow back-end past its budget,
a back-end that is down must not be hammered by every web process, and a back-end
that answers nonsense must be noticed. Putting deadlines, retries, the circuit
breaker, last-good snapshots, authentication, status mapping and request logs here
means a connector type only says *what* to ask and how to read the answer.

One ``ResilientHTTP`` serves one configured instance. It is thread-safe.

Status mapping (after retries):

==========================================  =============================================
back-end answer                              raised
==========================================  =============================================
2xx with the expected body                   nothing: the response is returned
2xx, but not JSON or not what the spec says  ``ContractBroken``
401 for the portal's own credentials         ``Unavailable`` (misconfigured; logged as error)
404 on the linked resource                   ``LinkInvalid`` (or what the caller asks for)
409 / 422 / 423 (and caller-chosen refusals) ``Refused(detail, code)``
429, 5xx, timeouts, connection errors        ``Unavailable(retry_after)``
a write sent with an idempotency key, then   ``OutcomeUnknown``
no answer (read timeout, connection dropped
after sending, deadline while reading)
any other 4xx or 3xx                         ``ContractBroken``
==========================================  =============================================

Not sent, or refused before being processed (connection refused, connect timeout,
429, 503, open breaker, deadline before sending) means nothing was done: ``Unavailable``,
and the resident may simply try again. Sent and unanswered means the back-end may have
done it: for a write carrying an ``Idempotency-Key`` that is ``OutcomeUnknown``, so the
portal asks again with the same key instead of saying "nothing was done". A read, or
a write without a key (a proof check), has nothing to settle later: ``Unavailable``.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar
from urllib.parse import quote, urljoin

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
)

if TYPE_CHECKING:
    import redis

    from connectors.contract import Contract

log = logging.getLogger("connectors.http")

T = TypeVar("T")

#: ``(instance slug, ok, duration in seconds)``, called once per logical call. ``ok`` is
#: False when the back-end was unavailable or broke its contract; a refusal or an
#: invalid link is the back-end working as intended.
OutcomeHook = Callable[[str, bool, float], None]

Accept = Literal["json", "pdf", "none"]

USER_AGENT = "compte-territorial-connectors/0.1"
#: Statuses worth another try for an idempotent read.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
#: Statuses that say "the back-end is not able to serve now".
UNAVAILABLE_STATUSES = frozenset({429}) | frozenset(range(500, 600))
#: Statuses that carry a refusal the resident can read, unless the caller says otherwise.
DEFAULT_REFUSALS: Mapping[int, Collection[str] | None] = {409: None, 422: None, 423: None}
DEFAULT_REFUSAL_REASON = "Le service a refusé la demande."
#: Below this much time left, another attempt could not complete: give up instead.
MIN_ATTEMPT_S = 0.05
#: OAuth2 tokens are renewed this long before they expire.
TOKEN_MARGIN_S = 30.0
READ_METHODS = frozenset({"GET", "HEAD"})
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


# -- policy ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """Retry and breaker settings of one instance, overridable in its ``options``."""

    max_attempts: int = 3
    backoff_base_s: float = 0.1
    backoff_cap_s: float = 2.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 30.0
    max_body_bytes: int = 10 * 1024 * 1024

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Policy:
        """Read the policy keys of an instance's options; ``ValueError`` names a bad one.

        Other option keys belong to the connector type and are left alone.
        """
        values: dict[str, Any] = {}
        for name, kind, minimum in (
            ("max_attempts", int, 1),
            ("breaker_threshold", int, 1),
            ("breaker_cooldown_s", float, 0.0),
            ("backoff_base_s", float, 0.0),
            ("backoff_cap_s", float, 0.0),
            ("max_body_bytes", int, 1),
        ):
            if name not in options:
                continue
            value = options[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"options.{name}")
            if kind is int and not isinstance(value, int):
                raise ValueError(f"options.{name}")
            if value < minimum:
                raise ValueError(f"options.{name}")
            values[name] = kind(value)
        return cls(**values)


# -- circuit breaker ---------------------------------------------------------------------

BreakerDecision = Literal["closed", "probe", "reject"]


@dataclass(frozen=True, slots=True)
class BreakerState:
    """What the status page shows for one instance."""

    state: Literal["closed", "open", "half_open"]
    failures: int
    opened_at: datetime | None


class BreakerStore(Protocol):
    """Where breaker state lives: per process, or shared by every web process.

    Times are wall-clock seconds (``time.time()``) so that several processes agree.
    Each method is one atomic step, so two processes cannot both send the half-open
    probe.
    """

    def before_call(
        self, slug: str, now: float, cooldown_s: float, probe_ttl_s: float
    ) -> BreakerDecision:
        """``closed``: go; ``probe``: go, you are the one half-open probe; ``reject``."""
        ...

    def on_success(self, slug: str, *, probe: bool) -> None: ...

    def on_failure(self, slug: str, now: float, threshold: int, *, probe: bool) -> None: ...

    def state(self, slug: str, now: float, cooldown_s: float) -> BreakerState: ...

    def reset(self, slug: str) -> None:
        """Close the breaker and forget its failures (an operator who fixed the back-end)."""
        ...


def _breaker_state(
    failures: int, opened_at: float | None, now: float, cooldown_s: float
) -> BreakerState:
    if opened_at is None:
        return BreakerState("closed", failures, None)
    state: Literal["open", "half_open"] = "open" if now < opened_at + cooldown_s else "half_open"
    return BreakerState(state, failures, datetime.fromtimestamp(opened_at, UTC))


@dataclass
class _Breaker:
    failures: int = 0
    opened_at: float | None = None
    probe_until: float | None = None


class MemoryBreakerStore:
    """Breaker state of this process only: right for one web process and for tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, _Breaker] = {}

    def before_call(
        self, slug: str, now: float, cooldown_s: float, probe_ttl_s: float
    ) -> BreakerDecision:
        with self._lock:
            b = self._breakers.get(slug)
            if b is None or b.opened_at is None:
                return "closed"
            if now < b.opened_at + cooldown_s:
                return "reject"
            if b.probe_until is not None and now < b.probe_until:
                return "reject"
            b.probe_until = now + probe_ttl_s
            return "probe"

    def on_success(self, slug: str, *, probe: bool) -> None:
        with self._lock:
            b = self._breakers.get(slug)
            # A late success of a call sent before the breaker opened does not close it:
            # only the probe, sent after the cool-down, speaks for the back-end now.
            if b is not None and (probe or b.opened_at is None):
                del self._breakers[slug]

    def on_failure(self, slug: str, now: float, threshold: int, *, probe: bool) -> None:
        with self._lock:
            b = self._breakers.setdefault(slug, _Breaker())
            b.failures += 1
            if probe:
                b.opened_at, b.probe_until = now, None
            elif b.opened_at is None and b.failures >= threshold:
                b.opened_at = now

    def state(self, slug: str, now: float, cooldown_s: float) -> BreakerState:
        with self._lock:
            b = self._breakers.get(slug) or _Breaker()
            return _breaker_state(b.failures, b.opened_at, now, cooldown_s)

    def reset(self, slug: str) -> None:
        with self._lock:
            self._breakers.pop(slug, None)


_LUA_BEFORE_CALL = """
local opened = redis.call('HGET', KEYS[1], 'opened_at')
if not opened then return 'closed' end
local now = tonumber(ARGV[1])
if now < tonumber(opened) + tonumber(ARGV[2]) then return 'reject' end
local probe = redis.call('HGET', KEYS[1], 'probe_until')
if probe and now < tonumber(probe) then return 'reject' end
redis.call('HSET', KEYS[1], 'probe_until', tostring(now + tonumber(ARGV[3])))
return 'probe'
"""

_LUA_ON_SUCCESS = """
if ARGV[1] == '1' or redis.call('HEXISTS', KEYS[1], 'opened_at') == 0 then
  redis.call('DEL', KEYS[1])
end
return 0
"""

_LUA_ON_FAILURE = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'opened_at', ARGV[1])
  redis.call('HDEL', KEYS[1], 'probe_until')
elseif redis.call('HEXISTS', KEYS[1], 'opened_at') == 0 and failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'opened_at', ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return failures
"""


class RedisBreakerStore:
    """Breaker state shared by every web process through Redis.

    One hash per instance (``<prefix>breaker:<slug>``: failures, opened_at,
    probe_until), changed only by small Lua scripts so each step is atomic. If Redis
    itself fails, calls go ahead as if the breaker were closed: losing the breaker
    must not take every service down with it.
    """

    #: Failure counts of a back-end that stopped being called are forgotten after a day.
    KEY_TTL_S = 86_400

    def __init__(self, client: redis.Redis, prefix: str = "compte-territorial:") -> None:
        self._redis = client
        self._prefix = prefix
        self._before = client.register_script(_LUA_BEFORE_CALL)
        self._success = client.register_script(_LUA_ON_SUCCESS)
        self._failure = client.register_script(_LUA_ON_FAILURE)

    @classmethod
    def from_url(
        cls, url: str, prefix: str = "compte-territorial:", *, timeout_s: float = 0.25
    ) -> RedisBreakerStore:
        """Short socket timeouts: a slow Redis must not eat a resident's deadline."""
        import redis as redis_lib

        client = redis_lib.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        return cls(client, prefix)

    def key(self, slug: str) -> str:
        return f"{self._prefix}breaker:{slug}"

    def before_call(
        self, slug: str, now: float, cooldown_s: float, probe_ttl_s: float
    ) -> BreakerDecision:
        import redis as redis_lib

        try:
            answer = self._before(keys=[self.key(slug)], args=[repr(now), cooldown_s, probe_ttl_s])
        except redis_lib.RedisError as exc:
            log.warning("breaker store unreachable, treating %s as closed: %s", slug, exc)
            return "closed"
        decision = answer.decode() if isinstance(answer, bytes) else str(answer)
        assert decision in ("closed", "probe", "reject")
        return decision  # type: ignore[return-value]

    def on_success(self, slug: str, *, probe: bool) -> None:
        import redis as redis_lib

        try:
            self._success(keys=[self.key(slug)], args=["1" if probe else "0"])
        except redis_lib.RedisError as exc:
            log.warning("breaker store unreachable, success of %s not recorded: %s", slug, exc)

    def on_failure(self, slug: str, now: float, threshold: int, *, probe: bool) -> None:
        import redis as redis_lib

        try:
            self._failure(
                keys=[self.key(slug)],
                args=[repr(now), threshold, "1" if probe else "0", self.KEY_TTL_S],
            )
        except redis_lib.RedisError as exc:
            log.warning("breaker store unreachable, failure of %s not recorded: %s", slug, exc)

    def reset(self, slug: str) -> None:
        """Raises if Redis is unreachable: whoever resets a breaker must know it did not."""
        self._redis.delete(self.key(slug))

    def state(self, slug: str, now: float, cooldown_s: float) -> BreakerState:
        import redis as redis_lib

        try:
            raw = self._redis.hgetall(self.key(slug))
        except redis_lib.RedisError as exc:
            log.warning("breaker store unreachable, state of %s unknown: %s", slug, exc)
            return BreakerState("closed", 0, None)
        fields = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }
        opened = fields.get("opened_at")
        return _breaker_state(
            int(fields.get("failures", 0)), float(opened) if opened else None, now, cooldown_s
        )


# -- last-good snapshots -----------------------------------------------------------------


class SnapshotStore(Protocol):
    """The last good answer of each read, to show (marked stale) while a back-end is down.

    ``subject`` is the pseudonymous account the snapshot is about, so the portal can
    purge every snapshot of an account when it is unlinked or deleted.
    """

    def get(self, instance_slug: str, key: str) -> tuple[str, datetime] | None: ...

    def put(
        self,
        instance_slug: str,
        key: str,
        subject: str,
        payload_json_text: str,
        fetched_at: datetime,
    ) -> None: ...


class MemorySnapshotStore:
    """Snapshots in this process's memory: for tests and single-process setups."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], tuple[str, datetime, str]] = {}

    def get(self, instance_slug: str, key: str) -> tuple[str, datetime] | None:
        with self._lock:
            item = self._items.get((instance_slug, key))
        return None if item is None else (item[0], item[1])

    def put(
        self,
        instance_slug: str,
        key: str,
        subject: str,
        payload_json_text: str,
        fetched_at: datetime,
    ) -> None:
        with self._lock:
            self._items[(instance_slug, key)] = (payload_json_text, fetched_at, subject)

    def purge_subject(self, subject: str) -> None:
        """Forget every snapshot about one account."""
        with self._lock:
            for k in [k for k, v in self._items.items() if v[2] == subject]:
                del self._items[k]


# -- responses ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HTTPResponse:
    """A successful answer: status, headers, raw bytes and, for JSON, the parsed body."""

    status: int
    headers: httpx.Headers
    content: bytes
    body: Any = None


@dataclass(frozen=True, slots=True)
class _Problem:
    code: str
    detail: str
    retry_after: float | None
    reason_code: str = ""


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
    def settles_later(self) -> bool:
        """A write the back-end deduplicates by key: an unanswered one can be asked again."""
        return self.method not in READ_METHODS and bool(self.idempotency_key)


def _parse_retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _what(key: str) -> str:
    """The kind of read a snapshot key names (``loans:<patron_id>`` → ``loans``): what
    logs may say, without the account's id."""
    return key.split(":", 1)[0]


def _mime(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json(content_type: str) -> bool:
    mime = _mime(content_type)
    return mime == "application/json" or mime.endswith("+json")


def _problem(headers: httpx.Headers, content: bytes) -> _Problem:
    """Read an error body leniently: RFC 9457 problem+json or Koha's ``{error, error_code}``."""
    body: Any = None
    if _is_json(headers.get("content-type", "")):
        try:
            body = json.loads(content)
        except ValueError:
            body = None
    if not isinstance(body, dict):
        return _Problem("", "", None)
    code = body.get("code") or body.get("error_code") or ""
    detail = body.get("detail") or body.get("error") or body.get("title") or ""
    retry_after = body.get("retry_after")
    if isinstance(retry_after, bool) or not isinstance(retry_after, int | float):
        retry_after = None
    return _Problem(
        str(code) if isinstance(code, str) else "",
        detail if isinstance(detail, str) else "",
        float(retry_after) if retry_after is not None else None,
        _stable_code(body.get("reason_code")),
    )


def _stable_code(value: Any) -> str:
    """A refusal code as the standard writes them (``too_late``), or "" for anything else."""
    ok = isinstance(value, str) and 0 < len(value) <= 64 and value.isascii()
    if ok and value.replace("_", "").isalnum() and value[0].isalpha() and value.islower():
        return value
    return ""


# -- authentication ----------------------------------------------------------------------


class _Auth:
    """The portal's own credentials for one instance.

    ``api_key`` → ``X-Api-Key``; ``username``/``password`` → HTTP Basic;
    ``client_id``/``client_secret``/``token_url`` → OAuth2 client credentials, the
    token kept until shortly before it expires.
    """

    def __init__(self, instance: InstanceConfig) -> None:
        creds = instance.credentials
        self.api_key = creds.get("api_key")
        self.basic = (creds["username"], creds.get("password", "")) if "username" in creds else None
        self.oauth = "client_id" in creds
        self._client_id = creds.get("client_id", "")
        self._client_secret = creds.get("client_secret", "")
        self._scope = creds.get("scope")
        # Relative to the instance's base URL (the standard APIs put it at ``/oauth/token``,
        # beside ``/v1``), or absolute.
        token_url = creds.get("token_url", "")
        self._token_url = (
            token_url
            if token_url.startswith(("http://", "https://"))
            else urljoin(instance.base_url.rstrip("/") + "/", token_url.lstrip("/"))
        )
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None

    def drop_token(self) -> None:
        with self._lock:
            self._token = None

    def headers(self, fetch_token: Callable[[], tuple[str, float]]) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.api_key is not None:
            headers["X-Api-Key"] = self.api_key
        if self.oauth:
            with self._lock:
                token = self._token
            if token is None or time.monotonic() >= token[1]:
                token = fetch_token()
                with self._lock:
                    self._token = token
            headers["Authorization"] = f"Bearer {token[0]}"
        return headers

    def httpx_auth(self) -> httpx.Auth | None:
        return httpx.BasicAuth(*self.basic) if self.basic else None

    def token_request(self) -> tuple[str, dict[str, str]]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        if self._scope:
            form["scope"] = self._scope
        return self._token_url, form


# -- the client --------------------------------------------------------------------------


class ResilientHTTP:
    """Deadlines, retries, breaker, snapshots, auth, status mapping and logs for one instance.

    ``transport`` lets tests plug an ``httpx.MockTransport``; ``clock``, ``sleep`` and
    ``rng`` let them control time and jitter. ``contract`` checks every 2xx JSON body
    against the instance's OpenAPI spec.
    """

    def __init__(
        self,
        instance: InstanceConfig,
        *,
        breaker_store: BreakerStore | None = None,
        snapshot_store: SnapshotStore | None = None,
        on_outcome: OutcomeHook | None = None,
        contract: Contract | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.instance = instance
        self.policy = Policy.from_options(instance.options)
        self.breakers: BreakerStore = breaker_store or MemoryBreakerStore()
        self.snapshots = snapshot_store
        self.contract = contract
        self._on_outcome = on_outcome
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._auth = _Auth(instance)
        self._client = httpx.Client(
            base_url=instance.base_url.rstrip("/") + "/",
            transport=transport,
            auth=self._auth.httpx_auth(),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            trust_env=False,
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
        """
        try:
            if ctx.offline:
                raise Unavailable("offline: snapshots only")
            # Connectors that compose several calls (Koha) shape the payload in ``fetch``:
            # a slip there is as much a broken contract as one in ``parse``.
            payload = self.parse(key, lambda _: fetch(), None)
            data = self.parse(key, parse, payload)
        except (Unavailable, ContractBroken) as exc:
            snapshot = self._snapshot_get(key)
            if snapshot is None:
                raise
            text, fetched_at = snapshot
            try:
                data = self.parse(key, parse, json.loads(text))
            except (ValueError, ContractBroken):
                log.warning("instance %s: snapshot of %s no longer readable", self.slug, _what(key))
                raise exc from None
            log.info(
                "instance %s: serving snapshot of %s from %s (%s)",
                self.slug,
                _what(key),
                fetched_at.isoformat(),
                type(exc).__name__,
                extra={"instance": self.slug, "request_id": ctx.request_id},
            )
            return ReadResult(data=data, fetched_at=fetched_at, stale=True)
        fetched_at = datetime.fromtimestamp(self._clock(), UTC)
        self._snapshot_put(ctx, key, keep(payload) if keep else payload, fetched_at)
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
                f"instance {self.slug!r}: {_what(what)}: missing field {exc.args[0]!r}"
            ) from None
        except (TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ContractBroken(
                f"instance {self.slug!r}: {_what(what)}: unusable payload ({type(exc).__name__})"
            ) from None

    def _snapshot_get(self, key: str) -> tuple[str, datetime] | None:
        if self.snapshots is None:
            return None
        try:
            return self.snapshots.get(self.slug, key)
        except Exception:  # the snapshot store is a convenience, never a new failure
            log.exception("instance %s: snapshot store failed on get", self.slug)
            return None

    def _snapshot_put(self, ctx: CallContext, key: str, payload: Any, at: datetime) -> None:
        if self.snapshots is None:
            return
        try:
            text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
            self.snapshots.put(self.slug, key, ctx.subject, text, at)
        except Exception:
            log.exception("instance %s: snapshot store failed on put", self.slug)

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
        started = time.monotonic()
        ok = False
        try:
            response = self._call(ctx, call)
            ok = True
            return response
        except (Refused, LinkInvalid):
            ok = True
            raise
        finally:
            self._report(ok, time.monotonic() - started)

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
                self._log(ctx, call, "circuit-open", 0.0, attempt)
                raise self._unavailable(last, "circuit open", self._cooldown_left(now))
            probe = decision == "probe"
            try:
                status, headers, content = self._attempt(ctx, call, attempt)
            except ConnectorError:
                # The back-end answered (too much, or refused our credentials): it is up.
                self.breakers.on_success(self.slug, probe=probe)
                raise
            except _Transient as exc:
                self.breakers.on_failure(
                    self.slug, self._clock(), self.policy.breaker_threshold, probe=probe
                )
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
            if status == 401 and self._auth.oauth and not token_retried:
                # A revoked or rotated token: the call was refused before being processed,
                # so one more try with a fresh token is safe even for a write.
                token_retried = True
                self._auth.drop_token()
                continue
            return self._interpret(call, status, headers, content)

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
                retry_after = _parse_retry_after(response.headers.get("retry-after"), self._clock())
                if retry_after is None:
                    retry_after = _problem(response.headers, content).retry_after
                raise _Transient(
                    f"HTTP {response.status_code}", retry_after, status=response.status_code
                )
            return response.status_code, response.headers, content
        except _Transient as exc:
            label = exc.label
            raise
        finally:
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
            response = self._client.post(url, data=form, timeout=self._timeout(remaining))
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
        problem = _problem(headers, content)
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
                _mime(content_type) != "application/pdf" or not content.startswith(b"%PDF")
            ):
                raise ContractBroken(f"{where}: expected a PDF document")
            if self.contract is not None:
                # The status must be one the spec declares (a DELETE answering 200 with
                # some JSON instead of 204 has not done what was asked).
                self.contract.check(self.slug, call.method, call.route, status, None)
            return HTTPResponse(status, headers, content)
        if not _is_json(content_type):
            raise ContractBroken(f"{where}: expected JSON, got another content type")
        try:
            body = json.loads(content)
        except ValueError:
            raise ContractBroken(f"{where}: body is not valid JSON") from None
        if self.contract is not None:
            self.contract.check(self.slug, call.method, call.route, status, body)
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
            duration * 1000,
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
