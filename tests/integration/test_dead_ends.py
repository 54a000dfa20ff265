"""No dead ends: every page that sends a resident elsewhere says where, the pages that
name who runs the portal name them, and the dashboard shows what it knows without
JavaScript."""

from __future__ import annotations

import html
import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from connectors.registry import RegistryError, load_instances
from portal import create_app
from portal.config import DEMO_IDENTITY, load_settings
from tests.support import Sandbox, empty_tables, portal_settings, sign_in

HX = {"HX-Request": "true"}


def words(response) -> str:
    """The page's text as a reader gets it."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", response.get_data(as_text=True), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


# -- the territory's identity ----------------------------------------------------------------


def identity_app(database_url: str, issuer: str, **identity: str) -> Flask:
    return create_app(portal_settings(database_url, issuer, **identity))


OPERATOR = {
    "territory_name": "Métropole de Garonne",
    "territory_address": "12 quai des Chartrons, 33000 Bordeaux",
    "publication_director": "Jeanne Lafitte, présidente",
    "hosting_provider": "Hébergeur Exemple SAS, 1 rue du Nuage, 75000 Paris",
    "data_controller": "Métropole de Garonne (direction du numérique)",
    "dpo_contact": "dpo@garonne.example",
    "help_phone": "05 56 99 99 99",
    "help_email": "aide@garonne.example",
    "help_url": "https://garonne.example/aide",
    "help_hours": "du lundi au vendredi, de 8 h 30 à 18 h",
}


@pytest.fixture
def operated(database_url: str, fc_sandbox: Sandbox) -> Iterator[FlaskClient]:
    app = identity_app(database_url, fc_sandbox.issuer, **OPERATOR)
    yield app.test_client()
    empty_tables(app)


def test_the_legal_notice_names_the_publisher_director_host_and_contact(
    operated: FlaskClient,
) -> None:
    page = words(operated.get("/mentions-legales"))
    for value in (
        "Métropole de Garonne",
        "12 quai des Chartrons, 33000 Bordeaux",
        "Jeanne Lafitte, présidente",
        "Hébergeur Exemple SAS",
        "05 56 99 99 99",
        "aide@garonne.example",
    ):
        assert value in page
    assert "figurent dans la configuration" not in page  # the old placeholder text


def test_the_privacy_page_names_the_data_controller_and_the_dpo(operated: FlaskClient) -> None:
    r = operated.get("/donnees-personnelles")
    page = words(r)
    assert "Responsable du traitement" in page
    assert "Métropole de Garonne (direction du numérique)" in page
    assert "dpo@garonne.example" in page
    assert 'href="mailto:dpo@garonne.example"' in r.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/auth/login", "/accessibilite"])
def test_help_on_the_sign_in_page_and_in_the_accessibility_statement_names_a_contact(
    operated: FlaskClient, path: str
) -> None:
    r = operated.get(path)
    body = r.get_data(as_text=True)
    assert 'href="tel:0556999999"' in body
    assert 'href="mailto:aide@garonne.example"' in body
    assert 'href="https://garonne.example/aide"' in body
    assert "de 8 h 30 à 18 h" in words(r)


def test_operator_text_is_marked_french_on_english_pages(operated: FlaskClient) -> None:
    r = operated.get("/mentions-legales", headers={"Accept-Language": "en"})
    body = r.get_data(as_text=True)
    assert '<html lang="en"' in body
    assert '<span lang="fr">Jeanne Lafitte, présidente</span>' in body
    assert "Publication director" in words(r)


def test_development_shows_a_demonstration_identity_not_placeholders(
    database_url: str, fc_sandbox: Sandbox
) -> None:
    app = identity_app(database_url, fc_sandbox.issuer)
    page = words(app.test_client().get("/mentions-legales"))
    assert DEMO_IDENTITY["territory_name"] in page
    assert DEMO_IDENTITY["publication_director"] in page


def test_without_an_identity_the_pages_say_it_was_not_given_and_name_a_way_to_get_help(
    database_url: str, fc_sandbox: Sandbox
) -> None:
    blank = dict.fromkeys(OPERATOR, "")
    app = identity_app(database_url, fc_sandbox.issuer, **blank)
    client = app.test_client()
    assert "Non renseigné par l'exploitant du service." in words(client.get("/mentions-legales"))
    assert "Adressez-vous à l'accueil de votre mairie" in words(client.get("/auth/login"))


def test_production_warns_at_start_naming_each_missing_setting(
    caplog: pytest.LogCaptureFixture, database_url: str
) -> None:
    settings = load_settings(
        {
            "PORTAL_ENV": "production",
            "PORTAL_SECRET_KEY": "s" * 40,
            "PORTAL_BASE_URL": "https://compte.example.fr",
            "PORTAL_FC_ISSUER": "https://fc.example.fr/api/v2",
            "PORTAL_FC_CLIENT_ID": "client",
            "PORTAL_FC_CLIENT_SECRET": "secret",
            "PORTAL_AGENT_ISSUER": "https://proconnect.example.fr/api/v2",
            "PORTAL_AGENT_CLIENT_ID": "agents",
            "PORTAL_AGENT_CLIENT_SECRET": "agents-secret",
            "PORTAL_ENCRYPTION_KEYS": "A" * 43 + "=",
            "PORTAL_SINGLE_PROCESS": "1",
            "PORTAL_TERRITORY_NAME": "Métropole de Garonne",
            "PORTAL_HELP_EMAIL": "aide@garonne.example",
        },
        database_url=database_url,
    )
    with caplog.at_level(logging.WARNING, logger="portal"):
        create_app(settings)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "portal"]
    for name in (
        "PORTAL_TERRITORY_ADDRESS",
        "PORTAL_PUBLICATION_DIRECTOR",
        "PORTAL_HOSTING_PROVIDER",
        "PORTAL_DATA_CONTROLLER",
        "PORTAL_DPO_CONTACT",
    ):
        assert name in warning
    assert "PORTAL_TERRITORY_NAME" not in warning
    assert "PORTAL_HELP_PHONE" not in warning  # one way to reach help is enough


def test_a_help_address_that_is_not_a_web_address_stops_the_portal() -> None:
    with pytest.raises(ValueError, match="PORTAL_HELP_URL"):
        load_settings({"PORTAL_HELP_URL": "javascript:alert(1)"})


# -- each instance's own links ---------------------------------------------------------------


def instance_file(tmp_path: Path, links: str) -> str:
    path = tmp_path / "connectors.toml"
    path.write_text(
        """
