"""What several processes share through Redis (rate limits), and what
each does alone while Redis does not answer: count for itself, never fail a page."""

from __future__ import annotations

from pathlib import Path

from flask_migrate import upgrade

from portal import create_app
from portal.config import load_settings

#: Nothing listens there: Redis "down", refused at once.
NO_REDIS_URL = "redis://127.0.0.1:1/0"


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
