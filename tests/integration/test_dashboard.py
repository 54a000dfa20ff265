"""A resident's dashboard: a shell that never waits, one card per linked service, and
service pages — over real HTTP to the sandbox's back-ends, healthy or not."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.extensions import db
from portal.models import Citizen, ConnectorSnapshot, ServiceLink
from tests.support import Sandbox, count_calls, empty_tables, portal_settings, sign_in

HX = {"HX-Request": "true"}
UNAVAILABLE = "Ce service est temporairement indisponible."
#: Deadlines for a test that waits on a hanging back-end: it ends the wait, not the
#: back-end, so shorter ones say the same thing sooner.
QUICK_DEADLINES = pytest.mark.deadlines(card_deadline_s=0.5, page_deadline_s=0.5)
ALL_FAULTS = [
    pytest.param("hang", marks=QUICK_DEADLINES, id="hang"),
    "reset",
    "error500",
    "rate_limit",
    "malformed",
    "wrong_schema",
]
TENANTS = {
    "bib-bordeaux": ("koha", "bordeaux"),
    "bib-merignac": ("library", "merignac"),
    "cantine-bordeaux": ("canteen", "bordeaux"),
    "logement-metropole": ("housing", "metropole"),
}


def text(response) -> str:
    return response.get_data(as_text=True)


def card(client: FlaskClient, slug: str) -> str:
    r = client.get(f"/services/{slug}/card", headers=HX)
    assert r.status_code == 200, r.status_code
    return text(r)


def backend(fc_sandbox: Sandbox, path: str, api_key: str) -> dict:
    r = fc_sandbox.http.get(fc_sandbox.url + path, headers={"X-Api-Key": api_key})
    r.raise_for_status()
    return r.json()


def links_of(app: Flask) -> dict[str, ServiceLink]:
    with app.app_context():
        return {
            link.instance_slug: link
            for link in db.session.execute(db.select(ServiceLink)).scalars()
        }


def test_shell_lists_one_placeholder_per_linked_service_without_calling_them(
    services_client: FlaskClient, services_app: Flask
) -> None:
    calls = count_calls(services_app)
    sign_in(services_client, "marie-therese")
    html = text(services_client.get("/"))
    for slug in (
        "bib-merignac",
        "bib-bordeaux",
        "cantine-bordeaux",
        "logement-metropole",
        "eau-bordeaux",
    ):
        # A plain link to the service page (works without JavaScript) that htmx
        # replaces by the card as soon as the page has loaded.
        assert f'href="/services/{slug}"' in html
        # Its own request, or a share of another's (five services, four requests).
        assert f'hx-get="/services/{slug}/card"' in html or re.search(
            rf'hx-get="/cards\?[^"]*slug={slug}\b', html
        )
    assert 'hx-trigger="load"' in html
    assert html.count('class="card"') == 5
    assert 'aria-live="polite"' in html
    assert not any(calls[s] for s in TENANTS), "the shell called a back-end"


def test_library_card_shows_what_matters_at_a_glance(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    loans = backend(
        fc_sandbox, "/library/merignac/v1/patrons/mer-p-0417/loans", "sandbox-library-merignac-key"
    )["loans"]
    html = card(services_client, "bib-merignac")
    assert f"{len(loans)} prêts en cours" in html
    assert "Prochain retour" in html
    assert UNAVAILABLE not in html
    # The swap is announced to screen readers, out of band.
    assert 'hx-swap-oob="beforeend"' in html and "informations à jour" in html


def test_koha_card_reads_through_kohas_own_api(services_client: FlaskClient) -> None:
    sign_in(services_client, "marie-therese")
    html = card(services_client, "bib-bordeaux")
    assert re.search(r"\d+ prêts? en cours", html)
    assert UNAVAILABLE not in html


def test_canteen_and_housing_cards(services_client: FlaskClient, fc_sandbox: Sandbox) -> None:
    sign_in(services_client, "marie-therese")
    family = backend(
        fc_sandbox, "/canteen/bordeaux/v1/families/fam-4521", "sandbox-canteen-bordeaux-key"
    )
    html = card(services_client, "cantine-bordeaux")
    for child in family["children"]:
        assert child["first_name"] in html
    application = backend(
        fc_sandbox, "/housing/metropole/v1/applications/dem-0871", "sandbox-housing-metropole-key"
    )
    html = card(services_client, "logement-metropole")
    assert application["number"] in html
    assert "Statut" in html


def test_two_instances_of_one_type_are_two_cards_with_their_own_data(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "paul-antoine")  # Pessac (standard API) and Bordeaux (Koha)
    sign_in(services_client, "marie-therese")  # Mérignac (standard API) and Bordeaux (Koha)
    with services_app.app_context():
        marie = db.session.execute(
            db.select(Citizen).filter(Citizen.given_name.startswith("Marie"))
        ).scalar_one()
        # Marie-Thérèse also has a card at Pessac: same type as Mérignac, another commune.
        db.session.add(
            ServiceLink(citizen_id=marie.id, instance_slug="bib-pessac", external_id="pes-p-0101")
        )
        db.session.commit()
    html = text(services_client.get("/"))
    # Two placeholders (six services: some share a card request).
    assert 'id="card-bib-merignac"' in html
    assert 'id="card-bib-pessac"' in html
    for slug, tenant, patron in (
        ("bib-merignac", "merignac", "mer-p-0417"),
        ("bib-pessac", "pessac", "pes-p-0101"),
    ):
        loans = backend(
            fc_sandbox,
            f"/library/{tenant}/v1/patrons/{patron}/loans",
            f"sandbox-library-{tenant}-key",
        )["loans"]
        page = text(services_client.get(f"/services/{slug}"))
        for loan in loans:
            assert loan["title"].replace("'", "&#39;") in page


def test_service_pages_list_the_full_data(
    services_client: FlaskClient, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    loans = backend(
        fc_sandbox, "/library/merignac/v1/patrons/mer-p-0417/loans", "sandbox-library-merignac-key"
    )["loans"]
    holds = backend(
        fc_sandbox, "/library/merignac/v1/patrons/mer-p-0417/holds", "sandbox-library-merignac-key"
    )["holds"]
    page = text(services_client.get("/services/bib-merignac"))
    for item in loans + holds:
        assert item["title"].replace("'", "&#39;") in page
    assert "en retard" in page  # the overdue loan stands out
    invoices = backend(
        fc_sandbox,
        "/canteen/bordeaux/v1/families/fam-4521/invoices",
        "sandbox-canteen-bordeaux-key",
    )["invoices"]
    page = text(services_client.get("/services/cantine-bordeaux"))
    for invoice in invoices:
        assert invoice["label"].replace("'", "&#39;") in page
    page = text(services_client.get("/services/logement-metropole"))
    assert "Historique" in page
    assert text(services_client.get("/services/bib-bordeaux")).count("<tr") > 1


def test_a_card_without_htmx_is_a_full_page(services_client: FlaskClient) -> None:
    sign_in(services_client, "marie-therese")
    html = text(services_client.get("/services/bib-merignac/card"))
    assert html.startswith("<!doctype html>")
    assert "hx-swap-oob" not in html


# -- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ALL_FAULTS)
@pytest.mark.parametrize("slug", list(TENANTS))
def test_a_failing_back_end_costs_one_card_never_a_500(
    services_client: FlaskClient, fc_sandbox: Sandbox, slug: str, mode: str
) -> None:
    sign_in(services_client, "marie-therese")
    kind, tenant = TENANTS[slug]
    fc_sandbox.fault(kind, tenant, mode, hang_s=5)
    html = card(services_client, slug)
    assert UNAVAILABLE in html
    assert "service temporairement indisponible" in html  # the polite announcement
    page = services_client.get(f"/services/{slug}")
    assert page.status_code == 200
    assert UNAVAILABLE in text(page)
    assert services_client.get("/").status_code == 200


@pytest.mark.parametrize("slug", list(TENANTS))
def test_a_card_serves_the_last_good_data_with_its_time_when_the_back_end_fails(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox, slug: str
) -> None:
    sign_in(services_client, "marie-therese")
    healthy = card(services_client, slug)
    assert UNAVAILABLE not in healthy
    with services_app.app_context():
        assert db.session.execute(db.select(ConnectorSnapshot)).first() is not None
    kind, tenant = TENANTS[slug]
    fc_sandbox.fault(kind, tenant, "error500")
    html = card(services_client, slug)
    assert "Voici les dernières informations connues, du" in html
    assert "card--stale" in html
    facts = re.search(r'<ul class="facts">.*?</ul>', healthy, re.S)
    assert facts  # the same facts as before the failure (and what cannot be done now)
    expected = facts.group(0)
    if slug == "logement-metropole":
        # The snapshot keeps no application number (see test_retention.py).
        expected = re.sub(r"<li>Demande n° [^<]*</li>", "", expected)
    assert all(li in html for li in re.findall(r"<li>.*?</li>", expected, re.S))


def test_the_breaker_opens_then_closes_again(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "amina")
    registry = services_app.extensions["connectors"]
    fc_sandbox.fault("library", "merignac", "error500")
    for _ in range(6):
        card(services_client, "bib-merignac")
    assert registry.breaker_state("bib-merignac").state == "open"
    assert "indisponible" in text(services_client.get("/status"))
    fc_sandbox.fault("library", "merignac", None)
    http = registry._http["bib-merignac"]
    cooldown = http.policy.breaker_cooldown_s
    http._clock = lambda: time.time() + cooldown + 1  # the cool-down has passed
    assert UNAVAILABLE not in card(services_client, "bib-merignac")
    assert registry.breaker_state("bib-merignac").state == "closed"


def test_a_link_the_back_end_no_longer_knows_asks_to_relink(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "amina")
    with services_app.app_context():
        link = db.session.execute(
            db.select(ServiceLink).filter_by(instance_slug="bib-merignac")
        ).scalar_one()
        link.external_id = "mer-p-9999"  # the card was cancelled at the library
        db.session.commit()
    html = card(services_client, "bib-merignac")
    assert "ne reconnaît plus votre compte" in html
    assert links_of(services_app)["bib-merignac"].status == "needs_relink"


# -- authorisation -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/services/{slug}", "/services/{slug}/card"])
def test_a_resident_never_reaches_a_service_they_have_not_linked(
    services_client: FlaskClient, path: str
) -> None:
    sign_in(services_client, "amina")  # linked: Mérignac library and housing only
    not_mine = services_client.get(path.format(slug="cantine-bordeaux"))
    unknown = services_client.get(path.format(slug="does-not-exist"))
    assert not_mine.status_code == unknown.status_code == 404

    # Nothing tells whether the service exists, or whether someone else linked it. The
    # sign-out form's CSRF token carries its second of signing: not part of the answer.
    def same(page: str, slug: str) -> str:
        return re.sub(r'name="csrf_token" value="[^"]+"', "", page.replace(slug, "X"))

    assert same(text(not_mine), "cantine-bordeaux") == same(text(unknown), "does-not-exist")


def test_service_pages_need_a_signed_in_resident(services_client: FlaskClient) -> None:
    r = services_client.get("/services/bib-merignac")
    assert r.status_code == 302 and r.headers["Location"].startswith("/auth/login")


# -- unreachable instances: refused connections and servers that never answer -----------


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("target", ["silent", "refused"])
def test_an_instance_pointed_at_nothing_leaves_the_rest_working(
    database_url: str,
    fc_sandbox: Sandbox,
    connectors_file: str,
    tmp_path: Path,
    silent_server: str,
    target: str,
) -> None:
    broken = silent_server if target == "silent" else _closed_port_url()
    conf = Path(connectors_file).read_text(encoding="utf-8")
    conf = conf.replace(fc_sandbox.url + "/library/merignac", broken + "/library/merignac")
    path = tmp_path / "connectors.toml"
    path.write_text(conf, encoding="utf-8")
    from tests.support import DEMO_LINKS_FILE

    app = create_app(
        portal_settings(
            database_url,
            fc_sandbox.issuer,
            connectors_file=str(path),
            demo_links_file=DEMO_LINKS_FILE,
            card_deadline_s=1.0,
        )
    )
    client = app.test_client()
    try:
        sign_in(client, "marie-therese")
        assert client.get("/").status_code == 200
        assert UNAVAILABLE in card(client, "bib-merignac")
        assert UNAVAILABLE not in card(client, "bib-bordeaux")
    finally:
        app.extensions["connectors"].close()
        empty_tables(app)


# -- status and health ---------------------------------------------------------------------


def test_status_page_lists_every_instance(
    services_client: FlaskClient, services_app: Flask
) -> None:
    from portal.integrations import probe_all

    probe_all(services_app)  # what the worker does each minute
    html = text(services_client.get("/status"))
    for title in ("Médiathèque de Mérignac", "Bibliothèques de Bordeaux", "Médiathèque de Pessac"):
        assert title in html
    assert ">disponible<" in html and "inconnu" not in html


def test_health_endpoints(services_client: FlaskClient) -> None:
    assert services_client.get("/healthz").json == {"status": "ok"}
    assert services_client.get("/readyz").json == {"status": "ok", "database": "ok"}


def test_readyz_says_when_the_database_is_unreachable(fc_sandbox: Sandbox) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    app = create_app(portal_settings(f"postgresql://nobody@127.0.0.1:{port}/x", fc_sandbox.issuer))
    r = app.test_client().get("/readyz")
    assert r.status_code == 503
    assert r.json["database"] == "unreachable"


# -- more services than the dashboard has requests for --------------------------------------

HX = {"HX-Request": "true"}
PLACEHOLDER_RE = re.compile(r'<a id="card-link-([^"]+)"([^>]*)>')
HX_GET_RE = re.compile(r' hx-get="([^"]+)"')
CARD_RE = re.compile(r'<li class="card card--(\w+)" id="card-([^"]+)"( hx-swap-oob="outerHTML")?>')


@pytest.fixture
def crowded_client(
    database_url: str, fc_sandbox: Sandbox, tmp_path: Path
) -> Iterator[tuple[FlaskClient, Flask]]:
    """Marie-Thérèse with her four demo services and four Mérignac annexes: eight."""
    from tests.support import DEMO_LINKS_FILE, crowded_connectors_file

    conf = crowded_connectors_file(fc_sandbox.url, tmp_path / "connectors.toml", annexes=4)
    app = create_app(
        portal_settings(
            database_url,
            fc_sandbox.issuer,
            connectors_file=conf,
            demo_links_file=DEMO_LINKS_FILE,
            card_deadline_s=2.0,
        )
    )
    client = app.test_client()
    try:
        yield client, app
    finally:
        app.extensions["connectors"].close()
        empty_tables(app)


def loaders(html: str) -> dict[str, str | None]:
    """Each placeholder's service and what it asks htmx to load (None: nothing)."""
    found = {}
    for slug, attributes in PLACEHOLDER_RE.findall(html):
        url = HX_GET_RE.search(attributes)
        found[slug] = url.group(1).replace("&amp;", "&") if url else None
    return found


