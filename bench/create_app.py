"""Benchmark: how long ``portal.create_app()`` takes, with one shared SSL context versus
one context per HTTP client (httpx's default, what the portal did before).

Builds the portal with the repository's ``connectors.toml`` (five instances, so five
connector clients plus the identity provider's) on a throw-away SQLite file; nothing is
sent anywhere (clients connect lazily). Both ways are measured in the same process,
alternating, after a warm-up, so imports and parsed specs count for neither.

Usage: ``PYTHONPATH=. .venv/bin/python bench/create_app.py [--rounds 20]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import connectors.http.client as http_client
import portal.auth.oidc as oidc
from portal import create_app
from portal.config import load_settings

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def one_context_per_client() -> Iterator[None]:
    """``verify=True`` everywhere: each httpx client loads the CA bundle itself."""
    saved = http_client.shared_ssl_context, oidc.shared_ssl_context

    def per_client(*args: Any, **kwargs: Any) -> Any:
        return True

    http_client.shared_ssl_context = per_client  # type: ignore[assignment]
    oidc.shared_ssl_context = per_client  # type: ignore[assignment]
    try:
        yield
    finally:
        http_client.shared_ssl_context, oidc.shared_ssl_context = saved


def timed(build: Callable[[], Any]) -> float:
    started = time.perf_counter()
    app = build()
    elapsed = time.perf_counter() - started
    registry = app.extensions.get("connectors")
    if registry is not None:
        registry.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            {},
            database_url=f"sqlite:///{tmp}/bench.sqlite3",
            testing=True,
            connectors_file=str(ROOT / "connectors.toml"),
            demo_links_file="",
            fc_issuer="http://127.0.0.1:9/idp",
            base_url="http://localhost",
        )

        def build() -> Any:
            return create_app(settings)

        for _ in range(3):  # warm-up: imports, parsed specs, templates
            timed(build)
            with one_context_per_client():
                timed(build)
        shared: list[float] = []
        separate: list[float] = []
        for _ in range(args.rounds):
            with one_context_per_client():
                separate.append(timed(build))
            shared.append(timed(build))
    before, after = statistics.median(separate), statistics.median(shared)
    print(f"create_app, one SSL context per client (before): median {before * 1000:.1f} ms")
    print(f"create_app, one shared SSL context (after):      median {after * 1000:.1f} ms")
    print(f"ratio after/before: {after / before:.2f} ({args.rounds} rounds each)")


if __name__ == "__main__":
    main()
