"""A report in words, charts, tables and CSV: one ``Section`` per indicator.

Each section has a one-line summary, a chart of its trend (this range against the one
before), a table holding every figure of the chart (and more), and the same figures as
CSV rows (machine-readable: ISO dates, dots for decimals, empty when unknown). The pages
and the downloads are built from the same sections, so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask_babel import format_date, format_decimal, format_percent
from flask_babel import gettext as _
from markupsafe import Markup

from portal.formatting import day
from portal.measure import (
    GOAL_CLARITY,
    GOAL_LOAD_TIME_S,
    GOAL_SATISFACTION,
    GOAL_UPTIME,
    MIN_ANSWERS,
)
from portal.models.measure import CHANNELS
from portal.owners import chart
from portal.owners.indicators import (
    JOURNEY_FAILURES,
    LINK_OUTCOMES,
    Figures,
    Goal,
    Report,
    Selection,
    channel_count,
    link_count,
    period_end,
)

NBSP = "\u00a0"
CsvValue = str | int | float | None


@dataclass
class Section:
    key: str
    title: str
    summary: str
    caption: str
    header: list[str]
    #: Rows of cells already worded; the first cell heads its row.
    rows: list[list[str]]
    csv_header: list[str]
    csv_rows: list[list[CsvValue]]
    chart: Markup | None = None
    #: Rows for this range and the previous one, under the periods' rows.
    footer: list[list[str]] = field(default_factory=list)
    note: str = ""


# -- words for figures ---------------------------------------------------------------------


def count(n: int) -> str:
    return format_decimal(n)


def percent(value: float | None) -> str:
    if value is None:
        return _("non mesuré")
    return format_percent(value, "#,##0.0\u00a0%").replace("\u202f", NBSP)


def milliseconds(value: float | None) -> str:
    if value is None:
        return _("non mesuré")
    return _("%(ms)s\u00a0ms", ms=format_decimal(round(value)))


def score(value: float | None) -> str:
    if value is None:
        return _("masquée")
    return _("%(score)s sur 10", score=format_decimal(round(value, 1)))


def change(now: float | None, before: float | None) -> str:
    """How a count moved against the previous range."""
    if now is None or before is None or before == 0:
        return _("pas de comparaison possible")
    ratio = (now - before) / before
    if round(ratio * 100) == 0:
        return _("stable")
    amount = format_decimal(round(abs(ratio) * 100))
    if ratio > 0:
        return _("en hausse de %(percent)s\u00a0%%", percent=amount)
    return _("en baisse de %(percent)s\u00a0%%", percent=amount)


def period_label(start: date, granularity: str) -> str:
    """In a table: « 3 décembre 2026 », « semaine du 30 novembre 2026 », « novembre 2026 »."""
    if granularity == "week":
        return _("semaine du %(day)s", day=day(start))
    if granularity == "month":
        return format_date(start, "MMMM y").replace(" ", NBSP)
    return day(start)


def short_label(start: date, granularity: str) -> str:
    """Under a chart's bar: « 3 déc. », « nov. 2026 »."""
    if granularity == "month":
        return format_date(start, "MMM y")
    return format_date(start, "d MMM")


def range_text(selection: Selection) -> str:
    return _("du %(start)s au %(end)s", start=day(selection.start), end=day(selection.end))


def failure_label(name: str) -> str:
    return {
        "refused": _("refusées par le service"),
        "unavailable": _("service indisponible"),
        "invalid": _("informations non valides"),
        "given_up": _("abandonnées"),
    }.get(name, name)


def link_label(name: str) -> str:
    return {
        "success": _("réussis"),
        "refused": _("preuve refusée"),
        "unavailable": _("service indisponible"),
        "invalid": _("informations non valides"),
        "blocked": _("trop de tentatives"),
    }.get(name, name)


def channel_label(name: str) -> str:
    return {"web": _("en ligne"), "desk": _("au guichet"), "phone": _("par téléphone")}.get(
        name, name
    )


def goal_label(key: str) -> str:
    return {
        "satisfaction": _("Satisfaction d'au moins 8 sur 10"),
        "clarity": _("Clarté du langage d'au moins 8 sur 10"),
        "uptime": _("Disponibilité d'au moins 99,9\u00a0%"),
        "load_time": _("Temps de chargement d'au plus 0,4 seconde"),
        "franceconnect": _("Connexion avec FranceConnect"),
    }.get(key, key)


def goal_state(goal: Goal) -> str:
    if goal.reached is None:
        return _("non mesuré")
    return _("atteint") if goal.reached else _("non atteint")


