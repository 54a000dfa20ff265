"""Benchmark: one slow back-end and the other routes.

Starts the sandbox and the portal under gunicorn (2 workers × 8 threads, as the
``Procfile``; ``--threads`` for another count), signs two Koha residents in, and for
``--seconds`` keeps ``--load`` threads asking for their Koha card (a second's pause
between two asks) while one prober asks, in turn, ``/healthz``, the dashboard shell and
another service's card (Mérignac's library), timing each. Four runs side by side: every
back-end healthy; Koha answering each call in 200 ms (far away but healthy), then in 700
ms (slow, within its deadline), with the per-back-end limit
(``PORTAL_BACKEND_CONCURRENCY``, default); the same without a limit (``0``: the portal
before it had one). Prints p50/p95 of each probed route and what the Koha cards said, as
a Markdown block for docs/benchmarks.md. Usage:
``.venv/bin/python bench/slow_backend.py [--seconds 20] [--load 24]``. Bounded in time;
it only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from dashboard_shell import servers, sign_in

HX = {"HX-Request": "true"}
UNAVAILABLE = "temporairement indisponible"
#: A resident's pause between two Koha cards: the load is residents, not a flood.
THINK_S = 1.0
PROBED = {"/healthz": "/healthz", "shell": "/", "Mérignac card": "/services/bib-merignac/card"}


def p(values: list[float], q: float) -> float:
    if not values:  # the prober never got an answer in time
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered)) - 1))] * 1000


def run(
    seconds: float, load: int, latency_ms: int, settings: dict[str, str], threads: int = 8
) -> dict[str, object]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        servers(Path(tmp), settings=settings, portal_threads=threads) as (sandbox_url, portal_url),
    ):
        residents = [sign_in(portal_url, who) for who in ("marie-therese", "lucas")]
        for client in residents:  # linked, and their snapshots written, before the load
            client.get("/services/bib-bordeaux/card", headers=HX)
        httpx.post(
            f"{sandbox_url}/_admin/faults/koha/bordeaux",
            json={"mode": None, "latency_ms": latency_ms},
            timeout=5,
        ).raise_for_status()
        stop = time.monotonic() + seconds
        said = {"ok": 0, "unavailable or stale": 0, "error": 0}
        lock = threading.Lock()

        def koha_reader(client: httpx.Client) -> None:
            while time.monotonic() < stop:
                try:
                    answer = client.get("/services/bib-bordeaux/card", headers=HX, timeout=15)
                    kind = (
                        "error"
                        if answer.status_code != 200
                        else "unavailable or stale"
                        if UNAVAILABLE in answer.text or "card--stale" in answer.text
                        else "ok"
                    )
                except httpx.HTTPError:
                    kind = "error"
                with lock:
                    said[kind] += 1
                time.sleep(THINK_S)

        threads = [
            threading.Thread(target=koha_reader, args=(residents[n % 2],)) for n in range(load)
        ]
        for thread in threads:
            thread.start()
        times: dict[str, list[float]] = {label: [] for label in PROBED}
        prober = sign_in(portal_url, "amina")  # Mérignac's library, no Koha
        time.sleep(1)  # the load is on
        while time.monotonic() < stop:
            for label, path in PROBED.items():
                started = time.perf_counter()
                answer = prober.get(path, headers=HX if "card" in path else None, timeout=15)
                times[label].append(time.perf_counter() - started)
                assert answer.status_code == 200, (path, answer.status_code)
            time.sleep(0.05)
        for thread in threads:
            thread.join()
        return {"times": times, "said": said}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--load", type=int, default=24)
    parser.add_argument("--limit", type=int, help="PORTAL_BACKEND_CONCURRENCY (default: its)")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads (Procfile: 8)")
    args = parser.parse_args()
    t = args.threads
    limited = {} if args.limit is None else {"PORTAL_BACKEND_CONCURRENCY": str(args.limit)}
    limit = "default" if args.limit is None else str(args.limit)
    runs = [
        ("every back-end healthy", run(args.seconds, args.load, 0, limited, t)),
        (f"Koha at 200 ms, limit ({limit})", run(args.seconds, args.load, 200, limited, t)),
        (f"Koha at 700 ms, limit ({limit})", run(args.seconds, args.load, 700, limited, t)),
        (
            "Koha at 700 ms, no limit (before)",
            run(args.seconds, args.load, 700, {"PORTAL_BACKEND_CONCURRENCY": "0"}, t),
        ),
    ]
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    print(f"### One slow back-end — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(
        f"Machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; "
        f"gunicorn 2 workers × {t} threads; SQLite; {args.load} threads asking for Koha cards "
        f"for {args.seconds:.0f} s, one prober.\n"
    )
    heads = " | ".join(f"{label} p50 | p95" for label in PROBED)
    print(f"| run | {heads} | Koha cards: ok / unavailable or stale / errors |")
    print("|---|" + "---|---|" * len(PROBED) + "---|")
    base = runs[0][1]["times"]
    for label, found in runs:
        times = found["times"]
        cells = " | ".join(
            f"{p(times[r], 0.5):.0f} ms | {p(times[r], 0.95):.0f} ms" for r in PROBED
        )
        said = found["said"]
        print(
            f"| {label} | {cells} | {said['ok']} / {said['unavailable or stale']} / "
            f"{said['error']} |"
        )
    for label, found in runs[1:]:
        ratios = ", ".join(
            f"{r} {p(found['times'][r], 0.95) / p(base[r], 0.95):.2f}×" for r in PROBED
        )
        print(f"\np95 against every back-end healthy, {label}: {ratios}")


if __name__ == "__main__":
    main()
