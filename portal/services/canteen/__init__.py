"""School canteens: a month of meals per child (booked, cancelled) and the family's
invoices (paid through ``portal.payments``); linked with the family number and the code
on its invoices."""

from flask_babel import lazy_gettext as _l

from portal.services.canteen import helpers, reading, todo, words
from portal.services.canteen.linking import LINK
from portal.services.canteen.writes import RESENDS, bp
from portal.services.kinds import ServiceKind, register

KIND = register(
    ServiceKind(
        category="canteen",
        title=_l("Restauration scolaire"),
        card_reader=reading.this_month,
        page_reader=lambda args: reading.this_month(),
        card_template="services/canteen/card.html",
        page_template="services/canteen/page.html",
        link=LINK,
        todo_reader=todo.todo_reader,
        todo_items=todo.todo_items,
        reminders=todo.REMINDERS,
        blueprint=bp,
        template_helpers={"shift_month": helpers.shift_month},
        journal_actions=words.JOURNAL_ACTIONS,
        journal_detail=words.journal_detail,
        reasons=words.REASONS,
        resend=RESENDS,
        bills=True,
        order=20,
    )
)
