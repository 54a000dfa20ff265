"""The portal's side of the connectors: the registry built from ``connectors.toml``, the
database-backed snapshot store, and the availability seen from recent calls.

Views never import a concrete connector type: they ask ``registry()`` for an instance's
connector by slug, and the category protocol says what they may call.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from flask import Flask, current_app

from connectors.base import CallContext, ConnectorError, InstanceConfig
from connectors.http import RedisBreakerStore
from connectors.registry import Registry, RegistryError, load_instances
from portal.config import ConfigError, Settings
from portal.demo import load_demo_links
from portal.extensions import db
from portal.measure.events import connector_outcome_hook
from portal.models import ConnectorSnapshot, ServiceLink

log = logging.getLogger(__name__)

#: Availability is computed over this window of recent calls.
AVAILABILITY_WINDOW_S = 15 * 60


class DatabaseSnapshotStore:
    """Last good answers in the ``connector_snapshot`` table.

    It uses its own short transactions on the engine, never the request's session, so
    saving a snapshot can neither commit nor roll back what a view is doing.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app

    def _engine(self) -> sa.Engine:
        with self.app.app_context():
            return db.engine

    def get(self, instance_slug: str, key: str) -> tuple[str, datetime] | None:
        table = ConnectorSnapshot.__table__
        with self._engine().connect() as conn:
            row = conn.execute(
                sa.select(table.c.payload, table.c.fetched_at).where(
                    table.c.instance_slug == instance_slug, table.c.key == key
                )
            ).first()
        if row is None:
            return None
        fetched_at = ConnectorSnapshot.fetched_at.type.process_result_value(row[1], None)
        return row[0], fetched_at

    def put(
        self, instance_slug: str, key: str, subject: str, payload: str, fetched_at: datetime
    ) -> None:
        """Save the last good answer, only while the link it is about still exists.

        A read still running when its link (or the whole account) is deleted must not
        leave a copy behind. The check and the write are one transaction: on
        PostgreSQL the link row is key-share-locked first, so a deletion waits for this
        write (and then deletes the snapshot) or this write sees the link gone; on
        SQLite the write statements carry the check themselves and writers are
        serialised. Never a read-then-write in two steps.
        """
        if not subject.isdigit():
            return  # no link to purge it with: not kept
        # Typed as any FromClause a class could be mapped to; this one is mapped to a Table.
        table = cast(sa.Table, ConnectorSnapshot.__table__)
        links = ServiceLink.__table__
        link_id = int(subject)
        link_exists = sa.exists(sa.select(links.c.id).where(links.c.id == link_id))
        where = (table.c.instance_slug == instance_slug) & (table.c.key == key)
        values = {"subject": subject, "payload": payload, "fetched_at": fetched_at}
        try:
            with self._engine().begin() as conn:
                if conn.dialect.name != "sqlite":
                    locked = conn.execute(
                        sa.select(links.c.id)
                        .where(links.c.id == link_id)
                        # KEY SHARE: blocks deleting the link, not updating its status.
                        .with_for_update(read=True, key_share=True)
                    ).first()
                    if locked is None:
                        return
                updated = conn.execute(
                    sa.update(table).where(where & link_exists).values(**values)
                ).rowcount
                if not updated:
                    row = {"instance_slug": instance_slug, "key": key, **values}
                    columns = list(row)
                    conn.execute(
                        sa.insert(table).from_select(
                            columns,
                            sa.select(
                                *(
                                    sa.literal(row[name], type_=table.c[name].type).label(name)
                                    for name in columns
                                )
                            ).where(link_exists, ~sa.exists(sa.select(table.c.id).where(where))),
                        )
                    )
        except sa.exc.SQLAlchemyError:
            # A lost snapshot only means less to show during an outage: never fail a read.
            log.warning("snapshot not saved for instance %s", instance_slug, exc_info=True)


