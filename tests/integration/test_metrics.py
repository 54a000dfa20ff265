"""``/metrics`` over HTTP, from gunicorn with two workers in prometheus-client's
multiprocess mode, as the ``Procfile`` runs the portal: who may read it (a token, a
network, nobody else, whatever ``X-Forwarded-For`` a client writes), its format, and
figures that move with what the portal does, whichever worker counted them."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from portal import create_app
from portal.extensions import db
from portal.models import JobRun
from portal.models._types import utcnow
from tests.support import DEMO_LINKS_FILE, Gunicorn, Sandbox, empty_tables, portal_settings

TOKEN = "metrics-token-for-the-tests-only-0123456789"
#: The proxy's own network: what it forwards from there is an operator's scraper.
OPERATORS = "10.20.0.0/16"
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, for every sample of the exposition."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = SAMPLE_RE.match(line)
        if match:
            found[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return found


def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the workers keep their counts: one directory for the session."""
    return tmp_path_factory.getbasetemp() / "prometheus-multiproc"


@pytest.fixture(scope="module")
def portal(
    database_url: str, sandbox_server, connectors_file: str, tmp_path_factory
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("metrics")
    sandbox = Sandbox(sandbox_server.url)
    stale = metrics_dir(tmp_path_factory) / "left-from-a-previous-run.db"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"not a prometheus file")
    env = {
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_FC_ISSUER": sandbox.issuer,
        "PORTAL_AGENT_ISSUER": sandbox.pc_issuer,
        "PORTAL_CONNECTORS_FILE": connectors_file,
        "PORTAL_DEMO_LINKS_FILE": DEMO_LINKS_FILE,
        # Each worker probes every instance each second: connector calls to count.
        "PORTAL_PROBE_INTERVAL_S": "1",
        "PORTAL_MEASURE_ENABLED": "false",
        "PORTAL_TRUSTED_PROXIES": "1",
        "PORTAL_METRICS_TOKEN": TOKEN,
        "PORTAL_METRICS_NETWORKS": OPERATORS,
        "PROMETHEUS_MULTIPROC_DIR": str(stale.parent),
    }
    server = Gunicorn(2, env, tmp / "gunicorn.log", threads=2)
    try:
        server.wait_ready()
        assert not stale.exists(), "gunicorn.conf.py empties the directory at start"
        yield server.url
    finally:
        server.stop()
        sandbox.http.close()
        empty_tables(create_app(portal_settings(database_url, sandbox.issuer)))


def scrape(url: str) -> httpx.Response:
    response = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    return response


def test_a_good_token_reads_the_prometheus_text_format(portal: str) -> None:
    response = scrape(portal)
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert response.headers["cache-control"] == "no-store"
    text = response.text
    for name in (
        "portal_http_requests_total",
        "portal_http_request_duration_seconds",
        "portal_connector_breaker_state",
        "portal_jobs_failed",
        "portal_ready",
    ):
        assert f"# TYPE {name} " in text
    assert samples(text)["portal_ready"] == 1.0
    assert (
        samples(text)['portal_connector_breaker_state{instance="bib-bordeaux",state="closed"}'] == 1
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer é".encode()},
        # The proxy's own address, but written by the client: the proxy appends the one
        # it saw (loopback, not an operators' network), and only that one is trusted.
        {"X-Forwarded-For": "10.20.0.5, 127.0.0.1"},
    ],
    ids=["none", "wrong", "longer", "basic", "empty", "non-ascii", "spoofed"],
)
def test_anyone_else_gets_a_404(portal: str, headers: dict[str, object]) -> None:
    response = httpx.get(portal + "/metrics", headers=headers)  # type: ignore[arg-type]
    assert response.status_code == 404
    assert "portal_" not in response.text


def test_an_operators_network_reads_it_without_a_token(portal: str) -> None:
    # What the proxy (1 trusted hop) appends for a scraper on its operators' network.
    response = httpx.get(portal + "/metrics", headers={"X-Forwarded-For": "10.20.0.5"})
    assert response.status_code == 200
    assert "portal_ready 1.0" in response.text
    # The client wrote the operators' address first; the proxy appended the real one.
    response = httpx.get(
        portal + "/metrics", headers={"X-Forwarded-For": "10.20.0.5, 198.51.100.7"}
    )
    assert response.status_code == 404


def test_requests_are_counted_across_both_workers(
    portal: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    key = 'portal_http_requests_total{endpoint="status.healthz",status_class="2xx"}'
    hist = 'portal_http_request_duration_seconds_count{endpoint="status.healthz"}'
    missing = 'portal_http_requests_total{endpoint="unmatched",status_class="4xx"}'
    before = samples(scrape(portal).text)
    for _ in range(30):  # a new connection each time, to either worker
        assert httpx.get(portal + "/healthz").status_code == 200
    assert httpx.get(portal + "/no/such/page/12345").status_code == 404
    after = samples(scrape(portal).text)
    assert after[key] - before.get(key, 0) == 30
    assert after[hist] - before.get(hist, 0) == 30
    assert after[missing] - before.get(missing, 0) == 1
    # Never a path: an id in one would become a label.
    assert "12345" not in scrape(portal).text
    # Both workers counted some (each has its files): the scrape added them up.
    pids = {
        path.stem.rpartition("_")[2] for path in metrics_dir(tmp_path_factory).glob("counter_*.db")
    }
    assert len(pids) == 2, pids


def test_connector_calls_are_timed_per_instance(portal: str) -> None:
    key = 'portal_connector_call_duration_seconds_count{instance="bib-bordeaux",outcome="ok"}'
    first = samples(scrape(portal).text).get(key, 0)
    deadline = time.monotonic() + 15
    while samples(scrape(portal).text).get(key, 0) <= first:
        assert time.monotonic() < deadline, "no probe of bib-bordeaux counted"
        time.sleep(0.5)
    ratio = 'portal_connector_probe_success_ratio{instance="bib-bordeaux"}'
    assert samples(scrape(portal).text)[ratio] == 1.0


def test_failed_jobs_are_read_from_the_job_runs(portal: str, database_url: str) -> None:
    key = 'portal_jobs_failed{job="purge-expired"}'
    assert samples(scrape(portal).text)[key] == 0
    app = create_app(portal_settings(database_url, "http://127.0.0.1:1/api/v2"))
    with app.app_context():
        now = utcnow()
        db.session.add_all(
            [
                JobRun(name="purge-expired", period="2026-12-04T10:00Z", state="failed"),
                JobRun(name="purge-expired", period="2026-12-04T11:00Z", state="failed"),
                JobRun(name="purge-expired", period="2026-12-04T12:00Z", state="succeeded"),
                # A worker killed mid-run: interrupted, listed by `flask jobs failed` too.
                JobRun(
                    name="measure-rollup",
                    period="2026-12-03",
                    state="running",
                    started_at=now - timedelta(hours=2),
                ),
            ]
        )
        db.session.commit()
    try:
        found = samples(scrape(portal).text)
        assert found[key] == 2
        assert found['portal_jobs_failed{job="measure-rollup"}'] == 1
    finally:
        with app.app_context():
            db.session.execute(db.delete(JobRun))
            db.session.commit()
            db.engine.dispose()
