"""What several processes share through Redis (availability, rate limits), and what
each does alone while Redis does not answer: count for itself, never fail a page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask_migrate import upgrade

from portal import create_app
from portal.config import load_settings
from portal.integrations import SharedAvailabilityTracker
from tests.support import redis_keyspace

REDIS_URL = "redis://127.0.0.1:6379/3"
#: Nothing listens there: Redis "down", refused at once.
NO_REDIS_URL = "redis://127.0.0.1:1/0"


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_keyspace(REDIS_URL, "stores") as prefix:
        yield prefix


def test_two_processes_see_the_same_availability(prefix: str) -> None:
    one = SharedAvailabilityTracker.from_url(REDIS_URL, prefix)
    other = SharedAvailabilityTracker.from_url(REDIS_URL, prefix)
    one.record("bib-merignac", True)
    one.record("bib-merignac", False)
    other.record("bib-merignac", True)
    other.record_probe("bib-merignac", False)
    seen = {tracker.availability("bib-merignac") for tracker in (one, other)}
    assert len(seen) == 1
    [availability] = seen
    assert (availability.calls, availability.successes, availability.last_probe_ok) == (3, 2, False)
    assert availability.last_ok_at and availability.last_failure_at
    assert one.availability("bib-bordeaux").calls == 0  # each instance its own counts


def test_without_redis_a_process_counts_its_own_calls() -> None:
    tracker = SharedAvailabilityTracker.from_url(NO_REDIS_URL, "x:")
    tracker.record("bib-merignac", True)
    tracker.record_probe("bib-merignac", True)
    availability = tracker.availability("bib-merignac")
    assert (availability.calls, availability.successes, availability.last_probe_ok) == (1, 1, True)


def test_rate_limits_hold_in_each_process_while_redis_does_not_answer(tmp_path: Path) -> None:
    settings = load_settings(
        {},
        database_url=f"sqlite:///{tmp_path}/portal.sqlite3",
        redis_url=NO_REDIS_URL,
        feed_rate_limit="3 per minute",
        connectors_file="",
        demo_links_file="",
        probe_interval_s=0,
    )
    app = create_app(settings)
    with app.app_context():
        upgrade()
    client = app.test_client()
    statuses = [client.get(f"/calendar/{'B' * 43}.ics").status_code for _ in range(5)]
    assert statuses == [404, 404, 404, 429, 429]  # limited, never a 500
    assert client.get("/status").status_code == 200
