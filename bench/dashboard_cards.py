"""Benchmark: how long a resident waits for every card, and what the grouping costs.

Starts the sandbox and the portal under gunicorn (as ``dashboard_shell.py`` does), signs
Marie-Thérèse in with her 4 demo services, then with 4 more (Mérignac annexes on
Mérignac's back-end, linked in the database) for 8. For each, like a browser (at most 6
connections to the portal), it loads the shell and then what the shell asks for:

- ``as served``: the shell's own loaders (one request per card up to 5 services; past
  that, one ``/cards`` request per back-end);
- ``one per card``: every card asked for on its own (``/services/<slug>/card``), as
  before the grouping existed, for comparison (8 cards are over the page's budget).

It reports the median and p95 time until every card is in, with every back-end healthy
and with Mérignac's hanging (then: until the cards of the other back-ends are in, and
until the hanging ones give up at the card deadline). Usage:
``.venv/bin/python bench/dashboard_cards.py [--rounds 30]``. Prints a Markdown block for
docs/benchmarks.md. Bounded in count and time; it only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sqlite3
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from dashboard_shell import servers, sign_in

ANNEXES = [f"bib-merignac-annexe-{n}" for n in range(1, 5)]
EXTRA = (
    "".join(
        f"""
[instances.{slug}]
type = "library-standard"
title = "Médiathèque de Mérignac, annexe {n}"
communes = ["Mérignac"]
base_url = "{{sandbox}}/library/merignac"

[instances.{slug}.credentials]
api_key = "sandbox-library-merignac-key"

[instances.{slug}.options]
breaker_threshold = 1000000
"""
        for n, slug in enumerate(ANNEXES, start=1)
    )
    + """
[instances.bib-merignac.options]
breaker_threshold = 1000000
"""
)
# The breakers are kept shut: this measures the worst case, a back-end that hangs
# before its breaker opens (once open, its cards are answered at once).
HX = {"HX-Request": "true"}
PLACEHOLDER_RE = re.compile(r'<a id="card-link-([^"]+)"([^>]*)>')
HX_GET_RE = re.compile(r' hx-get="([^"]+)"')
CARD_RE = re.compile(r'id="card-([^"]+)"')
#: Browsers open at most 6 connections to one origin over HTTP/1.1.
CONNECTIONS = 6


def loaders(html: str) -> tuple[list[str], list[str]]:
    """The services on the shell, and the URLs it asks htmx to load for their cards."""
    slugs, urls = [], []
    for slug, attributes in PLACEHOLDER_RE.findall(html):
        slugs.append(slug)
        found = HX_GET_RE.search(attributes)
        if found:
            urls.append(found.group(1).replace("&amp;", "&"))
    return slugs, urls


def one_dashboard(
    client: httpx.Client, pool: ThreadPoolExecutor, grouped: bool, healthy: set[str]
) -> tuple[float, float]:
    """Seconds until the healthy services' cards are in, and until every card is."""
    t0 = time.perf_counter()
    shell = client.get("/")
    assert shell.status_code == 200
    slugs, urls = loaders(shell.text)
    if not grouped:
        urls = [f"/services/{slug}/card" for slug in slugs]

    def fetch(url: str) -> tuple[float, set[str]]:
        answer = client.get(url, headers=HX)
        assert answer.status_code == 200, (url, answer.status_code)
        return time.perf_counter() - t0, set(CARD_RE.findall(answer.text))

    results = list(pool.map(fetch, urls))
    arrived = set().union(*(cards for _, cards in results))
    assert arrived >= set(slugs), (slugs, arrived)
    healthy_done = max((t for t, cards in results if cards & healthy), default=0.0)
    return healthy_done, max(t for t, _ in results)


def measure(client: httpx.Client, rounds: int, grouped: bool, healthy: set[str]):
    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        one_dashboard(client, pool, grouped, healthy)  # warm-up
        runs = [one_dashboard(client, pool, grouped, healthy) for _ in range(rounds)]
    return [r[0] for r in runs], [r[1] for r in runs]


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"{statistics.median(ordered) * 1000:.0f} ms | {p95 * 1000:.0f} ms"


def link_annexes(database: Path) -> None:
    with sqlite3.connect(database) as db:
        [(citizen_id,)] = db.execute("select id from citizen").fetchall()
        db.executemany(
            "insert into service_link (citizen_id, instance_slug, external_id, display_name,"
            " secret_ciphertext, linked_at, linked_by_kind, linked_by_id, status)"
            " values (?, ?, 'mer-p-0417', '', null, ?, 'citizen', '', 'active')",
            [(citizen_id, slug, datetime.now(UTC).isoformat()) for slug in ANNEXES],
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, servers(Path(tmp), EXTRA) as (sandbox, portal):
        client = sign_in(portal, "marie-therese")
        for count in (4, 8):
            if count == 8:
                link_annexes(Path(tmp) / "bench.sqlite3")
            slugs, _ = loaders(client.get("/").text)
            assert len(slugs) == count, slugs
            merignac = {"bib-merignac", *ANNEXES}
            others = set(slugs) - merignac
            for grouped in (True, False):
                label = "as served" if grouped else "one per card"
                _, every = measure(client, args.rounds, grouped, set(slugs))
                rows.append((f"{count} services, {label}, all healthy: every card", every))
                httpx.post(
                    f"{sandbox}/_admin/faults/library/merignac",
                    json={"mode": "hang", "hang_s": 4},  # past the card deadline; frees the thread
                    timeout=5,
                )
                try:
                    first, last = measure(client, max(5, args.rounds // 3), grouped, others)
                finally:
                    httpx.post(
                        f"{sandbox}/_admin/faults/library/merignac", json={"mode": None}, timeout=5
                    )
                rows.append((f"{count} services, {label}, Mérignac hanging: other cards", first))
                rows.append((f"{count} services, {label}, Mérignac hanging: every card", last))
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    table = "\n".join(f"| {label} | {summary(times)} |" for label, times in rows)
    print(f"""### Dashboard cards — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC

Machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()};
gunicorn 2 workers × 4 threads; SQLite; card deadline 2.5 s; {CONNECTIONS} connections.

| from the shell's request to … | median | p95 |
|---|---|---|
{table}
""")


if __name__ == "__main__":
    main()
