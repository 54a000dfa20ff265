"""Two portal servers behind a real nginx behave as one: a resident signs in through one
and goes on through the other, a rate limit is counted across both, a breaker one opens
is open on the other, ``/status`` is the same on both, and an ``X-Forwarded-For``
written by the client does not move the address the limits count.

Two gunicorn instances (1 worker × 2 threads each) share the test database (PostgreSQL
with ``TEST_DATABASE_URL``, else one SQLite file) and one Redis, behind Debian's nginx
started from a generated configuration that includes ``deploy/nginx/proxy.conf``, the
file operators install. nginx listens on three ports: one round-robins over both
instances, as residents reach the portal, and one in front of each instance, so that a
step can be sent to the instance it must reach.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from portal import create_app
from portal.integrations import probe_all
from tests.support import (
    DEMO_LINKS_FILE,
    PROJECT_ROOT,
    Authorize,
    Gunicorn,
    Sandbox,
    choose_identity,
    empty_tables,
    free_port,
    portal_settings,
    redis_keyspace,
    redis_or_skip,
)

REDIS_URL = "redis://127.0.0.1:6379/3"
SIGNIN_LIMIT = 6
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PROXY_CONF = PROJECT_ROOT / "deploy" / "nginx" / "proxy.conf"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
IDEM_RE = re.compile(r'name="idem" value="([0-9a-f]{32})"')
MERIGNAC_LOANS = "/library/merignac/v1/patrons/mer-p-0417/loans"
MERIGNAC_KEY = {"X-Api-Key": "sandbox-library-merignac-key"}
HX = {"HX-Request": "true"}

pytestmark = pytest.mark.skipif(
    not Path(NGINX).is_file(), reason="nginx is not installed (Debian package nginx)"
)


def nginx_conf(tmp: Path, a: Gunicorn, b: Gunicorn, ports: dict[str, int]) -> str:
    """A whole nginx configuration, every path under ``tmp`` (no root needed)."""
    proxy = f"include {PROXY_CONF};"
    servers = "".join(
        f"""
    server {{
        listen 127.0.0.1:{ports[name]};
        location / {{
            {proxy}
            proxy_pass http://{upstream};
            add_header X-Upstream $upstream_addr always;
            add_header X-Proxy-Request-Id $request_id always;
        }}
    }}"""
        for name, upstream in (("both", "portal"), ("a", "portal_a"), ("b", "portal_b"))
    )
    temp = "\n".join(
        f"    {kind}_temp_path {tmp}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
{temp}
    upstream portal {{
        server 127.0.0.1:{a.port};
        server 127.0.0.1:{b.port};
        keepalive 8;
    }}
    upstream portal_a {{ server 127.0.0.1:{a.port}; keepalive 4; }}
    upstream portal_b {{ server 127.0.0.1:{b.port}; keepalive 4; }}
{servers}
}}
"""


@dataclass
class Cluster:
    """The three doors nginx opens, and the instances behind them."""

    both: str
    a: str
    b: str
    instances: dict[str, str]  # upstream address -> "a" or "b"
    direct: dict[str, str]  # "a" or "b" -> the instance's own address, not through nginx
    sandbox: Sandbox
    redis_prefix: str


