"""The canteen (family portal) standard API (``connectors/specs/canteen.yaml``), at
``/canteen/<tenant>/v1``: families, meal bookings with their deadlines, invoices with
their PDFs, and the payment hand-off to the sandbox's PayFiP-like page."""

from __future__ import annotations

import calendar
import hmac
from datetime import date
from typing import Any

from flask import Response, g, request

from sandbox.backends import billing
from sandbox.backends.common import (
    ProblemError,
    backend_state,
    dataset,
    idempotent,
    json_object,
    json_response,
    problem,
    standard_blueprint,
)
from sandbox.backends.data import (
    MAX_FAILED_PROOFS,
    CanteenChild,
    CanteenFamily,
    CanteenInvoice,
    CanteenTenant,
    change_deadline,
    french_date,
    no_service_note,
    serves_meals,
)
from sandbox.backends.pdf import invoice_pdf

bp = standard_blueprint("canteen", __name__)

MAX_CHANGES = 62
LOCKED_DETAIL = (
    "Ce compte famille est bloqué après plusieurs essais infructueux. Contactez le service "
    "de restauration scolaire pour le débloquer."
)
BAD_PROOF_DETAIL = "Le numéro de famille ou le code de facture ne correspond pas."


def tenant() -> CanteenTenant:
    return dataset().canteen[g.tenant]


def family_or_404(family_id: str) -> CanteenFamily:
    family = tenant().families.get(family_id)
    if family is None:
        raise ProblemError(
            404, "unknown_family", "Ce compte famille n'existe pas ou n'est plus valide."
        )
    return family


def child_or_404(family: CanteenFamily, child_id: str) -> CanteenChild:
    child = family.children.get(child_id)
    if child is None:
        raise ProblemError(404, "unknown_child", "Cet enfant n'est pas inscrit dans cette famille.")
    return child


def invoice_or_404(family: CanteenFamily, invoice_id: str) -> CanteenInvoice:
    invoice = family.invoices.get(invoice_id)
    if invoice is None:
        raise ProblemError(404, "unknown_invoice", "Cette facture n'existe pas.")
    return invoice


def invoice_json(invoice: CanteenInvoice) -> dict[str, Any]:
    return {
        "invoice_id": invoice.invoice_id,
        "label": invoice.label,
        "amount_cents": invoice.amount_cents,
        "issued_on": invoice.issued_on.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "paid": invoice.paid,
        "paid_on": invoice.paid_on.isoformat() if invoice.paid_on else None,
        "pdf_available": invoice.pdf_available,
    }


def meal_day(child: CanteenChild, day: date) -> dict[str, Any]:
    """One calendar day of a child's bookings, with whether and until when it can change."""
    if not serves_meals(day):
        return {
            "date": day.isoformat(),
            "booked": False,
            "bookable": False,
            "changeable_until": None,
            "note": no_service_note(day),
            "served": False,
        }
    deadline = change_deadline(day)
    open_now = backend_state().now() < deadline
    return {
        "date": day.isoformat(),
        "booked": child.booked(day),
        "bookable": open_now,
        "changeable_until": deadline.isoformat() if open_now else None,
        "note": "" if open_now else "Délai de modification dépassé.",
        "served": True,
    }


def refusal(day: date) -> str:
    """Why a change for ``day`` is refused, in plain French, or ``""``."""
    return refusal_with_code(day)[0]


def refusal_with_code(day: date) -> tuple[str, str]:
    """Why a change for ``day`` is refused, in plain French and as the standard's stable
    code (``MealRefusalCode``), or ``("", "")``."""
    if not serves_meals(day):
        return no_service_note(day), "no_service_that_day"
    deadline = change_deadline(day)
    if backend_state().now() >= deadline:
        return (
            "La date limite de modification est dépassée : ce repas pouvait être modifié "
            f"jusqu'au {french_date(deadline.date())} à 10 h.",
            "too_late",
        )
    return "", ""


def _month(value: str | None) -> date:
    if not value:
        raise ProblemError(422, "invalid_request", "Le paramètre « month » (AAAA-MM) est requis.")
    try:
        year, month = value.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError(value)
        return date(int(year), int(month), 1)
    except ValueError:
        raise ProblemError(
            422, "invalid_request", "Le paramètre « month » doit avoir la forme AAAA-MM."
        ) from None


