"""The owners' pages and the statistics API, over the agents' real sign-in (the
sandbox's ProConnect), reading roll-ups seeded as ``flask measure rollup`` leaves them:
who sees what, the figures computed, the period checks, the downloads and the signed
URLs."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import time
import zipfile
from datetime import date, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.owners.indicators import Figures, Selection, SelectionError, build_report
from sandbox.idp.agents import SANDBOX_IDP_ID, agent_sub
from tests.integration.test_desks import add_desk, grant
from tests.measure_seed import answers, histogram_of, rollup, seed, seed_service_month, visitors
from tests.support import agent_sign_in, provision_agent, sign_in

CLIENT_ID = "compte-territorial-agents-dev"
DAY = date(2026, 11, 10)
NOVEMBER = "period=month&start=2026-11-01&end=2026-11-30"


def cli(app: Flask, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def give(app: Flask, agent: str, role: str, instances: str = "") -> None:
    provision_agent(app, agent)
    extra = ["--instances", instances] if instances else []
    ids = ["--idp-id", SANDBOX_IDP_ID, "--sub", agent_sub(CLIENT_ID, agent)]
    result = cli(app, "agents", "grant", *ids, "--role", role, *extra)
    assert result.exit_code == 0, result.output


@pytest.fixture
def owner(services_app: Flask) -> FlaskClient:
    """Claire owns the Mérignac library; both libraries have a month of roll-ups."""
    give(services_app, "claire", "service_owner", "bib-merignac")
    for offset in range(30):
        day = date(2026, 11, 1) + timedelta(days=offset)
        seed_service_month(services_app, "bib-merignac", "library", day)
        seed_service_month(services_app, "bib-pessac", "library", day, scale=2)
    client = services_app.test_client()
    agent_sign_in(client, "claire")
    return client


def text(response) -> str:
    return response.get_data(as_text=True)


# -- who sees what -------------------------------------------------------------------------


def test_an_owner_sees_their_service_and_no_other(owner: FlaskClient) -> None:
    page = owner.get(f"/agents/owners/services/bib-merignac?{NOVEMBER}")
    assert page.status_code == 200
    body = text(page)
    assert "Médiathèque de Mérignac" in body and 'role="img"' in body
    assert "<table" in body and "(CSV)" in body
    for slug in ("bib-pessac", "cantine-bordeaux", "no-such-service", "..%2Fbib-pessac"):
        assert owner.get(f"/agents/owners/services/{slug}").status_code == 404
        assert owner.get(f"/agents/owners/services/{slug}/demarches.csv").status_code == 404
    overview = text(owner.get(f"/agents/owners/?{NOVEMBER}"))
    assert "Médiathèque de Mérignac" in overview
    assert "Médiathèque de Pessac" not in overview
    # Pessac's figures are not in the overview's totals: Mérignac's 20 journeys a day alone.
    assert "600 démarches commencées" in overview.replace("\u202f", " ").replace("\xa0", " ")


def test_a_territory_admin_sees_every_service(services_app: Flask) -> None:
    give(services_app, "karim", "territory_admin")
    seed_service_month(services_app, "bib-pessac", "library", DAY)
    client = services_app.test_client()
    agent_sign_in(client, "karim")
    overview = text(client.get(f"/agents/owners/?{NOVEMBER}"))
    for title in ("Médiathèque de Mérignac", "Médiathèque de Pessac", "Demande de logement"):
        assert title in overview
    assert client.get("/agents/owners/services/cantine-bordeaux").status_code == 200
    assert client.get("/agents/owners/services/not-configured").status_code == 404


def test_a_resident_and_an_adviser_get_no_owner_page(services_app: Flask) -> None:
    resident = services_app.test_client()
    sign_in(resident)
    away = resident.get("/agents/owners/")
    assert away.status_code == 302 and away.headers["Location"].endswith("/agents/connexion")
    assert resident.get("/agents/owners/services/bib-merignac").status_code == 302
    desk = add_desk(services_app, "France services de Pessac", "21330318300019")
    provision_agent(services_app, "karim")
    grant(services_app, "karim", "adviser", desk)
    adviser = services_app.test_client()
    agent_sign_in(adviser, "karim")
    refused = adviser.get("/agents/owners/")
    assert refused.status_code == 403
    assert "réservés à leurs responsables" in text(refused)
    assert adviser.get("/agents/owners/services/bib-merignac").status_code == 403
    assert adviser.get("/agents/owners/indicateurs.zip").status_code == 403
    assert adviser.get("/api/statistics/visits/").status_code == 403


# -- the figures ---------------------------------------------------------------------------


def test_the_indicators_computed_from_roll_ups(services_app: Flask) -> None:
    slug = "bib-merignac"
    rows: list[object] = [
        # 100 page views: 95 in 40 ms, 5 in 900 ms → p95 is the 50 ms bucket's bound.
        rollup(DAY, "page_view", 0, instance=slug, category="library", step="page",
               values_ms=[40] * 95 + [900] * 5),
        rollup(DAY, "journey_started", 10, instance=slug, category="library", step="renew"),
        rollup(DAY, "journey_completed", 6, instance=slug, category="library", step="renew"),
        rollup(DAY, "journey_failed", 1, instance=slug, category="library", step="renew",
               failure="refused"),
        rollup(DAY, "journey_failed", 1, instance=slug, category="library", step="renew",
               failure="invalid"),
        # More ends than starts the next day (started the day before): given up stays 0.
        rollup(DAY + timedelta(days=1), "journey_completed", 3, instance=slug,
               category="library", step="renew"),
        rollup(DAY, "link_attempt", 3, instance=slug, outcome="success"),
        rollup(DAY, "link_attempt", 1, instance=slug, outcome="blocked"),
        rollup(DAY, "connector_call", 0, instance=slug, outcome="ok", values_ms=[100] * 999),
        rollup(DAY, "connector_call", 1, instance=slug, outcome="error",
               histogram=histogram_of([4000]), value_sum=4000),
        rollup(DAY, "action", 3, instance=slug, outcome="success", channel="web"),
        rollup(DAY, "action", 1, instance=slug, outcome="success", channel="desk",
               assisted=True),
        rollup(DAY, "page_view", 50, instance="bib-pessac", values_ms=[5000] * 50),
        visitors(DAY, 7, slug),
        visitors(DAY + timedelta(days=1), 5, slug),
        *answers(DAY, slug, "good", 60, clarity=5),
        *answers(DAY, slug, "average", 39, clarity=3),
    ]  # fmt: skip
    seed(services_app, rows)
    with services_app.app_context():
        by_day = build_report(Selection.of("day", DAY, DAY + timedelta(days=1)), [slug])
        first, second = by_day.rows[0][1], by_day.rows[1][1]
        assert (first.started, first.completed, first.failures, first.given_up) == (10, 6, 2, 2)
        assert first.success_rate == 0.6
        assert (second.started, second.completed, second.given_up) == (0, 3, 0)
        assert first.server_p95_ms == 50 and first.visits == 100
        assert first.link_success_rate == 0.75 and first.links["blocked"] == 1
        assert first.availability == 0.999 and first.latency_p95_ms == 100
        assert first.assisted_share == 0.25 and first.channels["desk"] == 1
        assert first.visitors == 7
        # 99 answers: hidden; the 100th shows the score.
        assert first.answers == 99 and first.satisfaction is None and first.clarity is None
        week = build_report(Selection.of("week", DAY, DAY), [slug])
        assert week.total.visitors == 12  # the sum of the daily uniques
        goals = {g.key: g for g in week.goals}
        assert goals["uptime"].reached is True and goals["satisfaction"].reached is None
        funnel = week.funnel[0]
        assert (funnel.journey, funnel.started, funnel.completed, funnel.given_up) == (
            "renew", 10, 9, 0)  # fmt: skip
    seed(services_app, answers(DAY, slug, "bad", 1, clarity=1))
    with services_app.app_context():
        figures = build_report(Selection.of("day", DAY, DAY), [slug]).total
        assert figures.answers == 100
        assert figures.satisfaction == pytest.approx((60 * 10 + 39 * 5 + 0) / 100)
        assert figures.clarity == pytest.approx((60 * 10 + 39 * 5 + 0) / 100)
        assert Figures().given_up == 0


def test_the_summaries_the_pages_read_add_up_to_the_roll_ups(services_app: Flask) -> None:
    """Random roll-ups over three instances and ten days: every figure of a week's and a
    month's report equals the same sums taken straight from the roll-up rows."""
    rng = random.Random(20261203)
    kinds = {
        "page_view": ("", ""), "journey_started": ("", ""), "journey_completed": ("", ""),
        "journey_failed": ("", "refused unavailable invalid given_up odd"),
        "link_attempt": ("success refused unavailable invalid blocked", ""),
        "connector_call": ("ok error", ""), "action": ("success failure", ""),
    }  # fmt: skip
    slugs = ("bib-merignac", "bib-pessac", "")
    rows, seen = [], set()
    for _ in range(400):
        kind = rng.choice(list(kinds))
        outcomes, failures = (choices.split() or [""] for choices in kinds[kind])
        values = [rng.choice((5, 40, 120, 450, 2500, 20000)) for _ in range(rng.randint(1, 9))]
        rows.append(rollup(
            DAY + timedelta(days=rng.randrange(10)), kind, rng.randint(1, 50),
            instance=rng.choice(slugs), category=rng.choice(("library", "account")),
            step=rng.choice(("renew", "page", "link")), outcome=rng.choice(outcomes),
            failure=rng.choice(failures), channel=rng.choice(("web", "desk", "phone")),
            assisted=rng.random() < 0.3,
            values_ms=values if kind in ("page_view", "connector_call") else None))  # fmt: skip
        r = rows[-1]
        dims = (r.day, r.kind, r.category, r.instance, r.step, r.outcome, r.failure,
                r.channel, r.assisted)  # fmt: skip
        if dims in seen:
            rows.pop()
        seen.add(dims)
    names = ("day", "kind", "instance", "step", "outcome", "failure", "channel", "assisted",
             "count", "value_sum", "histogram")  # fmt: skip
    plain = [SimpleNamespace(**{n: getattr(r, n) for n in names}) for r in rows]
    seed(services_app, rows)
    rows = plain

    def expected(chosen: list) -> dict[str, object]:
        def total(kind: str, **where: object) -> int:
            return sum(r.count for r in chosen if r.kind == kind
                       and all(getattr(r, k) == v for k, v in where.items()))  # fmt: skip

        def histogram(kind: str) -> list[int]:
            return [sum(h) for h in zip(*(r.histogram for r in chosen if r.kind == kind),
                                        strict=True)]  # fmt: skip

        failed = {f: total("journey_failed", failure=f) for f in ("refused", "unavailable")}
        failed["invalid"] = total("journey_failed", failure="invalid") + total(
            "journey_failed", failure="odd"
        )
        return {
            "visits": total("page_view"), "started": total("journey_started"),
            "completed": total("journey_completed"), "failed": failed,
            "links": {o: total("link_attempt", outcome=o) for o in
                      ("success", "refused", "unavailable", "invalid", "blocked")},
            "calls": total("connector_call"), "calls_ok": total("connector_call", outcome="ok"),
            "actions": total("action"), "actions_ok": total("action", outcome="success"),
            "assisted": total("action", assisted=True),
            "channels": {c: total("action", channel=c) for c in ("web", "desk", "phone")},
            "server_ms_sum": sum(r.value_sum for r in chosen if r.kind == "page_view"),
            "server_histogram": histogram("page_view"),
            "latency_histogram": histogram("connector_call"),
        }  # fmt: skip

    with services_app.app_context():
        for scope in ([slugs[0]], list(slugs[:2]), None):
            chosen = [r for r in rows if scope is None or r.instance in scope]
            report = build_report(Selection.of("month", DAY, DAY), scope)
            got = {name: getattr(report.total, name) for name in expected(chosen)}
            assert got == expected(chosen), scope
            week = build_report(Selection.of("week", DAY, DAY), scope)
            monday = DAY - timedelta(days=DAY.weekday())
            in_week = [r for r in chosen if monday <= r.day <= monday + timedelta(days=6)]
            assert week.total.visits == expected(in_week)["visits"] > 0
            for journey in ("renew", "page", "link"):
                started = sum(r.count for r in chosen
                              if r.kind == "journey_started" and r.step == journey)  # fmt: skip
                shown = sum(row.started for row in report.funnel if row.journey == journey)
                assert shown == started


