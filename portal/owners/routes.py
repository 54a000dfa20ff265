"""The owners' pages, on the agents' blueprint (its session, its sign-in, its cookie):
one page across the services an agent may read, one per service, a CSV per indicator
and a ZIP of them all.

The period is chosen with ``period`` (day, week or month), ``start`` and ``end``
(YYYY-MM-DD, as a date field sends them); anything else gets the page back with a
message saying what to correct, and a 400.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, g, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from portal.agents import bp
from portal.journeys import journey
from portal.owners import export
from portal.owners.access import Scope, categories, configured, owner_required
from portal.owners.indicators import (
    GRANULARITIES,
    MAX_PERIODS,
    Report,
    Selection,
    SelectionError,
    build_report,
)
from portal.owners.sections import Section, range_text, sections

TERRITORY_TZ = ZoneInfo("Europe/Paris")
#: Dates further than this are refused (and could not be computed with).
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


def today() -> date:
    return datetime.now(TERRITORY_TZ).date()


def _date(text: str) -> date:
    try:
        value = date.fromisoformat(text.strip())
    except ValueError:
        raise SelectionError("date") from None
    if not EARLIEST <= value <= LATEST:
        raise SelectionError("date")
    return value


def parse_selection(args: MultiDict[str, str], granularity_param: str = "period") -> Selection:
    """The selection the query asks for, or the default (the last twelve weeks)."""
    granularity = args.get(granularity_param, "week") or "week"
    if granularity not in GRANULARITIES:
        raise SelectionError("granularity")
    start_text, end_text = args.get("start", ""), args.get("end", "")
    if not start_text and not end_text:
        return Selection.default(today(), granularity)
    if not start_text or not end_text:
        raise SelectionError("both")
    return Selection.of(granularity, _date(start_text), _date(end_text))


def selection_message(code: str) -> str:
    return {
        "granularity": _("Choisissez un découpage : par jour, par semaine ou par mois."),
        "date": _(
            "Une date n'est pas valide : saisissez-la sous la forme jour, mois et année, "
            "par exemple 01/11/2026."
        ),
        "both": _("Indiquez la date de début et la date de fin, ou aucune des deux."),
        "order": _("La date de fin doit être après la date de début."),
        "too_many": _(
            "La période choisie compte plus de %(max)s jours, semaines ou mois : choisissez "
            "une période plus courte ou un découpage plus large.",
            max=MAX_PERIODS,
        ),
    }.get(code, _("La période choisie n'est pas valide."))


def _report(scope: Scope, slug: str | None, selection: Selection) -> Report:
    titles = configured()
    if slug is not None:
        return build_report(selection, [slug])
    visible = {s: titles[s] for s in scope.slugs}
    return build_report(
        selection, scope.instances, visible, per_service=True, categories=categories()
    )


def _sections(scope: Scope, slug: str | None, report: Report) -> list[Section]:
    return sections(report, territory=slug is None, several_services=len(scope.slugs) > 1)


def _page(slug: str | None) -> tuple[str, int] | str:
    scope: Scope = g.owner_scope
    titles = configured()
    form = {
        "period": request.args.get("period", "week"),
        "start": request.args.get("start", ""),
        "end": request.args.get("end", ""),
    }
    context: dict[str, Any] = {
        "agent": g.agent,
        "scope": scope,
        "slug": slug,
        "title": titles[slug] if slug else None,
        "services": [(s, titles[s]) for s in scope.slugs],
        "form": form,
        "granularities": GRANULARITIES,
    }
    try:
        selection = parse_selection(request.args)
    except SelectionError as exc:
        context.update(error=selection_message(exc.code), sections=[], selection=None)
        return render_template("owners/dashboard.html", **context), 400
    if not form["start"]:
        form.update(start=selection.start.isoformat(), end=selection.end.isoformat())
    report = _report(scope, slug, selection)
    query = {"period": selection.granularity, "start": selection.start.isoformat(),
             "end": selection.end.isoformat()}  # fmt: skip
    context.update(
        error=None,
        selection=selection,
        range=range_text(selection),
        previous_range=range_text(selection.previous),
        sections=_sections(scope, slug, report),
        query=query,
    )
    return render_template("owners/dashboard.html", **context)


@bp.get("/owners/")
@owner_required()
@journey("owners", "territory")
def owners_territory() -> tuple[str, int] | str:
    return _page(None)


@bp.get("/owners/services/<slug>")
@owner_required(slug_param="slug")
@journey("owners", "service")
def owners_service(slug: str) -> tuple[str, int] | str:
    return _page(slug)


def _download(slug: str | None, key: str | None) -> Response | tuple[str, int]:
    scope: Scope = g.owner_scope
    try:
        selection = parse_selection(request.args)
    except SelectionError as exc:
        from portal.errors import render_error

        return render_error(400, selection_message(exc.code))
    found = _sections(scope, slug, _report(scope, slug, selection))
    prefix = f"indicateurs_{slug or 'territoire'}_{selection.start}_{selection.end}"
    if key is None:
        return export.attachment(export.zip_of(found, prefix), f"{prefix}.zip", "application/zip")
    for section in found:
        if section.key == key:
            return export.csv_response(export.section_csv(section), f"{prefix}_{key}.csv")
    abort(404)


@bp.get("/owners/<key>.csv")
@owner_required()
@journey("owners", "territory-csv")
def owners_territory_csv(key: str) -> Response | tuple[str, int]:
    return _download(None, key)


@bp.get("/owners/indicateurs.zip")
@owner_required()
@journey("owners", "territory-zip")
def owners_territory_zip() -> Response | tuple[str, int]:
    return _download(None, None)


@bp.get("/owners/services/<slug>/<key>.csv")
@owner_required(slug_param="slug")
@journey("owners", "service-csv")
def owners_service_csv(slug: str, key: str) -> Response | tuple[str, int]:
    return _download(slug, key)


@bp.get("/owners/services/<slug>/indicateurs.zip")
@owner_required(slug_param="slug")
@journey("owners", "service-zip")
def owners_service_zip(slug: str) -> Response | tuple[str, int]:
    return _download(slug, None)


def download_url(slug: str | None, key: str | None, query: dict[str, Any]) -> str:
    if slug is None:
        if key is None:
            return url_for("agents.owners_territory_zip", **query)
        return url_for("agents.owners_territory_csv", key=key, **query)
    if key is None:
        return url_for("agents.owners_service_zip", slug=slug, **query)
    return url_for("agents.owners_service_csv", slug=slug, key=key, **query)


@bp.app_template_global("owners_download_url")
def _owners_download_url(slug: str | None, key: str | None, query: dict[str, Any]) -> str:
    return download_url(slug, key, query)
