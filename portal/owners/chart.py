"""One indicator's trend, drawn on the server as SVG: bars per period, the matching
period of the previous range beside each, in grey.

Like the residents' consumption chart, it uses presentation attributes only (no ``style``,
so the strict CSP needs no exception) and scales to the page's width. Unlike it, the
image has a name of its own: ``role="img"`` with a ``<title>`` (the indicator) and a
``<desc>`` (the one-line summary), beside a table holding every figure it shows.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 360, 220
TOP, BOTTOM, LEFT, RIGHT = 30, 36, 6, 6
#: This range and the previous one; both at least 4.5:1 on white.
THIS_COLOUR, BEFORE_COLOUR = "#000091", "#666666"
#: At most this many labels under the bars (one period in so many is named).
MAX_LABELS = 6


def svg(
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    previous: Sequence[float | None],
    legend: tuple[str, str],
) -> Markup:
    """``values`` (this range) and ``previous`` (the range before), period by period;
    None is a period without a figure (no bar). Every word is escaped here."""
    highest = max([v for v in (*values, *previous) if v is not None] or [0])
    top = highest * 1.1 if highest > 0 else 1.0
    count = max(1, len(values))
    slot = (WIDTH - LEFT - RIGHT) / count
    bar = max(1.0, slot * 0.4)
    plot = HEIGHT - BOTTOM - TOP
    every = max(1, -(-count // MAX_LABELS))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" class="chart" '
        f'role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" focusable="false" '
        f'font-family="system-ui, sans-serif">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
        f'<rect x="{LEFT}" y="6" width="10" height="10" fill="{THIS_COLOUR}"/>',
        f'<text x="{LEFT + 14}" y="15" font-size="11" fill="#161616">{escape(legend[0])}</text>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" '
        f'stroke="#3a3a3a" stroke-width="1"/>',
    ]
    if previous:
        parts.append(
            f'<rect x="{LEFT + 170}" y="6" width="10" height="10" fill="{BEFORE_COLOUR}"/>'
            f'<text x="{LEFT + 184}" y="15" font-size="11" fill="#161616">'
            f"{escape(legend[1])}</text>"
        )
    for index, value in enumerate(values):
        x = LEFT + index * slot + slot * 0.08
        before = previous[index] if index < len(previous) else None
        for offset, figure, colour in ((0.0, before, BEFORE_COLOUR), (bar, value, THIS_COLOUR)):
            if figure is None:
                continue
            height = plot * figure / top
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{HEIGHT - BOTTOM - height:.1f}" '
                f'width="{bar:.1f}" height="{height:.1f}" fill="{colour}"/>'
            )
        if index % every == 0 and index < len(labels):
            parts.append(
                f'<text x="{LEFT + index * slot + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 15}" '
                f'font-size="10" text-anchor="middle" fill="#161616">'
                f"{escape(labels[index])}</text>"
            )
    parts.append("</svg>")
    # Every word above went through ``escape``; the rest are numbers formatted here.
    return Markup("".join(parts))  # noqa: S704