def test_periods_are_whole_and_compared_with_the_previous_range() -> None:
    selection = Selection.of("week", date(2026, 11, 4), date(2026, 11, 18))
    assert selection.start == date(2026, 11, 2) and selection.end == date(2026, 11, 22)
    assert selection.previous.start == date(2026, 10, 12)
    assert selection.previous.end == date(2026, 11, 1)
    month = Selection.of("month", date(2026, 1, 15), date(2026, 3, 2))
    assert (month.start, month.end, len(month.periods)) == (date(2026, 1, 1), date(2026, 3, 31), 3)
    assert month.previous.start == date(2025, 10, 1)
    for args in (("year", DAY, DAY), ("day", DAY, DAY - timedelta(days=1)),
                 ("day", date(2026, 1, 1), date(2026, 12, 31))):  # fmt: skip
        with pytest.raises(SelectionError):
            Selection.of(*args)


def test_a_bad_period_gets_a_message_and_a_400(owner: FlaskClient) -> None:
    for query in ("period=year", "start=2026-11-01", "start=demain&end=2026-11-30",
                  "start=2026-11-30&end=2026-11-01", "period=day&start=2026-01-01&end=2026-12-31",
                  "start=0001-01-01&end=0001-01-02", "start=2026-02-30&end=2026-03-01",
                  "start=%00&end=%ff"):  # fmt: skip
        page = owner.get(f"/agents/owners/services/bib-merignac?{query}")
        assert page.status_code == 400, query
        assert 'class="notice notice--error"' in text(page), query
        assert owner.get(f"/agents/owners/demarches.csv?{query}").status_code == 400, query


