"""Water: the supply contract, its meter readings (one declared by the resident), its
consumption per period against the same period of previous years, the abnormal-
consumption alert the law requires and the request to cap a leak-inflated invoice, and
its invoices (paid through ``portal.payments``); linked with the contract number and the
customer reference printed on invoices."""

from flask_babel import lazy_gettext as _l

from portal.services.kinds import ServiceKind, register
from portal.services.water import chart, reading, todo, words
from portal.services.water.linking import LINK
from portal.services.water.writes import RESENDS, bp, reading_form

KIND = register(
    ServiceKind(
        category="water",
        title=_l("Eau"),
        card_reader=reading.card_reader,
        page_reader=lambda args: reading.water_page,
        card_template="services/water/card.html",
        page_template="services/water/page.html",
        link=LINK,
        todo_reader=todo.todo_reader,
        todo_items=todo.todo_items,
        reminders=todo.REMINDERS,
        blueprint=bp,
        template_helpers={
            "water_rows": chart.chart_rows,
            "water_svg": chart.svg,
            "water_summary": chart.summary,
            "water_change": chart.change_text,
            "water_period": chart.period_text,
            "water_m3": chart.m3,
            "water_reading_form": reading_form,
        },
        journal_actions=words.JOURNAL_ACTIONS,
        journal_detail=words.journal_detail,
        reasons=words.REASONS,
        resend=RESENDS,
        bills=True,
        order=40,
    )
)
