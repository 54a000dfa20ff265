"""Benchmark: what recording anonymous measurement costs a page.

Builds two portals on one SQLite database (migrated from empty), the same in every way
but ``measure_enabled``, and requests the same page (``/accessibilite``, a tagged page
that reads nothing else) from each, in alternating batches so that both see the same
machine load; each client keeps its cookies, as a browser does (the day's visitor cookie
is set once). With recording on, each request runs the hooks (clock, context, visitor
hash, one buffered event) and the flush thread writes the buffer in bulk every second.

Prints a Markdown block to paste into docs/benchmarks.md: median, mean and p95 per
request with recording off and on, their ratio and absolute difference (target: at most
1 ms), and how many events the thread wrote. In process, through Flask's test client: it
measures the server's work, no network.

Usage: ``.venv/bin/python bench/measure_overhead.py [--requests 3000] [--batch 100]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGE = "/accessibilite"


def build(url: str, enabled: bool):  # type: ignore[no-untyped-def]
    from portal import create_app
    from portal.config import load_settings

    settings = load_settings(
        {}, database_url=url, measure_enabled=enabled, probe_interval_s=0, connectors_file=""
    )
    return create_app(settings)


def timed(client, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(PAGE)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
    return times


def hooks_only(app, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Every request hook of the app (before and after), without the view: the part of
    a page recording adds to, measured with less noise than a whole page."""
    from flask import Response

    times = []
    for _ in range(n):
        with app.test_request_context(PAGE, headers={"Cookie": "measure_day=" + "a" * 32}):
            start = time.perf_counter()
            app.preprocess_request()
            app.process_response(Response("ok", mimetype="text/html"))
            times.append((time.perf_counter() - start) * 1000)
    return times


def p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000, help="per mode")
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    workdir = Path(tempfile.mkdtemp(prefix="measure-bench-"))
    url = f"sqlite:///{workdir}/bench.sqlite3"
    off, on = build(url, False), build(url, True)
    from flask_migrate import upgrade

    with off.app_context():
        upgrade()
    clients = {"off": off.test_client(), "on": on.test_client()}
    for client in clients.values():  # warm up: templates compiled, the day's key made
        timed(client, 50)
    times: dict[str, list[float]] = {"off": [], "on": []}
    done = 0
    while done < args.requests:
        n = min(args.batch, args.requests - done)
        for mode in ("off", "on"):
            times[mode] += timed(clients[mode], n)
        done += n
    hooks: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(max(1, args.requests // args.batch)):
        for mode, app in (("off", off), ("on", on)):
            hooks[mode] += hooks_only(app, args.batch)
    recorder = on.extensions["measure"]
    recorder.flush()
    from portal.extensions import db
    from portal.models import MeasureEvent

    with on.app_context():
        written = db.session.execute(db.select(db.func.count(MeasureEvent.id))).scalar_one()

    rows = {mode: (statistics.median(v), statistics.fmean(v), p95(v)) for mode, v in times.items()}
    diff = [rows["on"][i] - rows["off"][i] for i in range(3)]
    ratio = [rows["on"][i] / rows["off"][i] for i in range(3)]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cpu = os.cpu_count()
    print(f"### Measurement overhead — {now}\n")
    print(
        f"Machine: {cpu} cores, {platform.processor() or platform.machine()}; "
        f"Python {platform.python_version()}; in process (Flask test client); SQLite.\n"
    )
    print(f"| `GET {PAGE}` ({args.requests} requests each) | median | mean | p95 |")
    print("|---|---|---|---|")
    for mode, label in (("off", "recording off"), ("on", "recording on")):
        median, mean, high = rows[mode]
        print(f"| {label} | {median:.3f} ms | {mean:.3f} ms | {high:.3f} ms |")
    print(f"| difference on − off | {diff[0]:.3f} ms | {diff[1]:.3f} ms | {diff[2]:.3f} ms |")
    print(f"| ratio on / off | {ratio[0]:.2f} | {ratio[1]:.2f} | {ratio[2]:.2f} |")
    print(f"\n| request hooks alone ({len(hooks['on'])} each) | median | mean | p95 |")
    print("|---|---|---|---|")
    hook_rows = {m: (statistics.median(v), statistics.fmean(v), p95(v)) for m, v in hooks.items()}
    for mode, label in (("off", "recording off"), ("on", "recording on")):
        median, mean, high = hook_rows[mode]
        print(f"| {label} | {median:.3f} ms | {mean:.3f} ms | {high:.3f} ms |")
    hook_diff = [hook_rows["on"][i] - hook_rows["off"][i] for i in range(3)]
    print(
        f"| difference on − off | {hook_diff[0]:.3f} ms | {hook_diff[1]:.3f} ms "
        f"| {hook_diff[2]:.3f} ms |"
    )
    print(
        f"\nEvents written by the flush thread: {written} "
        f"(dropped: {recorder.dropped}); warm-up included."
    )


if __name__ == "__main__":
    main()