def goal_value(goal: Goal) -> str:
    if goal.key in ("satisfaction", "clarity"):
        return score(goal.value)
    if goal.key == "load_time":
        return milliseconds(goal.value * 1000 if goal.value is not None else None)
    return percent(goal.value)


def category_label(category: str) -> str:
    from portal.services import kinds

    if category and kinds.known(category):
        return str(kinds.kind(category).title)
    return {"": _("Pages du portail"), "account": _("Compte"), "auth": _("Connexion")}.get(
        category, category
    )


def _csv_number(value: float | None, digits: int = 4) -> CsvValue:
    return None if value is None else round(value, digits)


# -- the sections --------------------------------------------------------------------------


def _series(
    report: Report,
    key: str,
    title: str,
    summary: str,
    caption: str,
    columns: list[tuple[str, str, Callable[[Figures], Any], Callable[[Any], str]]],
    charted: Callable[[Figures], float | None],
    note: str = "",
) -> Section:
    """A section with one row per period: ``columns`` are (heading, CSV name, value,
    wording); ``charted`` the value the chart draws."""
    g = report.selection.granularity
    rows = [
        [period_label(start, g)] + [word(value(f)) for _h, _n, value, word in columns]
        for start, f in report.rows
    ]
    footer = [
        [_("Toute la période")] + [word(value(report.total)) for _h, _n, value, word in columns],
        [_("Période précédente")]
        + [word(value(report.previous_total)) for _h, _n, value, word in columns],
    ]
    csv_rows: list[list[CsvValue]] = []
    for start, f in report.rows:
        values: list[CsvValue] = []
        for _h, _n, value, _w in columns:
            raw = value(f)
            values.append(_csv_number(raw) if isinstance(raw, float) or raw is None else raw)
        csv_rows.append([start.isoformat(), period_end(start, g).isoformat(), *values])
    svg = chart.svg(
        f"chart-{key}",
        title,
        summary,
        [short_label(start, g) for start, _f in report.rows],
        [charted(f) for _s, f in report.rows],
        [charted(f) for _s, f in report.previous_rows],
        (_("Période choisie"), _("Période précédente")),
    )
    return Section(
        key=key,
        title=title,
        summary=summary,
        caption=caption,
        header=[_("Période")] + [heading for heading, _n, _v, _w in columns],
        rows=rows,
        csv_header=["period_start", "period_end"] + [name for _h, name, _v, _w in columns],
        csv_rows=csv_rows,
        chart=svg,
        footer=footer,
        note=note,
    )


def visits_section(report: Report, unique_note: str) -> Section:
    t, p = report.total, report.previous_total
    summary = _(
        "%(range)s : %(visits)s pages vues, %(change)s par rapport à la période précédente "
        "(%(before)s).",
        range=range_text(report.selection).capitalize(),
        visits=count(t.visits),
        change=change(t.visits, p.visits),
        before=count(p.visits),
    )
    return _series(
        report,
        "frequentation",
        _("Fréquentation"),
        summary,
        _("Pages vues et visiteurs uniques par période"),
        [
            (_("Pages vues"), "visits", lambda f: f.visits, count),
            (
                _("Visiteurs uniques (somme des jours)"),
                "unique_visitors_daily_sum",
                lambda f: f.visitors,
                count,
            ),
        ],
        lambda f: f.visits,
        note=unique_note,
    )


def journeys_section(report: Report) -> Section:
    t, p = report.total, report.previous_total
    summary = _(
        "%(started)s démarches commencées, %(completed)s abouties (taux de réussite "
        "%(rate)s, contre %(before)s sur la période précédente), %(failed)s en échec et "
        "%(given_up)s abandonnées.",
        started=count(t.started),
        completed=count(t.completed),
        rate=percent(t.success_rate),
        before=percent(p.success_rate),
        failed=count(t.failures),
        given_up=count(t.given_up),
    )
    return _series(
        report,
        "demarches",
        _("Démarches"),
        summary,
        _("Démarches commencées, abouties, en échec et abandonnées par période"),
        [
            (_("Commencées"), "started", lambda f: f.started, count),
            (_("Abouties"), "completed", lambda f: f.completed, count),
            (_("En échec"), "failed", lambda f: f.failures, count),
            (_("Abandonnées"), "given_up", lambda f: f.given_up, count),
            (_("Taux de réussite"), "success_rate", lambda f: f.success_rate, percent),
        ],
        lambda f: f.success_rate,
    )


