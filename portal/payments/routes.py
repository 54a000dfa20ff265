"""An invoice's PDF, paying it, the browser's return and the provider's notification."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from flask import Response, abort, flash, g, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse  # redirects; Flask's Response extends it

from connectors.base import CallContext, Invoice, LinkInvalid, Refused
from portal.actor import Actor, current_actor
from portal.auth.session import login_required, see_other
from portal.config import current_settings
from portal.errors import render_error
from portal.extensions import csrf, db, limiter
from portal.hardening import json_body
from portal.integrations import registry
from portal.journeys import journey
from portal.measure import events as measure
from portal.models import Payment
from portal.payments import bp, ledger
from portal.services.core import Service, own_service
from portal.writes import new_key, stored_request, unknown_writes

log = logging.getLogger(__name__)

#: The provider retries a notification it could not deliver; a flood is not a provider.
NOTIFY_RATE_LIMIT = "120 per minute"
#: Invoice ids are the back-end's; anything longer is not one.
MAX_ID_LENGTH = 128
SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


def _billing(slug: str, step: str) -> Service:
    """The resident's own account at ``slug`` of a kind that bills, or 404 (never says
    which); the request counts in that service's journey."""
    service = own_service(slug, bills=True)
    g.journey = (service.category, step)
    return service


def _may_pay(slug: str) -> None:
    """An adviser pays only where the mandate says so (``<slug>:payments``): 404 otherwise,
    as for any service outside the mandate."""
    if not current_actor().may_pay(slug):
        abort(404)


def _journey_of(payment: Payment) -> None:
    """A payment's page counts in the journey of the service it pays."""
    reg = registry()
    measure.set_instance(payment.instance_slug)
    if payment.instance_slug in reg.instances:
        g.journey = (reg.category(payment.instance_slug), g.journey[1] if g.journey else "")


def _problem(service: Service | None, title: str, message: str, status: int) -> tuple[str, int]:
    return render_template(
        "payments/problem.html", service=service, title=title, message=message
    ), status


def _unavailable(service: Service, message: str) -> tuple[str, int]:
    return _problem(service, _("Service momentanément indisponible"), message, 503)


def _relink(service: Service) -> tuple[str, int]:
    return _problem(
        service,
        _("Compte à relier à nouveau"),
        _(
            "Ce service ne reconnaît plus votre compte (code changé, par exemple). "
            "Reliez-le à nouveau, puis réessayez."
        ),
        409,
    )


# -- the invoices list (helpers for templates/payments/_invoices.html) ----------------


@bp.app_template_global("invoice_lines")
def invoice_lines(service: Service, invoices: Sequence[Invoice]) -> list[ledger.InvoiceLine]:
    return ledger.invoice_lines(service.link, invoices)


@bp.app_template_global("new_payment_key")
def new_payment_key(service: Service | None = None, invoice_id: str = "") -> str:
    """One idempotency key per pay form: each invoice's form is its own write. An
    invoice whose payment start went unanswered keeps that start's key, so paying it
    asks the back-end again (its replay gives the same payment) instead of a second one."""
    if service is not None and invoice_id:
        for record in unknown_writes(service.link, ledger.ACTION):
            if stored_request(record).get("item") == invoice_id:
                return record.key
    return new_key()


# -- the PDF -------------------------------------------------------------------------------


