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
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

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
    raised once all have ended, so a ``ConnectorError`` reaches the caller as if the
    calls had been made one by one. ``Unavailable`` if the deadline of ``ctx`` passes
    first (the thunks, which use ``ctx`` too, stop at it as well); what is still
    queued then is not started. Called from inside the pool (a thunk that gathers),
    it runs the thunks in turn instead, so nested calls cannot starve the pool.
    """
    if not thunks:
        return []
    if ctx.expired:
        raise Unavailable("deadline reached before the calls")
    if len(thunks) == 1 or max_workers <= 1 or getattr(_in_pool, "active", False):
        return [thunk() for thunk in thunks]
    pool = _shared_pool()
    futures: list[Future[T] | None] = [None] * len(thunks)
    running: dict[Future[T], int] = {}
    next_index = 0

    def submit(index: int) -> None:
        context = contextvars.copy_context()
        future = pool.submit(context.run, thunks[index])
        futures[index] = future
        running[future] = index

    while next_index < min(max_workers, len(thunks)):
        submit(next_index)
        next_index += 1
    while running:
        remaining = ctx.remaining()
        if remaining <= 0:
            for future in running:
                future.cancel()
            raise Unavailable("deadline reached while waiting for concurrent calls")
        done, _ = wait(list(running), timeout=remaining, return_when=FIRST_COMPLETED)
        for future in done:
            del running[future]
            if future.exception() is not None:
                next_index = len(thunks)  # one failed: start nothing more
            elif next_index < len(thunks):
                submit(next_index)
                next_index += 1
    results: list[T] = []
    for started in futures:
        if started is None:  # not started after a failure, which is raised first
            break
        error = started.exception()
        if error is not None:
            raise error
        results.append(started.result())
    return results