def funnel_section(report: Report) -> Section:
    funnel = report.funnel
    if funnel:
        first = funnel[0]
        summary = _(
            "La démarche la plus commencée, « %(journey)s » (%(kind)s), a été commencée "
            "%(started)s fois et a abouti %(completed)s fois ; %(given_up)s ont été abandonnées.",
            journey=first.journey,
            kind=category_label(first.category),
            started=count(first.started),
            completed=count(first.completed),
            given_up=count(first.given_up),
        )
    else:
        summary = _("Aucune démarche n'a été commencée sur la période.")
    header = [_("Démarche"), _("Commencées"), _("Abouties")]
    header += [failure_label(name).capitalize() for name in (*JOURNEY_FAILURES, "given_up")]
    header.append(_("Taux de réussite"))
    rows: list[list[str]] = []
    csv_rows: list[list[CsvValue]] = []
    for row in funnel:
        failed = [row.failed[name] for name in JOURNEY_FAILURES]
        rows.append(
            [
                f"{row.journey} ({category_label(row.category)})",
                count(row.started),
                count(row.completed),
                *[count(n) for n in failed],
                count(row.given_up),
                percent(row.success_rate),
            ]
        )
        csv_rows.append(
            [
                row.category,
                row.journey,
                row.started,
                row.completed,
                *failed,
                row.given_up,
                _csv_number(row.success_rate),
            ]
        )
    return Section(
        key="parcours",
        title=_("Parcours des démarches et causes d'échec"),
        summary=summary,
        caption=_(
            "Pour chaque démarche, sur toute la période : combien ont abouti, échoué "
            "(par cause) ou ont été abandonnées"
        ),
        header=header,
        rows=rows,
        csv_header=[
            "kind",
            "journey",
            "started",
            "completed",
            *[f"failed_{name}" for name in JOURNEY_FAILURES],
            "given_up",
            "success_rate",
        ],
        csv_rows=csv_rows,
    )


def linking_section(report: Report) -> Section:
    t = report.total
    failures = {name: t.links[name] for name in LINK_OUTCOMES if name != "success"}
    worst = max(failures, key=lambda name: failures[name]) if any(failures.values()) else None
    summary = _(
        "%(attempts)s tentatives de rattachement d'un compte, %(rate)s réussies (contre "
        "%(before)s sur la période précédente).",
        attempts=count(t.link_attempts),
        rate=percent(t.link_success_rate),
        before=percent(report.previous_total.link_success_rate),
    )
    if worst is not None:
        summary += " " + _(
            "Première cause d'échec : %(reason)s (%(n)s).",
            reason=link_label(worst),
            n=count(failures[worst]),
        )
    columns: list[tuple[str, str, Callable[[Figures], Any], Callable[[Any], str]]] = [
        (_("Tentatives"), "attempts", lambda f: f.link_attempts, count),
        (_("Taux de réussite"), "success_rate", lambda f: f.link_success_rate, percent),
    ]
    for name in LINK_OUTCOMES[1:]:
        columns.append(
            (
                link_label(name).capitalize(),
                f"failed_{name}",
                link_count(name),
                count,
            )
        )
    return _series(
        report,
        "rattachement",
        _("Rattachement des comptes"),
        summary,
        _("Tentatives de rattachement, taux de réussite et causes d'échec par période"),
        columns,
        lambda f: f.link_success_rate,
    )


def availability_section(report: Report) -> Section:
    t = report.total
    summary = _(
        "Les services ont répondu à %(availability)s des appels et contrôles (objectif "
        "99,9\u00a0%%) ; 95\u00a0%% des réponses sont arrivées en %(latency)s au plus, et "
        "95\u00a0%% des pages ont été préparées en %(server)s au plus.",
        availability=percent(t.availability),
        latency=milliseconds(t.latency_p95_ms),
        server=milliseconds(t.server_p95_ms),
    )
    return _series(
        report,
        "disponibilite",
        _("Disponibilité et rapidité"),
        summary,
        _(
            "Disponibilité des services, temps de réponse et temps de préparation des pages "
            "par période (95e centile)"
        ),
        [
            (_("Appels et contrôles"), "calls", lambda f: f.calls, count),
            (_("Disponibilité"), "availability", lambda f: f.availability, percent),
            (
                _("Réponse des services (95e centile)"),
                "backend_p95_ms",
                lambda f: f.latency_p95_ms,
                milliseconds,
            ),
            (
                _("Préparation des pages (95e centile)"),
                "server_p95_ms",
                lambda f: f.server_p95_ms,
                milliseconds,
            ),
        ],
        lambda f: f.availability,
    )


