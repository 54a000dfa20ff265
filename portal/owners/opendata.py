"""The territory's open data: the services' monthly indicators, as CSV files following
the schema « impact d'un service public numérique » v0.3.0, a Frictionless data package
describing them, and a public page showing the same figures as charts with tables.

One row per service, indicator and month. Statistical secrecy: no count below
``MIN_PUBLISHED_COUNT`` (11) is published, nor a rate computed on fewer; the row is left
out and the service's other rows of that month say which were (``commentaires``). Scores
are published from ``MIN_ANSWERS`` (100) answers only, like the observatory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Blueprint, Response, abort, render_template, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from portal.config import PROJECT_ROOT, current_settings
from portal.journeys import journey
from portal.measure import MIN_ANSWERS, MIN_PUBLISHED_COUNT
from portal.owners import chart
from portal.owners.access import categories, configured
from portal.owners.export import csv_text
from portal.owners.indicators import Figures, build_report, period_end, previous_period
from portal.owners.routes import today
from portal.owners.sections import period_label, short_label

bp = Blueprint("opendata", __name__, url_prefix="/donnees-ouvertes")

SCHEMA_FILE = (
    PROJECT_ROOT
    / "portal"
    / "owners"
    / "schemas"
    / ("impact-service-public-numerique-0.3.0.schema.json")
)
SCHEMA_URL = (
    "https://github.com/etalab/schema-impact-service-public-numerique/raw/v0.3.0/schema.json"
)
FIELDS = [
    "administration_rattachement",
    "nom_service_public_numerique",
    "indicateur",
    "valeur",
    "unite_mesure",
    "est_cible",
    "frequence_monitoring",
    "date",
    "est_periode",
    "date_debut",
    "est_automatise",
    "source_collecte",
    "code_insee",
    "dataviz_wish",
    "commentaires",
]
#: Months the page and the data package list (the CSV of any past month can be asked).
PUBLISHED_MONTHS = 12
SOURCE = "script (mesure d'audience anonyme, agrégée par jour)"

#: INSEE codes of the territory's 28 communes (Bordeaux Métropole), as the connectors'
#: file names them. An instance serving one commune publishes its code; one serving
#: several publishes none (the indicator is then not per commune).
INSEE_CODES = {
    "Ambarès-et-Lagrave": "33003",
    "Ambès": "33004",
    "Artigues-près-Bordeaux": "33013",
    "Bassens": "33032",
    "Bègles": "33039",
    "Blanquefort": "33056",
    "Bordeaux": "33063",
    "Bouliac": "33065",
    "Le Bouscat": "33069",
    "Bruges": "33075",
    "Carbon-Blanc": "33096",
    "Cenon": "33119",
    "Eysines": "33162",
    "Floirac": "33167",
    "Gradignan": "33192",
    "Le Haillan": "33200",
    "Lormont": "33249",
    "Martignas-sur-Jalle": "33273",
    "Mérignac": "33281",
    "Parempuyre": "33312",
    "Pessac": "33318",
    "Saint-Aubin-de-Médoc": "33376",
    "Saint-Louis-de-Montferrand": "33434",
    "Saint-Médard-en-Jalles": "33449",
    "Saint-Vincent-de-Paul": "33487",
    "Le Taillan-Médoc": "33519",
    "Talence": "33522",
    "Villenave-d'Ornon": "33550",
}


@dataclass(frozen=True)
class Indicator:
    #: The same label every month (the schema asks so); in French, as published.
    label: str
    unit: str
    value: Callable[[Figures], float | None]
    #: The count of people or events it rests on: under 11, nothing is published.
    base: Callable[[Figures], int] | None
    dataviz: str
    comment: str = ""


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def _mean_s(f: Figures) -> float | None:
    return None if f.server_mean_ms is None else round(f.server_mean_ms / 1000, 3)


INDICATORS: list[Indicator] = [
    Indicator("Nombre de pages vues", "unité", lambda f: f.visits, lambda f: f.visits,
              "linechart"),
    Indicator("Nombre de visiteurs uniques (somme des jours)", "unité", lambda f: f.visitors,
              lambda f: f.visitors, "linechart",
              "Visiteurs distincts comptés chaque jour, puis additionnés sur le mois : une "
              "personne venue deux jours compte deux fois."),
    Indicator("Nombre de démarches commencées", "unité", lambda f: f.started,
              lambda f: f.started, "linechart"),
    Indicator("Nombre de démarches abouties", "unité", lambda f: f.completed,
              lambda f: f.completed, "linechart"),
    Indicator("Taux de réussite des démarches", "%", lambda f: _percent(f.success_rate),
              lambda f: f.started, "barchart",
              "Démarches abouties sur démarches commencées."),
    Indicator("Taux de réussite du rattachement des comptes", "%",
              lambda f: _percent(f.link_success_rate), lambda f: f.link_attempts, "barchart"),
    Indicator("Disponibilité", "%", lambda f: _percent(f.availability), None, "linechart",
              "Part des appels et contrôles du service partenaire qui ont réussi ; objectif "
              "de l'observatoire : 99,9 %."),
    Indicator("Temps de chargement moyen des pages", "seconde", _mean_s, None, "linechart",
              "Temps de préparation des pages par le portail ; objectif : 0,4 seconde."),
    Indicator("Satisfaction", "note sur 10",
              lambda f: None if f.satisfaction is None else round(f.satisfaction, 1), None,
              "linechart",
              f"Publiée à partir de {MIN_ANSWERS} réponses ; objectif de l'observatoire : 8."),
    Indicator("Clarté du langage", "note sur 10",
              lambda f: None if f.clarity is None else round(f.clarity, 1), None, "linechart",
              f"Publiée à partir de {MIN_ANSWERS} réponses ; objectif de l'observatoire : 8."),
    Indicator("Part des actions faites avec un conseiller", "%",
              lambda f: _percent(f.assisted_share), lambda f: f.actions, "barchart"),
    Indicator("Part des usagers connectés avec FranceConnect", "%", lambda f: 100.0, None,
              "barchart", "Le Compte territorial ne s'ouvre qu'avec FranceConnect."),
]  # fmt: skip


#: What the public page shows of each service (every indicator is in the CSV files).
PAGE_INDICATORS = (
    "Nombre de pages vues",
    "Nombre de démarches commencées",
    "Taux de réussite des démarches",
    "Disponibilité",
    "Satisfaction",
    "Part des actions faites avec un conseiller",
)


def _suppressed(indicator: Indicator, figures: Figures) -> bool:
    return indicator.base is not None and indicator.base(figures) < MIN_PUBLISHED_COUNT


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _territory() -> str:
    return current_settings().territory_name or "Compte territorial"


def month_rows(month: date) -> list[list[str]]:
    """The CSV rows of one month (``month``: its first day), service by service."""
    end = period_end(month, "month")
    titles = configured()
    report = build_report(_month_selection(month, month), list(titles), titles, True, categories())
    from portal.integrations import registry

    instances = registry().instances
    rows: list[list[str]] = []
    for service in report.services:
        figures = service.figures
        communes = list(instances[service.slug].communes) if service.slug in instances else []
        insee = INSEE_CODES.get(communes[0], "") if len(communes) == 1 else ""
        hidden = [i.label for i in INDICATORS if _suppressed(i, figures)]
        secrecy = (
            f"Non publiés ce mois-ci, car inférieurs à {MIN_PUBLISHED_COUNT} (secret "
            f"statistique) : {', '.join(hidden)}."
            if hidden
            else ""
        )
        for indicator in INDICATORS:
            if _suppressed(indicator, figures):
                continue
            value = indicator.value(figures)
            if value is None:
                continue
            comment = " ".join(part for part in (indicator.comment, secrecy) if part)
            rows.append(
                [_territory(), service.title, indicator.label, _number(value), indicator.unit,
                 "false", "mensuelle", end.isoformat(), "true", month.isoformat(), "true",
                 SOURCE, insee, indicator.dataviz, comment]
            )  # fmt: skip
    return rows


def _month_selection(first: date, last: date) -> Any:
    from portal.owners.indicators import Selection

    return Selection.of("month", first, last)


def published_months() -> list[date]:
    """The last ``PUBLISHED_MONTHS`` whole months, oldest first."""
    month = previous_period(today().replace(day=1), "month")
    months = [month]
    for _count in range(PUBLISHED_MONTHS - 1):
        months.insert(0, previous_period(months[0], "month"))
    return months


def _parse_month(text: str) -> date | None:
    if len(text) != 7 or text[4] != "-" or not (text[:4] + text[5:]).isdigit():
        return None
    year, month = int(text[:4]), int(text[5:])
    if not 2000 <= year <= 2100 or not 1 <= month <= 12:
        return None
    return date(year, month, 1)


@bp.get("/<month>/statistiques_impact.csv")
@journey("open-data", "csv")
def month_csv(month: str) -> Response:
    first = _parse_month(month)
    if first is None or first >= today().replace(day=1):
        abort(404)  # not a month, or not over yet
    response = Response(csv_text(FIELDS, month_rows(first)).encode("utf-8"),
                        mimetype="text/csv; charset=utf-8")  # fmt: skip
    response.headers["Content-Disposition"] = (
        f'attachment; filename="statistiques_impact_{month}.csv"'
    )
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/datapackage.json")
@journey("open-data", "datapackage")
def datapackage() -> Response:
    settings = current_settings()
    resources = [
        {
            "name": f"statistiques-impact-{month:%Y-%m}",
            "title": f"Indicateurs des services, {month:%m/%Y}",
            "path": settings.base_url + url_for("opendata.month_csv", month=f"{month:%Y-%m}"),
            "profile": "tabular-data-resource",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "dialect": {"delimiter": ",", "header": True},
            "schema": SCHEMA_URL,
        }
        for month in published_months()
    ]
    package = {
        "profile": "tabular-data-package",
        "name": "statistiques-impact-services-numeriques",
        "title": f"Indicateurs d'impact des services numériques — {_territory()}",
        "description": (
            "Un fichier par mois, une ligne par service, indicateur et mois, selon le schéma "
            "« Impact d'un service public numérique » v0.3.0. Aucun comptage inférieur à "
            f"{MIN_PUBLISHED_COUNT} n'est publié (secret statistique) ; les notes le sont à "
            f"partir de {MIN_ANSWERS} réponses."
        ),
        "licenses": [
            {
                "name": "etalab-2.0",
                "title": "Licence Ouverte 2.0",
                "path": "https://spdx.org/licenses/etalab-2.0.html",
            }
        ],
        "homepage": settings.base_url + url_for("opendata.page"),
        "resources": resources,
    }
    response = Response(json.dumps(package, ensure_ascii=False, indent=2),
                        mimetype="application/json")  # fmt: skip
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@dataclass(frozen=True)
class ServiceTable:
    slug: str
    title: str
    chart: Markup
    summary: str
    #: (month label, {indicator label: value as published, or None})
    rows: list[tuple[str, dict[str, str | None]]]


def _shown(value: str, unit: str) -> str:
    from flask_babel import format_decimal

    number = format_decimal(float(value))
    if unit == "%":
        return f"{number}\u00a0%"
    if unit == "unité":
        return number
    if unit == "seconde":
        return _("%(n)s\u00a0s", n=number)
    return _("%(n)s sur 10", n=number)


@bp.get("/")
@journey("open-data", "page")
def page() -> str:
    months = published_months()
    by_month = {month: month_rows(month) for month in months[-6:]}
    shown = [i for i in INDICATORS if i.label in PAGE_INDICATORS]
    titles = configured()
    tables = []
    for slug, title in titles.items():
        rows = []
        visits: list[float | None] = []
        for month, month_data in by_month.items():
            values: dict[str, str | None] = {i.label: None for i in shown}
            for row in month_data:
                if row[1] == title and row[2] in values:
                    values[row[2]] = row[3]
            visits.append(float(values[shown[0].label] or 0) if values[shown[0].label] else None)
            rows.append((period_label(month, "month"), values))
        last = rows[-1][1][shown[0].label] if rows else None
        summary = (
            _(
                "%(month)s : %(n)s pages vues.",
                month=rows[-1][0].capitalize(),
                n=_shown(last, "unité"),
            )
            if last
            else _(
                "%(month)s : pas de chiffre publié (moins de 11 pages vues ou aucune).",
                month=rows[-1][0].capitalize(),
            )
        )
        tables.append(
            ServiceTable(
                slug,
                title,
                chart.svg(
                    f"chart-{slug}",
                    _("Pages vues par mois : %(service)s", service=title),
                    summary,
                    [short_label(m, "month") for m in by_month],
                    visits,
                    [],
                    (_("Pages vues"), ""),
                ),
                summary,
                [
                    (label, {k: _shown(v, _unit(k)) if v else None for k, v in values.items()})
                    for label, values in rows
                ],
            )
        )
    return render_template(
        "owners/open_data.html",
        tables=tables,
        indicators=[(i.label, page_label(i.label)) for i in shown],
        files=[(month_url(m), period_label(m, "month")) for m in reversed(months)],
        min_count=MIN_PUBLISHED_COUNT,
        min_answers=MIN_ANSWERS,
    )


def page_label(label: str) -> str:
    """The published label, in the reader's language."""
    return {
        "Nombre de pages vues": _("Pages vues"),
        "Nombre de démarches commencées": _("Démarches commencées"),
        "Taux de réussite des démarches": _("Taux de réussite des démarches"),
        "Disponibilité": _("Disponibilité"),
        "Satisfaction": _("Satisfaction"),
        "Part des actions faites avec un conseiller": _(
            "Part des actions faites avec un conseiller"
        ),
    }.get(label, label)


def _unit(label: str) -> str:
    return next(i.unit for i in INDICATORS if i.label == label)


def month_url(month: date) -> str:
    return url_for("opendata.month_csv", month=f"{month:%Y-%m}")