def test_eight_services_load_in_one_request_per_back_end_each_card_once(
    crowded_client: tuple[FlaskClient, Flask],
) -> None:
    from tests.support import annexe_slugs, link_annexes

    client, app = crowded_client
    sign_in(client, "marie-therese")
    link_annexes(app, 4)
    shell = loaders(text(client.get("/")))
    assert len(shell) == 9, shell
    requests = [url for url in shell.values() if url]
    # Five back-ends (Koha, Mérignac with its four annexes, the canteen, the housing file,
    # water) in the four requests: Mérignac's alone, the smallest two together.
    assert len(requests) == 4, shell
    assert shell["bib-merignac"] == "/cards?" + "&".join(
        f"slug={slug}" for slug in ["bib-merignac", *annexe_slugs(4)]
    )

    cards: list[tuple[str, str, bool]] = []
    for url in requests:
        answer = client.get(url, headers=HX)
        assert answer.status_code == 200, url
        found = CARD_RE.findall(text(answer))
        # The first card replaces the placeholder that asked; the others theirs, out of band.
        assert [bool(oob) for _, _, oob in found] == [False] + [True] * (len(found) - 1), url
        assert found[0][1] == next(slug for slug, u in shell.items() if u == url)
        cards.extend((slug, state, bool(oob)) for state, slug, oob in found)
    assert sorted(slug for slug, _, _ in cards) == sorted(shell), cards
    assert {state for _, state, _ in cards} == {"ok"}, cards
    for slug in annexe_slugs(4):
        assert slug in shell


