"""Load benchmark: residents browsing the portal on its production set-up, on loopback.

Starts the sandbox (identity provider and back-ends; ``--latency-ms`` added to every
back-end call), then ``--instances`` portals as the ``Procfile`` runs them (gunicorn,
2 workers × 8 threads each) on PostgreSQL and Redis, behind nginx when there are two
(round robin, ``deploy/nginx/proxy.conf`` as operators install it), then locust,
headless and bounded (``locustfile.py`` beside this file: sign-in through the
provider, dashboard, cards, to-do list, a service page, activity, one write, think time
1–3 s). While locust runs, each portal instance's CPU and memory (its master and
workers, psutil) and the database connections in use (``pg_stat_activity``) are
sampled every second. Prints a Markdown block for docs/benchmarks.md: errors,
throughput, p50/p95/p99 per route, each instance's CPU and memory, connections.

Usage (the documented runs; a smoke run is ``--users 10 --duration 30``)::

    .venv/bin/python bench/load/run.py --users 100 --duration 300 --instances 2
    .venv/bin/python bench/load/run.py --users 100 --duration 300 --instances 1

The database (``--database-url``, default ``bench_load`` on the local PostgreSQL) is
created if missing, emptied and migrated first: give it one of its own. Redis keys go
under a prefix of their own, deleted afterwards. Needs the ``bench`` extra (locust,
psutil) and nginx.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
PROXY_CONF = ROOT / "deploy" / "nginx" / "proxy.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
#: As the Procfile runs the portal (``--workers``/``--threads`` to compare others).
WORKERS, THREADS = 2, 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process stopped (exit {process.returncode})")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


def postgres_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def empty_database(url: str) -> None:
    """The benchmark's database, created if missing, then emptied."""
    target = sa.make_url(postgres_url(url))
    server = sa.create_engine(
        target.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    with server.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        ).first()
        if exists is None:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    server.dispose()
    engine = sa.create_engine(postgres_url(url))
    meta = sa.MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def nginx_conf(tmp: Path, port: int, upstreams: list[int]) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{p};" for p in upstreams)
    temp = "\n".join(
        f"    {kind}_temp_path {tmp}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp}
    upstream portal {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            include {PROXY_CONF};
            proxy_pass http://portal;
        }}
    }}
}}
"""


@dataclass
class Samples:
    """Per instance: CPU (% of one core) and memory (MiB) of master + workers; and the
    database connections in use."""

    cpu: dict[str, list[float]] = field(default_factory=dict)
    rss: dict[str, list[float]] = field(default_factory=dict)
    connections: list[int] = field(default_factory=list)
    active: list[int] = field(default_factory=list)


def sample(
    instances: dict[str, subprocess.Popen[bytes]], database_url: str, stop: threading.Event
) -> tuple[Samples, threading.Thread]:
    """Samples taken every second until ``stop`` is set, by the thread returned."""
    found = Samples()
    engine = sa.create_engine(postgres_url(database_url), poolclass=sa.NullPool)
    tracked: dict[int, psutil.Process] = {}

    def tree(pid: int) -> list[psutil.Process]:
        try:
            root = psutil.Process(pid)
            members = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        # One Process object per pid, so cpu_percent measures since the last sample.
        return [tracked.setdefault(p.pid, p) for p in members]

    def run() -> None:
        for proc in instances.values():
            for p in tree(proc.pid):
                p.cpu_percent(None)
        while not stop.wait(1.0):
            for name, proc in instances.items():
                cpu = rss = 0.0
                for p in tree(proc.pid):
                    try:
                        cpu += p.cpu_percent(None)
                        rss += p.memory_info().rss / 2**20
                    except psutil.NoSuchProcess:
                        continue
                found.cpu.setdefault(name, []).append(cpu)
                found.rss.setdefault(name, []).append(rss)
            try:
                with engine.connect() as conn:
                    total, active = conn.execute(
                        sa.text(
                            "SELECT count(*), count(*) FILTER (WHERE state = 'active') "
                            "FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid()"
                        )
                    ).one()
                found.connections.append(int(total))
                found.active.append(int(active))
            except sa.exc.SQLAlchemyError:
                pass
        engine.dispose()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return found, thread


def read_stats(prefix: Path) -> list[dict[str, str]]:
    with (prefix.parent / f"{prefix.name}_stats.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def ms(value: str) -> str:
    try:
        return f"{float(value):.0f} ms"
    except ValueError:
        return value


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.is_file() else ""
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else platform.machine()


def machine() -> str:
    return f"{os.cpu_count()} cores, {cpu_model()}; Python {platform.python_version()}"


def report(args: argparse.Namespace, rows: list[dict[str, str]], samples: Samples) -> str:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    total = next((r for r in rows if r["Name"] == "Aggregated"), None)
    where = "2 instances behind nginx" if args.instances > 1 else "1 instance"
    lines = [
        f"### Load, {args.users} residents, {where} — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}; gunicorn {args.workers} workers × {args.threads} threads "
        "per instance; "
        f"PostgreSQL{' and Redis' if args.redis_url else ''}; sandbox back-ends "
        f"+{args.latency_ms} ms a call; locust -u {args.users} -r {args.spawn_rate} "
        f"-t {args.duration}s, think time 1–3 s; load average at the end {load}.",
        "",
    ]
    if total is not None:
        failures, requests = int(total["Failure Count"]), int(total["Request Count"])
        lines += [
            f"Requests: {requests}; errors: {failures} ({failures / max(requests, 1):.2%}); "
            f"throughput {float(total['Requests/s']):.1f} requests/s.",
            "",
        ]
    lines += [
        "| route | requests | errors | p50 | p95 | p99 |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = "all routes" if r["Name"] == "Aggregated" else f"`{r['Name']}`"
        lines.append(
            f"| {name} | {r['Request Count']} | {r['Failure Count']} | "
            f"{ms(r['50%'])} | {ms(r['95%'])} | {ms(r['99%'])} |"
        )
    lines += ["", "| instance | CPU mean | CPU max | memory max |", "|---|---|---|---|"]
    for name in sorted(samples.cpu):
        cpu, rss = samples.cpu[name], samples.rss[name]
        lines.append(
            f"| {name} | {statistics.fmean(cpu):.0f} % | {max(cpu):.0f} % | {max(rss):.0f} MiB |"
        )
    if samples.connections:
        lines += [
            "",
            f"Database connections (pg_stat_activity, every second): "
            f"{statistics.fmean(samples.connections):.1f} open on average, "
            f"{max(samples.connections)} at most; active {statistics.fmean(samples.active):.1f} "
            f"on average, {max(samples.active)} at most. (CPU: % of one core, master and "
            "workers together.)",
        ]
    return "\n".join(lines) + "\n"


def set_latency(sandbox_url: str, latency_ms: int) -> None:
    tenants = httpx.get(f"{sandbox_url}/_admin/faults", timeout=5).json()["tenants"]
    for kind, names in tenants.items():
        for tenant in names:
            httpx.post(
                f"{sandbox_url}/_admin/faults/{kind}/{tenant}",
                json={"mode": None, "latency_ms": latency_ms},
                timeout=5,
            ).raise_for_status()


@contextmanager
def redis_prefix(url: str) -> Iterator[str]:
    prefix = f"bench-load-{uuid.uuid4().hex[:8]}:"
    try:
        yield prefix
    finally:
        if url:
            import redis

            client = redis.Redis.from_url(url)
            for key in client.scan_iter(match=prefix + "*"):
                client.delete(key)
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-u", "--users", type=int, default=10)
    parser.add_argument("-r", "--spawn-rate", type=float, default=5)
    parser.add_argument("-t", "--duration", type=int, default=30, help="seconds")
    parser.add_argument("--instances", type=int, choices=(1, 2), default=1)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--workers", type=int, default=WORKERS, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=THREADS, help="threads a worker")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/bench_load")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--output", type=Path, help="also write the Markdown block here")
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql")):
        parser.error("--database-url: PostgreSQL, as in production")
    if args.instances > 1 and not Path(NGINX).is_file():
        parser.error("two instances need nginx (Debian package nginx)")

    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        log = Path(os.environ.get("BENCH_SERVER_LOG", tmp / "servers.log"))
        prefix = stack.enter_context(redis_prefix(args.redis_url))
        sandbox_port = free_port()
        portal_ports = [free_port() for _ in range(args.instances)]
        entry_port = free_port() if args.instances > 1 else portal_ports[0]
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        entry_url = f"http://127.0.0.1:{entry_port}"
        conf = (ROOT / "connectors.toml").read_text(encoding="utf-8")
        (tmp / "connectors.toml").write_text(
            conf.replace("http://127.0.0.1:5001", sandbox_url), encoding="utf-8"
        )
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PORTAL_BASE_URL": entry_url,
            "PORTAL_FC_ISSUER": sandbox_url + "/api/v2",
            "PORTAL_AGENT_ISSUER": sandbox_url + "/proconnect/api/v2",
            "PORTAL_DATABASE_URL": args.database_url,
            "PORTAL_CONNECTORS_FILE": str(tmp / "connectors.toml"),
            "PORTAL_DEMO_LINKS_FILE": str(ROOT / "demo-links.toml"),
            "PORTAL_SIGNIN_RATE_LIMIT": "100000 per minute",
            "PORTAL_PROBE_INTERVAL_S": "0",
            "PORTAL_REDIS_URL": args.redis_url,
            "PORTAL_REDIS_PREFIX": prefix,
            "PORTAL_TRUSTED_PROXIES": "1" if args.instances > 1 else "0",
        }
        empty_database(args.database_url)
        subprocess.run(
            [BIN / "flask", "--app", "portal", "db", "upgrade"],
            env=env,
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        sandbox = stack.enter_context(
            process(
                [
                    str(BIN / "gunicorn"),
                    "-b",
                    f"127.0.0.1:{sandbox_port}",
                    "-w",
                    "1",
                    "--threads",
                    "64",
                    "sandbox:create_app()",
                ],
                env,
                log,
            )
        )
        wait_until_up(sandbox_url + "/api/v2/.well-known/openid-configuration", sandbox)
        set_latency(sandbox_url, args.latency_ms)
        instances = {}
        for n, port in enumerate(portal_ports):
            name = "instance " + "ab"[n]
            instances[name] = stack.enter_context(
                process(
                    [
                        str(BIN / "gunicorn"),
                        "--bind",
                        f"127.0.0.1:{port}",
                        "--workers",
                        str(args.workers),
                        "--threads",
                        str(args.threads),
                        "portal:create_app()",
                    ],
                    env,
                    log,
                )
            )
            wait_until_up(f"http://127.0.0.1:{port}/healthz", instances[name])
        if args.instances > 1:
            (tmp / "nginx.conf").write_text(
                nginx_conf(tmp, entry_port, portal_ports), encoding="utf-8"
            )
            nginx = stack.enter_context(
                process([NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf")], env, log)
            )
            wait_until_up(entry_url + "/healthz", nginx)

        stop = threading.Event()
        samples, sampler = sample(instances, args.database_url, stop)
        csv_prefix = tmp / "locust"
        locust = subprocess.run(
            [
                str(BIN / "locust"),
                "-f",
                str(LOCUSTFILE),
                "--headless",
                "-u",
                str(args.users),
                "-r",
                str(args.spawn_rate),
                "-t",
                f"{args.duration}s",
                "--host",
                entry_url,
                "--csv",
                str(csv_prefix),
                "--only-summary",
                "--stop-timeout",
                "10",
                "--exit-code-on-error",
                "0",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        stop.set()
        sampler.join(timeout=5)
        if locust.returncode != 0:
            print(locust.stdout[-3000:], locust.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"locust failed (exit {locust.returncode})")
        rows = read_stats(csv_prefix)
        failures = tmp / "locust_failures.csv"
        text = report(args, rows, samples)
        if failures.exists():
            found = list(csv.DictReader(failures.open(encoding="utf-8")))
            if found:
                text += (
                    "\nErrors by route:\n\n"
                    + "\n".join(
                        f"- `{f['Name']}`: {f['Error']} ({f['Occurrences']}×)" for f in found
                    )
                    + "\n"
                )
    print(text)
    if args.output:
        args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
