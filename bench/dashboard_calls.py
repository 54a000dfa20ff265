"""Benchmark: how many back-end calls one dashboard view makes, and how long it takes,
when every back-end answers in 200 ms (a far-away system).

Starts the sandbox and the portal under gunicorn (one worker, four threads), gives every
sandbox tenant 200 ms of latency per call, signs each demo resident in (three to six
services each), and loads their dashboard as a browser does: the shell, then every card
request the shell names and the to-do list, all at once (six connections). Counts the
calls each view made (what the sandbox's back-ends received, from its ``/_admin/calls``)
and times it, for a first view and for a reload a second later, with the
to-do list reusing what the cards read (``PORTAL_READ_CACHE_S=30``, the default) and
reading again (``0``). Then each card on its own (one request after another, a first
view and a reload): the calls it made and its time. With ``--before PATH`` (another
checkout, e.g. of the commit before a change), the same is measured on that code too,
in the same run, and shown side by side. Usage:
``.venv/bin/python bench/dashboard_calls.py [--before /path/to/checkout]``. Prints a
Markdown block for docs/benchmarks.md. It only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import httpx
from dashboard_shell import servers, sign_in

LATENCY_MS = 200
TENANTS = [
    ("library", "merignac"),
    ("library", "pessac"),
    ("koha", "bordeaux"),
    ("canteen", "bordeaux"),
    ("housing", "metropole"),
    ("water", "bordeaux"),
    ("water", "pessac"),
]
LOADER = re.compile(r'hx-get="(/(?:services/[^/"]+/card|cards\?[^"]+))"')


def calls_so_far(sandbox_url: str) -> int:
    """Requests the sandbox's back-ends received so far (``/_admin/calls``)."""
    return sum(httpx.get(f"{sandbox_url}/_admin/calls", timeout=5).json().values())


def one_view(client: httpx.Client) -> float:
    """Shell, then its card requests and the to-do list side by side (6 at a time)."""
    started = time.perf_counter()
    shell = client.get("/").text
    urls = [unescape(u) for u in LOADER.findall(shell)] + ["/account/todo"]
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda u: client.get(u, headers={"HX-Request": "true"}), urls))
    assert all(a.status_code == 200 for a in answers), [a.status_code for a in answers]
    return time.perf_counter() - started


RESIDENTS = ["marie-therese", "dartagnan", "amina", "lucas", "jean-baptiste"]
SLUGS = re.compile(r"(?:/services/([^/]+)/card|slug=([^&]+))")

#: (card, view) → (calls of each, seconds of each)
PerCard = dict[tuple[str, str], tuple[list[int], list[float]]]


def each_card(client: httpx.Client, sandbox_url: str, view: str, found: PerCard) -> None:
    """Every card of the shell asked on its own, one after another."""
    shell = client.get("/").text
    for url in [unescape(u) for u in LOADER.findall(shell)]:
        card = "+".join(a or b for a, b in SLUGS.findall(url))
        before = calls_so_far(sandbox_url)
        started = time.perf_counter()
        answer = client.get(url, headers={"HX-Request": "true"})
        took = time.perf_counter() - started
        assert answer.status_code == 200, (url, answer.status_code)
        calls, times = found.setdefault((card, view), ([], []))
        calls.append(calls_so_far(sandbox_url) - before)
        times.append(took)


def measure(
    cache_s: str, root: Path | None = None, *, per_card: bool = True
) -> tuple[dict[str, tuple[list[int], list[float]]], PerCard]:
    cards: PerCard = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        servers(
            Path(tmp),
            settings={"PORTAL_READ_CACHE_S": cache_s},
            portal_workers=1,
            portal_root=root,
        ) as (sandbox_url, portal_url),
    ):
        slow_down(sandbox_url)
        found: dict[str, tuple[list[int], list[float]]] = {"first": ([], []), "reload": ([], [])}
        for resident in RESIDENTS:
            client = sign_in(portal_url, resident)
            for view in ("first", "reload"):
                before = calls_so_far(sandbox_url)
                found[view][1].append(one_view(client))
                found[view][0].append(calls_so_far(sandbox_url) - before)
                time.sleep(1)
            client.close()
    if not per_card:
        return found, cards
    with (
        tempfile.TemporaryDirectory() as tmp,
        servers(Path(tmp), portal_workers=1, portal_root=root) as (sandbox_url, portal_url),
    ):  # fresh servers: a card's first view finds nothing kept by the views above
        slow_down(sandbox_url)
        for resident in RESIDENTS:
            client = sign_in(portal_url, resident)
            for view in ("first", "reload"):
                each_card(client, sandbox_url, view, cards)
            client.close()
    return found, cards


def slow_down(sandbox_url: str) -> None:
    """Every tenant answers each call after ``LATENCY_MS``."""
    for kind, tenant in TENANTS:
        httpx.post(
            f"{sandbox_url}/_admin/faults/{kind}/{tenant}",
            json={"mode": None, "latency_ms": LATENCY_MS},
            timeout=5,
        ).raise_for_status()


def card_table(runs: list[tuple[str, PerCard]]) -> None:
    """Per card and view: calls (total over the residents who have it) and the median
    and slowest time, for each run side by side."""
    heads = " | ".join(f"{label}: calls | {label}: median | {label}: max" for label, _ in runs)
    print(f"\n| card | view | {heads} |")
    print("|---|---|" + "---|" * (3 * len(runs)))
    for key in sorted(runs[-1][1], key=lambda k: (k[0], k[1] != "first")):
        cells = []
        for _, cards in runs:
            calls, times = cards.get(key, ([], []))
            if not times:
                cells.append("– | – | –")
                continue
            cells.append(
                f"{sum(calls)} | {statistics.median(times) * 1000:.0f} ms | "
                f"{max(times) * 1000:.0f} ms"
            )
        print(f"| {key[0]} | {key[1]} | {' | '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, help="another checkout to measure too")
    args = parser.parse_args()
    before = measure("30", args.before) if args.before else None
    shared, after_cards = measure("30")
    again, _ = measure("0", per_card=False)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"### Dashboard calls — {now}\n")
    print(
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
        f"Python {platform.python_version()}; gunicorn 1 worker × 4 threads; SQLite; "
        f"{LATENCY_MS} ms per back-end call; {len(RESIDENTS)} residents.\n"
    )
    print("| to-do list | view | back-end calls (total) | view, median | view, max |")
    print("|---|---|---|---|---|")
    views = [("reuses the cards' reads (30 s)", shared), ("reads again (0)", again)]
    if before is not None:
        views.insert(0, ("before, reuses (30 s)", before[0]))
    for label, found in views:
        for view in ("first", "reload"):
            counts, times = found[view]
            print(
                f"| {label} | {view} | {sum(counts)} | "
                f"{statistics.median(times) * 1000:.0f} ms | {max(times) * 1000:.0f} ms |"
            )
    for view in ("first", "reload"):
        ratio = sum(shared[view][0]) / sum(again[view][0])
        print(f"\nratio of calls, reused / read again, {view} views: {ratio:.2f}")
    print("\nEach card on its own (calls summed over the residents who have it):")
    card_table(([("before", before[1])] if before is not None else []) + [("now", after_cards)])


if __name__ == "__main__":
    main()