def test_four_services_or_fewer_load_one_card_per_request(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "dartagnan")
    shell = loaders(text(services_client.get("/")))
    assert shell == {slug: f"/services/{slug}/card" for slug in shell}
    assert len(shell) == 4


def test_five_services_share_the_four_card_requests(services_client: FlaskClient) -> None:
    sign_in(services_client, "marie-therese")
    shell = loaders(text(services_client.get("/")))
    assert len(shell) == 5
    assert len([url for url in shell.values() if url]) == 4, shell


@pytest.mark.parametrize(
    "query",
    [
        "",  # no card asked
        "?slug=bib-merignac&slug=bib-merignac",  # the same twice
        "?slug=bib-merignac&slug=bib-pessac",  # d'Artagnan's, not hers
        "?slug=bib-merignac&slug=nowhere",  # no such service
        "?slug=" + "&slug=".join(f"s{n}" for n in range(60)),  # not the dashboard's
    ],
)
def test_cards_of_services_not_ones_own_are_not_found(
    services_client: FlaskClient, query: str
) -> None:
    sign_in(services_client, "marie-therese")
    answer = services_client.get(f"/cards{query}", headers=HX)
    assert answer.status_code == 404
    assert "card--" not in text(answer)


def test_the_cards_address_without_htmx_leads_to_the_dashboard(
    services_client: FlaskClient,
) -> None:
    assert services_client.get("/cards?slug=bib-merignac").status_code in (302, 303)
    sign_in(services_client, "marie-therese")
    answer = services_client.get("/cards?slug=bib-merignac&slug=cantine-bordeaux")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/"


