"""Circuit breaker: a back-end that keeps failing is left alone for a cool-down, then one
probe call (across every web process sharing the store) decides whether it is back.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import redis

log = logging.getLogger("connectors.http")

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


def redis_client(url: str, timeout_s: float) -> redis.Redis:
    """Short socket timeouts: a slow Redis must not eat a resident's deadline."""
    import redis as redis_lib

    return redis_lib.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)


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
        return cls(redis_client(url, timeout_s), prefix)

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
