"""The consumption chart: drawn on the server as SVG, next to a table holding the same
figures and a one-line summary.

The SVG is decoration for sighted readers (``aria-hidden``): everything it shows is in
the summary and the table, so a screen reader misses nothing. It uses presentation
attributes only (no ``style``), so the strict CSP needs no exception, and it scales to
the width of the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask_babel import format_date, format_decimal
from flask_babel import gettext as _
from markupsafe import Markup, escape

from connectors.base import ConsumptionPeriod
from portal.formatting import day
from portal.services.water.reading import WaterView

#: Periods the chart and its table show (three years of half-years).
SHOWN_PERIODS = 6
WIDTH, HEIGHT = 360, 230
TOP, BOTTOM, LEFT, RIGHT = 34, 40, 8, 8
#: The period and the same period a year before; both at least 4.5:1 on white.
THIS_COLOUR, BEFORE_COLOUR = "#000091", "#666666"


@dataclass(frozen=True)
class ChartRow:
    period: ConsumptionPeriod
    year_before: ConsumptionPeriod | None

    @property
    def change(self) -> float | None:
        if self.year_before is None or self.year_before.volume_m3 == 0:
            return None
        return (self.period.volume_m3 - self.year_before.volume_m3) / self.year_before.volume_m3


def chart_rows(view: WaterView) -> list[ChartRow]:
    periods = view.chronological[-SHOWN_PERIODS:]
    return [ChartRow(p, view.year_before(p)) for p in periods]


def m3(volume: float) -> str:
    """« 148 m³ », with a non-breaking space."""
    return _("%(volume)s\u00a0m³", volume=format_decimal(round(volume)))


def period_text(period: ConsumptionPeriod) -> str:
    return _("du %(start)s au %(end)s", start=day(period.start), end=day(period.end))


def change_text(change: float | None) -> str:
    if change is None:
        return _("pas de comparaison")
    percent = format_decimal(round(abs(change) * 100))
    if round(change * 100) == 0:
        return _("stable")
    if change > 0:
        return _("en hausse de %(percent)s\u00a0%%", percent=percent)
    return _("en baisse de %(percent)s\u00a0%%", percent=percent)


def summary(view: WaterView) -> str:
    """The chart in one sentence: the latest period against the same period before."""
    latest = view.latest
    if latest is None:
        return _("Aucune consommation n'a encore été relevée sur ce contrat.")
    average = view.average_of(latest)
    if average is None:
        return _(
            "Du %(start)s au %(end)s, vous avez consommé %(volume)s. Le contrat est trop "
            "récent pour comparer avec les années précédentes.",
            start=day(latest.start),
            end=day(latest.end),
            volume=m3(latest.volume_m3),
        )
    ratio = latest.volume_m3 / average if average else 0.0
    if ratio >= 1.5:
        return _(
            "Du %(start)s au %(end)s, vous avez consommé %(volume)s, soit %(ratio)s fois la "
            "moyenne de la même période des années précédentes (%(average)s).",
            start=day(latest.start),
            end=day(latest.end),
            volume=m3(latest.volume_m3),
            ratio=format_decimal(round(ratio, 1)),
            average=m3(average),
        )
    return _(
        "Du %(start)s au %(end)s, vous avez consommé %(volume)s, pour une moyenne de "
        "%(average)s sur la même période des années précédentes.",
        start=day(latest.start),
        end=day(latest.end),
        volume=m3(latest.volume_m3),
        average=m3(average),
    )


def _bar(x: float, width: float, value: int, top: float, colour: str) -> str:
    height = HEIGHT - BOTTOM - TOP
    bar = height * value / top if top else 0
    y = HEIGHT - BOTTOM - bar
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{bar:.1f}" '
        f'fill="{colour}"/>'
        f'<text x="{x + width / 2:.1f}" y="{y - 3:.1f}" font-size="10" '
        f'text-anchor="middle" fill="#161616">{value}</text>'
    )


def svg(rows: Sequence[ChartRow]) -> Markup:
    """Bars per period, the same period a year earlier beside each."""
    if not rows:
        return Markup("")
    highest = max(
        max(r.period.volume_m3, r.year_before.volume_m3 if r.year_before else 0) for r in rows
    )
    top = max(1, highest) * 1.1
    slot = (WIDTH - LEFT - RIGHT) / len(rows)
    bar = slot * 0.34
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="chart" aria-hidden="true" focusable="false" font-family="system-ui, sans-serif">',
        # The legend: the same words as the table's headings.
        f'<rect x="{LEFT}" y="6" width="10" height="10" fill="{THIS_COLOUR}"/>',
        f'<text x="{LEFT + 14}" y="15" font-size="11" fill="#161616">'
        f"{escape(_('Consommation'))}</text>",
        f'<rect x="{LEFT + 150}" y="6" width="10" height="10" fill="{BEFORE_COLOUR}"/>',
        f'<text x="{LEFT + 164}" y="15" font-size="11" fill="#161616">'
        f"{escape(_('Un an plus tôt'))}</text>",
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
        f'y2="{HEIGHT - BOTTOM}" stroke="#3a3a3a" stroke-width="1"/>',
    ]
    for index, row in enumerate(rows):
        x = LEFT + index * slot + slot * 0.12
        if row.year_before is not None:
            parts.append(_bar(x, bar, row.year_before.volume_m3, top, BEFORE_COLOUR))
        parts.append(_bar(x + bar + 2, bar, row.period.volume_m3, top, THIS_COLOUR))
        label = escape(format_date(row.period.start, "MMM y"))
        parts.append(
            f'<text x="{LEFT + index * slot + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" '
            f'font-size="10" text-anchor="middle" fill="#161616">{label}</text>'
        )
    parts.append("</svg>")
    # Every word above went through ``escape``; the rest are numbers formatted here.
    return Markup("".join(parts))  # noqa: S704