@bp.post("/v1/families/verify")
def verify() -> Response:
    """Check a family number with the code printed on the family's invoices."""
    backend_state().count_proof_check("canteen", g.tenant)
    body = json_object()
    number = body.get("family_number")
    code = body.get("invoice_code")
    if not isinstance(number, str) or not number.strip():
        raise ProblemError(422, "invalid_request", "Le numéro de famille est obligatoire.")
    if not isinstance(code, str) or not code.strip():
        raise ProblemError(
            422, "invalid_request", "Le code figurant sur la facture est obligatoire."
        )
    number = "".join(number.split())
    code = "".join(code.split()).upper()
    with backend_state().lock:
        family = next((f for f in tenant().families.values() if f.family_number == number), None)
        if family is None:
            return problem(
                401,
                "invalid_proof",
                "Le numéro de famille ou le code de facture ne correspond pas.",
            )
        if family.locked:
            return problem(423, "account_locked", LOCKED_DETAIL)
        if not hmac.compare_digest(code.encode(), family.invoice_code.encode()):
            family.failed_attempts += 1
            remaining = MAX_FAILED_PROOFS - family.failed_attempts
            if remaining <= 0:
                family.locked = True
                return problem(423, "account_locked", LOCKED_DETAIL)
            return problem(
                401,
                "invalid_proof",
                BAD_PROOF_DETAIL,
                remaining_attempts=remaining,
            )
        family.failed_attempts = 0
        return json_response({"family_id": family.family_id, "display_name": family.display_name})


@bp.get("/v1/families/<family_id>")
def family(family_id: str) -> Response:
    found = family_or_404(family_id)
    return json_response(
        {
            "family_id": found.family_id,
            "display_name": found.display_name,
            "quotient_tier": found.quotient_tier,
            "meal_price_cents": found.meal_price_cents,
            "children": [
                {
                    "child_id": child.child_id,
                    "first_name": child.first_name,
                    "school": child.school,
                    "grade": child.grade,
                }
                for child in found.children.values()
            ],
        }
    )


@bp.get("/v1/families/<family_id>/children/<child_id>/reservations")
def reservations(family_id: str, child_id: str) -> Response:
    child = child_or_404(family_or_404(family_id), child_id)
    first = _month(request.args.get("month"))
    last_day = calendar.monthrange(first.year, first.month)[1]
    days = [meal_day(child, first.replace(day=number)) for number in range(1, last_day + 1)]
    return json_response(
        {"child_id": child.child_id, "month": f"{first.year:04d}-{first.month:02d}", "days": days}
    )


@bp.post("/v1/families/<family_id>/children/<child_id>/reservations")
@idempotent
def change_reservations(family_id: str, child_id: str) -> Response:
    """Apply each change on its own: a day past its deadline or without service is
    refused with its reason, the others apply."""
    child = child_or_404(family_or_404(family_id), child_id)
    changes = json_object().get("changes")
    if not isinstance(changes, list) or not changes:
        raise ProblemError(422, "invalid_request", "« changes » doit être une liste non vide.")
    if len(changes) > MAX_CHANGES:
        raise ProblemError(
            422, "invalid_request", f"Au plus {MAX_CHANGES} modifications par requête."
        )
    parsed: list[tuple[date, bool]] = []
    for change in changes:
        if not isinstance(change, dict) or not isinstance(change.get("book"), bool):
            raise ProblemError(
                422,
                "invalid_request",
                "Chaque modification doit avoir une date (AAAA-MM-JJ) et « book » (booléen).",
            )
        try:
            day = date.fromisoformat(str(change.get("date")))
        except ValueError:
            raise ProblemError(
                422, "invalid_request", "Chaque modification doit avoir une date AAAA-MM-JJ."
            ) from None
        parsed.append((day, change["book"]))
    results = []
    for day, book in parsed:
        reason, code = refusal_with_code(day)
        if not reason:
            child.overrides[day] = book
        results.append(
            {"date": day.isoformat(), "applied": not reason, "reason": reason, "reason_code": code}
        )
    return json_response({"results": results})


@bp.get("/v1/families/<family_id>/invoices")
def invoices(family_id: str) -> Response:
    found = family_or_404(family_id)
    ordered = sorted(found.invoices.values(), key=lambda inv: inv.issued_on, reverse=True)
    return json_response({"invoices": [invoice_json(invoice) for invoice in ordered]})


@bp.get("/v1/families/<family_id>/invoices/<invoice_id>/pdf")
def pdf(family_id: str, invoice_id: str) -> Response:
    found = family_or_404(family_id)
    invoice = invoice_or_404(found, invoice_id)
    if not invoice.pdf_available:
        return problem(
            404,
            "pdf_unavailable",
            "Le document de cette facture n'est plus disponible en ligne : demandez-le au service.",
        )
    response = Response(invoice_pdf(tenant().title, found, invoice), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{invoice.invoice_id}.pdf"'
    return response


@bp.post("/v1/families/<family_id>/invoices/<invoice_id>/payments")
@idempotent
def start_payment(family_id: str, invoice_id: str) -> Response:
    """Create a payment and hand the browser off to the PayFiP-like page."""
    found = family_or_404(family_id)
    invoice = invoice_or_404(found, invoice_id)
    return billing.start_payment(
        "canteen",
        found.family_id,
        invoice,
        status_endpoint="backend_canteen.payment_status",
        account_param="family_id",
    )


@bp.get("/v1/families/<family_id>/payments/<payment_id>")
def payment_status(family_id: str, payment_id: str) -> Response:
    found = family_or_404(family_id)
    return billing.payment_status("canteen", found.family_id, payment_id)