@bp.get("/services/<slug>/invoices/<invoice_id>.pdf")
@login_required
@journey("payments", "invoice-pdf")
def invoice_pdf(slug: str, invoice_id: str) -> Response | tuple[str, int]:
    """The PDF, fetched through the resident's own link: the back-end only knows the
    invoices of that family, so another family's invoice is as unknown as a made-up one."""
    service = _billing(slug, "invoice-pdf")
    if len(invoice_id) > MAX_ID_LENGTH:
        abort(404)
    ctx = CallContext.with_timeout(
        current_settings().page_deadline_s,
        actor=current_actor().context_actor,
        subject=str(service.link.id),
    )
    try:
        content = service.connector.invoice_pdf(ctx, service.ref, invoice_id)
    except Refused as exc:
        return _problem(
            service,
            _("Facture introuvable"),
            exc.reason or _("Cette facture n'apparaît pas sur votre compte."),
            404,
        )
    except LinkInvalid:
        service.link.status = "needs_relink"
        db.session.commit()
        return _relink(service)
    except Exception as exc:  # Unavailable, ContractBroken, or a connector's own bug
        log.info("invoice pdf on %s failed: %s", slug, type(exc).__name__)
        content = b""
    if not content.startswith(b"%PDF"):
        return _unavailable(
            service,
            _(
                "La facture ne peut pas être téléchargée pour le moment : le service ne "
                "répond pas. Réessayez dans quelques minutes."
            ),
        )
    filename = "facture-" + SAFE_FILENAME.sub("_", invoice_id) + ".pdf"
    response = Response(content, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"  # personal data
    return response


# -- paying --------------------------------------------------------------------------------


@bp.post("/services/<slug>/invoices/<invoice_id>/pay")
@login_required
@journey("payments", "pay")
def pay(slug: str, invoice_id: str) -> BaseResponse | tuple[str, int]:
    _may_pay(slug)
    service = _billing(slug, "pay")
    if len(invoice_id) > MAX_ID_LENGTH:
        abort(404)
    measure.journey_started("pay", category=service.category, instance=slug)
    outcome = ledger.start(service, invoice_id, request.form.get("idem"))
    _measure_start(outcome.status, service)
    if outcome.status == "unknown_invoice":
        abort(404)
    if outcome.status == "unavailable":
        return _unavailable(
            service,
            _(
                "Le service est temporairement indisponible : rien "
                "n'a été fait et aucune somme n'a été prélevée. Réessayez dans quelques minutes."
            ),
        )
    if outcome.status == "done":
        return see_other(url_for("payments.go", payment_id=outcome.payment_id))
    if outcome.status == "refused":
        flash(_("Le paiement n'a pas pu commencer : %(reason)s", reason=outcome.reason), "error")
        return see_other(url_for("services.service", slug=slug))
    if outcome.status == "relink":
        return _relink(service)
    if outcome.status == "invalid":
        return render_error(
            400,
            _(
                "Le formulaire a expiré ou a déjà servi pour une autre demande : rien n'a été "
                "fait. Revenez à vos factures, rechargez la page et réessayez."
            ),
        )
    if outcome.status == "unknown":
        return _problem(
            service,
            _("Paiement en préparation"),
            _(
                "Nous ne savons pas encore si le paiement a commencé : le service n'a pas "
                "répondu à temps. Aucune somme n'est prélevée sans votre accord sur la page de "
                "paiement. Revenez à vos factures dans un instant : le bouton « Payer » "
                "redemandera au service, sans commencer un second paiement."
            ),
            409,
        )
    if outcome.status == "in_progress":
        return _problem(
            service,
            _("Paiement en préparation"),
            _(
                "Votre demande de paiement est toujours en cours de traitement. Ne la "
                "renvoyez pas : revenez à vos factures dans une minute pour voir où elle en est."
            ),
            409,
        )
    return _unavailable(
        service,
        _(
            "Le service de paiement ne répond pas : rien n'a été fait et aucune somme n'a été "
            "prélevée. Réessayez dans quelques minutes."
        ),
    )


#: What a payment's start came to, as a failure of its journey ('' ends nothing yet: the
#: payment goes on at the provider, or its outcome is still to be known).
START_FAILURES = {
    "done": "",
    "unknown": "",
    "in_progress": "",
    "unknown_invoice": "invalid",
    "invalid": "invalid",
    "refused": "refused",
}


def _measure_start(status: str, service: Service) -> None:
    failure = START_FAILURES.get(status, "unavailable")
    if failure:
        measure.journey_failed("pay", failure, category=service.category, instance=service.slug)


@bp.get("/payments/<payment_id>/go")
@login_required
@journey("payments", "pay-handoff")
def go(payment_id: str) -> BaseResponse:
    """Leave for the provider's page, with a GET.

    The portal's CSP allows forms to submit only to itself (``form-action``), and
    Chromium applies that directive to every redirect that follows a form submission,
    however many hops: a 303 from the pay form straight to the provider, or through a
    portal URL that redirects again, is blocked. So the form's 303 ends on this page, and
    the browser leaves it by a new navigation (a ``Refresh`` header, which replaces this
    page in the history, and a plain link for any browser that ignores it). That keeps the
    CSP strict without having to know the provider's origin, which is not the back-end's.
    """
    payment = ledger.find(payment_id, g.citizen.id)
    if payment is None:
        abort(404)
    _may_pay(payment.instance_slug)
    _journey_of(payment)
    target = ledger.handoff_url(payment) if payment.state == "pending" else None
    if target is None:
        return see_other(url_for("payments.returned", payment_id=payment.payment_id))
    response = Response(render_template("payments/go.html", payment=payment, target=target))
    response.headers["Refresh"] = f"0; url={target}"
    return response


# -- the browser coming back ---------------------------------------------------------------


@bp.get("/payments/return")
@login_required
@journey("payments", "pay-return")
def returned() -> str:
    """Where the provider sends the browser back. Its ``payment_id`` only says which
    payment to look at: the state shown is the back-end's, asked here."""
    payment = ledger.find(request.args.get("payment_id", ""), g.citizen.id)
    if payment is None:
        abort(404)
    _may_pay(payment.instance_slug)
    _journey_of(payment)
    confirmed = ledger.confirm(
        payment, actor=current_actor(), deadline_s=current_settings().page_deadline_s
    )
    can_resume = payment.state == "pending" and ledger.handoff_url(payment) is not None
    # A payment that did not go through because the invoice was paid meanwhile (from
    # another tab, by the other parent): say so, rather than "still to pay".
    settled = payment.state in ("refused", "abandoned") and ledger.invoice_settled(payment)
    return render_template(
        "payments/result.html",
        payment=payment,
        confirmed=confirmed,
        can_resume=can_resume,
        settled=settled,
    )


# -- the provider's notification -----------------------------------------------------------


def _plain(status: int, text: str = "") -> Response:
    return Response(text, status=status, mimetype="text/plain")


@bp.post("/payments/notify")
@csrf.exempt
@limiter.limit(NOTIFY_RATE_LIMIT)
def notify() -> Response:
    """Server to server, from the provider: "something happened to this payment".

    Only the payment id is taken from the body; its state is asked of the back-end
    through the payer's own link. A machine reads the answer: 204 once recorded, 404
    for an unknown payment, 400 for a body that names none, 503 (retry later) when the
    back-end cannot say yet. Never a 500: the provider would keep retrying for nothing.
    """
    body = json_body()
    if not isinstance(body, dict):
        body = request.form
    payment_id = body.get("payment_id")
    if not isinstance(payment_id, str) or not payment_id or len(payment_id) > MAX_ID_LENGTH:
        return _plain(400, "payment_id manquant")
    try:
        payment = ledger.find(payment_id)
        if payment is None:
            return _plain(404, "paiement inconnu")
        if ledger.confirm(
            payment,
            actor=Actor.system("notification"),
            deadline_s=current_settings().card_deadline_s,
        ):
            return _plain(204)
    except Exception:
        log.exception("payment notification could not be recorded")
        db.session.rollback()
    response = _plain(503, "réessayez plus tard")
    response.headers["Retry-After"] = "60"
    return response
