"""Benchmark: what checking a back-end's answer against its spec costs.

Real bodies from the sandbox (a Koha checkouts list with its embeds, a standard
library's loans), checked as the portal did before (``best_match`` over every error of
``iter_errors``) and as it does now (``Contract.check``: the walk stops at the first
error; the same bytes found valid are not walked again), side by side in one run; and
the same for a broken body (every loan with two wrong fields, 500 loans), as a back-end
breaking its contract sends on every read. Usage:
``.venv/bin/python bench/contract_check.py [--rounds 300]``. Prints a Markdown block
for docs/benchmarks.md. No network: the sandbox answers through Flask's test client.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from jsonschema.exceptions import best_match

import sandbox
from connectors.base import ContractBroken
from connectors.contract import Contract, load_contract


def timed(rounds: int, call: Callable[[], object]) -> float:
    """Median milliseconds of ``call`` over ``rounds`` runs (after one warm-up)."""
    call()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def quiet(call: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        try:
            return call()
        except ContractBroken:
            return None

    return run


def row(label: str, contract: Contract, route: str, content: bytes, rounds: int) -> str:
    body = json.loads(content)
    validator = contract._validator("bench", "get", route, 200)
    assert validator is not None
    before = timed(rounds, lambda: best_match(validator.iter_errors(body)))
    walk = timed(rounds, quiet(lambda: contract.check("b", "GET", route, 200, body)))
    again = timed(rounds, quiet(lambda: contract.check("b", "GET", route, 200, body, content)))
    return f"| {label} | {len(content):,} B | {before:.3f} ms | {walk:.3f} ms | {again:.3f} ms |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    client = sandbox.create_app({"TESTING": True}).test_client()
    koha_body = client.get(
        "/koha/bordeaux/api/v1/checkouts?patron_id=51",
        auth=("portal", "sandbox-koha-bordeaux-secret"),
        headers={"x-koha-embed": "item.biblio,library"},
    ).data
    loans_body = client.get(
        "/library/merignac/v1/patrons/mer-p-0417/loans",
        headers={"X-Api-Key": "sandbox-library-merignac-key"},
    ).data
    cases: list[tuple[str, Contract, str, bytes]] = []
    koha, library = load_contract("koha-subset.yaml"), load_contract("library.yaml")
    assert koha is not None and library is not None
    cases.append(("Koha checkouts (4, embedded)", koha, "/api/v1/checkouts", koha_body))
    cases.append(("standard loans (5)", library, "/v1/patrons/{patron_id}/loans", loans_body))
    broken = json.loads(loans_body)
    broken["loans"] = [dict(broken["loans"][0], renewable="oui", due_date=5)] * 500
    cases.append(
        (
            "broken loans (500, 2 errors each)",
            library,
            "/v1/patrons/{patron_id}/loans",
            json.dumps(broken).encode(),
        )
    )
    rows = [
        row(label, contract, route, content, args.rounds)
        for label, contract, route, content in cases
    ]
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    table = "\n".join(rows)
    print(f"""### Contract checks — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC

Machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; median of
{args.rounds} checks each.

| body | size | before: best_match over all errors | now: first error | now: same bytes again |
|---|---|---|---|---|
{table}
""")


if __name__ == "__main__":
    main()
