"""Recording anonymous events without slowing or failing a page.

``Recorder.add`` appends an event (a plain dict, columns of ``measure_event``) to an
in-process buffer under a lock and returns: a page pays for a dict and a lock, never a
database round trip. A daemon thread writes the buffer in bulk (one Core ``INSERT`` of
many rows) every ``FLUSH_INTERVAL_S`` or as soon as ``FLUSH_AT`` events wait, and once
more at exit (``atexit``). ``flush()`` writes what waits now (the roll-up command and the
tests call it). A test portal has no thread: its tests call ``flush()``.

Nothing here raises to its caller. A write that fails (the database down, a lock held
too long) is logged once per run of failures, with the error's type only (an event holds
nothing personal, but the log does not need it either), and its events are dropped: a
few lost page views are better than a page that fails or a buffer that grows forever.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from typing import Any

import sqlalchemy as sa
from flask import Flask

log = logging.getLogger(__name__)

#: A bulk write at least this often while events wait (seconds) ...
FLUSH_INTERVAL_S = 1.0
#: ... and as soon as this many wait.
FLUSH_AT = 200
#: Past this many waiting events (the database unreachable for a while), new ones are
#: dropped: memory stays bounded.
MAX_BUFFERED = 20_000


class Recorder:
    """The buffer of one portal (``app.extensions["measure"]``)."""

    def __init__(self, app: Flask, *, background: bool = True) -> None:
        self._app = weakref.ref(app)
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._wake = threading.Event()
        self._failing = False
        self.dropped = 0
        self.background = background
        self._thread: threading.Thread | None = None
        self._pid = 0
        if background:
            atexit.register(self.flush)

    def _start(self) -> None:
        """The writer thread, started by the first event of this process: a portal built
        before a fork (a server preloading it) writes from each worker."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._events = []  # the parent's, if any, are the parent's to write
            self._thread = threading.Thread(target=self._loop, name="measure-flush", daemon=True)
            self._thread.start()

    # -- the page's side: cheap, never raises ------------------------------------------

    def add(self, event: dict[str, Any]) -> None:
        try:
            if self.background and self._pid != os.getpid():
                self._start()
            with self._lock:
                if len(self._events) >= MAX_BUFFERED:
                    self.dropped += 1
                    return
                self._events.append(event)
                full = len(self._events) >= FLUSH_AT
            if full and self.background:
                self._wake.set()
        except Exception:  # pragma: no cover - appending to a list does not fail
            log.warning("measure: event not buffered", exc_info=True)

    def pending(self) -> int:
        with self._lock:
            return len(self._events)

    # -- the writer's side -------------------------------------------------------------

    def flush(self) -> int:
        """Write every waiting event in one statement; the number written (0 on error)."""
        with self._lock:
            events, self._events = self._events, []
        if not events:
            return 0
        app = self._app()
        if app is None:
            return 0
        from portal.extensions import db
        from portal.models import MeasureEvent

        try:
            with app.app_context():
                engine = db.engine
            with engine.begin() as conn:
                conn.execute(sa.insert(MeasureEvent), events)
        except Exception as exc:
            if not self._failing:
                log.warning(
                    "measure: %d event(s) not written (%s); later failures are not logged "
                    "until a write succeeds",
                    len(events),
                    type(exc).__name__,
                )
            self._failing = True
            self.dropped += len(events)
            return 0
        if self._failing:
            log.info("measure: events are written again")
        self._failing = False
        return len(events)

    def _loop(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            if self._app() is None:
                return  # the portal is gone (tests build many)
            try:
                self.flush()
            except Exception:  # the thread must outlive anything
                log.warning("measure: flush crashed", exc_info=True)
                time.sleep(FLUSH_INTERVAL_S)
