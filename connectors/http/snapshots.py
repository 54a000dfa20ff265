"""Last-good snapshots: the last good answer of each read, kept so that a page can still
show something (marked stale) while a back-end is down.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

log = logging.getLogger("connectors.http")


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


def what(key: str) -> str:
    """The kind of read a snapshot key names (``loans:<patron_id>`` → ``loans``): what
    logs may say, without the account's id."""
    return key.split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class _Written:
    """What this process last wrote to the store for one key."""

    subject: str
    digest: bytes
    #: The ``fetched_at`` the store holds for it.
    stored_at: datetime


@dataclass(frozen=True, slots=True)
class _Recent:
    """The last good answer of one key in this process, for the read cache."""

    subject: str
    text: str
    fetched_at: datetime
    started_at: datetime


class Snapshots:
    """One instance's view of the snapshot store, never a new failure for a read.

    The store is a convenience: if it fails, the read goes on without it.

    Writes to the store only when something changed: this process remembers, per key, the digest of
    the payload it last wrote, for which subject, and the fetch time it stored. A read
    whose payload (and subject) is the same as the last one written is not written
    again, unless the stored fetch time is older than ``refresh_s``: so a copy shown
    during an outage says when it was fetched within that bound, and the database is
    not written on every page view. The first read of a key in a process always writes
    (nothing is remembered yet), and a write that failed is not remembered. Another
    process may have written a different payload meanwhile; at worst the store then
    holds that one until this process's next change or refresh, ``refresh_s`` later.

    It is also the short-lived read cache (``CallContext.max_age_s``): ``fresh`` gives
    the last good answer of a key if it is young enough, from this process's memory or
    else the store, unless a write about the same subject went through since
    (``invalidate``). What it holds is what ``keep`` left of the payload, as in the store.
    """

    #: Digests remembered per instance (least recently written forgotten first).
    MAX_KEYS = 10_000
    #: Answers kept in memory for the read cache per instance (least recently read
    #: forgotten first); older ones are looked for in the store.
    MAX_RECENT = 1_000

    def __init__(self, slug: str, store: SnapshotStore | None, *, refresh_s: float = 300.0) -> None:
        self.slug = slug
        self.store = store
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._written: OrderedDict[str, _Written] = OrderedDict()
        self._recent: OrderedDict[str, _Recent] = OrderedDict()
        #: subject → wall-clock time of its last write through the client.
        self._invalidated: OrderedDict[str, datetime] = OrderedDict()

    def get(self, key: str) -> tuple[str, datetime] | None:
        if self.store is None:
            return None
        try:
            return self.store.get(self.slug, key)
        except Exception:  # the snapshot store is a convenience, never a new failure
            log.exception("instance %s: snapshot store failed on get", self.slug)
            return None

    def fresh(
        self, subject: str, key: str, max_age_s: float, now: datetime
    ) -> tuple[str, datetime] | None:
        """The last good copy of ``key`` if fetched less than ``max_age_s`` before ``now``
        and after the last write about ``subject``; None otherwise."""
        with self._lock:
            recent = self._recent.get(key)
            invalidated = self._invalidated.get(subject)
        if (
            recent is not None
            and recent.subject == subject
            and (now - recent.fetched_at).total_seconds() < max_age_s
            and (invalidated is None or recent.started_at > invalidated)
        ):
            return recent.text, recent.fetched_at
        stored = self.get(key)
        if stored is None:
            return None
        fetched_at = stored[1]
        if (now - fetched_at).total_seconds() >= max_age_s:
            return None
        if invalidated is not None and fetched_at <= invalidated:
            return None
        return stored

    def invalidate(self, subject: str, at: datetime) -> None:
        """A write about ``subject`` went through at ``at``: no cached read of it made
        before counts as fresh any more (in this process)."""
        with self._lock:
            self._invalidated[subject] = at
            self._invalidated.move_to_end(subject)
            while len(self._invalidated) > self.MAX_KEYS:
                self._invalidated.popitem(last=False)
            for key in [k for k, r in self._recent.items() if r.subject == subject]:
                del self._recent[key]

    def put(
        self,
        subject: str,
        key: str,
        payload: Any,
        at: datetime,
        *,
        started_at: datetime | None = None,
    ) -> None:
        """Keep ``payload`` as the last good copy of ``key``, fetched ``at`` (the read
        having started at ``started_at``): in memory always, in the store if it changed
        or the stored copy's fetch time is more than ``refresh_s`` old."""
        try:
            text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError):
            log.exception("instance %s: snapshot of %s not serialisable", self.slug, what(key))
            return
        with self._lock:
            self._recent[key] = _Recent(subject, text, at, started_at or at)
            self._recent.move_to_end(key)
            while len(self._recent) > self.MAX_RECENT:
                self._recent.popitem(last=False)
        if self.store is None:
            return
        digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
        with self._lock:
            last = self._written.get(key)
        if (
            last is not None
            and last.subject == subject
            and last.digest == digest
            and (at - last.stored_at).total_seconds() < self.refresh_s
        ):
            return
        try:
            self.store.put(self.slug, key, subject, text, at)
        except Exception:
            log.exception("instance %s: snapshot store failed on put", self.slug)
            with self._lock:
                self._written.pop(key, None)
            return
        with self._lock:
            self._written[key] = _Written(subject, digest, at)
            self._written.move_to_end(key)
            while len(self._written) > self.MAX_KEYS:
                self._written.popitem(last=False)
