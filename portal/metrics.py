"""``/metrics``: the portal's measurements in Prometheus's text format, for operators.

Not public: it answers only a request carrying ``Authorization: Bearer
<PORTAL_METRICS_TOKEN>`` (compared in constant time) or coming from a network listed in
``PORTAL_METRICS_NETWORKS``, the client address being the one ``PORTAL_TRUSTED_PROXIES``
resolves (Werkzeug's ``ProxyFix``, as for the rate limits). Anyone else gets the
portal's ordinary 404 page, as for an address that does not exist.

Two kinds of figures:

- **Counted in the processes**: requests by endpoint and status class with their
  latency, and connector calls by instance and outcome with theirs. gunicorn runs
  several worker processes, each with its own memory: with ``PROMETHEUS_MULTIPROC_DIR``
  set (a directory of its own per server, emptied by ``gunicorn.conf.py`` when gunicorn
  starts), prometheus-client's multiprocess mode keeps each process's counts in files
  there and a scrape, whichever worker answers it, adds them all up. Without it, each
  process counts alone and a scrape shows the counts of the worker that answered.
- **Read when scraped** from what every server shares (so the same from each): failed
  jobs from ``job_run``, breaker states (Redis when configured), the probes' success over
  the status page's window (``instance_probe``), and readiness (the database answers).

No label carries personal data: endpoints are Flask's endpoint names (never a path,
which may hold an id), instances are the configured slugs, jobs their names.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterator
from ipaddress import ip_address

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from portal.config import Settings, current_settings
from portal.extensions import db

bp = Blueprint("metrics", __name__)

#: Latency buckets (seconds) around the targets: 0.4 s a good page, 1.2 s a card.
REQUEST_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.2, 2.5, 5.0, 10.0)
CONNECTOR_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 3.0, 6.0)
BREAKER_STATES = ("closed", "open", "half_open")

# ``*_created`` series (when each label set was first seen) say nothing an operator needs.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: What this process counts (in multiprocess mode, the values go to its files).
PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "portal_http_requests",
    "Requests answered, by Flask endpoint and status class (2xx, 3xx, 4xx, 5xx).",
    ["endpoint", "status_class"],
    registry=PROCESS_REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "portal_http_request_duration_seconds",
    "Time to answer a request, by Flask endpoint.",
    ["endpoint"],
    buckets=REQUEST_BUCKETS,
    registry=PROCESS_REGISTRY,
)
CONNECTOR_SECONDS = Histogram(
    "portal_connector_call_duration_seconds",
    "One connector call (retries included), by instance and outcome (ok: an answer, "
    "refusals included; error: unavailable, broken contract or unknown outcome).",
    ["instance", "outcome"],
    buckets=CONNECTOR_BUCKETS,
    registry=PROCESS_REGISTRY,
)


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def observe_connector_call(slug: str, ok: bool, duration_s: float) -> None:
    """The registry's outcome hook, next to the measurement's (``portal.integrations``)."""
    CONNECTOR_SECONDS.labels(slug, "ok" if ok else "error").observe(duration_s)


# -- access ------------------------------------------------------------------------------


def bearer_matches(header: str, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    scheme, _, given = header.partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))


def from_allowed_network(settings: Settings, remote_addr: str | None) -> bool:
    networks = settings.metrics_network_list
    if not networks or not remote_addr:
        return False
    try:
        address = ip_address(remote_addr)
    except ValueError:
        return False
    return any(address in network for network in networks)


def may_read_metrics() -> bool:
    settings = current_settings()
    return bearer_matches(
        request.headers.get("Authorization", ""), settings.metrics_token
    ) or from_allowed_network(settings, request.remote_addr)


# -- what is read when scraped ---------------------------------------------------------


class SharedState(Collector):
    """Figures every server reads alike, computed at each scrape."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        ready = GaugeMetricFamily(
            "portal_ready", "1 when the database answers (what /readyz checks), else 0."
        )
        try:
            db.session.execute(sa.text("SELECT 1"))
            database_ok = True
        except sa.exc.SQLAlchemyError:
            db.session.rollback()
            database_ok = False
        ready.add_metric([], 1.0 if database_ok else 0.0)
        yield ready
        yield self._breakers()
        if database_ok:
            yield from self._from_database()

    def _breakers(self) -> Metric:
        from portal.integrations import registry

        family = GaugeMetricFamily(
            "portal_connector_breaker_state",
            "1 for the circuit breaker's current state of each instance, 0 for the others.",
            labels=["instance", "state"],
        )
        reg = registry()
        for slug in reg.instances:
            state = reg.breaker_state(slug).state
            for name in BREAKER_STATES:
                family.add_metric([slug, name], 1.0 if name == state else 0.0)
        return family

    def _from_database(self) -> Iterator[Metric]:
        from portal.integrations import probe_availability
        from portal.jobs import jobs
        from portal.jobs.runs import failed_counts

        try:
            failed = failed_counts()
            probes = probe_availability()
        except sa.exc.SQLAlchemyError:
            db.session.rollback()
            return
        family = GaugeMetricFamily(
            "portal_jobs_failed",
            "Runs of each job left failed or interrupted (flask jobs failed lists them).",
            labels=["job"],
        )
        for name in sorted(set(jobs()) | set(failed)):
            family.add_metric([name], float(failed.get(name, 0)))
        yield family
        ratio = GaugeMetricFamily(
            "portal_connector_probe_success_ratio",
            "Share of each instance's probes that succeeded over the status page's window "
            "(instances probed in that window only).",
            labels=["instance"],
        )
        for slug, availability in sorted(probes.items()):
            if availability.ratio is not None:
                ratio.add_metric([slug], availability.ratio)
        yield ratio


class _Exposed(Collector):
    """This process's counts (or every process's, in multiprocess mode), then the
    shared state: one registry, so either text format ends once."""

    def __init__(self, app: Flask) -> None:
        directory = multiprocess_dir()
        self.counted: Collector = (
            multiprocess.MultiProcessCollector(None, directory)  # type: ignore[no-untyped-call]
            if directory
            else PROCESS_REGISTRY
        )
        self.shared = SharedState(app)

    def collect(self) -> Iterator[Metric]:
        yield from self.counted.collect()
        yield from self.shared.collect()


@bp.get("/metrics")
def metrics() -> Response:
    if not may_read_metrics():
        abort(404)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Exposed(current_app._get_current_object()))  # type: ignore[attr-defined]
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encoder(registry), content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


# -- counting requests -------------------------------------------------------------------


def _start_clock() -> None:
    g.metrics_started = time.perf_counter()


def _count(response: Response) -> Response:
    started = g.get("metrics_started")
    endpoint = request.url_rule.endpoint if request.url_rule is not None else "unmatched"
    REQUESTS.labels(endpoint, f"{response.status_code // 100}xx").inc()
    if started is not None:
        REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
    return response


def init_metrics(app: Flask) -> None:
    app.register_blueprint(bp)
    # First, so that the time of the other hooks (the session's queries) counts too.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_clock)
    app.after_request(_count)
