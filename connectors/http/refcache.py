"""Reference data shared by every resident: a library's name, a record's title and
author. It changes over months, yet a Koha card asked for it on every view, one call
per title and per library. Kept for hours, in Redis when the portal has one (every web
process and server shares it), else in this process's memory; bounded either way.

Never personal data: only what any resident of the network would be shown for the same
id. A cache that fails is a convenience lost, never a failed read.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import redis

log = logging.getLogger("connectors.http")


class ReferenceCache(Protocol):
    """Text values by key, each forgotten ``ttl_s`` seconds after it was set."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, ttl_s: float) -> None: ...


class MemoryReferenceCache:
    """This process's memory: at most ``max_items`` values, the least recently used
    forgotten first."""

    def __init__(self, max_items: int = 20_000, clock: Callable[[], float] = time.monotonic):
        self._max = max_items
        self._clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def get(self, key: str) -> str | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            if hit[0] <= self._clock():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return hit[1]

    def set(self, key: str, value: str, ttl_s: float) -> None:
        with self._lock:
            self._items[key] = (self._clock() + ttl_s, value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class RedisReferenceCache:
    """Shared by every process through Redis (``<prefix>ref:<key>``, with its TTL);
    Redis's own ``maxmemory`` policy bounds it. Short socket timeouts: a slow Redis
    must not eat a resident's deadline, and a failing one means asking the back-end."""

    def __init__(self, client: redis.Redis, prefix: str = "compte-territorial:") -> None:
        self._redis = client
        self._prefix = prefix + "ref:"

    @classmethod
    def from_url(
        cls, url: str, prefix: str = "compte-territorial:", *, timeout_s: float = 0.25
    ) -> RedisReferenceCache:
        from connectors.http.breaker import redis_client

        return cls(redis_client(url, timeout_s), prefix)

    def get(self, key: str) -> str | None:
        import redis as redis_lib

        try:
            value = self._redis.get(self._prefix + key)
        except redis_lib.RedisError:
            log.warning("reference cache: Redis failed on get", exc_info=True)
            return None
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def set(self, key: str, value: str, ttl_s: float) -> None:
        import redis as redis_lib

        try:
            self._redis.set(self._prefix + key, value, px=max(1, int(ttl_s * 1000)))
        except redis_lib.RedisError:
            log.warning("reference cache: Redis failed on set", exc_info=True)


class ReferenceData:
    """One instance's view of the reference cache: keys are ``<slug>:<kind>:<id>``, values
    JSON. ``lookup`` answers from the cache or computes, keeps and returns the value;
    a computation that raises is not kept."""

    def __init__(self, slug: str, cache: ReferenceCache | None) -> None:
        self.slug = slug
        self.cache: ReferenceCache = cache if cache is not None else MemoryReferenceCache()

    def _key(self, kind: str, ident: str) -> str:
        return f"{self.slug}:{kind}:{ident}"

    def get(self, kind: str, ident: str) -> Any:
        """The kept value, or None."""
        try:
            text = self.cache.get(self._key(kind, ident))
        except Exception:  # a convenience, never a new failure
            log.exception("instance %s: reference cache failed on get", self.slug)
            return None
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None

    def put(self, kind: str, ident: str, value: Any, ttl_s: float) -> None:
        try:
            self.cache.set(self._key(kind, ident), json.dumps(value, ensure_ascii=False), ttl_s)
        except Exception:
            log.exception("instance %s: reference cache failed on set", self.slug)

    def lookup(self, kind: str, ident: str, ttl_s: float, compute: Callable[[], Any]) -> Any:
        found = self.get(kind, ident)
        if found is not None:
            return found
        value = compute()
        self.put(kind, ident, value, ttl_s)
        return value
