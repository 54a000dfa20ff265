"""Independent calls of one connector method, sent side by side.

A Koha card asks for a title and a branch name per loan and per hold: one after
another, a card of 30 loans waits for 30 round trips. ``gather`` runs such calls in a
small thread pool shared by the whole process, at most ``max_workers`` at a time for
one ``gather``, and never past the call's deadline.

Everything a connector calls from the threads must be thread-safe: ``ResilientHTTP``
is (httpx's client, the breaker and snapshot stores, the token and read caches).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar, cast

from connectors.base import CallContext, Unavailable

T = TypeVar("T")

#: Threads of the pool shared by every ``gather`` of the process.
POOL_SIZE = 32

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_in_pool = threading.local()


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(
                    max_workers=POOL_SIZE,
                    thread_name_prefix="connectors",
                    initializer=_mark_pool_thread,
                )
    return _pool


def _mark_pool_thread() -> None:
    _in_pool.active = True


def gather(ctx: CallContext, thunks: Sequence[Callable[[], T]], *, max_workers: int = 8) -> list[T]:
    """Run each thunk, concurrently, and return their results in the thunks' order.

    If any raises, the exception of the first failing thunk (in the thunks' order) is
    raised once all started have ended, so a ``ConnectorError`` reaches the caller as if
    the calls had been made one by one; nothing more is started after a failure.
    ``Unavailable`` if the deadline of ``ctx`` passes first (the thunks, which use
    ``ctx`` too, stop at it as well); what is not started then never is.

    At most ``max_workers`` helpers from the pool take the thunks in order. A gather
    inside a gather (a card reading its parts side by side, each part sending its calls
    side by side), called from a pool thread, takes its share of the thunks itself
    beside ``max_workers - 1`` helpers, and calls off a helper the pool has not started
    by the time it runs out of work: so it still goes side by side and can never starve
    the pool (a pool thread only ever waits for helpers that are running, never for
    queued ones; with the pool busy, it does it all in turn). The request's own thread
    only waits, and never past the deadline.
    """
    if not thunks:
        return []
    if ctx.expired:
        raise Unavailable("deadline reached before the calls")
    if len(thunks) == 1 or max_workers <= 1:
        return [thunk() for thunk in thunks]
    outcomes: list[tuple[bool, object] | None] = [None] * len(thunks)
    lock = threading.Lock()
    state = {"next": 0, "failed": False}

    def work() -> None:
        while True:
            with lock:
                index = state["next"]
                if index >= len(thunks) or state["failed"] or ctx.expired:
                    return
                state["next"] = index + 1
            try:
                outcomes[index] = (True, thunks[index]())
            except BaseException as exc:  # raised to the caller, in the thunks' order
                outcomes[index] = (False, exc)
                with lock:
                    state["failed"] = True

    pool = _shared_pool()
    nested = getattr(_in_pool, "active", False)
    helpers: list[Future[None]] = [
        pool.submit(contextvars.copy_context().run, work)
        for _ in range(min(max_workers, len(thunks)) - (1 if nested else 0))
    ]
    if nested:
        work()
        helpers = [helper for helper in helpers if not helper.cancel()]
    _done, late = wait(helpers, timeout=ctx.remaining())
    if late:
        for helper in late:
            helper.cancel()
        raise Unavailable("deadline reached while waiting for concurrent calls")
    results: list[T] = []
    for outcome in outcomes:
        if outcome is None:  # not started: after a failure, raised first, or the deadline
            raise Unavailable("deadline reached before every call was sent")
        ok, value = outcome
        if not ok:
            raise cast(BaseException, value)
        results.append(cast(T, value))
    return results