@pytest.fixture(scope="module")
def cluster(
    database_url: str,
    sandbox_server,
    connectors_file: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    with redis_keyspace(REDIS_URL, "servers") as prefix:
        yield from start_cluster(
            database_url, sandbox_server, connectors_file, tmp_path_factory, prefix
        )


def start_cluster(
    database_url: str,
    sandbox_server,
    connectors_file: str,
    tmp_path_factory: pytest.TempPathFactory,
    prefix: str,
) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("servers")
    ports = {name: free_port() for name in ("both", "a", "b")}
    sandbox = Sandbox(sandbox_server.url)
    env = {
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_BASE_URL": f"http://127.0.0.1:{ports['both']}",
        "PORTAL_FC_ISSUER": sandbox.issuer,
        "PORTAL_AGENT_ISSUER": sandbox.pc_issuer,
        "PORTAL_CONNECTORS_FILE": connectors_file,
        "PORTAL_DEMO_LINKS_FILE": DEMO_LINKS_FILE,
        "PORTAL_REDIS_URL": REDIS_URL,
        "PORTAL_REDIS_PREFIX": prefix,
        "PORTAL_TRUSTED_PROXIES": "1",
        "PORTAL_SIGNIN_RATE_LIMIT": f"{SIGNIN_LIMIT} per minute",
        "PORTAL_PROBE_INTERVAL_S": "0",
        "PORTAL_MEASURE_ENABLED": "false",
    }
    a = Gunicorn(1, env, tmp / "a.log", threads=2)
    b = Gunicorn(1, env, tmp / "b.log", threads=2)
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_conf(tmp, a, b, ports), encoding="utf-8")
    nginx = subprocess.Popen(  # noqa: S603
        [NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        a.wait_ready()
        b.wait_ready()
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        wait_for_nginx(nginx, urls["both"], tmp / "error.log")
        yield Cluster(
            both=urls["both"],
            a=urls["a"],
            b=urls["b"],
            instances={f"127.0.0.1:{a.port}": "a", f"127.0.0.1:{b.port}": "b"},
            direct={"a": a.url, "b": b.url},
            sandbox=sandbox,
            redis_prefix=prefix,
        )
    finally:
        nginx.terminate()
        a.quit()
        b.quit()
        nginx.wait(10)
        a.wait_stopped()
        b.wait_stopped()
        sandbox.http.close()


def wait_for_nginx(nginx: subprocess.Popen, url: str, error_log: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        if nginx.poll() is not None:
            raise AssertionError("nginx stopped: " + error_log.read_text())
        try:
            httpx.get(url + "/healthz", timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)


@pytest.fixture
def servers(cluster: Cluster, database_url: str) -> Iterator[Cluster]:
    """The cluster, with the sandbox's accounts as they were, and the limits and
    residents each test made forgotten after it."""
    cluster.sandbox.reset()
    yield cluster
    cluster.sandbox.reset()
    redis = redis_or_skip(REDIS_URL)  # limits, breakers and availability forgotten
    for key in redis.scan_iter(match=cluster.redis_prefix + "*"):
        redis.delete(key)
    redis.close()
    app = create_app(portal_settings(database_url, cluster.sandbox.issuer))
    empty_tables(app)


def browser() -> httpx.Client:
    """A browser: one cookie jar for every port of 127.0.0.1 (cookies ignore ports)."""
    return httpx.Client(timeout=15)


def form_fields(page: str, action: str) -> dict[str, str]:
    """The CSRF token and idempotency key of the form posting to ``action``."""
    start = page.index(f'action="{action}"')
    form = page[start : page.index("</form>", start)]
    csrf, idem = CSRF_RE.search(form), IDEM_RE.search(form)
    assert csrf and idem, form
    return {"csrf_token": csrf.group(1), "idem": idem.group(1)}


def due_date(sandbox: Sandbox, loan_id: str) -> date:
    r = sandbox.http.get(sandbox.url + MERIGNAC_LOANS, headers=MERIGNAC_KEY)
    r.raise_for_status()
    [loan] = [loan for loan in r.json()["loans"] if loan["loan_id"] == loan_id]
    return date.fromisoformat(loan["due_date"])


def served_by(cluster: Cluster, response: httpx.Response) -> str:
    return cluster.instances[response.headers["X-Upstream"]]


def test_a_resident_signs_in_on_one_server_and_goes_on_through_the_other(
    servers: Cluster,
) -> None:
    with browser() as http:
        start = http.get(servers.a + "/auth/franceconnect/login")
        assert start.status_code == 302 and served_by(servers, start) == "a"
        location = start.headers["Location"]
        callback_uri = httpx.URL(location).params["redirect_uri"]
        assert callback_uri == servers.both + "/auth/franceconnect/callback"
        callback = choose_identity(Authorize(location, {}), "marie-therese")
        # The provider sends the browser back; this one comes back through A.
        signed_in = http.get(servers.a + callback)
        assert signed_in.status_code == 303, signed_in.text
        assert served_by(servers, signed_in) == "a"

        # B knows the session A opened: the dashboard, a card read by B.
        dashboard = http.get(servers.b + "/")
        assert dashboard.status_code == 200 and served_by(servers, dashboard) == "b"
        assert "Bonjour Marie-Thérèse" in dashboard.text
        card = http.get(servers.b + "/services/bib-merignac/card", headers=HX)
        assert card.status_code == 200 and "card--ok" in card.text
        assert re.search(r"\d+ prêts en cours", card.text), card.text

        # A form A rendered, posted to B: B accepts A's CSRF token and renews once.
        page = http.get(servers.a + "/services/bib-merignac")
        action = "/services/bib-merignac/loans/mer-l-0417-5/renew"
        fields = form_fields(page.text, action)
        before = due_date(servers.sandbox, "mer-l-0417-5")
        renewed = http.post(servers.b + action, data=fields)
        assert renewed.status_code == 303, renewed.text
        assert due_date(servers.sandbox, "mer-l-0417-5") == before + timedelta(days=21)
        shown = html.unescape(http.get(servers.b + renewed.headers["Location"]).text)
        assert re.search(r"Astérix chez les Pictes\W+est prolongé jusqu'au \d+\s\w+\s\d{4}", shown)

        # The same form sent again, through A: the idempotency key is known, not renewed twice.
        again = http.post(servers.a + action, data=fields)
        assert again.status_code == 303
        assert due_date(servers.sandbox, "mer-l-0417-5") == before + timedelta(days=21)

        # A form token from no session is refused by either server.
        forged = http.post(servers.b + action, data={**fields, "csrf_token": "forged"})
        assert forged.status_code in (400, 403, 303)
        assert due_date(servers.sandbox, "mer-l-0417-5") == before + timedelta(days=21)

        # Signing out through B ends the session on A too.
        logout = http.post(servers.b + "/auth/logout", data={"csrf_token": fields["csrf_token"]})
        assert logout.status_code in (302, 303)
        assert http.get(servers.a + "/").status_code == 302


def sign_in_through(http: httpx.Client, through: str, identity: str) -> None:
    """The browser's resident signs in through ``through`` (A's or B's door)."""
    start = http.get(through + "/auth/franceconnect/login")
    auth = Authorize(start.headers["Location"], {})
    assert http.get(through + choose_identity(auth, identity)).status_code == 303


def test_a_breaker_one_server_opens_is_open_on_the_other(servers: Cluster) -> None:
    servers.sandbox.fault("library", "merignac", "error500")
    card = "/services/bib-merignac/card"
    with browser() as http:
        sign_in_through(http, servers.a, "amina")
        for _ in range(6):
            assert http.get(servers.a + card, headers=HX).status_code == 200
        # B never called the failing back-end, yet says it is down and does not call it.
        servers.sandbox.fault("library", "merignac", None)
        on_b = html.unescape(http.get(servers.b + card, headers=HX).text)
        assert "Ce service est temporairement indisponible." in on_b
    status = html.unescape(httpx.get(servers.b + "/status", timeout=10).text)
    merignac = status[status.index("Médiathèque de Mérignac") :]
    assert "indisponible" in merignac[: merignac.index("</tr>")]


def sign_in_starts(url: str, count: int, **headers: str) -> list[tuple[int, str]]:
    """``count`` clicks on the sign-in button, each on a new connection."""
    answers = []
    for _ in range(count):
        r = httpx.get(url + "/auth/franceconnect/login", headers=headers, timeout=10)
        answers.append((r.status_code, r.headers.get("X-Upstream", "")))
    return answers


def test_the_sign_in_limit_is_counted_across_both_servers_and_not_escaped_by_spoofing(
    servers: Cluster,
) -> None:
    # Half the limit through A, half through B: all accepted, the next refused by either.
    first = sign_in_starts(servers.a, SIGNIN_LIMIT // 2) + sign_in_starts(
        servers.b, SIGNIN_LIMIT - SIGNIN_LIMIT // 2
    )
    assert [status for status, _ in first] == [302] * SIGNIN_LIMIT
    assert sign_in_starts(servers.a, 1)[0][0] == 429
    assert sign_in_starts(servers.b, 1)[0][0] == 429

    # A client writing its own X-Forwarded-For, a new address each time, through the
    # round robin: nginx appends the address it saw, the portal trusts that one hop only.
    spoofed = [
        sign_in_starts(servers.both, 1, **{"X-Forwarded-For": f"203.0.113.{n}"})[0]
        for n in range(1, 7)
    ]
    assert [status for status, _ in spoofed] == [429] * 6, spoofed
    assert {servers.instances[upstream] for _, upstream in spoofed} == {"a", "b"}

    # The test can tell: the last hop's address is the one counted. Sent straight to an
    # instance, the client's own header is that hop, and counts as a new address; which
    # is why the instances must be reachable through the proxy only.
    direct = httpx.get(
        servers.direct["a"] + "/auth/franceconnect/login",
        headers={"X-Forwarded-For": "198.51.100.7"},
        timeout=10,
    )
    assert direct.status_code == 302
    redis = redis_or_skip(REDIS_URL)
    keys = [key.decode() for key in redis.scan_iter(match=servers.redis_prefix + "limits*")]
    redis.close()
    assert not [key for key in keys if "203.0.113." in key], keys
    assert [key for key in keys if "127.0.0.1" in key], keys
    assert [key for key in keys if "198.51.100.7" in key], keys


def without_form_tokens(page: str) -> str:
    """A page but for its form tokens, which carry the second they were signed."""
    return CSRF_RE.sub('name="csrf_token" value=""', page)


def test_status_is_the_same_on_both_servers(
    servers: Cluster, database_url: str, connectors_file: str
) -> None:
    # The worker probes every instance, in a process of its own, into the shared database.
    servers.sandbox.fault("library", "merignac", "error500")
    worker = create_app(
        portal_settings(database_url, servers.sandbox.issuer, connectors_file=connectors_file)
    )
    try:
        probe_all(worker)
    finally:
        worker.extensions["connectors"].close()
    on_a = httpx.get(servers.a + "/status", timeout=10)
    on_b = httpx.get(servers.b + "/status", timeout=10)
    assert on_a.status_code == on_b.status_code == 200
    assert without_form_tokens(on_a.text) == without_form_tokens(on_b.text)
    # Not two empty pages: both show what the worker found.
    merignac = re.search(r"Médiathèque de Mérignac.*?</tr>", on_a.text, re.S)
    assert merignac and "indisponible" in merignac.group(0), on_a.text


def test_the_proxys_request_id_is_the_one_the_portal_answers_with(servers: Cluster) -> None:
    # proxy.conf sends nginx's $request_id, whatever the client wrote; the portal trusts
    # its one proxy, so nginx's log and the portal's (and the back-ends') share the id.
    answer = httpx.get(servers.both + "/healthz", headers={"X-Request-Id": "chosen-by-a-client"})
    assert answer.headers["X-Request-Id"] == answer.headers["X-Proxy-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-Id"])
