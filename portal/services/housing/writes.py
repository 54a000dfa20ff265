"""Social housing's write: renew the application (same URL as ever, under
``/services``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _

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
    form_key,
    invalid_form,
    is_settled,
    iso_day,
    not_known_yet,
    replays,
    said,
    settle_unknown,
    stale_refusal,
    trouble_message,
)
from portal.services.core import Service, kind_service, read_panel
from portal.services.housing.reading import housing_page
from portal.writes import KEY_RE, WriteOutcome, perform

bp = Blueprint("housing", __name__, url_prefix="/services")


# -- renewing the application ------------------------------------------------------


def _application_fragment(svc: Service, budget: Budget) -> Callable[[Message], str]:
    def render(message: Message) -> str:
        panel = read_panel(svc, housing_page, budget.left())
        return render_template(
            "services/housing/_application.html",
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
    svc = kind_service(slug, "housing")
    budget = Budget()
    if request.method == "GET":
        if not is_partial():
            settle_unknown(svc, budget.left() / 2)
        panel = read_panel(svc, housing_page, budget.left())
        inline = is_partial()
        template = "services/housing/_confirm.html" if inline else "services/housing/renew.html"
        return render_template(template, service=svc, panel=panel, inline=inline)
    fragment = _application_fragment(svc, budget)
    back = url_for("services.service", slug=svc.slug)
    key = form_key()
    if not KEY_RE.match(key):
        return answer(invalid_form(), fragment, back)
    if not is_settled(key, "renew_application"):
        current = read_panel(svc, housing_page, budget.left())
        if current.state == "stale":
            return answer(stale_refusal(), fragment, back)
    outcome = _perform_housing(svc, key, budget.left())
    return answer(trouble_message(outcome, svc) or _housing_message(outcome, svc), fragment, back)


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
        ask_again=replays(svc),
    )


def _housing_message(outcome: WriteOutcome, svc: Service) -> Message:
    if outcome.status == "unknown":
        return not_known_yet(svc, _("Nous ne savons pas encore si votre demande a été renouvelée."))
    if outcome.status == "done":
        new_expiry = iso_day((outcome.result or {}).get("new_expires_on"))
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


def _resend_housing(svc: Service, key: str, req: dict[str, Any], left: float) -> Message | None:
    return said(_perform_housing(svc, key, left), svc, lambda o: _housing_message(o, svc))


#: How each of its writes is asked again, from what it stored (``ServiceKind.resend``).
RESENDS = {"renew_application": _resend_housing}
