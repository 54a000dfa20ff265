"""Last-good snapshots: the last good answer of each read, kept so that a page can still
show something (marked stale) while a back-end is down.
"""

from __future__ import annotations

import json
import logging
import threading
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


class Snapshots:
    """One instance's view of the snapshot store, never a new failure for a read.

    The store is a convenience: if it fails, the read goes on without it.
    """

    def __init__(self, slug: str, store: SnapshotStore | None) -> None:
        self.slug = slug
        self.store = store

    def get(self, key: str) -> tuple[str, datetime] | None:
        if self.store is None:
            return None
        try:
            return self.store.get(self.slug, key)
        except Exception:  # the snapshot store is a convenience, never a new failure
            log.exception("instance %s: snapshot store failed on get", self.slug)
            return None

    def put(self, subject: str, key: str, payload: Any, at: datetime) -> None:
        if self.store is None:
            return
        try:
            text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
            self.store.put(self.slug, key, subject, text, at)
        except Exception:
            log.exception("instance %s: snapshot store failed on put", self.slug)