def _score_cell(value: float | None, answers: int) -> str:
    if value is None:
        return _("masquée (%(n)s réponses)", n=count(answers))
    return score(value)


def satisfaction_section(report: Report) -> Section:
    t = report.total
    if t.satisfaction is None:
        summary = _(
            "%(n)s réponses au questionnaire de satisfaction : les notes restent masquées "
            "tant qu'il y a moins de %(min)s réponses.",
            n=count(t.answers),
            min=count(MIN_ANSWERS),
        )
    else:
        summary = _(
            "%(n)s réponses : satisfaction %(satisfaction)s, clarté du langage %(clarity)s "
            "(période précédente : %(before)s).",
            n=count(t.answers),
            satisfaction=score(t.satisfaction),
            clarity=_score_cell(t.clarity, t.clarity_answers),
            before=_score_cell(report.previous_total.satisfaction, report.previous_total.answers),
        )
    return _series(
        report,
        "satisfaction",
        _("Satisfaction et clarté"),
        summary,
        _("Satisfaction et clarté du langage par période, avec le nombre de réponses"),
        [
            (_("Réponses"), "answers", lambda f: f.answers, count),
            (
                _("Satisfaction"),
                "satisfaction",
                lambda f: f.satisfaction,
                lambda v: score(v),
            ),
            (_("Réponses sur la clarté"), "clarity_answers", lambda f: f.clarity_answers, count),
            (_("Clarté du langage"), "clarity", lambda f: f.clarity, lambda v: score(v)),
        ],
        lambda f: f.satisfaction,
        note=_(
            "Une note n'est montrée qu'à partir de %(min)s réponses, comme sur l'observatoire "
            "de la qualité des démarches en ligne.",
            min=count(MIN_ANSWERS),
        ),
    )


def assisted_section(report: Report) -> Section:
    t = report.total
    summary = _(
        "%(share)s des %(actions)s actions ont été faites avec l'aide d'un conseiller ; "
        "%(web)s en ligne, %(desk)s au guichet, %(phone)s par téléphone.",
        share=percent(t.assisted_share),
        actions=count(t.actions),
        web=percent(t.channel_share("web")),
        desk=percent(t.channel_share("desk")),
        phone=percent(t.channel_share("phone")),
    )
    columns: list[tuple[str, str, Callable[[Figures], Any], Callable[[Any], str]]] = [
        (_("Actions"), "actions", lambda f: f.actions, count),
        (_("Accompagnées"), "assisted", lambda f: f.assisted, count),
        (_("Part accompagnée"), "assisted_share", lambda f: f.assisted_share, percent),
    ]
    for name in CHANNELS:
        columns.append(
            (
                channel_label(name).capitalize(),
                f"channel_{name}",
                channel_count(name),
                count,
            )
        )
    return _series(
        report,
        "accompagnement",
        _("Accompagnement et canaux"),
        summary,
        _("Actions par période : part faite avec un conseiller et canal utilisé"),
        columns,
        lambda f: f.assisted_share,
    )


def goals_section(report: Report) -> Section:
    goals = report.goals
    reached = sum(1 for g in goals if g.reached)
    measured = sum(1 for g in goals if g.reached is not None)
    summary = _(
        "%(reached)s objectifs de l'observatoire atteints sur %(measured)s mesurés ; tous les "
        "habitants se connectent avec FranceConnect.",
        reached=count(reached),
        measured=count(measured),
    )
    return Section(
        key="objectifs",
        title=_("Objectifs de l'observatoire"),
        summary=summary,
        caption=_("Les objectifs de l'observatoire, sur toute la période"),
        header=[_("Objectif"), _("Valeur"), _("Résultat")],
        rows=[[goal_label(g.key), goal_value(g), goal_state(g)] for g in goals],
        csv_header=["goal", "value", "target", "reached"],
        csv_rows=[
            [
                g.key,
                _csv_number(g.value),
                g.target,
                "" if g.reached is None else str(g.reached).lower(),
            ]
            for g in goals
        ],
    )