@dataclass(frozen=True, slots=True)
class Availability:
    calls: int
    successes: int
    last_ok_at: float | None
    last_failure_at: float | None
    last_probe_at: float | None
    last_probe_ok: bool | None

    @property
    def ratio(self) -> float | None:
        return self.successes / self.calls if self.calls else None


class AvailabilityTracker:
    """Outcomes of recent calls per instance, in this process.

    Alone (no Redis: one process on one server), it is what ``/status`` shows. With
    Redis, ``SharedAvailabilityTracker`` counts every process's calls, so that every
    server shows the same page, and falls back on this one when Redis does not answer.
    """

    def __init__(self, window_s: int = AVAILABILITY_WINDOW_S) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._calls: dict[str, deque[tuple[float, bool]]] = defaultdict(deque)
        self._probes: dict[str, tuple[float, bool]] = {}

    def record(self, slug: str, ok: bool, duration_s: float = 0.0) -> None:
        now = time.time()
        with self._lock:
            calls = self._calls[slug]
            calls.append((now, ok))
            while calls and calls[0][0] < now - self.window_s:
                calls.popleft()

    def record_probe(self, slug: str, ok: bool) -> None:
        with self._lock:
            self._probes[slug] = (time.time(), ok)

    def availability(self, slug: str) -> Availability:
        now = time.time()
        with self._lock:
            calls = [c for c in self._calls.get(slug, ()) if c[0] >= now - self.window_s]
            probe = self._probes.get(slug)
        oks = [t for t, ok in calls if ok]
        fails = [t for t, ok in calls if not ok]
        return Availability(
            calls=len(calls),
            successes=len(oks),
            last_ok_at=max(oks) if oks else None,
            last_failure_at=max(fails) if fails else None,
            last_probe_at=probe[0] if probe else None,
            last_probe_ok=probe[1] if probe else None,
        )


