"""Benchmark: "Mon activité" for a resident with a long history, by position against by
offset.

Seeds one resident with ``--entries`` journal entries (a few services, every outcome)
among other residents' entries, then, in one process and alternating, reads the first,
a middle and a deep page of 20 the way the page did before (``COUNT(*)`` over the whole
history on every page, ``OFFSET``, every label looked up again on each line) and the way
it does now (``activity_page`` by position, ``activity_rows``: labels once a page). Each
read builds the lines the template prints, so the labels' cost counts; the template
itself is the same both ways and is left out.

Usage: ``PYTHONPATH=. .venv/bin/python bench/activity_pages.py [--entries 20000]
[--rounds 30] [--database-url postgresql://postgres@127.0.0.1:5432/bench_activity]``.
The database is emptied and migrated first: give it one of its own.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from bench.request_path import migrated_app
from portal.account.activity import (
    PER_PAGE,
    Position,
    activity_page,
    activity_rows,
    actor_label,
    done_for_you,
    outcome_label,
    service_title,
)
from portal.config import normalise_database_url
from portal.extensions import db
from portal.journal_text import journal_line
from portal.models import Citizen, JournalEntry

KINDS = [
    ("renew_loan", "success", "bib-merignac"),
    ("renew_loan", "refused", "bib-merignac"),
    ("book_meals", "success", "cantine-bordeaux"),
    ("pay_invoice", "success", "cantine-bordeaux"),
    ("renew_application", "failure", "logement-metropole"),
    ("sign_in", "success", ""),
]


def seed(app: Flask, entries: int, others: int = 50) -> int:
    """The resident's id; their entries one minute apart, and ``others`` residents with
    as many entries in all, so the index has more than one resident to skip."""
    table = JournalEntry.__table__
    start = datetime(2020, 1, 1, tzinfo=UTC)
    with app.app_context():
        ids = []
        for n in range(others + 1):
            citizen = Citizen(sub=f"bench-{n}", given_name="Marie", family_name=f"Bench {n}")
            db.session.add(citizen)
            db.session.flush()
            ids.append(citizen.id)
        db.session.commit()
        resident, rest = ids[0], ids[1:]

        def rows(owner: Callable[[int], int], count: int) -> list[dict[str, Any]]:
            found = []
            for n in range(count):
                action, outcome, slug = KINDS[n % len(KINDS)]
                found.append(
                    {
                        "citizen_id": owner(n),
                        "at": start + timedelta(minutes=n),
                        "actor_kind": "citizen",
                        "actor_id": str(owner(n)),
                        "action": action,
                        "code": action if outcome == "success" else f"{action}_{outcome}",
                        "params": {"title": f"Document {n}"},
                        "connector_instance": slug,
                        "outcome": outcome,
                        "detail": "",
                        "channel": "web",
                    }
                )
            return found

        for chunk in range(0, entries, 5000):
            batch = min(5000, entries - chunk)
            db.session.execute(sa.insert(table), rows(lambda _n: resident, batch))
            db.session.execute(sa.insert(table), rows(lambda n: rest[n % len(rest)], batch))
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("ANALYZE journal_entry"))
            db.session.commit()
    return resident


def by_offset(resident: int, page: int) -> int:
    """Before: count everything, read a page by offset, each line's labels looked up."""
    query = db.select(JournalEntry).filter_by(citizen_id=resident)
    total = db.session.scalar(db.select(db.func.count()).select_from(query.subquery()))
    pages = max(1, -(-total // PER_PAGE))
    page = min(page, pages)
    entries = list(
        db.session.execute(
            query.order_by(JournalEntry.at.desc(), JournalEntry.id.desc())
            .offset((page - 1) * PER_PAGE)
            .limit(PER_PAGE)
        ).scalars()
    )
    labels = done_for_you(entries)
    lines = [
        (
            labels.get(entry.id) or actor_label(entry.actor_kind),
            journal_line(entry),
            service_title(entry.connector_instance) if entry.connector_instance else "",
            outcome_label(entry.outcome),
        )
        for entry in entries
    ]
    return len(lines)


def by_position(resident: int, before: Position | None) -> int:
    return len(activity_rows(activity_page(resident, before=before)))


def position_of_page(resident: int, page: int) -> Position | None:
    """The position a "next page" link to ``page`` carries (the last line before it)."""
    if page == 1:
        return None
    entry = db.session.execute(
        db.select(JournalEntry)
        .filter_by(citizen_id=resident)
        .order_by(JournalEntry.at.desc(), JournalEntry.id.desc())
        .offset((page - 1) * PER_PAGE - 1)
        .limit(1)
    ).scalar_one()
    return Position(entry.at, entry.id, page)


def timed(read: Callable[[], int]) -> float:
    started = time.perf_counter()
    assert read() == PER_PAGE
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = normalise_database_url(args.database_url or f"sqlite:///{tmp}/bench.sqlite3")
        app = migrated_app(url)
        started = time.perf_counter()
        resident = seed(app, args.entries)
        seeded_s = time.perf_counter() - started
        last = args.entries // PER_PAGE
        pages = [1, last // 2, last]
        results: dict[tuple[str, int], list[float]] = {}
        with app.test_request_context("/account/activity"):
            positions = {page: position_of_page(resident, page) for page in pages}
            for _ in range(3):  # warm-up
                for page in pages:
                    by_offset(resident, page)
                    by_position(resident, positions[page])
            for _ in range(args.rounds):
                for page in pages:
                    results.setdefault(("before", page), []).append(
                        timed(lambda page=page: by_offset(resident, page))
                    )
                    results.setdefault(("after", page), []).append(
                        timed(lambda page=page: by_position(resident, positions[page]))
                    )
    dialect = url.split(":", 1)[0].split("+", 1)[0]
    print(
        f"{dialect}; {args.entries} entries for the resident, as many for 50 others "
        f"(seeded in {seeded_s:.0f} s); {args.rounds} rounds\n"
    )
    print(
        "| page of 20 | by offset + count (before), median | by position (after), median | ratio |"
    )
    print("|---|---|---|---|")
    for page in pages:
        before = statistics.median(results[("before", page)]) * 1000
        after = statistics.median(results[("after", page)]) * 1000
        print(f"| {page} | {before:.2f} ms | {after:.2f} ms | {after / before:.2f} |")


if __name__ == "__main__":
    main()