# -- one short-lived read cache for the cards and the to-do list ------------------------------


def test_the_todo_list_reuses_what_the_cards_just_read(
    services_client: FlaskClient, services_app: Flask
) -> None:
    calls = count_calls(services_app)
    sign_in(services_client, "dartagnan")  # four services, one card request each
    shell = loaders(text(services_client.get("/")))
    for url in shell.values():
        assert services_client.get(url, headers=HX).status_code == 200
    after_cards = dict(calls)
    assert sum(after_cards.values()) > 0
    todo = services_client.get("/account/todo", headers=HX)
    assert todo.status_code == 200
    after_todo = dict(calls)
    again = {
        s: after_todo[s] - after_cards.get(s, 0)
        for s in after_todo
        if after_todo[s] != after_cards.get(s, 0)
    }
    # Only what the cards do not read: the canteen's next month, late in this one.
    assert set(again) <= {"cantine-bordeaux"}, again
    # A service page always asks the back-end.
    services_client.get("/services/logement-metropole")
    assert calls["logement-metropole"] > after_todo["logement-metropole"]


def test_with_no_read_cache_the_todo_list_asks_again(
    database_url: str, fc_sandbox: Sandbox, connectors_file: str
) -> None:
    from portal import create_app
    from tests.support import DEMO_LINKS_FILE

    app = create_app(
        portal_settings(
            database_url,
            fc_sandbox.issuer,
            connectors_file=connectors_file,
            demo_links_file=DEMO_LINKS_FILE,
            read_cache_s=0,
        )
    )
    try:
        calls = count_calls(app)
        client = app.test_client()
        sign_in(client, "dartagnan")
        assert client.get("/services/logement-metropole/card", headers=HX).status_code == 200
        before = calls["logement-metropole"]
        assert client.get("/account/todo", headers=HX).status_code == 200
        assert calls["logement-metropole"] > before
    finally:
        app.extensions["connectors"].close()
        empty_tables(app)