class SharedAvailabilityTracker(AvailabilityTracker):
    """Outcomes of recent calls per instance, counted in Redis by every process.

    One hash per instance and minute (``<prefix>availability:<slug>:<minute>``: calls,
    successes, last success and failure times), kept a little longer than the window;
    the last probe of each instance in one hash (``<prefix>availability:probes``). The
    window is whole minutes: the last 15 and the current one. Recording is one pipelined
    round trip after each call. When Redis fails, this process's own counts (kept
    alongside) answer, as they would without Redis, and the call is never failed.
    """

    def __init__(self, client: Any, prefix: str, window_s: int = AVAILABILITY_WINDOW_S) -> None:
        super().__init__(window_s)
        self._redis = client
        self._prefix = f"{prefix}availability:"
        self._minutes = window_s // 60 + 1

    @classmethod
    def from_url(
        cls, url: str, prefix: str, *, timeout_s: float = 0.25
    ) -> SharedAvailabilityTracker:
        """Short socket timeouts, as for the breakers: never eat a resident's deadline."""
        import redis

        client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        return cls(client, prefix)

    def _bucket(self, slug: str, minute: int) -> str:
        return f"{self._prefix}{slug}:{minute}"

    def record(self, slug: str, ok: bool, duration_s: float = 0.0) -> None:
        import redis

        super().record(slug, ok, duration_s)
        now = time.time()
        key = self._bucket(slug, int(now // 60))
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hincrby(key, "calls", 1)
            pipe.hincrby(key, "successes", 1 if ok else 0)
            pipe.hset(key, "last_ok_at" if ok else "last_failure_at", repr(now))
            pipe.expire(key, self.window_s + 120)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("availability store unreachable, call to %s counted here: %s", slug, exc)

    def record_probe(self, slug: str, ok: bool) -> None:
        import redis

        super().record_probe(slug, ok)
        try:
            self._redis.hset(self._prefix + "probes", slug, f"{time.time()!r} {int(ok)}")
        except redis.RedisError as exc:
            log.warning("availability store unreachable, probe of %s kept here: %s", slug, exc)

    def availability(self, slug: str) -> Availability:
        import redis

        minute = int(time.time() // 60)
        try:
            pipe = self._redis.pipeline(transaction=False)
            for n in range(self._minutes):
                pipe.hgetall(self._bucket(slug, minute - n))
            pipe.hget(self._prefix + "probes", slug)
            *buckets, probe = pipe.execute()
        except redis.RedisError as exc:
            log.warning("availability store unreachable, %s as seen here: %s", slug, exc)
            return super().availability(slug)
        calls = successes = 0
        last_ok: list[float] = []
        last_failure: list[float] = []
        for bucket in buckets:
            fields = {k.decode(): v.decode() for k, v in bucket.items()}
            calls += int(fields.get("calls", 0))
            successes += int(fields.get("successes", 0))
            if "last_ok_at" in fields:
                last_ok.append(float(fields["last_ok_at"]))
            if "last_failure_at" in fields:
                last_failure.append(float(fields["last_failure_at"]))
        probe_at, probe_ok = probe.decode().split() if probe else (None, None)
        return Availability(
            calls=calls,
            successes=successes,
            last_ok_at=max(last_ok, default=None),
            last_failure_at=max(last_failure, default=None),
            last_probe_at=float(probe_at) if probe_at else None,
            last_probe_ok=probe_ok == "1" if probe_ok else None,
        )


def build_registry(app: Flask, settings: Settings, tracker: AvailabilityTracker) -> Registry:
    instances: list[InstanceConfig] = []
    if settings.connectors_file:
        try:
            instances = load_instances(settings.connectors_file, os.environ)
        except RegistryError as exc:
            raise ConfigError(
                f"PORTAL_CONNECTORS_FILE ({settings.connectors_file}): {exc}"
            ) from exc
    return Registry(
        instances,
        breaker_store=(
            RedisBreakerStore.from_url(settings.redis_url, settings.redis_prefix)
            if settings.redis_url
            else None
        ),
        snapshot_store=DatabaseSnapshotStore(app),
        on_outcome=_outcome_hooks(tracker, connector_outcome_hook(app)),
    )


def _outcome_hooks(
    tracker: AvailabilityTracker, measure: Callable[[str, bool, float], None]
) -> Callable[[str, bool, float], None]:
    """Each connector call's outcome and latency, to the availability seen by the status
    page and to the anonymous measurement (``connector_call``)."""

    def on_outcome(slug: str, ok: bool, duration_s: float = 0.0) -> None:
        tracker.record(slug, ok, duration_s)
        measure(slug, ok, duration_s)

    return on_outcome


def init_connectors(app: Flask) -> None:
    settings: Settings = app.extensions["portal_settings"]
    tracker = (
        SharedAvailabilityTracker.from_url(settings.redis_url, settings.redis_prefix)
        if settings.redis_url
        else AvailabilityTracker()
    )
    app.extensions["availability"] = tracker
    app.extensions["connectors"] = build_registry(app, settings, tracker)
    app.extensions["demo_links"] = load_demo_links(settings.demo_links_file)
    if settings.probe_interval_s and not settings.testing:
        start_prober(app, settings.probe_interval_s)


def registry() -> Registry:
    return current_app.extensions["connectors"]


def availability() -> AvailabilityTracker:
    return current_app.extensions["availability"]


def probe_all(app: Flask) -> None:
    """Ask every instance a cheap question, so the status page knows about instances
    nobody used lately."""
    reg: Registry = app.extensions["connectors"]
    tracker: AvailabilityTracker = app.extensions["availability"]
    for slug in reg.instances:
        ok = True
        try:
            reg.probe(slug, CallContext.with_timeout(3.0, actor="probe"))
        except ConnectorError:
            ok = False
        except Exception:  # a probe must never kill its thread
            log.exception("probe of %s crashed", slug)
            ok = False
        tracker.record_probe(slug, ok)


def start_prober(app: Flask, interval_s: int) -> None:
    def loop() -> None:
        time.sleep(min(5, interval_s))  # let the back-ends and the app finish starting
        while True:
            probe_all(app)
            time.sleep(interval_s)

    thread = threading.Thread(target=loop, name="connector-prober", daemon=True)
    thread.start()
