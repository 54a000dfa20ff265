"""The library's writes: renew a loan, renew every loan, cancel a hold (same URLs as
ever, under ``/services``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from connectors.base import CallContext, Refused
from portal.auth.session import login_required
from portal.config import current_settings
from portal.formatting import day as long_day
from portal.htmx import is_partial
from portal.journeys import journey
from portal.refusals import reason_text, with_reason
from portal.services.answers import (
    Answer,
    Budget,
    Message,
    answer,
    answers_to,
    asked_title,
    check_id,
    derived_key,
    form_key,
    is_settled,
    iso,
    iso_day,
    not_known_yet,
    settle_unknown,
    shown_item,
    unreached,
)
from portal.services.core import Service, kind_service, read_panel
from portal.services.failures import InvalidForm, NeedsRelink, ServiceUnavailable
from portal.services.library.reading import read_holds, read_loans
from portal.services.runner import Run, Write, resends
from portal.writes import KEY_RE, WriteOutcome

bp = Blueprint("library", __name__, url_prefix="/services")

#: More loans than any card holds: the form was not ours.
MAX_ITEMS = 100


# -- renewing loans ----------------------------------------------------------------


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


def _asked_item(stored: dict[str, Any]) -> dict[str, Any] | None:
    """A loan or hold asked again: its id and the title it had, as stored."""
    item_id = str(stored.get("item", ""))
    return {"item": item_id, "title": str(stored.get("title", ""))} if item_id else None


def _title(asked: dict[str, Any]) -> dict[str, Any]:
    return {"title": asked["title"]}


#: Renewing one loan: what it asks is ``{"item": loan id, "title": its title}``.
RENEW_LOAN: Write[dict[str, Any]] = Write(
    action="renew_loan",
    call=lambda svc, ctx, key, asked: _renew(svc, ctx, asked["item"], key),
    say=lambda svc, outcome, asked: Message(*_renewal_line(outcome, asked["title"], svc)),
    request=dict,
    encode=lambda asked, o: {
        "loan_id": asked["item"],
        "title": asked["title"],
        "new_due_date": iso(o.new_due_date),
    },
    summary=lambda _asked, o: {"new_due_date": iso(o.new_due_date)},
    params=_title,
    asked=_asked_item,
)


def _perform_renewal(
    svc: Service, loan_id: str, title: str, key: str, deadline_s: float
) -> WriteOutcome:
    return RENEW_LOAN.perform(svc, key, {"item": loan_id, "title": title}, deadline_s)


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
        return not_known_yet(svc, first).text, "info"
    if outcome.status == "done":
        new_due = iso_day(result.get("new_due_date"))
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
        panel = read_panel(svc, read_loans, budget.left())
        return render_template(
            "services/library/_loans.html", service=svc, panel=panel, message=message, fragment=True
        )

    return render


def _library_page(svc: Service) -> str:
    return url_for("services.service", slug=svc.slug)


def _loans(view: Any) -> Any:
    return view.loans


def _loans_after(run: Run[Any], message: Message) -> str:
    """The loans after one renewal. What the run read to find the loan is shown again
    when the renewal changed nothing (refused, not answered, an unusable form, already
    being answered) or replays one done before that read. After a renewal done now, the
    loans are read again: the library's answer gives the new due date only, while the
    loan's renewals done, whether it can be renewed again and why not change too, and
    only the library knows them. So does a renewal whose outcome is not known."""
    panel = run.panel if run.unchanged() and run.panel is not None else None
    if panel is None:
        panel = read_panel(run.svc, read_loans, run.budget.left())
    return render_template(
        "services/library/_loans.html",
        service=run.svc,
        panel=panel,
        message=message,
        fragment=True,
    )


@bp.post("/<slug>/loans/<loan_id>/renew")
@login_required
@journey("library", "renew")
def renew_loan(slug: str, loan_id: str) -> Answer:
    svc = kind_service(slug, "library")
    check_id(loan_id)
    run = Run(RENEW_LOAN, svc, section=_loans_after, back=_library_page(svc))
    key = run.check_key()
    # The loans the page just showed find the loan (a write or a failure since asks
    # again); the library's answer then decides.
    loan = run.owned(read_loans, _loans, loan_id, max_age_s=current_settings().read_cache_s)
    title = loan.title if loan is not None else asked_title(key)
    return run.perform({"item": loan_id, "title": title})


@bp.post("/<slug>/loans/renew")
@login_required
@journey("library", "renew_all")
def renew_all(slug: str) -> Answer:
    """Renew the loans the form offered: one call per loan, each with its own key."""
    svc = kind_service(slug, "library")
    budget = Budget()
    fragment, back = _loans_fragment(svc, budget), _library_page(svc)
    answers_to(fragment, back)
    key = form_key()
    ids = list(dict.fromkeys(request.form.getlist("loan")))
    if not KEY_RE.match(key) or len(ids) > MAX_ITEMS:
        raise InvalidForm
    if not ids:
        return answer(Message(_("Aucun prêt ne peut être prolongé."), "info"), fragment, back)
    loans = read_panel(svc, read_loans, budget.left())
    if (
        loans.has_data
        and not loans.writable
        and not all(is_settled(derived_key(key, loan_id), "renew_loan") for loan_id in ids)
    ):
        raise ServiceUnavailable(stale=True)
    mine = {loan.id: loan for loan in loans.data.loans} if loans.data is not None else {}
    lines: list[tuple[str, str]] = []
    renewed = 0
    for loan_id in ids:
        sub_key = derived_key(key, loan_id)
        loan = mine.get(loan_id)
        if loan is None and not is_settled(sub_key, "renew_loan"):
            if not loans.has_data:
                raise unreached(loans, svc)
            # Returned since the page was shown, or not the resident's: same words.
            lines.append(
                (_("Un prêt n'apparaît plus sur votre compte : il n'a pas été prolongé."), "error")
            )
            continue
        title = loan.title if loan is not None else ""
        outcome = _perform_renewal(svc, loan_id, title, sub_key, budget.left())
        if outcome.status == "relink":
            raise NeedsRelink(svc.slug)
        if outcome.status == "invalid":
            raise InvalidForm
        renewed += outcome.status == "done"
        lines.append(_renewal_line(outcome, title, svc))
    text = ngettext(
        "%(num)d prêt sur %(total)d a été prolongé.",
        "%(num)d prêts sur %(total)d ont été prolongés.",
        renewed,
        total=len(ids),
    )
    kind = "success" if renewed == len(ids) else ("error" if renewed == 0 else "info")
    return answer(Message(text, kind, tuple(lines)), fragment, back)


# -- cancelling a hold --------------------------------------------------------------


def _holds(view: Any) -> Any:
    return view.holds


def _holds_after(run: Run[Any], message: Message) -> str:
    panel = read_panel(run.svc, read_holds, run.budget.left())
    return render_template(
        "services/library/_holds.html", service=run.svc, panel=panel, message=message, fragment=True
    )


#: Cancelling a hold: what it asks is ``{"item": hold id, "title": its title}``.
CANCEL_HOLD: Write[dict[str, Any]] = Write(
    action="cancel_hold",
    call=lambda svc, ctx, key, asked: svc.connector.cancel_hold(
        ctx, svc.ref, asked["item"], idempotency_key=key
    ),
    say=lambda svc, outcome, asked: _cancel_message(outcome, asked["title"], svc),
    request=dict,
    encode=lambda asked, _value: {"hold_id": asked["item"], "title": asked["title"]},
    params=_title,
    asked=_asked_item,
)


@bp.route("/<slug>/holds/<hold_id>/cancel", methods=["GET", "POST"])
@login_required
@journey("library", "cancel_hold")
def cancel_hold(slug: str, hold_id: str) -> Answer:
    """GET asks for confirmation (a page, or the question in place for htmx); POST cancels."""
    svc = kind_service(slug, "library")
    check_id(hold_id)
    if request.method == "GET":
        budget = Budget()
        if not is_partial():
            settle_unknown(svc, budget.left() / 2)
        holds = read_panel(svc, read_holds, budget.left())
        hold = shown_item(holds.data.holds, hold_id) if holds.data is not None else None
        inline = is_partial()
        template = (
            "services/library/_hold_confirm.html" if inline else "services/library/hold_cancel.html"
        )
        return render_template(template, service=svc, panel=holds, hold=hold, inline=inline)
    run = Run(CANCEL_HOLD, svc, section=_holds_after, back=_library_page(svc))
    key = run.check_key()
    hold = run.owned(read_holds, _holds, hold_id)
    title = hold.title if hold is not None else asked_title(key)
    return run.perform({"item": hold_id, "title": title})


def _cancel_message(outcome: WriteOutcome, title: str, svc: Service) -> Message:
    result = outcome.result if isinstance(outcome.result, dict) else {}
    title = result.get("title") or title
    if outcome.status == "unknown":
        return not_known_yet(
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


# -- asking again about a write whose outcome is not known --------------------------------

#: How each of its writes is asked again, from what it stored (``ServiceKind.resend``).
RESENDS = resends(RENEW_LOAN, CANCEL_HOLD)
