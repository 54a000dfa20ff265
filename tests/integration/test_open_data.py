"""The territory's open data: monthly CSV files valid against the national schema
« impact d'un service public numérique » v0.3.0 (checked with the frictionless package,
as data.gouv.fr does), statistical secrecy (nothing under 11), the data package and the
public page."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

from flask import Flask
from frictionless import Resource, Schema

from portal.owners.opendata import FIELDS, SCHEMA_FILE
from tests.measure_seed import answers, rollup, seed, seed_service_month

NOVEMBER = date(2026, 11, 1)
CSV_PATH = "/donnees-ouvertes/2026-11/statistiques_impact.csv"


def rows_of(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))


def problems(body: bytes, tmp_path: Path) -> list[list[object]]:
    """What frictionless finds wrong with the file against the schema's copy."""
    target = tmp_path / "statistiques_impact_2026-11.csv"
    target.write_bytes(body)
    schema = Schema.from_descriptor(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    report = Resource(path=target.name, basepath=str(tmp_path), schema=schema).validate()
    return [] if report.valid else report.flatten(["rowNumber", "fieldName", "type", "note"])


def validate(body: bytes, tmp_path: Path) -> None:
    found = problems(body, tmp_path)
    assert not found, found


def test_a_month_is_published_valid_against_the_schema(services_app: Flask, tmp_path) -> None:
    for offset in range(30):
        seed_service_month(services_app, "bib-merignac", "library",
                           NOVEMBER + timedelta(days=offset))  # fmt: skip
    seed(services_app, answers(NOVEMBER, "bib-merignac", "good", 100, clarity=4))
    client = services_app.test_client()
    response = client.get(CSV_PATH)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].endswith('statistiques_impact_2026-11.csv"')
    body = response.get_data()
    assert not body.startswith(b"\xef\xbb\xbf")
    assert body.split(b"\r\n", 1)[0].decode() == ",".join(FIELDS)
    validate(body, tmp_path)
    # The check is a real one: a value that is not a number is caught.
    assert problems(body.replace(b",600,", b",six cents,"), tmp_path)
    rows = [
        r for r in rows_of(body) if r["nom_service_public_numerique"] == "Médiathèque de Mérignac"
    ]
    values = {r["indicateur"]: r["valeur"] for r in rows}
    assert values["Nombre de démarches commencées"] == "600"
    assert values["Taux de réussite des démarches"] == "70"
    assert values["Satisfaction"] == "10" and values["Clarté du langage"] == "7.5"
    assert values["Part des usagers connectés avec FranceConnect"] == "100"
    first = rows[0]
    assert first["administration_rattachement"] == "Métropole de démonstration"
    assert (first["date_debut"], first["date"]) == ("2026-11-01", "2026-11-30")
    assert first["code_insee"] == "33281" and first["frequence_monitoring"] == "mensuelle"
    assert (first["est_periode"], first["est_cible"], first["est_automatise"]) == (
        "true", "false", "true")  # fmt: skip
    housing = [r for r in rows_of(body) if r["nom_service_public_numerique"].startswith("Demande")]
    assert housing and all(r["code_insee"] == "" for r in housing)  # several communes


def test_no_count_under_eleven_is_published(services_app: Flask, tmp_path) -> None:
    seed(
        services_app,
        [
            rollup(NOVEMBER, "page_view", 0, instance="bib-merignac", values_ms=[30] * 11),
            rollup(NOVEMBER, "page_view", 0, instance="bib-pessac", values_ms=[30] * 10),
            rollup(NOVEMBER, "journey_started", 10, instance="bib-merignac", step="renew"),
            rollup(NOVEMBER, "journey_completed", 10, instance="bib-merignac", step="renew"),
        ],
    )
    body = services_app.test_client().get(CSV_PATH).get_data()
    validate(body, tmp_path)
    rows = rows_of(body)

    def of(title: str) -> dict[str, dict[str, str]]:
        return {r["indicateur"]: r for r in rows if r["nom_service_public_numerique"] == title}

    merignac, pessac = of("Médiathèque de Mérignac"), of("Médiathèque de Pessac")
    assert merignac["Nombre de pages vues"]["valeur"] == "11"
    assert "Nombre de pages vues" not in pessac
    # Nor a rate on fewer than 11 journeys; and the service's rows say what was withheld.
    assert "Taux de réussite des démarches" not in merignac
    assert "Nombre de démarches commencées" not in merignac
    said = pessac["Part des usagers connectés avec FranceConnect"]["commentaires"]
    assert "inférieurs à 11" in said and "Nombre de pages vues" in said
    assert "Nombre de pages vues" not in merignac["Nombre de pages vues"]["commentaires"]
    assert all(int(float(r["valeur"])) >= 11 for r in rows if r["unite_mesure"] == "unité")


def test_the_data_package_and_the_public_page(services_app: Flask) -> None:
    seed_service_month(services_app, "bib-merignac", "library", NOVEMBER)
    client = services_app.test_client()
    package = json.loads(client.get("/donnees-ouvertes/datapackage.json").get_data())
    assert package["profile"] == "tabular-data-package" and len(package["resources"]) == 12
    resource = package["resources"][-1]
    assert resource["format"] == "csv" and resource["encoding"] == "utf-8"
    assert resource["schema"].endswith("/v0.3.0/schema.json")
    page = client.get("/donnees-ouvertes/")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'role="img"' in body and "<table" in body and "Médiathèque de Mérignac" in body
    assert "statistiques_impact.csv" in body
    for month in ("2026-13", "26-11", "2100-01", "9999-99", "abcd-ef"):
        assert client.get(f"/donnees-ouvertes/{month}/statistiques_impact.csv").status_code == 404
