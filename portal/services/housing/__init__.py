"""Social housing: the application (its status, renewed in its window); linked with
its unique number and the main applicant's birth date."""

from flask_babel import lazy_gettext as _l

from portal.services.housing import helpers, reading, todo, words
from portal.services.housing.linking import LINK
from portal.services.housing.writes import RESENDS, bp
from portal.services.kinds import ServiceKind, register

KIND = register(
    ServiceKind(
        category="housing",
        title=_l("Logement social"),
        card_reader=lambda: reading.housing_page,
        page_reader=lambda args: reading.housing_page,
        card_template="services/housing/card.html",
        page_template="services/housing/page.html",
        link=LINK,
        todo_reader=todo.todo_reader,
        todo_items=todo.todo_items,
        reminders=todo.REMINDERS,
        blueprint=bp,
        template_helpers={"renewal_note": helpers.renewal_note},
        journal_actions=words.JOURNAL_ACTIONS,
        journal_detail=words.journal_detail,
        reasons=words.REASONS,
        resend=RESENDS,
        order=30,
    )
)