def services_section(report: Report) -> Section:
    services = report.services
    shares = {share.key: share for share in report.shares}
    summary = _(
        "%(n)s services ; part des services qui atteignent l'objectif de satisfaction : "
        "%(satisfaction)s, de disponibilité : %(uptime)s, de temps de chargement : %(load)s.",
        n=count(len(services)),
        satisfaction=percent(shares["satisfaction"].share),
        uptime=percent(shares["uptime"].share),
        load=percent(shares["load_time"].share),
    )
    rows: list[list[str]] = []
    csv_rows: list[list[CsvValue]] = []
    for s in services:
        f = s.figures
        states = {g.key: g for g in s.goals}
        rows.append(
            [s.title, category_label(s.category), count(f.visits), count(f.started),
             percent(f.success_rate), percent(f.availability),
             _score_cell(f.satisfaction, f.answers), percent(f.assisted_share),
             ", ".join(goal_label(k) for k, g in states.items() if g.reached) or _("aucun")]
        )  # fmt: skip
        csv_rows.append(
            [s.slug, s.title, s.category, f.visits, f.started, f.completed, f.given_up,
             _csv_number(f.success_rate), _csv_number(f.availability), f.answers,
             _csv_number(f.satisfaction), _csv_number(f.clarity),
             _csv_number(f.assisted_share),
             *["" if states[k].reached is None else str(states[k].reached).lower()
               for k in ("satisfaction", "clarity", "uptime", "load_time")]]
        )  # fmt: skip
    return Section(
        key="services",
        title=_("Par service"),
        summary=summary,
        caption=_("Chaque service sur toute la période"),
        header=[
            _("Service"),
            _("Type"),
            _("Pages vues"),
            _("Démarches commencées"),
            _("Taux de réussite"),
            _("Disponibilité"),
            _("Satisfaction"),
            _("Part accompagnée"),
            _("Objectifs atteints"),
        ],
        rows=rows,
        csv_header=[
            "service",
            "title",
            "kind",
            "visits",
            "started",
            "completed",
            "given_up",
            "success_rate",
            "availability",
            "answers",
            "satisfaction",
            "clarity",
            "assisted_share",
            "goal_satisfaction",
            "goal_clarity",
            "goal_uptime",
            "goal_load_time",
        ],
        csv_rows=csv_rows,
        note=_(
            "Objectifs : satisfaction d'au moins %(sat)s sur 10, clarté d'au moins %(clarity)s "
            "sur 10, disponibilité d'au moins %(uptime)s, temps de chargement moyen des pages "
            "d'au plus %(load)s seconde.",
            sat=format_decimal(GOAL_SATISFACTION),
            clarity=format_decimal(GOAL_CLARITY),
            uptime=percent(GOAL_UPTIME),
            load=format_decimal(GOAL_LOAD_TIME_S),
        ),
    )


def kinds_section(report: Report) -> Section:
    rows: list[list[str]] = []
    csv_rows: list[list[CsvValue]] = []
    for category, f in report.kinds:
        rows.append(
            [category_label(category), count(f.visits), count(f.started),
             percent(f.success_rate), percent(f.availability),
             _score_cell(f.satisfaction, f.answers), percent(f.assisted_share)]
        )  # fmt: skip
        csv_rows.append(
            [category, f.visits, f.started, f.completed, _csv_number(f.success_rate),
             _csv_number(f.availability), f.answers, _csv_number(f.satisfaction),
             _csv_number(f.assisted_share)]
        )  # fmt: skip
    busiest = max(report.kinds, key=lambda item: item[1].visits, default=None)
    summary = (
        _(
            "Le type de service le plus consulté : %(kind)s, avec %(visits)s pages vues.",
            kind=category_label(busiest[0]),
            visits=count(busiest[1].visits),
        )
        if busiest is not None
        else _("Aucun service n'a été consulté sur la période.")
    )
    return Section(
        key="types",
        title=_("Par type de service"),
        summary=summary,
        caption=_("Chaque type de service sur toute la période"),
        header=[
            _("Type"),
            _("Pages vues"),
            _("Démarches commencées"),
            _("Taux de réussite"),
            _("Disponibilité"),
            _("Satisfaction"),
            _("Part accompagnée"),
        ],
        rows=rows,
        csv_header=[
            "kind",
            "visits",
            "started",
            "completed",
            "success_rate",
            "availability",
            "answers",
            "satisfaction",
            "assisted_share",
        ],
        csv_rows=csv_rows,
    )


def sections(report: Report, *, territory: bool, several_services: bool) -> list[Section]:
    unique_note = _(
        "Un visiteur unique est compté une fois par jour : pour une semaine ou un mois, le "
        "nombre montré est la somme des visiteurs uniques de chaque jour."
    )
    if territory and several_services:
        unique_note += " " + _(
            "Sur plusieurs services, c'est aussi la somme des visiteurs de chaque service."
        )
    found = [
        visits_section(report, unique_note),
        journeys_section(report),
        funnel_section(report),
        linking_section(report),
        availability_section(report),
        satisfaction_section(report),
        assisted_section(report),
        goals_section(report),
    ]
    if territory:
        found += [services_section(report), kinds_section(report)]
    return found
