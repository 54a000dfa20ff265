"""The portal's side of the connectors: the registry built from ``connectors.toml``, the
database-backed snapshot store, and the probes that tell availability.

Views never import a concrete connector type: they ask ``registry()`` for an instance's
connector by slug, and the category protocol says what they may call.

Availability is what the probes of every instance say (``probe_all``, run by the worker
each minute, or by each web process with ``PORTAL_PROBE_INTERVAL_S``), read from the
database: the same on every server.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.engine import CursorResult

from connectors.base import CallContext, ConnectorError, InstanceConfig
from connectors.http import OutcomeHook, RedisBreakerStore, RedisReferenceCache
from connectors.registry import Registry, RegistryError, load_instances
from portal.config import ConfigError, Settings
from portal.demo import load_demo_links
from portal.extensions import db
from portal.measure.events import connector_outcome_hook
from portal.metrics import observe_connector_call
from portal.models import ConnectorSnapshot, InstanceProbe, ServiceLink
from portal.models._types import utcnow

log = logging.getLogger(__name__)

#: Availability is computed over this window of probes.
AVAILABILITY_WINDOW_S = 15 * 60
#: One probe's deadline, and how many instances are probed side by side.
PROBE_TIMEOUT_S = 3.0
PROBE_CONCURRENCY = 8
#: Probes are kept two days (the status page reads the last 15 minutes).
PROBE_RETENTION = timedelta(days=2)


#: Snapshots read ahead for the code running inside ``DatabaseSnapshotStore.prefetched``
#: (a context variable: a reader thread started without this context does not see them).
_prefetched: ContextVar[dict[tuple[str, str], tuple[str, datetime]] | None] = ContextVar(
    "prefetched_snapshots", default=None
)


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

    @contextmanager
    def prefetched(self, subjects: Iterable[str]) -> Iterator[None]:
        """Every snapshot of ``subjects`` (link ids) read in one query, for the reads
        made inside: the dashboard shows the last snapshots of all its services, one
        connection and one round trip instead of one each. A key not found among them
        is still looked for in the table."""
        wanted = sorted({subject for subject in subjects if subject.isdigit()})
        found: dict[tuple[str, str], tuple[str, datetime]] = {}
        if wanted:
            table = ConnectorSnapshot.__table__
            result_type = ConnectorSnapshot.fetched_at.type
            with self._engine().connect() as conn:
                rows = conn.execute(
                    sa.select(
                        table.c.instance_slug, table.c.key, table.c.payload, table.c.fetched_at
                    ).where(table.c.subject.in_(wanted))
                )
                for slug, key, payload, fetched_at in rows:
                    found[(slug, key)] = (
                        payload,
                        result_type.process_result_value(fetched_at, None),
                    )
        token = _prefetched.set(found)
        try:
            yield
        finally:
            _prefetched.reset(token)

    def get(self, instance_slug: str, key: str) -> tuple[str, datetime] | None:
        ahead = _prefetched.get()
        if ahead is not None and (instance_slug, key) in ahead:
            return ahead[(instance_slug, key)]
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
    """What the probes of the last ``AVAILABILITY_WINDOW_S`` say about one instance."""

    probes: int
    successes: int
    last_probe_at: datetime | None
    last_probe_ok: bool | None

    @property
    def ratio(self) -> float | None:
        return self.successes / self.probes if self.probes else None


def build_registry(app: Flask, settings: Settings) -> Registry:
    instances: list[InstanceConfig] = []
    if settings.connectors_file:
        try:
            instances = load_instances(settings.connectors_file, os.environ)
        except RegistryError as exc:
            raise ConfigError(
                f"PORTAL_CONNECTORS_FILE ({settings.connectors_file}): {exc}"
            ) from exc
    snapshot_store = DatabaseSnapshotStore(app)
    app.extensions["snapshot_store"] = snapshot_store
    return Registry(
        instances,
        breaker_store=(
            RedisBreakerStore.from_url(settings.redis_url, settings.redis_prefix)
            if settings.redis_url
            else None
        ),
        snapshot_store=snapshot_store,
        # Reference data (titles, places), shared by every process and server with Redis.
        reference_cache=(
            RedisReferenceCache.from_url(settings.redis_url, settings.redis_prefix)
            if settings.redis_url
            else None
        ),
        # Each call's outcome and latency, to the anonymous measurement (``connector_call``)
        # and to /metrics.
        on_outcome=outcome_hooks(connector_outcome_hook(app), observe_connector_call),
        # One slow back-end cannot hold every thread of the process.
        concurrency=settings.backend_concurrency,
    )


def outcome_hooks(*hooks: OutcomeHook) -> OutcomeHook:
    """One outcome hook calling each of ``hooks``: one failing does not stop the next."""

    def on_outcome(slug: str, ok: bool, duration_s: float) -> None:
        for hook in hooks:
            try:
                hook(slug, ok, duration_s)
            except Exception:
                log.exception("instance %s: outcome hook failed", slug)

    return on_outcome


def init_connectors(app: Flask) -> None:
    settings: Settings = app.extensions["portal_settings"]
    app.extensions["connectors"] = build_registry(app, settings)
    app.extensions["demo_links"] = load_demo_links(settings.demo_links_file)
    if settings.probe_interval_s and not settings.testing:
        start_prober(app, settings.probe_interval_s)


def registry() -> Registry:
    return current_app.extensions["connectors"]


def probe_all(app: Flask) -> tuple[int, int]:
    """Ask every instance a cheap question, side by side, and keep each answer as an
    ``instance_probe`` row: the status page reads them, so every web server shows the
    same. Returns (instances probed, probes failed)."""
    reg: Registry = app.extensions["connectors"]
    slugs = list(reg.instances)
    if not slugs:
        return 0, 0

    def probe(slug: str) -> dict[str, object]:
        started = time.monotonic()
        ok = True
        try:
            reg.probe(slug, CallContext.with_timeout(PROBE_TIMEOUT_S, actor="probe"))
        except ConnectorError:
            ok = False
        except Exception:  # one crashing probe must not hide the others'
            log.exception("probe of %s crashed", slug)
            ok = False
        duration_ms = round((time.monotonic() - started) * 1000)
        return {"instance_slug": slug, "checked_at": utcnow(), "ok": ok, "duration_ms": duration_ms}

    with ThreadPoolExecutor(min(PROBE_CONCURRENCY, len(slugs)), "probe") as pool:
        rows = list(pool.map(probe, slugs))
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.insert(cast(sa.Table, InstanceProbe.__table__)), rows)
    return len(rows), sum(1 for row in rows if not row["ok"])


def probe_availability(now: datetime | None = None) -> dict[str, Availability]:
    """Per instance slug, the probes of the last ``AVAILABILITY_WINDOW_S``: two queries,
    whatever the number of instances."""
    now = now or utcnow()
    table = cast(sa.Table, InstanceProbe.__table__)
    since = now - timedelta(seconds=AVAILABILITY_WINDOW_S)
    recent = table.c.checked_at >= since
    counts = db.session.execute(
        sa.select(
            table.c.instance_slug,
            sa.func.count(),
            sa.func.sum(sa.case((table.c.ok, 1), else_=0)),
        )
        .where(recent)
        .group_by(table.c.instance_slug)
    ).all()
    latest = (
        sa.select(table.c.instance_slug, sa.func.max(table.c.checked_at).label("at"))
        .where(recent)
        .group_by(table.c.instance_slug)
        .subquery()
    )
    last = {
        row.instance_slug: (row.checked_at, row.ok)
        for row in db.session.execute(
            sa.select(table.c.instance_slug, table.c.checked_at, table.c.ok).join(
                latest,
                (latest.c.instance_slug == table.c.instance_slug)
                & (latest.c.at == table.c.checked_at),
            )
        )
    }
    return {
        slug: Availability(int(probes), int(oks or 0), *last.get(slug, (None, None)))
        for slug, probes, oks in counts
    }


def delete_old_probes(now: datetime | None = None) -> int:
    """Probes older than ``PROBE_RETENTION``. Not committed."""
    now = now or utcnow()
    table = cast(sa.Table, InstanceProbe.__table__)
    result = db.session.execute(sa.delete(table).where(table.c.checked_at < now - PROBE_RETENTION))
    return cast(CursorResult[Any], result).rowcount or 0


def start_prober(app: Flask, interval_s: int) -> None:
    """The fallback without a worker (``PORTAL_PROBE_INTERVAL_S``): each web process
    probes on its own, writing the same rows the worker does."""

    def loop() -> None:
        time.sleep(min(5, interval_s))  # let the back-ends and the app finish starting
        while True:
            try:
                probe_all(app)
            except Exception:  # the database may be away for a while: try next time
                log.exception("probing the instances failed")
            time.sleep(interval_s)

    thread = threading.Thread(target=loop, name="connector-prober", daemon=True)
    thread.start()