[instances.bib-test]
type = "library-standard"
title = "Médiathèque de test"
communes = ["Mérignac"]
base_url = "http://127.0.0.1:9/library"

[instances.bib-test.links]
"""
        + links,
        encoding="utf-8",
    )
    return str(path)


def test_an_instance_carries_its_links(tmp_path: Path) -> None:
    path = instance_file(
        tmp_path,
        'fines_url = "https://mediatheque.example.fr/amendes"\nhelp_phone = "05 56 00 00 00"\n',
    )
    [instance] = load_instances(path, {})
    assert instance.links == {
        "fines_url": "https://mediatheque.example.fr/amendes",
        "help_phone": "05 56 00 00 00",
    }


@pytest.mark.parametrize(
    ("links", "problem"),
    [
        ('apply_url = "javascript:alert(1)"\n', "links.apply_url"),
        ('fines_url = ""\n', "links.fines_url"),
        ('help_phone = "call us"\n', "links.help_phone"),
        ('help_email = "nobody"\n', "links.help_email"),
        ('shop_url = "https://example.fr"\n', "links.shop_url"),
    ],
)
def test_a_wrong_link_stops_the_portal_naming_the_instance_and_field(
    tmp_path: Path, links: str, problem: str
) -> None:
    with pytest.raises(RegistryError, match=re.escape(problem)):
        load_instances(instance_file(tmp_path, links), {})


def test_fines_say_where_to_pay_them(services_client: FlaskClient) -> None:
    sign_in(services_client, "marie-therese")  # her Mérignac card has a fine
    r = services_client.get("/services/bib-merignac")
    assert "Amende" in words(r) or "amende" in words(r)
    body = r.get_data(as_text=True)
    [link] = re.findall(r'<a class="button" href="([^"]+/sites/merignac/amendes)"', body)
    assert "Payer mes amendes en ligne" in words(r)
    # The link leads to a page, not nowhere.
    import httpx

    assert httpx.get(link).status_code == 200


def test_an_expired_housing_application_says_where_to_file_a_new_one(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "amina")  # her application expired 20 days ago
    r = services_client.get("/services/logement-metropole")
    page = words(r)
    assert "Il faut déposer une nouvelle demande." in page
    assert 'href="https://www.demande-logement-social.gouv.fr/"' in r.get_data(as_text=True)
    assert "Déposer une nouvelle demande" in page


def test_a_service_page_ends_with_whom_to_ask(services_client: FlaskClient) -> None:
    sign_in(services_client, "marie-therese")
    bordeaux = services_client.get("/services/bib-bordeaux").get_data(as_text=True)
    assert "Une question sur ce service" in html.unescape(bordeaux)
    assert 'href="tel:0500000011"' in bordeaux  # the library's own desk
    housing = services_client.get("/services/logement-metropole").get_data(as_text=True)
    assert "Contactez le service d'aide du Compte territorial" in html.unescape(housing)


# -- the dashboard without JavaScript ---------------------------------------------------------


class CountingListener:
    """A back-end stand-in that takes connections and never answers; it counts them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


