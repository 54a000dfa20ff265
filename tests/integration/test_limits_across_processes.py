"""Rate limits hold across the processes of one server without Redis (the database is
the store they share), and across servers with Redis: real gunicorn processes, real
HTTP, the sign-in limit as the example."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from portal import create_app
from portal.config import load_settings
from portal.ratelimit import DatabaseStorage, storage_settings
from tests.support import PRODUCTION, Gunicorn, Sandbox, redis_keyspace

SIGNIN_LIMIT = 10
REQUESTS = 40
REDIS_URL = "redis://127.0.0.1:6379/0"


def portal_env(fc_sandbox: Sandbox, database_url: str, **extra: str) -> dict[str, str]:
    return {
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_FC_ISSUER": fc_sandbox.issuer,
        "PORTAL_SIGNIN_RATE_LIMIT": f"{SIGNIN_LIMIT} per minute",
        "PORTAL_CONNECTORS_FILE": "",
        "PORTAL_DEMO_LINKS_FILE": "",
        "PORTAL_PROBE_INTERVAL_S": "0",
        **extra,
    }


def sign_in_starts(urls: list[str]) -> list[int]:
    """``REQUESTS`` sign-in starts from 8 threads, each on a new connection (so each
    may land on any worker), spread over ``urls``."""
    statuses: list[int] = []
    lock = threading.Lock()

    def run(offset: int) -> None:
        for n in range(offset, REQUESTS, 8):
            r = httpx.get(urls[n % len(urls)] + "/auth/franceconnect/login", timeout=15)
            with lock:
                statuses.append(r.status_code)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = "sqlite:///" + str(tmp_path / "portal.sqlite3")
    with create_app(load_settings({}, database_url=url, testing=True)).app_context():
        upgrade()
    return url


def test_the_sign_in_limit_holds_across_gunicorn_workers_without_redis(
    fc_sandbox: Sandbox, sqlite_url: str, tmp_path: Path
) -> None:
    server = Gunicorn(2, portal_env(fc_sandbox, sqlite_url), tmp_path / "gunicorn.log")
    try:
        server.wait_ready()
        statuses = sign_in_starts([server.url])
    finally:
        server.stop()
    accepted = sum(1 for s in statuses if s != 429)
    print(f"\n2 workers, database store: {accepted} of {REQUESTS} accepted, limit {SIGNIN_LIMIT}")
    assert len(statuses) == REQUESTS
    assert accepted == SIGNIN_LIMIT, statuses
    assert 500 not in statuses


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    with redis_keyspace(REDIS_URL, "limits") as prefix:
        yield prefix


def test_the_sign_in_limit_holds_across_servers_sharing_redis(
    fc_sandbox: Sandbox, sqlite_url: str, tmp_path: Path, redis_prefix: str
) -> None:
    env = portal_env(
        fc_sandbox, sqlite_url, PORTAL_REDIS_URL=REDIS_URL, PORTAL_REDIS_PREFIX=redis_prefix
    )
    # Two servers, each its own database: only Redis is shared.
    second_db = tmp_path / "second"
    second_db.mkdir()
    other_url = "sqlite:///" + str(second_db / "portal.sqlite3")
    with create_app(load_settings({}, database_url=other_url, testing=True)).app_context():
        upgrade()
    servers = [
        Gunicorn(2, env, tmp_path / "a.log"),
        Gunicorn(2, {**env, "PORTAL_DATABASE_URL": other_url}, tmp_path / "b.log"),
    ]
    try:
        for server in servers:
            server.wait_ready()
        statuses = sign_in_starts([server.url for server in servers])
    finally:
        for server in servers:
            server.stop()
    accepted = sum(1 for s in statuses if s != 429)
    print(f"\n2 servers x 2 workers, Redis: {accepted} of {REQUESTS} accepted")
    assert accepted == SIGNIN_LIMIT, statuses
    import redis

    keys = list(redis.Redis.from_url(REDIS_URL).scan_iter(match=redis_prefix + "*"))
    assert keys, "the limits were not kept under the configured prefix"


def test_the_database_store_counts_concurrent_hits_once_each(database_url: str) -> None:
    storage = DatabaseStorage(storage_settings(database_url, "", "")["RATELIMIT_STORAGE_URI"])
    key = f"test/{uuid.uuid4().hex}"
    counts: list[int] = []
    lock = threading.Lock()

    def hit() -> None:
        for _ in range(5):
            value = storage.incr(key, 60)
            with lock:
                counts.append(value)

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(counts) == list(range(1, 41))  # no two hits saw the same count
    assert storage.get(key) == 40
    assert storage.get_expiry(key) > time.time()
    storage.clear(key)
    assert storage.get(key) == 0
    with storage.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM rate_counter"))


def test_gunicorn_refuses_two_workers_when_told_the_portal_is_one_process(
    tmp_path: Path,
) -> None:
    """``gunicorn.conf.py`` is read from the repository's root, as the Procfile starts
    gunicorn, and stops the master before any worker starts."""
    env = {**PRODUCTION, "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path}/portal.sqlite3"}
    server = Gunicorn(2, env, tmp_path / "gunicorn.log")
    try:
        assert server.process.wait(30) == 1
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "PORTAL_SINGLE_PROCESS=1 says one process, but 2 worker processes" in log
    assert "Booting worker" not in log
