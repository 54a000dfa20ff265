"""Benchmark: what formatting one date or amount costs a page, before and after the
formatters stopped asking Flask-Babel for the time zone and Babel to parse the locale's
name at every call (``portal/formatting.py``).

In one process, inside one request context in French, alternating rounds, after a
warm-up; the way it was before is emulated (``bench/request_path.py``,
``--before babel-lookups-per-date``).

Usage: ``PYTHONPATH=. .venv/bin/python bench/formatting.py [--calls 20000]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import timeit
from collections.abc import Callable
from datetime import UTC, date, datetime

from bench.request_path import babel_lookups_per_date
from portal import create_app, formatting
from portal.config import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    moment = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    cases: dict[str, Callable[[], object]] = {
        "`day` (a date)": lambda: formatting.day(date(2026, 12, 1)),
        "`when` (a moment)": lambda: formatting.when(moment),
        "`clock` (a time)": lambda: formatting.clock(moment),
        "`money` (an amount)": lambda: formatting.money(8835),
    }
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            load_settings(
                {},
                database_url=f"sqlite:///{tmp}/bench.sqlite3",
                testing=True,
                connectors_file="",
                demo_links_file="",
                fc_issuer="http://127.0.0.1:9/idp",
                base_url="http://localhost",
            )
        )
        results: dict[tuple[str, str], list[float]] = {}
        with app.test_request_context("/?lang=fr"):
            for fn in cases.values():  # warm-up
                fn()
            for _ in range(5):
                for name, fn in cases.items():
                    with babel_lookups_per_date(app):
                        before = timeit.timeit(fn, number=args.calls // 5)
                    after = timeit.timeit(fn, number=args.calls // 5)
                    results.setdefault(("before", name), []).append(before / (args.calls // 5))
                    results.setdefault(("after", name), []).append(after / (args.calls // 5))
    print("| call (French) | before | after | ratio |")
    print("|---|---|---|---|")
    for name in cases:
        before = statistics.median(results[("before", name)]) * 1e6
        after = statistics.median(results[("after", name)]) * 1e6
        print(f"| {name} | {before:.1f} µs | {after:.1f} µs | {after / before:.2f} |")


if __name__ == "__main__":
    main()