def test_the_dashboard_shell_shows_each_service_s_last_known_facts_without_calling_a_back_end(
    database_url: str, fc_sandbox: Sandbox, connectors_file: str, tmp_path: Path
) -> None:
    settings = {"card_deadline_s": 1.0, "page_deadline_s": 2.0}
    from tests.support import DEMO_LINKS_FILE

    first = create_app(
        portal_settings(
            database_url,
            fc_sandbox.issuer,
            connectors_file=connectors_file,
            demo_links_file=DEMO_LINKS_FILE,
            **settings,
        )
    )
    client = first.test_client()
    listener = CountingListener()
    try:
        sign_in(client, "marie-therese")
        before = words(client.get("/"))
        assert "Dernières informations connues" not in before  # nothing read yet
        for slug in ("bib-merignac", "cantine-bordeaux"):
            assert client.get(f"/services/{slug}/card", headers=HX).status_code == 200

        # The same database, every back-end now a server that never answers.
        conf = Path(connectors_file).read_text(encoding="utf-8")
        conf = conf.replace(fc_sandbox.url, listener.url)
        dead = tmp_path / "dead.toml"
        dead.write_text(conf, encoding="utf-8")
        second = create_app(
            portal_settings(database_url, fc_sandbox.issuer, connectors_file=str(dead), **settings)
        )
        second.config["SESSION_COOKIE_NAME"] = first.config["SESSION_COOKIE_NAME"]
        other = second.test_client()
        sign_in(other, "marie-therese")
        listener.connections()  # what signing in may have probed does not count
        r = other.get("/")
        assert r.status_code == 200
        page = words(r)
        assert listener.connections() == 0, "the shell must not call any back-end"
        assert page.count("Dernières informations connues") == 2
        assert "prêts en cours" in page and "Amendes à régler" in page  # library facts
        assert "à payer" in page  # canteen facts
        # The links stay, for the full page of each service.
        assert 'href="/services/bib-merignac"' in r.get_data(as_text=True)
        second.extensions["connectors"].close()
    finally:
        first.extensions["connectors"].close()
        empty_tables(first)
        listener.sock.close()


def test_the_shell_s_last_known_facts_leave_a_link_to_relink_as_it_is(
    services_app: Flask, services_client: FlaskClient
) -> None:
    from portal.extensions import db
    from portal.models import ServiceLink

    sign_in(services_client, "marie-therese")
    assert services_client.get("/services/bib-merignac/card", headers=HX).status_code == 200
    with services_app.app_context():
        link = db.session.execute(
            db.select(ServiceLink).filter_by(instance_slug="bib-merignac")
        ).scalar_one()
        link.status = "needs_relink"  # the back-end refused the link since
        db.session.commit()
    assert "Dernières informations connues" in words(services_client.get("/"))
    with services_app.app_context():
        link = db.session.execute(
            db.select(ServiceLink).filter_by(instance_slug="bib-merignac")
        ).scalar_one()
        assert link.status == "needs_relink"  # a snapshot is no news from the back-end