# -- downloads -----------------------------------------------------------------------------


def test_each_indicator_downloads_as_csv_and_all_of_them_as_a_zip(owner: FlaskClient) -> None:
    page = text(owner.get(f"/agents/owners/services/bib-merignac?{NOVEMBER}"))
    links = sorted(set(re.findall(r'href="(/agents/owners/services/bib-merignac/[^"]+)"', page)))
    assert len(links) == 9  # eight indicators and the ZIP
    for link in links:
        response = owner.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, link
        assert "attachment" in response.headers["Content-Disposition"]
    journeys = owner.get(f"/agents/owners/services/bib-merignac/demarches.csv?{NOVEMBER}")
    assert journeys.mimetype == "text/csv"
    body = journeys.get_data()
    assert not body.startswith(b"\xef\xbb\xbf")
    [row] = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert row == {"period_start": "2026-11-01", "period_end": "2026-11-30", "started": "600",
                   "completed": "420", "failed": "90", "given_up": "90",
                   "success_rate": "0.7"}  # fmt: skip
    archive = owner.get(f"/agents/owners/indicateurs.zip?{NOVEMBER}")
    assert archive.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.get_data())) as files:
        names = files.namelist()
        assert len(names) == 10 and all(name.endswith(".csv") for name in names)
        for name in names:
            header = next(csv.reader(io.StringIO(files.read(name).decode("utf-8"))))
            assert header
    assert owner.get(f"/agents/owners/nothing.csv?{NOVEMBER}").status_code == 404


