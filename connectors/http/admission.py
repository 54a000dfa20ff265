"""At most so many requests of this process in one back-end at once.

A back-end that answers slowly but within its deadline (700 ms a call) holds the
thread of every request waiting on it; with enough residents on its cards, every
worker thread waits on it and even ``/healthz`` queues behind. Each instance's
``Admission`` lets ``limit`` operations into the back-end at once (``ResilientHTTP.read``
holds one place per read: one ``CallContext``, however many calls and threads it uses;
writes are not held back). The next waits at most ``wait_s``, then gives up at once as
``Unavailable``, without sending anything: the card says the service is unavailable (or
shows its last copy, marked stale), and the thread goes back to serving other routes.
Counted per process: with several web processes, each lets ``limit`` in.

Only a back-end that is slow is held back: one whose calls take ``slow_s`` or more
(half a second), as a moving average of its recent calls in this process, or one with
a call on its way for that long already (so the first wave of readers of a back-end
that just slowed down teaches the next ones without having to end first). A healthy
back-end far away (200 ms a call) is never refused for being busy, however many
residents read it at once: its reads end soon enough to free their threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from connectors.base import CallContext, Unavailable

#: How long an operation waits for a place before giving up, by default (seconds): a
#: waiting reader holds its thread too, so it is short.
QUEUE_WAIT_S = 0.05
#: A back-end whose calls take this long (seconds, moving average) is slow: held back.
SLOW_CALL_S = 0.5
#: Weight of the latest call in the moving average.
RECENT_WEIGHT = 0.3


@dataclass(frozen=True, slots=True)
class AdmissionCounters:
    """What the limit did since the process started."""

    limit: int
    #: Whether the back-end counts as slow now, so that the limit applies.
    slow: bool
    #: The moving average of its calls' durations (seconds), None before the first.
    typical_call_s: float | None
    in_use: int
    #: The most operations that were in the back-end at once.
    peak: int
    admitted: int
    #: Admitted after waiting for a place.
    waited: int
    #: Given up after ``wait_s`` without a place: nothing sent.
    refused: int


class _Hold:
    """One operation's place, shared by the threads of its ``CallContext``."""

    __slots__ = ("admitted", "depth", "placed", "settled")

    def __init__(self) -> None:
        self.depth = 1
        self.admitted = False
        #: Holds one of the places (False: let in beyond them, the back-end being fast).
        self.placed = False
        self.settled = threading.Event()


class Admission:
    """The limit of one instance in this process; ``limit`` 0 lets everything in."""

    def __init__(
        self, slug: str, limit: int, wait_s: float = QUEUE_WAIT_S, slow_s: float = SLOW_CALL_S
    ) -> None:
        if limit < 0 or wait_s < 0 or slow_s < 0:
            raise ValueError("the concurrency limit, its wait and its threshold cannot be negative")
        self.slug = slug
        self.limit = limit
        self.wait_s = wait_s
        self.slow_s = slow_s
        self._typical: float | None = None
        #: Calls on their way to the back-end, and since when (``time.monotonic()``).
        self._calls: dict[object, float] = {}
        self._places = threading.BoundedSemaphore(limit) if limit else None
        self._lock = threading.Lock()
        self._holds: dict[int, tuple[CallContext, _Hold]] = {}
        self._in_use = self._peak = self._admitted = self._waited = self._refused = 0

    def call_started(self) -> object:
        """A call leaves for the back-end; give ``call_ended`` what this returns."""
        token = object()
        with self._lock:
            self._calls[token] = time.monotonic()
        return token

    def call_ended(self, token: object) -> None:
        with self._lock:
            started = self._calls.pop(token, None)
        if started is not None:
            self.observe(time.monotonic() - started)

    def observe(self, seconds: float) -> None:
        """One call's duration (an attempt, answered or not): the back-end's pace."""
        with self._lock:
            if self._typical is None:
                self._typical = seconds
            else:
                self._typical += RECENT_WEIGHT * (seconds - self._typical)

    @property
    def slow(self) -> bool:
        with self._lock:
            if self._typical is not None and self._typical >= self.slow_s:
                return True
            oldest = min(self._calls.values(), default=None)
        return oldest is not None and time.monotonic() - oldest >= self.slow_s

    def counters(self) -> AdmissionCounters:
        slow = self.slow
        with self._lock:
            return AdmissionCounters(
                self.limit,
                slow,
                self._typical,
                self._in_use,
                self._peak,
                self._admitted,
                self._waited,
                self._refused,
            )

    @contextmanager
    def enter(self, ctx: CallContext) -> Iterator[None]:
        """Hold a place for ``ctx`` while the block runs (nested and side-by-side blocks
        of the same ``ctx`` share it), or raise ``Unavailable`` once ``wait_s`` (or the
        deadline) passed without one."""
        if self._places is None:
            yield
            return
        key = id(ctx)  # the context is kept in ``_holds`` meanwhile: its id stays its own
        with self._lock:
            found = self._holds.get(key)
            if found is None:
                hold = _Hold()
                self._holds[key] = (ctx, hold)
                mine = True
            else:
                hold = found[1]
                hold.depth += 1
                mine = False
        try:
            if mine:
                self._take(ctx, hold)
            elif not hold.settled.wait(timeout=self.wait_s + 1.0) or not hold.admitted:
                raise Unavailable(f"instance {self.slug!r}: no place in the back-end")
            yield
        finally:
            self._leave(key, hold)

    def _take(self, ctx: CallContext, hold: _Hold) -> None:
        assert self._places is not None
        got = waited = beyond = False
        try:
            got = self._places.acquire(blocking=False)
            if not got and not self.slow:
                beyond = True  # every place taken, but the back-end keeps pace: let it in
            elif not got:
                waited = True
                got = self._places.acquire(timeout=min(self.wait_s, ctx.remaining()))
        finally:
            with self._lock:
                hold.placed = got
                hold.admitted = got or beyond
                if hold.admitted:
                    self._admitted += 1
                    self._waited += waited
                    self._in_use += 1
                    self._peak = max(self._peak, self._in_use)
                else:
                    self._refused += 1
            hold.settled.set()
        if not hold.admitted:
            raise Unavailable(
                f"instance {self.slug!r}: {self.limit} requests already in the back-end"
            )

    def _leave(self, key: int, hold: _Hold) -> None:
        release = False
        with self._lock:
            hold.depth -= 1
            if hold.depth == 0:
                del self._holds[key]
                if hold.admitted:
                    self._in_use -= 1
                    release = hold.placed
        if release:
            assert self._places is not None
            self._places.release()
