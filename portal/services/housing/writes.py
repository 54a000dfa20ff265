"""Social housing's write: renew the application (same URL as ever, under
``/services``)."""

from __future__ import annotations

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
    iso_day,
    not_known_yet,
    settle_unknown,
)
from portal.services.core import Service, kind_service, read_panel
from portal.services.failures import ServiceUnavailable, WriteRefused
from portal.services.housing.reading import housing_page
from portal.services.runner import Run, Write, resends
from portal.writes import WriteOutcome

bp = Blueprint("housing", __name__, url_prefix="/services")


# -- renewing the application ------------------------------------------------------


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
    return WriteRefused(
        outcome.reason,
        outcome.reason_code,
        with_reason(
            _("Votre demande n'a pas été renouvelée : %(reason)s"),
            reason=reason_text(outcome.reason_code, outcome.reason),
        ),
    ).message()


def _expiry(_asked: dict[str, Any], receipt: Any) -> dict[str, Any]:
    return {"new_expires_on": receipt.new_expires_on.isoformat()}


#: Renewing the application: nothing to name, the resident has one.
RENEW: Write[dict[str, Any]] = Write(
    action="renew_application",
    call=lambda svc, ctx, key, _asked: svc.connector.renew(ctx, svc.ref, idempotency_key=key),
    say=lambda svc, outcome, _asked: _housing_message(outcome, svc),
    request=lambda _asked: {"item": ""},
    encode=_expiry,
    summary=_expiry,
    asked=lambda _stored: {},
)


def _application_section(run: Run[Any], message: Message) -> str:
    panel = read_panel(run.svc, housing_page, run.budget.left())
    return render_template(
        "services/housing/_application.html",
        service=run.svc,
        panel=panel,
        message=message,
        fragment=True,
    )


@bp.route("/<slug>/renew", methods=["GET", "POST"])
@login_required
@journey("housing", "renew")
def renew_application(slug: str) -> Answer:
    """GET asks for confirmation, or explains why it cannot be done; POST renews. The
    back-end has the last word on the renewal window: its refusal is shown as it is."""
    svc = kind_service(slug, "housing")
    if request.method == "GET":
        budget = Budget()
        if not is_partial():
            settle_unknown(svc, budget.left() / 2)
        panel = read_panel(svc, housing_page, budget.left())
        inline = is_partial()
        template = "services/housing/_confirm.html" if inline else "services/housing/renew.html"
        return render_template(template, service=svc, panel=panel, inline=inline)
    run = Run(
        RENEW, svc, section=_application_section, back=url_for("services.service", slug=svc.slug)
    )
    run.check_key()
    if not run.settled and run.read(housing_page).state == "stale":
        raise ServiceUnavailable(stale=True)
    return run.perform({})


#: How each of its writes is asked again, from what it stored (``ServiceKind.resend``).
RESENDS = resends(RENEW)
