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
from portal.formatting import day as long_day
from portal.htmx import is_partial
from portal.journeys import journey
from portal.refusals import reason_text, with_reason
from portal.services.answers import (
    Answer,
    Budget,
    Message,
    answer,
    asked_title,
    check_id,
    derived_key,
    form_key,
    invalid_form,
    is_settled,
    iso,
    iso_day,
    not_known_yet,
    owned,
    relink_message,
    replays,
    said,
    settle_unknown,
    stale_refusal,
    trouble_message,
    unreached,
)
from portal.services.core import Service, kind_service, read_panel
from portal.services.library.reading import read_holds, read_loans
from portal.writes import KEY_RE, WriteOutcome, perform

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


def _perform_renewal(
    svc: Service, loan_id: str, title: str, key: str, deadline_s: float
) -> WriteOutcome:
    return perform(
        link=svc.link,
        action="renew_loan",
        key=key,
        deadline_s=deadline_s,
        request={"item": loan_id, "title": title},
        ask_again=replays(svc),
        call=lambda ctx, k: _renew(svc, ctx, loan_id, k),
        encode=lambda o: {
            "loan_id": loan_id,
            "title": title,
            "new_due_date": iso(o.new_due_date),
        },
        summary=lambda o: {"new_due_date": iso(o.new_due_date)},
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


@bp.post("/<slug>/loans/<loan_id>/renew")
@login_required
@journey("library", "renew")
def renew_loan(slug: str, loan_id: str) -> Answer:
    svc = kind_service(slug, "library")
    check_id(loan_id)
    budget = Budget()
    fragment, back = _loans_fragment(svc, budget), _library_page(svc)
    key = form_key()
    if not KEY_RE.match(key):
        return answer(invalid_form(), fragment, back)
    settled = is_settled(key, "renew_loan")
    loans = read_panel(svc, read_loans, budget.left())
    loan, trouble = owned(
        svc, loans, loans.data.loans if loans.data is not None else (), loan_id, settled
    )
    if trouble is not None:
        return answer(trouble, fragment, back)
    title = loan.title if loan is not None else asked_title(key)
    outcome = _perform_renewal(svc, loan_id, title, key, budget.left())
    message = trouble_message(outcome, svc)
    if message is None:
        text, kind = _renewal_line(outcome, title, svc)
        message = Message(text, kind)
    return answer(message, fragment, back)


@bp.post("/<slug>/loans/renew")
@login_required
@journey("library", "renew_all")
def renew_all(slug: str) -> Answer:
    """Renew the loans the form offered: one call per loan, each with its own key."""
    svc = kind_service(slug, "library")
    budget = Budget()
    fragment, back = _loans_fragment(svc, budget), _library_page(svc)
    key = form_key()
    ids = list(dict.fromkeys(request.form.getlist("loan")))
    if not KEY_RE.match(key) or len(ids) > MAX_ITEMS:
        return answer(invalid_form(), fragment, back)
    if not ids:
        return answer(Message(_("Aucun prêt ne peut être prolongé."), "info"), fragment, back)
    loans = read_panel(svc, read_loans, budget.left())
    if (
        loans.has_data
        and not loans.writable
        and not all(is_settled(derived_key(key, loan_id), "renew_loan") for loan_id in ids)
    ):
        return answer(stale_refusal(), fragment, back)
    mine = {loan.id: loan for loan in loans.data.loans} if loans.data is not None else {}
    lines: list[tuple[str, str]] = []
    renewed = 0
    for loan_id in ids:
        sub_key = derived_key(key, loan_id)
        loan = mine.get(loan_id)
        if loan is None and not is_settled(sub_key, "renew_loan"):
            if not loans.has_data:
                return answer(unreached(loans, svc), fragment, back)
            # Returned since the page was shown, or not the resident's: same words.
            lines.append(
                (_("Un prêt n'apparaît plus sur votre compte : il n'a pas été prolongé."), "error")
            )
            continue
        title = loan.title if loan is not None else ""
        outcome = _perform_renewal(svc, loan_id, title, sub_key, budget.left())
        if outcome.status == "relink":
            return answer(relink_message(svc), fragment, back)
        if outcome.status == "invalid":
            return answer(invalid_form(), fragment, back)
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


def _holds_fragment(svc: Service, budget: Budget) -> Callable[[Message], str]:
    def render(message: Message) -> str:
        panel = read_panel(svc, read_holds, budget.left())
        return render_template(
            "services/library/_holds.html", service=svc, panel=panel, message=message, fragment=True
        )

    return render


@bp.route("/<slug>/holds/<hold_id>/cancel", methods=["GET", "POST"])
@login_required
@journey("library", "cancel_hold")
def cancel_hold(slug: str, hold_id: str) -> Answer:
    """GET asks for confirmation (a page, or the question in place for htmx); POST cancels."""
    svc = kind_service(slug, "library")
    check_id(hold_id)
    budget = Budget()
    if request.method == "GET":
        if not is_partial():
            settle_unknown(svc, budget.left() / 2)
        holds = read_panel(svc, read_holds, budget.left())
        hold = owned(
            svc, holds, holds.data.holds if holds.data is not None else (), hold_id, False
        )[0]
        inline = is_partial()
        template = (
            "services/library/_hold_confirm.html" if inline else "services/library/hold_cancel.html"
        )
        return render_template(template, service=svc, panel=holds, hold=hold, inline=inline)
    fragment, back = _holds_fragment(svc, budget), _library_page(svc)
    key = form_key()
    if not KEY_RE.match(key):
        return answer(invalid_form(), fragment, back)
    settled = is_settled(key, "cancel_hold")
    holds = read_panel(svc, read_holds, budget.left())
    hold, trouble = owned(
        svc, holds, holds.data.holds if holds.data is not None else (), hold_id, settled
    )
    if trouble is not None:
        return answer(trouble, fragment, back)
    title = hold.title if hold is not None else asked_title(key)
    outcome = _perform_cancel(svc, hold_id, title, key, budget.left())
    message = trouble_message(outcome, svc) or _cancel_message(outcome, title, svc)
    return answer(message, fragment, back)


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
        ask_again=replays(svc),
    )


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


# -- canteen: a month of meals per child -------------------------------------------------


# -- asking again about a write whose outcome is not known --------------------------------


def _resend_loan(svc: Service, key: str, req: dict[str, Any], left: float) -> Message | None:
    loan_id, title = str(req.get("item", "")), str(req.get("title", ""))
    if not loan_id:
        return None
    outcome = _perform_renewal(svc, loan_id, title, key, left)
    return said(outcome, svc, lambda o: Message(*_renewal_line(o, title, svc)))


def _resend_hold(svc: Service, key: str, req: dict[str, Any], left: float) -> Message | None:
    hold_id, title = str(req.get("item", "")), str(req.get("title", ""))
    if not hold_id:
        return None
    outcome = _perform_cancel(svc, hold_id, title, key, left)
    return said(outcome, svc, lambda o: _cancel_message(o, title, svc))


#: How each of its writes is asked again, from what it stored (``ServiceKind.resend``).
RESENDS = {"renew_loan": _resend_loan, "cancel_hold": _resend_hold}
