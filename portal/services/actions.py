"""Acting on a linked service: renew loans, cancel a hold, book canteen meals, renew a
housing application.

Every write goes through ``perform``: once per idempotency key, journaled. Before a write
that names an item (a loan, a hold, a child), the item is looked up in the resident's own
account through their link: an id from a URL or a form is never trusted alone, and
someone else's id gets the same 404 as an id that does not exist.

One page deadline covers the look-up, the write and the re-read of the section, so a
hanging back-end costs the resident one deadline, not three.

A write sent without an answer (``OutcomeUnknown``) is said to be not known yet, never
"nothing was done". ``settle_unknown`` asks again with the same key before a page offers
that item's form, and the item's form carries that same key (``write_key``), so sending
it asks again instead of acting twice.

The answer to a write: for htmx, the section re-read with the result in a status region
that takes the focus; otherwise the result is flashed and the browser goes back to the
page with a 303, so a reload never sends the form again.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import abort, flash, g, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from markupsafe import Markup
from werkzeug.wrappers import Response

from connectors.base import CallContext, LinkRef, MealChange, MealChangeOutcome, Refused
from portal.auth.session import login_required, see_other
from portal.config import current_settings
from portal.errors import render_error
from portal.extensions import db
from portal.formatting import day as long_day
from portal.formatting import short_day
from portal.htmx import is_partial
from portal.journeys import journey
from portal.models import WriteRecord
from portal.models._types import utcnow
from portal.refusals import plain_reason, reason_text, with_reason
from portal.services import bp
from portal.services.reading import (
    LibraryView,
    Panel,
    Service,
    canteen_reader,
    housing_page,
    own_service,
    read_panel,
)
from portal.writes import KEY_RE, WriteOutcome, new_key, perform, stored_request, unknown_writes

#: More loans than any card holds, or days than a month has: the form was not ours.
MAX_ITEMS = 100
MAX_DAYS = 62
#: More children than a family account holds: the form was not ours.
MAX_CHILDREN = 12
#: Ids longer than this are no back-end's: answered 404 before any call.
MAX_ID_LENGTH = 128
MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
#: An unknown write is asked again on a page visit only if its last try is this old:
#: the page a plain form post lands on right after it does not wait on it twice.
ASK_AGAIN_AFTER_S = 2.0
#: A day of the family's form as it was shown: ``<child id>:YYYY-MM-DD:0|1``.
FAMILY_DAY_RE = re.compile(r"^([^:]{1,128}):(\d{4}-\d{2}-\d{2}):([01])$")

Answer = str | Response | tuple[str, int]


# -- what the templates need -----------------------------------------------------------


def dom_id(value: object) -> str:
    """A back-end id made safe for an HTML id and a CSS selector (``hx-target``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", str(value))


def shift_month(month: date, months: int) -> date:
    """The first day of the month ``months`` away from ``month``'s."""
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def renewal_note(application: Any, today: date | None = None) -> str:
    """Why a housing application cannot be renewed today, or ``""`` if it can."""
    today = today or date.today()
    if application.renewable_on(today):
        return ""
    if application.status == "closed":
        return _("Cette demande est close : elle ne peut pas être renouvelée.")
    if application.status == "expired":
        if application.expires_on is not None:
            return _(
                "Votre demande a expiré le %(date)s : elle ne peut plus être renouvelée. "
                "Il faut déposer une nouvelle demande.",
                date=long_day(application.expires_on),
            )
        return _("Votre demande a expiré : il faut déposer une nouvelle demande.")
    if application.status == "filed" or application.expires_on is None:
        return _(
            "Votre demande est en cours d'enregistrement : elle ne peut pas encore être renouvelée."
        )
    opens, closes = application.renewal_opens_on, application.renewal_closes_on
    if opens is not None and today < opens:
        if closes is not None:
            return _(
                "Vous pourrez renouveler votre demande du %(start)s au %(end)s.",
                start=long_day(opens),
                end=long_day(closes),
            )
        return _(
            "Vous pourrez renouveler votre demande à partir du %(start)s.", start=long_day(opens)
        )
    return _(
        "Cette demande ne peut pas être renouvelée en ligne pour le moment. "
        "Adressez-vous au service."
    )


@bp.context_processor
def action_helpers() -> dict[str, Any]:
    return {
        "new_key": new_key,
        "write_key": write_key,
        "dom_id": dom_id,
        "shift_month": shift_month,
        "renewal_note": renewal_note,
    }


# -- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """The result of an action: said in the section (htmx) or flashed (page)."""

    text: str
    kind: str = "success"  # success | error | info
    #: One line per loan or day, with its own kind.
    items: tuple[tuple[str, str], ...] = ()
    relink_url: str = ""
    #: The form itself was unusable: nothing was done, answered 400 without htmx.
    invalid: bool = False


def _failed() -> Message:
    return Message(
        _("Le service n'a pas répondu : rien n'a été fait. Vous pouvez réessayer."), "error"
    )


def _stale_refusal() -> Message:
    return Message(
        _(
            "Ce service est temporairement indisponible : rien n'a été fait. Vous pourrez "
            "de nouveau agir quand il répondra."
        ),
        "error",
    )


def _relink(svc: Service) -> Message:
    return Message(
        _(
            "Ce service ne reconnaît plus votre compte (carte renouvelée ou code changé, par "
            "exemple) : rien n'a été fait. Il faut le relier à nouveau."
        ),
        "error",
        relink_url=url_for("linking.link", slug=svc.slug),
    )


def _invalid() -> Message:
    return Message(
        _(
            "Ce formulaire n'est pas valide ou a déjà servi : rien n'a été fait. Rechargez la "
            "page et réessayez."
        ),
        "error",
        invalid=True,
    )


def _trouble(outcome: WriteOutcome, svc: Service) -> Message | None:
    """What to say when the back-end was not reached or the form cannot be used."""
    if outcome.status == "failed":
        return _failed()
    if outcome.status == "relink":
        return _relink(svc)
    if outcome.status == "in_progress":
        return Message(
            _(
                "Cette demande est déjà en cours de traitement. Rechargez la page dans un "
                "instant pour voir son résultat."
            ),
            "info",
        )
    if outcome.status == "invalid":
        return _invalid()
    return None


def _replays(svc: Service) -> bool:
    """Whether the back-end answers a repeated Idempotency-Key with its first answer (the
    standard APIs do); one that does not (Koha) could act twice if asked again."""
    return bool(getattr(svc.connector, "replays_idempotency_keys", True))


def _not_known_yet(svc: Service, first: str) -> Message:
    """A write sent without an answer: it may have been done. Never "nothing was done"."""
    if _replays(svc):
        then = _(
            "Le service n'a pas répondu à temps. Cette page le lui redemandera à votre "
            "prochaine visite, sans rien faire deux fois : vous n'avez rien à refaire."
        )
    else:
        then = _(
            "Le service n'a pas répondu à temps. Vérifiez ce que montre votre compte ci-dessous "
            "avant de réessayer."
        )
    return Message(f"{first} {then}", "info")


def write_key(svc: Service, action: str, item: str = "") -> str:
    """The key a write form carries: the key of this item's write whose outcome is not
    known yet, so that sending the form asks the back-end again instead of acting a
    second time; a fresh key otherwise."""
    if not _replays(svc):
        return new_key()
    cache: dict[tuple[str, str, str], str] | None = g.get("_unknown_keys")
    if cache is None:
        cache = {}
        for record in unknown_writes(svc.link):
            item = str(stored_request(record).get("item", ""))
            cache[(record.instance_slug, record.action, item)] = record.key
        g._unknown_keys = cache
    return cache.get((svc.slug, action, item)) or new_key()


def settle_unknown(svc: Service, deadline_s: float) -> None:
    """Ask the back-end again, with the same key, about each write on this service whose
    outcome is not known, and say what came of it (flashed on the page being shown)."""
    if not _replays(svc):
        return
    end = time.monotonic() + deadline_s
    for record in unknown_writes(svc.link):
        left = end - time.monotonic()
        if left <= 0:
            break
        if utcnow() - record.updated_at < timedelta(seconds=ASK_AGAIN_AFTER_S):
            continue
        resend = _RESENDS.get(record.action)
        if resend is None:
            continue
        message = resend(svc, record.key, stored_request(record), left)
        if message is not None:
            _flash(message)
    g.pop("_unknown_keys", None)


def _unreached(panel: Panel[Any], svc: Service) -> Message:
    """The account could not be read, so nothing was tried."""
    return _relink(svc) if panel.state == "relink" else _failed()


def _flash(message: Message) -> None:
    text: str | Markup = message.text
    if message.relink_url:
        text = Markup('{} <a href="{}">{}</a>').format(
            message.text, message.relink_url, _("Relier à nouveau mon compte")
        )
    flash(text, message.kind)
    for line, kind in message.items:
        flash(line, kind)


def _answer(message: Message, fragment: Callable[[Message], str], back: str) -> Answer:
    """The updated section for htmx (htmx swaps only 2xx answers, so even an unusable
    form gets one); otherwise a flash and a 303 back to the page, or a plain 400."""
    if is_partial():
        return fragment(message)
    if message.invalid:
        return render_error(400, message.text)
    _flash(message)
    return see_other(back)


# -- looking items up in the resident's own account ------------------------------------


class Budget:
    """The page deadline, shared by every call one request makes."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + current_settings().page_deadline_s

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


def _service(slug: str, category: str) -> Service:
    svc = own_service(slug)
    if svc.category != category:
        abort(404)
    return svc


def _form_key() -> str:
    return request.form.get("idem", "")


def _settled(key: str, action: str) -> bool:
    """Whether this resident's form with ``key`` was answered, or is being answered.

    ``perform`` then replays the first answer without calling the back-end; the item
    may have left the account since (a cancelled hold), so it is not looked up again.
    A write that failed is not settled: it will call the back-end, so it is checked.
    One whose outcome is unknown counts as settled: it may have been done (a hold
    cancelled, gone from the account), and asking again with its key is safe.
    """
    record = db.session.execute(db.select(WriteRecord).filter_by(key=key)).scalar_one_or_none()
    return (
        record is not None
        and record.citizen_id == g.citizen.id
        and record.action == action
        and record.state in ("done", "pending", "unknown")
    )


def _asked_title(key: str) -> str:
    """The title an earlier sending of this form named, for an item no longer listed."""
    record = db.session.execute(db.select(WriteRecord).filter_by(key=key)).scalar_one_or_none()
    if record is None or record.citizen_id != g.citizen.id:
        return ""
    return str(stored_request(record).get("title", ""))


def _owned(
    svc: Service, panel: Panel[Any], items: Sequence[Any], item_id: str, settled: bool
) -> tuple[Any, Message | None]:
    """The resident's item with ``item_id``, or why nothing can be tried.

    Aborts with 404 when the account was read and holds no such item: whether the id is
    someone else's or does not exist is not told.
    """
    if panel.has_data:
        item = next((i for i in items if i.id == item_id), None)
        if item is None and not settled:
            abort(404)
        if not panel.writable and not settled:
            # Only a stale copy: the item may have changed since; nothing is tried.
            return item, _stale_refusal()
        return item, None
    if settled:
        return None, None
    return None, _unreached(panel, svc)


def _check_id(item_id: str) -> None:
    if not item_id or len(item_id) > MAX_ID_LENGTH:
        abort(404)


def _read_loans(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[LibraryView, datetime, bool]:
    loans = conn.loans(ctx, ref)
    view = LibraryView(None, sorted(loans.data, key=lambda loan: loan.due_date))
    return view, loans.fetched_at, loans.stale


def _read_holds(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[LibraryView, datetime, bool]:
    holds = conn.holds(ctx, ref)
    return LibraryView(None, (), holds.data), holds.fetched_at, holds.stale


def _read_family(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[Any, datetime, bool]:
    family = conn.family(ctx, ref)
    return family.data, family.fetched_at, family.stale


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


# -- library: renew loans ----------------------------------------------------------------


def _renew(svc: Service, ctx: CallContext, loan_id: str, key: str) -> Any:
    """One renewal; a "no" from the library is a refusal, journaled as such."""
    outcome = svc.connector.renew(ctx, svc.ref, loan_id, idempotency_key=key)
    if not outcome.renewed:
        raise Refused(
            outcome.reason or _("La bibliothèque n'a pas accepté de prolonger ce prêt."),
            "not_renewable",
            outcome.reason_code,
        )
    return outcome


def _perform_renewal(
    svc: Service, loan_id: str, title: str, key: str, deadline_s: float
) -> WriteOutcome:
    return perform(
        link=svc.link,
        action="renew_loan",
        key=key,
        deadline_s=deadline_s,
        request={"item": loan_id, "title": title},
        ask_again=_replays(svc),
        call=lambda ctx, k: _renew(svc, ctx, loan_id, k),
        encode=lambda o: {
            "loan_id": loan_id,
            "title": title,
            "new_due_date": _iso(o.new_due_date),
        },
        summary=lambda o: {"new_due_date": _iso(o.new_due_date)},
        params={"title": title},
    )


def _renewal_line(outcome: WriteOutcome, title: str, svc: Service) -> tuple[str, str]:
    """What one renewal came to, for a person."""
    result = outcome.result if isinstance(outcome.result, dict) else {}
    title = result.get("title") or title
    if outcome.status == "unknown":
        first = (
            _("Nous ne savons pas encore si « %(title)s » a été prolongé.", title=title)
            if title
            else _("Nous ne savons pas encore si ce prêt a été prolongé.")
        )
        return _not_known_yet(svc, first).text, "info"
    if outcome.status == "done":
        new_due = _date(result.get("new_due_date"))
        if new_due is None:
            return _("« %(title)s » est prolongé.", title=title), "success"
        return (
            _("« %(title)s » est prolongé jusqu'au %(date)s.", title=title, date=long_day(new_due)),
            "success",
        )
    if outcome.status == "refused":
        if title:
            return (
                with_reason(
                    _("« %(title)s » n'a pas pu être prolongé : %(reason)s"),
                    title=title,
                    reason=reason_text(outcome.reason_code, outcome.reason),
                ),
                "error",
            )
        return (
            with_reason(
                _("Ce prêt n'a pas pu être prolongé : %(reason)s"),
                reason=reason_text(outcome.reason_code, outcome.reason),
            ),
            "error",
        )
    if outcome.status == "in_progress":
        return _("« %(title)s » : prolongation déjà en cours.", title=title), "info"
    return (
        _(
            "« %(title)s » : le service n'a pas répondu, rien n'a été fait. Vous pouvez réessayer.",
            title=title,
        ),
        "error",
    )


def _loans_fragment(svc: Service, budget: Budget) -> Callable[[Message], str]:
    def render(message: Message) -> str:
        panel = read_panel(svc, _read_loans, budget.left())
        return render_template(
            "services/_library_loans.html", service=svc, panel=panel, message=message, fragment=True
        )

    return render


def _library_page(svc: Service) -> str:
    return url_for("services.service", slug=svc.slug)


@bp.post("/<slug>/loans/<loan_id>/renew")
@login_required
@journey("library", "renew")
def renew_loan(slug: str, loan_id: str) -> Answer:
    svc = _service(slug, "library")
    _check_id(loan_id)
    budget = Budget()
    fragment, back = _loans_fragment(svc, budget), _library_page(svc)
    key = _form_key()
    if not KEY_RE.match(key):
        return _answer(_invalid(), fragment, back)
    settled = _settled(key, "renew_loan")
    loans = read_panel(svc, _read_loans, budget.left())
    loan, trouble = _owned(svc, loans, loans.data.loans if loans.has_data else (), loan_id, settled)
    if trouble is not None:
        return _answer(trouble, fragment, back)
    title = loan.title if loan is not None else _asked_title(key)
    outcome = _perform_renewal(svc, loan_id, title, key, budget.left())
    message = _trouble(outcome, svc)
    if message is None:
        text, kind = _renewal_line(outcome, title, svc)
        message = Message(text, kind)
    return _answer(message, fragment, back)


def _derived_key(key: str, loan_id: str) -> str:
    """Each loan of a "renew all" form gets its own key, the same on every replay."""
    return hashlib.sha256(f"{key}:{loan_id}".encode()).hexdigest()[:32]


@bp.post("/<slug>/loans/renew")
@login_required
@journey("library", "renew_all")
def renew_all(slug: str) -> Answer:
    """Renew the loans the form offered: one call per loan, each with its own key."""
    svc = _service(slug, "library")
    budget = Budget()
    fragment, back = _loans_fragment(svc, budget), _library_page(svc)
    key = _form_key()
    ids = list(dict.fromkeys(request.form.getlist("loan")))
    if not KEY_RE.match(key) or len(ids) > MAX_ITEMS:
        return _answer(_invalid(), fragment, back)
    if not ids:
        return _answer(Message(_("Aucun prêt ne peut être prolongé."), "info"), fragment, back)
    loans = read_panel(svc, _read_loans, budget.left())
    if (
        loans.has_data
        and not loans.writable
        and not all(_settled(_derived_key(key, loan_id), "renew_loan") for loan_id in ids)
    ):
        return _answer(_stale_refusal(), fragment, back)
    mine = {loan.id: loan for loan in loans.data.loans} if loans.has_data else {}
    lines: list[tuple[str, str]] = []
    renewed = 0
    for loan_id in ids:
        sub_key = _derived_key(key, loan_id)
        loan = mine.get(loan_id)
        if loan is None and not _settled(sub_key, "renew_loan"):
            if not loans.has_data:
                return _answer(_unreached(loans, svc), fragment, back)
            # Returned since the page was shown, or not the resident's: same words.
            lines.append(
                (_("Un prêt n'apparaît plus sur votre compte : il n'a pas été prolongé."), "error")
            )
            continue
        title = loan.title if loan is not None else ""
        outcome = _perform_renewal(svc, loan_id, title, sub_key, budget.left())
        if outcome.status == "relink":
            return _answer(_relink(svc), fragment, back)
        if outcome.status == "invalid":
            return _answer(_invalid(), fragment, back)
        renewed += outcome.status == "done"
        lines.append(_renewal_line(outcome, title, svc))
    text = ngettext(
        "%(num)d prêt sur %(total)d a été prolongé.",
        "%(num)d prêts sur %(total)d ont été prolongés.",
        renewed,
        total=len(ids),
    )
    kind = "success" if renewed == len(ids) else ("error" if renewed == 0 else "info")
    return _answer(Message(text, kind, tuple(lines)), fragment, back)


# -- library: cancel a hold --------------------------------------------------------------


def _holds_fragment(svc: Service, budget: Budget) -> Callable[[Message], str]:
    def render(message: Message) -> str:
        panel = read_panel(svc, _read_holds, budget.left())
        return render_template(
            "services/_library_holds.html", service=svc, panel=panel, message=message, fragment=True
        )

    return render


@bp.route("/<slug>/holds/<hold_id>/cancel", methods=["GET", "POST"])
@login_required
@journey("library", "cancel_hold")
def cancel_hold(slug: str, hold_id: str) -> Answer:
    """GET asks for confirmation (a page, or the question in place for htmx); POST cancels."""
    svc = _service(slug, "library")
    _check_id(hold_id)
    budget = Budget()
    if request.method == "GET":
        if not is_partial():
            settle_unknown(svc, budget.left() / 2)
        holds = read_panel(svc, _read_holds, budget.left())
        hold = _owned(svc, holds, holds.data.holds if holds.has_data else (), hold_id, False)[0]
        inline = is_partial()
        template = "services/_hold_confirm.html" if inline else "services/hold_cancel.html"
        return render_template(template, service=svc, panel=holds, hold=hold, inline=inline)
    fragment, back = _holds_fragment(svc, budget), _library_page(svc)
    key = _form_key()
    if not KEY_RE.match(key):
        return _answer(_invalid(), fragment, back)
    settled = _settled(key, "cancel_hold")
    holds = read_panel(svc, _read_holds, budget.left())
    hold, trouble = _owned(svc, holds, holds.data.holds if holds.has_data else (), hold_id, settled)
    if trouble is not None:
        return _answer(trouble, fragment, back)
    title = hold.title if hold is not None else _asked_title(key)
    outcome = _perform_cancel(svc, hold_id, title, key, budget.left())
    message = _trouble(outcome, svc) or _cancel_message(outcome, title, svc)
    return _answer(message, fragment, back)


def _perform_cancel(
    svc: Service, hold_id: str, title: str, key: str, deadline_s: float
) -> WriteOutcome:
    return perform(
        link=svc.link,
        action="cancel_hold",
        key=key,
        deadline_s=deadline_s,
        call=lambda ctx, k: svc.connector.cancel_hold(ctx, svc.ref, hold_id, idempotency_key=k),
        encode=lambda _value: {"hold_id": hold_id, "title": title},
        params={"title": title},
        request={"item": hold_id, "title": title},
        ask_again=_replays(svc),
    )


def _cancel_message(outcome: WriteOutcome, title: str, svc: Service) -> Message:
    result = outcome.result if isinstance(outcome.result, dict) else {}
    title = result.get("title") or title
    if outcome.status == "unknown":
        return _not_known_yet(
            svc,
            _(
                "Nous ne savons pas encore si votre réservation de « %(title)s » a été annulée.",
                title=title,
            )
            if title
            else _("Nous ne savons pas encore si votre réservation a été annulée."),
        )
    if outcome.status == "done":
        if title:
            return Message(_("Votre réservation de « %(title)s » est annulée.", title=title))
        return Message(_("Votre réservation est annulée."))
    if title:
        return Message(
            with_reason(
                _("La réservation de « %(title)s » n'a pas pu être annulée : %(reason)s"),
                title=title,
                reason=reason_text(outcome.reason_code, outcome.reason),
            ),
            "error",
        )
    return Message(
        with_reason(
            _("La réservation n'a pas pu être annulée : %(reason)s"),
            reason=reason_text(outcome.reason_code, outcome.reason),
        ),
        "error",
    )


# -- canteen: a month of meals per child -------------------------------------------------


def parse_month(value: str | None, today: date | None = None) -> date:
    """``YYYY-MM`` as the first day of that month; anything else is this month."""
    today = today or date.today()
    match = MONTH_RE.match(value or "")
    if match:
        year, month = int(match.group(1)), int(match.group(2))
        if 2000 <= year <= 2100 and 1 <= month <= 12:
            return date(year, month, 1)
    return today.replace(day=1)


def _meals_url(svc: Service, month: date) -> str:
    if month == date.today().replace(day=1):
        return url_for("services.service", slug=svc.slug)
    return url_for("services.meals", slug=svc.slug, month=month.strftime("%Y-%m"))


@bp.get("/<slug>/meals")
@login_required
@journey("canteen", "meals")
def meals(slug: str) -> str:
    """The canteen page for any month (``?month=YYYY-MM``); a bad month shows this one."""
    svc = _service(slug, "canteen")
    month = parse_month(request.args.get("month"))
    if not is_partial():
        settle_unknown(svc, current_settings().page_deadline_s / 2)
    panel = read_panel(svc, canteen_reader(month), current_settings().page_deadline_s)
    return render_template("services/canteen.html", service=svc, panel=panel)


def _meals_fragment(svc: Service, month: date, budget: Budget) -> Callable[[Message], str]:
    """The whole family's month, re-read from the back-end after a save: what it shows is
    what the back-end holds, never what the form asked for."""

    def render(message: Message) -> str:
        panel = read_panel(svc, canteen_reader(month), budget.left())
        return render_template(
            "services/_canteen_meals.html",
            service=svc,
            panel=panel,
            month_start=month,
            message=message,
            fragment=True,
        )

    return render


def _change_meals(
    svc: Service, ctx: CallContext, child_id: str, changes: list[MealChange], key: str
) -> Sequence[MealChangeOutcome]:
    """One call for every change of one child; if none applied, the whole lot was refused."""
    outcomes = svc.connector.change_reservations(
        ctx, svc.ref, child_id, changes, idempotency_key=key
    )
    if outcomes and not any(o.applied for o in outcomes):
        codes = {o.reason_code for o in outcomes}
        raise Refused(
            "\n".join(
                f"{short_day(o.day)}\u00a0: {plain_reason(o.reason_code, o.reason)}"
                if o.reason or o.reason_code
                else short_day(o.day)
                for o in outcomes
            ),
            "not_applied",
            codes.pop() if len(codes) == 1 else "",
        )
    return outcomes


def _meals_summary(changes: list[MealChange], outcomes: Sequence[Any]) -> dict[str, Any]:
    """The journal's parameters: days booked, cancelled and refused (ISO dates, shown
    in the reader's language by ``portal.journal_text``)."""
    wanted = {c.day: c.book for c in changes}
    applied = [o for o in outcomes if o.applied]
    return {
        "booked": [o.day.isoformat() for o in applied if wanted.get(o.day)],
        "cancelled": [o.day.isoformat() for o in applied if not wanted.get(o.day)],
        "refused": [o.day.isoformat() for o in outcomes if not o.applied],
    }


def _meals_message(outcome: WriteOutcome, svc: Service, name: str = "") -> Message:
    """One child's save said on its own: a change of meals asked again."""
    if outcome.status == "unknown":
        return _not_known_yet(
            svc,
            _(
                "Nous ne savons pas encore si les changements de repas de %(name)s ont été "
                "enregistrés.",
                name=name,
            )
            if name
            else _("Nous ne savons pas encore si vos changements de repas ont été enregistrés."),
        )
    applied, lines = _meal_lines(outcome, name)
    text = ngettext(
        "%(num)d modification enregistrée.", "%(num)d modifications enregistrées.", applied
    )
    kinds = {kind for _line, kind in lines}
    kind = "success" if kinds <= {"success"} else ("error" if not applied else "info")
    return Message(text, kind, tuple(lines))


def _meal_lines(outcome: WriteOutcome, name: str) -> tuple[int, list[tuple[str, str]]]:
    """What one child's save came to: the changes applied, and a line for each."""
    if outcome.status == "unknown":
        text = _(
            "%(name)s : nous ne savons pas encore si les changements ont été enregistrés.",
            name=name,
        )
        return 0, [(text, "info")]
    if outcome.status == "refused":
        lines = [(_("%(name)s : aucune modification n'a été enregistrée.", name=name), "error")]
        lines += [
            (_("%(name)s, %(reason)s", name=name, reason=line), "error")
            for line in outcome.reason.split("\n")
            if line
        ]
        return 0, lines
    if outcome.status == "failed":
        text = _("%(name)s : le service n'a pas répondu, rien n'a été fait.", name=name)
        return 0, [(text, "error")]
    if outcome.status == "in_progress":
        text = _("%(name)s : modification déjà en cours de traitement.", name=name)
        return 0, [(text, "info")]
    lines_: list[tuple[str, str]] = []
    applied = 0
    for item in outcome.result or ():
        day = _date(item.get("day"))
        label = short_day(day) if day else ""
        if item.get("applied"):
            applied += 1
            text = (
                _("%(name)s, %(day)s : repas réservé.", name=name, day=label)
                if item.get("book")
                else _("%(name)s, %(day)s : repas annulé.", name=name, day=label)
            )
            lines_.append((text, "success"))
        else:
            lines_.append(
                (
                    with_reason(
                        _("%(name)s, %(day)s : non modifié. %(reason)s"),
                        name=name,
                        day=label,
                        reason=reason_text(item.get("reason_code"), item.get("reason", "")),
                    ),
                    "error",
                )
            )
    return applied, lines_


def parse_family_days(values: Sequence[str]) -> dict[str, dict[date, bool]] | None:
    """The days the form showed, per child, with their state then
    (``<child>:YYYY-MM-DD:1`` = booked), or None if the form was not one of ours."""
    if len(values) > MAX_DAYS * MAX_CHILDREN:
        return None
    shown: dict[str, dict[date, bool]] = {}
    for value in values:
        match = FAMILY_DAY_RE.match(value)
        if not match:
            return None
        day = _date(match.group(2))
        if day is None:
            return None
        shown.setdefault(match.group(1), {})[day] = match.group(3) == "1"
    if len(shown) > MAX_CHILDREN or any(len(days) > MAX_DAYS for days in shown.values()):
        return None
    return shown


@bp.post("/<slug>/meals")
@login_required
@journey("canteen", "book")
def save_meals(slug: str) -> Answer:
    """Save the whole family's changes in one submission: for each child, the days whose
    box changed since the form was shown, in one call per child (each with a key of its
    own, derived from the form's). The back-end answers day by day; the page then shows
    what it holds, so a refused day is seen as it really is."""
    svc = _service(slug, "canteen")
    budget = Budget()
    month = parse_month(request.form.get("month"))
    back = _meals_url(svc, month)
    fragment = _meals_fragment(svc, month, budget)
    key = _form_key()
    shown = parse_family_days(request.form.getlist("day"))
    if not KEY_RE.match(key) or shown is None:
        return _answer(_invalid(), fragment, back)
    wanted = set(request.form.getlist("book"))
    changes = {
        child_id: [
            MealChange(day, f"{child_id}:{day.isoformat()}" in wanted)
            for day, was_booked in sorted(days.items())
            if (f"{child_id}:{day.isoformat()}" in wanted) != was_booked
        ]
        for child_id, days in shown.items()
    }
    changes = {child_id: asked for child_id, asked in changes.items() if asked}
    family = read_panel(svc, _read_family, budget.left())
    sub_keys = {child_id: _derived_key(key, child_id) for child_id in changes}
    settled = all(_settled(k, "book_meals") for k in sub_keys.values()) and bool(sub_keys)
    children = {c.id: c for c in family.data.children} if family.has_data else {}
    if family.has_data:
        strangers = [c for c in shown if c not in children]
        if strangers and not settled:
            abort(404)  # someone else's child, or none: the same answer
    if not settled:
        if not family.has_data:
            return _answer(_unreached(family, svc), fragment, back)
        if not family.writable:
            return _answer(_stale_refusal(), fragment, back)
    if not changes:
        return _answer(
            Message(_("Vous n'avez rien changé : rien n'a été envoyé."), "info"), fragment, back
        )
    lines: list[tuple[str, str]] = []
    applied = asked = 0
    statuses = set()
    for child_id, child_changes in changes.items():
        child = children.get(child_id)
        name = child.first_name if child is not None else ""
        outcome = _perform_meals(
            svc, child_id, name, child_changes, sub_keys[child_id], budget.left()
        )
        if outcome.status == "relink":
            return _answer(_relink(svc), fragment, back)
        if outcome.status == "invalid":
            return _answer(_invalid(), fragment, back)
        statuses.add(outcome.status)
        done, child_lines = _meal_lines(outcome, name)
        applied += done
        asked += len(child_changes)
        lines.extend(child_lines)
    if statuses == {"failed"}:
        return _answer(_failed(), fragment, back)
    if statuses == {"unknown"}:
        message = _not_known_yet(
            svc, _("Nous ne savons pas encore si vos changements de repas ont été enregistrés.")
        )
        return _answer(message, fragment, back)
    text = ngettext(
        "%(num)d modification enregistrée.", "%(num)d modifications enregistrées.", applied
    )
    if applied < asked:
        text += " " + _(
            "Ce qui n'a pas été enregistré est indiqué ci-dessous ; les repas affichés sont "
            "ceux que le service a enregistrés."
        )
    kind = "success" if applied == asked else ("error" if applied == 0 else "info")
    return _answer(Message(text, kind, tuple(lines)), fragment, back)


def _perform_meals(
    svc: Service, child_id: str, name: str, changes: list[MealChange], key: str, deadline_s: float
) -> WriteOutcome:
    return perform(
        link=svc.link,
        action="book_meals",
        key=key,
        deadline_s=deadline_s,
        request={
            "item": child_id,
            "name": name,
            "changes": [[c.day.isoformat(), c.book] for c in changes],
        },
        ask_again=_replays(svc),
        call=lambda ctx, k: _change_meals(svc, ctx, child_id, changes, k),
        encode=lambda outcomes: [
            {
                "day": o.day.isoformat(),
                "book": next((c.book for c in changes if c.day == o.day), None),
                "applied": o.applied,
                "reason": o.reason,
                "reason_code": o.reason_code,
            }
            for o in outcomes
        ],
        summary=lambda outcomes: _meals_summary(changes, outcomes),
        params={"child": name, "days": [c.day.isoformat() for c in changes]},
    )


# -- housing: renew the application ------------------------------------------------------


def _application_fragment(svc: Service, budget: Budget) -> Callable[[Message], str]:
    def render(message: Message) -> str:
        panel = read_panel(svc, housing_page, budget.left())
        return render_template(
            "services/_housing_application.html",
            service=svc,
            panel=panel,
            message=message,
            fragment=True,
        )

    return render


@bp.route("/<slug>/renew", methods=["GET", "POST"])
@login_required
@journey("housing", "renew")
def renew_application(slug: str) -> Answer:
    """GET asks for confirmation, or explains why it cannot be done; POST renews. The
    back-end has the last word on the renewal window: its refusal is shown as it is."""
    svc = _service(slug, "housing")
    budget = Budget()
    if request.method == "GET":
        if not is_partial():
            settle_unknown(svc, budget.left() / 2)
        panel = read_panel(svc, housing_page, budget.left())
        inline = is_partial()
        template = "services/_housing_confirm.html" if inline else "services/housing_renew.html"
        return render_template(template, service=svc, panel=panel, inline=inline)
    fragment = _application_fragment(svc, budget)
    back = url_for("services.service", slug=svc.slug)
    key = _form_key()
    if not KEY_RE.match(key):
        return _answer(_invalid(), fragment, back)
    if not _settled(key, "renew_application"):
        current = read_panel(svc, housing_page, budget.left())
        if current.state == "stale":
            return _answer(_stale_refusal(), fragment, back)
    outcome = _perform_housing(svc, key, budget.left())
    return _answer(_trouble(outcome, svc) or _housing_message(outcome, svc), fragment, back)


def _perform_housing(svc: Service, key: str, deadline_s: float) -> WriteOutcome:
    return perform(
        link=svc.link,
        action="renew_application",
        key=key,
        deadline_s=deadline_s,
        call=lambda ctx, k: svc.connector.renew(ctx, svc.ref, idempotency_key=k),
        encode=lambda receipt: {"new_expires_on": receipt.new_expires_on.isoformat()},
        summary=lambda receipt: {"new_expires_on": receipt.new_expires_on.isoformat()},
        request={"item": ""},
        ask_again=_replays(svc),
    )


def _housing_message(outcome: WriteOutcome, svc: Service) -> Message:
    if outcome.status == "unknown":
        return _not_known_yet(
            svc, _("Nous ne savons pas encore si votre demande a été renouvelée.")
        )
    if outcome.status == "done":
        new_expiry = _date((outcome.result or {}).get("new_expires_on"))
        return Message(
            _("Votre demande est renouvelée jusqu'au %(date)s.", date=long_day(new_expiry))
            if new_expiry is not None
            else _("Votre demande est renouvelée.")
        )
    return Message(
        with_reason(
            _("Votre demande n'a pas été renouvelée : %(reason)s"),
            reason=reason_text(outcome.reason_code, outcome.reason),
        ),
        "error",
    )


# -- asking again about a write whose outcome is not known --------------------------------

Resend = Callable[[Service, str, dict[str, Any], float], "Message | None"]


def _said(
    outcome: WriteOutcome, svc: Service, say: Callable[[WriteOutcome], Message]
) -> Message | None:
    """What a write asked again came to; nothing to say while another tab is asking."""
    if outcome.status == "in_progress":
        return None
    return _trouble(outcome, svc) or say(outcome)


def _resend_housing(svc: Service, key: str, req: dict[str, Any], left: float) -> Message | None:
    return _said(_perform_housing(svc, key, left), svc, lambda o: _housing_message(o, svc))


def _resend_loan(svc: Service, key: str, req: dict[str, Any], left: float) -> Message | None:
    loan_id, title = str(req.get("item", "")), str(req.get("title", ""))
    if not loan_id:
        return None
    outcome = _perform_renewal(svc, loan_id, title, key, left)
    return _said(outcome, svc, lambda o: Message(*_renewal_line(o, title, svc)))


def _resend_hold(svc: Service, key: str, req: dict[str, Any], left: float) -> Message | None:
    hold_id, title = str(req.get("item", "")), str(req.get("title", ""))
    if not hold_id:
        return None
    outcome = _perform_cancel(svc, hold_id, title, key, left)
    return _said(outcome, svc, lambda o: _cancel_message(o, title, svc))


def _resend_meals(svc: Service, key: str, req: dict[str, Any], left: float) -> Message | None:
    child_id, name = str(req.get("item", "")), str(req.get("name", ""))
    changes = [
        MealChange(day, bool(book))
        for value, book in req.get("changes") or ()
        if (day := _date(value)) is not None
    ]
    if not child_id or not changes:
        return None
    outcome = _perform_meals(svc, child_id, name, changes, key, left)
    return _said(outcome, svc, lambda o: _meals_message(o, svc, name))


#: How each kind of write on this page is asked again, from what it stored.
_RESENDS: dict[str, Resend] = {
    "renew_application": _resend_housing,
    "renew_loan": _resend_loan,
    "cancel_hold": _resend_hold,
    "book_meals": _resend_meals,
}