# -- the statistics API --------------------------------------------------------------------


def signed(app: Flask, path: str, *params: str, expires_in: int = 600) -> str:
    args = ["statistics", "sign-url", "--path", path, "--expires-in", str(expires_in)]
    for param in params:
        args += ["--param", param]
    result = cli(app, *args)
    assert result.exit_code == 0, result.output
    url = urlsplit(result.output.strip())
    assert url.scheme == "http" and url.netloc == "localhost"
    return f"{url.path}?{url.query}"


def test_the_api_lists_statistics_and_answers_in_publiks_shape(owner: FlaskClient) -> None:
    listing = owner.get("/api/statistics/").get_json()
    assert listing["err"] == 0
    names = {item["name"] for item in listing["data"]}
    assert {"visits", "journeys", "linking", "availability", "satisfaction", "channels"} <= names
    filters = {f["id"]: f for f in listing["data"][0]["filters"]}
    assert {"time_interval", "start", "end", "service", "channel", "group-by"} <= set(filters)
    assert [o["id"] for o in filters["service"]["options"]] == ["bib-merignac"]
    answer = owner.get(
        "/api/statistics/journeys/?time_interval=month&start=2026-11-01&end=2026-11-30"
    ).get_json()
    assert answer["err"] == 0 and answer["data"]["x_labels"] == ["2026-11"]
    series = {s["label"]: s["data"] for s in answer["data"]["series"]}
    assert series["Started"] == [600] and series["Given up"] == [90]
    by_channel = owner.get(
        "/api/statistics/channels/?time_interval=week&start=2026-11-02&end=2026-11-08"
        "&group-by=channel"
    ).get_json()
    assert {s["label"]: s["data"] for s in by_channel["data"]["series"]}["desk"] == [14]
    # Another owner's service, through the API too: not found.
    other = owner.get("/api/statistics/visits/?service=bib-pessac")
    assert other.status_code == 404 and other.get_json()["err"] == 1
    bad = owner.get("/api/statistics/visits/?time_interval=fortnight")
    assert bad.status_code == 400 and bad.get_json()["err"] == 1


