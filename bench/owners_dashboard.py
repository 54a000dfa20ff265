"""Benchmark: the owners' dashboard over a year of roll-ups worth ten million events.

Starts the sandbox and the portal under gunicorn (as ``dashboard_shell.py`` does), then
writes, straight into the portal's database, what ``flask measure rollup`` would leave
after a year: for every configured instance and every day, roll-ups across the
dimensions the recording uses (8 page steps, 5 journeys with their three failure
classes, 5 linking outcomes, probes and calls, actions per outcome, channel and
assisted), daily unique visitors and satisfaction answers, whose counts add up to
``--events`` (10 million by default). A service owner (their session row made in the
database, as a sign-in would) then loads, one request after another:

- a service's dashboard with the default period (the last twelve weeks), and by month
  over the whole year;
- the page across their services (a territory administrator: every service), likewise.

Reports the median and p95 server time per page (target: p95 ≤ 300 ms). Usage:
``.venv/bin/python bench/owners_dashboard.py [--requests 60] [--events 10000000]
[--database-url postgresql+psycopg://…/an_empty_database]``.
Prints a Markdown block for docs/benchmarks.md. Bounded; it only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from dashboard_shell import servers, summary

from portal.config import DEV_SECRET_KEY

JOURNEYS = ("renew_loan", "book_meal", "cancel_meal", "pay_invoice", "renew_application")
STEPS = ("page", "loans", "history", "meals", "invoices", "link", "card", "help")
DAYS = 365


def rows_for(day: date, slug: str, category: str, per_day: int) -> tuple[list[dict], int]:
    """One instance's roll-ups of one day, about ``per_day`` events in all."""
    unit = max(1, per_day // 100)
    rows: list[dict] = []
    events = 0

    def add(kind: str, count: int, **dims: object) -> None:
        nonlocal events
        row = {"day": day, "kind": kind, "category": category, "instance": slug, "step": "",
               "outcome": "", "failure": "", "channel": "web", "assisted": False,
               "count": count, "visitors": 0, "value_sum": 0, "histogram": None}  # fmt: skip
        row.update(dims)
        if kind in ("page_view", "connector_call"):
            histogram = [0] * 18
            histogram[2], histogram[5], histogram[9] = count * 70 // 100, count * 25 // 100, 0
            histogram[9] = count - histogram[2] - histogram[5]
            row["histogram"] = histogram
            row["value_sum"] = count * 60
        rows.append(row)
        events += count

    for step in STEPS:
        add("page_view", 7 * unit, step=step)
    for journey in JOURNEYS:
        add("journey_started", 4 * unit, step=journey)
        add("journey_completed", 3 * unit, step=journey)
        for failure in ("refused", "unavailable", "invalid"):
            add("journey_failed", max(1, unit // 8), step=journey, failure=failure)
    for outcome in ("success", "refused", "unavailable", "invalid", "blocked"):
        add("link_attempt", unit if outcome == "success" else max(1, unit // 5), outcome=outcome)
    add("connector_call", 8 * unit, step="call", outcome="ok")
    add("connector_call", max(1, unit // 50), step="call", outcome="error")
    for channel in ("web", "desk", "phone"):
        for assisted in (False, True):
            for outcome in ("success", "failure"):
                add("action", max(1, unit // (2 if outcome == "success" else 20)),
                    outcome=outcome, channel=channel, assisted=assisted)  # fmt: skip
    return rows, events


def seed(database_url: str, connectors_file: str, events: int) -> tuple[int, int, list[str]]:
    """Roll-ups, daily visitors, answers and two agents; returns (roll-up rows, events,
    instance slugs)."""
    from portal import create_app
    from portal.config import load_settings
    from portal.extensions import db
    from portal.integrations import registry
    from portal.measure.daily import days_to_summarise, summarise_day
    from portal.models.measure import DailyVisitors, MeasureRollup, SatisfactionAnswer

    app = create_app(load_settings({}, database_url=database_url, connectors_file=connectors_file,
                                   demo_links_file=""))  # fmt: skip
    with app.app_context():
        slugs = list(registry().instances)
        per_day = events // (DAYS * len(slugs))
        today = date.today()
        total_rows = total_events = 0
        for offset in range(DAYS, 0, -1):
            day = today - timedelta(days=offset)
            batch: list[dict] = []
            for slug in slugs:
                rows, n = rows_for(day, slug, registry().category(slug), per_day)
                batch += rows
                total_events += n
            db.session.execute(db.insert(MeasureRollup), batch)
            db.session.execute(
                db.insert(DailyVisitors),
                [{"day": day, "instance": s, "visitors": per_day // 20} for s in [*slugs, ""]],
            )
            db.session.execute(
                db.insert(SatisfactionAnswer),
                [{"day": day, "instance": s, "category": registry().category(s),
                  "journey": "renew_loan", "channel": "web", "assisted": False,
                  "satisfaction": ("good", "average", "bad")[i % 3], "clarity": 1 + i % 5,
                  "comment": ""}
                 for s in slugs for i in range(6)],
            )  # fmt: skip
            total_rows += len(batch)
        db.session.commit()
        # What ``flask measure rollup`` does next for days rolled up without summaries.
        for day in days_to_summarise():
            summarise_day(day)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return total_rows, total_events, slugs


def agent_cookie(database_url: str, connectors_file: str, role: str, instances: list[str]) -> str:
    """An agent with ``role`` and a session row, as a sign-in would leave them; the
    agents' cookie that carries it."""
    from itsdangerous import URLSafeSerializer

    from portal import create_app
    from portal.agents.access import grant
    from portal.agents.session import _SALT
    from portal.config import load_settings
    from portal.extensions import db
    from portal.models import Agent, AgentSession

    app = create_app(load_settings({}, database_url=database_url, connectors_file=connectors_file,
                                   demo_links_file=""))  # fmt: skip
    with app.app_context():
        agent = Agent(idp_id="bench", sub=secrets.token_hex(8), name=role, active=True)
        db.session.add(agent)
        db.session.flush()
        grant(agent, role, None, instances)
        sid = secrets.token_urlsafe(32)
        db.session.add(AgentSession(id=sid, agent_id=agent.id, id_token=""))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return URLSafeSerializer(DEV_SECRET_KEY, salt=_SALT).dumps({"sid": sid})


def times(client: httpx.Client, path: str, n: int) -> list[float]:
    found = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)
        found.append(time.perf_counter() - t0)
        assert r.status_code == 200, (path, r.status_code)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--database-url",
        default="",
        help="an empty PostgreSQL database to use instead of a new SQLite file",
    )
    args = parser.parse_args()
    settings = {"PORTAL_DATABASE_URL": args.database_url} if args.database_url else {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        servers(Path(tmp), settings=settings) as (_sandbox, portal_url),
    ):
        database_url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
        connectors = f"{tmp}/connectors.toml"
        t0 = time.perf_counter()
        rollups, events, slugs = seed(database_url, connectors, args.events)
        seeded_s = time.perf_counter() - t0
        owner = agent_cookie(database_url, connectors, "service_owner", slugs[1:3])
        admin = agent_cookie(database_url, connectors, "territory_admin", [])
        today = date.today()
        year = f"period=month&start={today - timedelta(days=DAYS)}&end={today - timedelta(days=1)}"
        service = f"/agents/owners/services/{slugs[1]}"
        pages = [
            ("owner", f"a service, last 12 weeks (`{service}`)", service),
            ("owner", "a service, by month over a year", f"{service}?{year}"),
            ("owner", "the owner's 2 services, last 12 weeks", "/agents/owners/"),
            ("admin", f"the territory ({len(slugs)} services), last 12 weeks", "/agents/owners/"),
            ("admin", f"the territory ({len(slugs)} services), by month over a year",
             f"/agents/owners/?{year}"),
        ]  # fmt: skip
        results = []
        for who, label, path in pages:
            cookie = owner if who == "owner" else admin
            with httpx.Client(base_url=portal_url, timeout=30,
                              cookies={"agent_session": cookie}) as client:  # fmt: skip
                times(client, path, 5)  # warm-up
                results.append((label, summary(times(client, path, args.requests))))
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"""### Owners' dashboard — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC

Machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()};
gunicorn 2 workers × 4 threads; {database}. Seeded: {rollups:,} roll-up rows for
{events:,} events ({len(slugs)} instances × {DAYS} days), in {seeded_s:.0f} s.

| page ({args.requests} sequential requests each) | median | p95 |
|---|---|---|""")
    for label, (median, p95) in results:
        print(f"| {label} | {median:.0f} ms | {p95:.0f} ms |")


if __name__ == "__main__":
    main()
