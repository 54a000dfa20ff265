"""Libraries: loans (renewed), holds (cancelled), fines; linked with a card number and
its PIN or the reader's birth date."""

from flask_babel import lazy_gettext as _l

from portal.services.kinds import ServiceKind, register
from portal.services.library import reading, todo, words
from portal.services.library.linking import LINK
from portal.services.library.writes import RESENDS, bp

KIND = register(
    ServiceKind(
        category="library",
        title=_l("Bibliothèques"),
        card_reader=lambda: reading.library_card,
        page_reader=lambda args: reading.library_page,
        card_template="services/library/card.html",
        page_template="services/library/page.html",
        link=LINK,
        todo_reader=todo.todo_reader,
        todo_items=todo.todo_items,
        reminders=todo.REMINDERS,
        blueprint=bp,
        journal_actions=words.JOURNAL_ACTIONS,
        journal_detail=words.journal_detail,
        reasons=words.REASONS,
        resend=RESENDS,
        order=10,
    )
)