def test_the_api_takes_a_signed_url_and_refuses_any_other(services_app: Flask) -> None:
    seed_service_month(services_app, "bib-pessac", "library", DAY)
    client = services_app.test_client()
    unsigned = client.get("/api/statistics/visits/")
    assert unsigned.status_code == 403 and unsigned.get_json()["err"] == 1
    url = signed(services_app, "/api/statistics/visits/", "time_interval=month",
                 "start=2026-11-01", "end=2026-11-30", "group-by=service")  # fmt: skip
    good = client.get(url)
    assert good.status_code == 200, good.get_data(as_text=True)
    series = {s["label"]: s["data"] for s in good.get_json()["data"]["series"]}
    assert series["Médiathèque de Pessac"] == [100]
    path, query = url.split("?")
    params = dict(parse_qsl(query))
    tampered = {**params, "start": "2026-10-01"}
    assert client.get(f"{path}?{urlencode(tampered)}").status_code == 403
    other_path = client.get(f"/api/statistics/journeys/?{query}")
    assert other_path.status_code == 403
    forged = {**params, "signature": "0" * 64}
    assert client.get(f"{path}?{urlencode(forged)}").get_json()["err_class"] == "bad_signature"
    later = {**params, "expires": str(int(time.time()) + 10**6)}
    assert client.get(f"{path}?{urlencode(later)}").status_code == 403
    expired = signed(services_app, "/api/statistics/visits/", expires_in=1)
    time.sleep(1.1)
    refused = client.get(expired)
    assert refused.status_code == 403 and refused.get_json()["err_class"] == "expired"
    assert json.loads(refused.get_data())["err"] == 1


def test_the_openapi_description_is_valid() -> None:
    import yaml
    from openapi_spec_validator import validate

    from portal.config import PROJECT_ROOT

    spec = yaml.safe_load((PROJECT_ROOT / "docs" / "statistics-api.yaml").read_text("utf-8"))
    assert spec["openapi"].startswith("3.1")
    validate(spec)
    assert "/api/statistics/" in spec["paths"] and "/api/statistics/{name}/" in spec["paths"]
