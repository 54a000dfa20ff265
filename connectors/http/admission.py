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
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from connectors.base import CallContext, Unavailable

#: How long an operation waits for a place before giving up, by default (seconds).
QUEUE_WAIT_S = 0.25


@dataclass(frozen=True, slots=True)
class AdmissionCounters:
    """What the limit did since the process started."""

    limit: int
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

    __slots__ = ("admitted", "depth", "settled")

    def __init__(self) -> None:
        self.depth = 1
        self.admitted = False
        self.settled = threading.Event()


class Admission:
    """The limit of one instance in this process; ``limit`` 0 lets everything in."""

    def __init__(self, slug: str, limit: int, wait_s: float = QUEUE_WAIT_S) -> None:
        if limit < 0 or wait_s < 0:
            raise ValueError("the concurrency limit and its wait cannot be negative")
        self.slug = slug
        self.limit = limit
        self.wait_s = wait_s
        self._places = threading.BoundedSemaphore(limit) if limit else None
        self._lock = threading.Lock()
        self._holds: dict[int, tuple[CallContext, _Hold]] = {}
        self._in_use = self._peak = self._admitted = self._waited = self._refused = 0

    def counters(self) -> AdmissionCounters:
        with self._lock:
            return AdmissionCounters(
                self.limit, self._in_use, self._peak, self._admitted, self._waited, self._refused
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
        got = waited = False
        try:
            got = self._places.acquire(blocking=False)
            if not got:
                waited = True
                got = self._places.acquire(timeout=min(self.wait_s, ctx.remaining()))
        finally:
            with self._lock:
                hold.admitted = got
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
                    release = True
        if release:
            assert self._places is not None
            self._places.release()
