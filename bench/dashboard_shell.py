"""Benchmark: the dashboard shell never waits for a back-end.

Starts the sandbox and the portal under gunicorn (2 workers, 4 threads each) on loopback,
signs a demo resident in, then measures:

1. the shell's server time (``GET /``) with every back-end healthy, then with one back-end
   hanging (the Mérignac library never answers) while cards for it are being requested;
2. the shell's throughput under concurrent load, as a ratio to a trivial route
   (``/healthz``) measured in the same run.

Usage: ``.venv/bin/python bench/dashboard_shell.py [--requests 300] [--seconds 8]``.
Prints a Markdown block to paste into docs/benchmarks.md. Bounded in count and time;
it only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


@contextmanager
def servers(
    workdir: Path,
    extra_instances: str = "",
    settings: dict[str, str] | None = None,
    portal_workers: int = 2,
    portal_root: Path | None = None,
    portal_threads: int = 4,
):
    """The sandbox and the portal under gunicorn; ``extra_instances`` is TOML added to
    the repository's instances, with ``{sandbox}`` standing for the sandbox's URL;
    ``settings``, more of the portal's environment; ``portal_root``, another checkout
    of the portal to serve (an earlier commit, to compare with in the same run; the
    sandbox is always this one's)."""
    portal_root = portal_root or ROOT
    sandbox_port, portal_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    portal_url = f"http://127.0.0.1:{portal_port}"
    conf = (ROOT / "connectors.toml").read_text(encoding="utf-8")
    conf += extra_instances.replace("{sandbox}", sandbox_url)
    (workdir / "connectors.toml").write_text(
        conf.replace("http://127.0.0.1:5001", sandbox_url), encoding="utf-8"
    )
    env = {
        **os.environ,
        "PORTAL_BASE_URL": portal_url,
        "PORTAL_FC_ISSUER": sandbox_url + "/api/v2",
        "PORTAL_DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3",
        "PORTAL_CONNECTORS_FILE": str(workdir / "connectors.toml"),
        "PORTAL_DEMO_LINKS_FILE": str(ROOT / "demo-links.toml"),
        "PORTAL_SIGNIN_RATE_LIMIT": "100000 per minute",
        "PORTAL_PROBE_INTERVAL_S": "0",
        "PORTAL_CARD_DEADLINE_S": "2.5",
        **(settings or {}),
    }
    portal_env = {**env, "PYTHONPATH": str(portal_root)}
    subprocess.run(
        [BIN / "flask", "--app", "portal", "db", "upgrade"],
        env=portal_env,
        check=True,
        capture_output=True,
        cwd=portal_root,
    )
    log = open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "ab")  # noqa: SIM115
    quiet = {"stdout": log, "stderr": log, "cwd": ROOT}
    sandbox = subprocess.Popen(
        [
            BIN / "gunicorn",
            "-b",
            f"127.0.0.1:{sandbox_port}",
            "-w",
            "1",
            "--threads",
            "32",
            "sandbox:create_app()",
        ],
        env=env,
        **quiet,
    )
    portal = subprocess.Popen(
        [
            BIN / "gunicorn",
            "-b",
            f"127.0.0.1:{portal_port}",
            "-w",
            str(portal_workers),
            "--threads",
            str(portal_threads),
            "portal:create_app()",
        ],
        env=portal_env,
        **{**quiet, "cwd": portal_root},
    )
    try:
        wait_until_up(sandbox_url + "/api/v2/.well-known/openid-configuration")
        wait_until_up(portal_url + "/healthz")
        yield sandbox_url, portal_url
    finally:
        for proc in (portal, sandbox):
            proc.terminate()
            proc.wait(timeout=10)
        log.close()


def sign_in(portal_url: str, identity: str) -> httpx.Client:
    client = httpx.Client(base_url=portal_url, timeout=10)
    start = client.get("/auth/franceconnect/login")
    page = httpx.get(start.headers["Location"], timeout=10)
    transaction = re.search(r'name="transaction_id"\s+value="([^"]+)"', page.text).group(1)
    decision = httpx.post(
        start.headers["Location"].split("/authorize")[0] + "/authorize/decision",
        data={"transaction_id": transaction, "identity": identity},
        timeout=10,
    )
    back = urlsplit(decision.headers["Location"])
    done = client.get(f"{back.path}?{back.query}")
    assert done.status_code == 303, done.status_code
    assert "Bonjour" in client.get("/").text
    return client


def shell_times(client: httpx.Client, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get("/")
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200
    return times


def throughput(client: httpx.Client, path: str, seconds: float, threads: int = 8) -> float:
    cookies = client.cookies
    count = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        nonlocal count
        with httpx.Client(base_url=str(client.base_url), cookies=cookies, timeout=10) as c:
            while time.monotonic() < stop:
                if c.get(path).status_code == 200:
                    with lock:
                        count += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return count / seconds


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, servers(Path(tmp)) as (sandbox_url, portal_url):
        client = sign_in(portal_url, "marie-therese")
        shell_times(client, 20)  # warm-up
        healthy = shell_times(client, args.requests)

        httpx.post(
            f"{sandbox_url}/_admin/faults/library/merignac",
            json={"mode": "hang", "hang_s": 60},
            timeout=5,
        )
        # Cards of the hanging service keep arriving, as from residents' browsers.
        stop = threading.Event()

        def hang_cards() -> None:
            with httpx.Client(base_url=portal_url, cookies=client.cookies, timeout=10) as c:
                while not stop.is_set():
                    c.get("/services/bib-merignac/card", headers={"HX-Request": "true"})

        hangers = [threading.Thread(target=hang_cards) for _ in range(2)]
        for t in hangers:
            t.start()
        time.sleep(0.5)
        hanging = shell_times(client, args.requests)
        stop.set()
        httpx.post(f"{sandbox_url}/_admin/faults/library/merignac", json={"mode": None}, timeout=5)
        for t in hangers:
            t.join(timeout=15)

        trivial_rps = throughput(client, "/healthz", args.seconds)
        shell_rps = throughput(client, "/", args.seconds)

    h_med, h_p95 = summary(healthy)
    x_med, x_p95 = summary(hanging)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"""### Dashboard shell — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC

Machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()};
gunicorn 2 workers × 4 threads; SQLite.

| measure | median | p95 |
|---|---|---|
| shell `GET /`, all back-ends healthy ({len(healthy)} requests) | {h_med:.1f} ms | {h_p95:.1f} ms |
| shell `GET /`, one library hanging ({len(hanging)} requests) | {x_med:.1f} ms | {x_p95:.1f} ms |
| ratio hanging / healthy | {x_med / h_med:.2f} | {x_p95 / h_p95:.2f} |

| throughput (8 client threads, {args.seconds:.0f} s each) | requests/s |
|---|---|
| trivial route `/healthz` | {trivial_rps:.0f} |
| dashboard shell `/` | {shell_rps:.0f} |
| ratio shell / trivial | {shell_rps / trivial_rps:.2f} |
""")


if __name__ == "__main__":
    main()
