"""The water supply standard API (``connectors/specs/water.yaml``), at ``/water/<tenant>/v1``:
contracts proved with the contract number and the customer reference printed on
invoices, meter readings (and declaring one), consumption per billing period,
abnormal-consumption alerts and the request to cap a leak-inflated invoice, invoices
with their PDFs and the payment hand-off to the sandbox's PayFiP-like page (as the
canteen API does)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import date
from typing import Any

from flask import Response, g

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
from sandbox.backends.data import MAX_FAILED_PROOFS, french_date
from sandbox.backends.pdf import euros, render_pdf
from sandbox.backends.water_data import (
    IMPLAUSIBLE_FACTOR,
    MAX_ATTACHMENT_BYTES,
    CapRequest,
    WaterAlert,
    WaterContract,
    WaterInvoice,
    WaterReading,
    WaterTenant,
)

bp = standard_blueprint("water", __name__)

MAX_LOCATION_LENGTH = 500
LOCKED_DETAIL = (
    "Ce contrat est bloqué après plusieurs essais infructueux. Contactez le service de "
    "l'eau pour le débloquer."
)
BAD_PROOF_DETAIL = "Le numéro de contrat ou la référence client ne correspond pas."


def tenant() -> WaterTenant:
    return dataset().water[g.tenant]


def contract_or_404(contract_id: str) -> WaterContract:
    contract = tenant().contracts.get(contract_id)
    if contract is None:
        raise ProblemError(
            404, "unknown_contract", "Ce contrat d'eau n'existe pas ou n'est plus valide."
        )
    return contract


def invoice_or_404(contract: WaterContract, invoice_id: str) -> WaterInvoice:
    invoice = contract.invoices.get(invoice_id)
    if invoice is None:
        raise ProblemError(404, "unknown_invoice", "Cette facture n'existe pas.")
    return invoice


def alert_or_404(contract: WaterContract, alert_id: str) -> WaterAlert:
    alert = contract.alerts.get(alert_id)
    if alert is None:
        raise ProblemError(404, "unknown_alert", "Cette alerte de consommation n'existe pas.")
    return alert


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def reading_json(reading: WaterReading) -> dict[str, Any]:
    return {
        "taken_on": reading.taken_on.isoformat(),
        "index_m3": reading.index_m3,
        "kind": reading.kind,
    }


def invoice_json(invoice: WaterInvoice) -> dict[str, Any]:
    return {
        "invoice_id": invoice.invoice_id,
        "label": invoice.label,
        "amount_cents": invoice.amount_cents,
        "issued_on": invoice.issued_on.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "paid": invoice.paid,
        "paid_on": _iso(invoice.paid_on),
        "pdf_available": invoice.pdf_available,
    }


def alert_json(alert: WaterAlert, today: date) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id,
        "period_start": alert.period_start.isoformat(),
        "period_end": alert.period_end.isoformat(),
        "volume_m3": alert.volume_m3,
        "average_m3": alert.average_m3,
        "notified_on": alert.notified_on.isoformat(),
        "respond_by": alert.respond_by.isoformat(),
        "status": alert.status_on(today),
        "invoice_id": alert.invoice_id,
        "requested_on": _iso(alert.cap_request.received_on) if alert.cap_request else None,
    }


def _date_field(body: dict[str, Any], name: str) -> date:
    value = body.get(name)
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ProblemError(
            422, "invalid_request", f"« {name} » doit être une date AAAA-MM-JJ."
        ) from None


# -- contracts -------------------------------------------------------------------------------


@bp.post("/v1/contracts/verify")
def verify() -> Response:
    """Check a contract number with the customer reference printed on invoices."""
    backend_state().count_proof_check("water", g.tenant)
    body = json_object()
    number = body.get("contract_number")
    reference = body.get("customer_reference")
    if not isinstance(number, str) or not number.strip():
        raise ProblemError(422, "invalid_request", "Le numéro de contrat est obligatoire.")
    if not isinstance(reference, str) or not reference.strip():
        raise ProblemError(422, "invalid_request", "La référence client est obligatoire.")
    # Residents copy the number as printed (CT-33063-004521) or without its dashes.
    number = "".join(number.split()).replace("-", "").upper()
    reference = "".join(reference.split()).replace("-", "").upper()
    with backend_state().lock:
        contract = next(
            (
                c
                for c in tenant().contracts.values()
                if c.contract_number.replace("-", "") == number
            ),
            None,
        )
        if contract is None:
            return problem(401, "invalid_proof", BAD_PROOF_DETAIL)
        if contract.locked:
            return problem(423, "account_locked", LOCKED_DETAIL)
        if not hmac.compare_digest(reference.encode(), contract.customer_reference.encode()):
            contract.failed_attempts += 1
            remaining = MAX_FAILED_PROOFS - contract.failed_attempts
            if remaining <= 0:
                contract.locked = True
                return problem(423, "account_locked", LOCKED_DETAIL)
            return problem(401, "invalid_proof", BAD_PROOF_DETAIL, remaining_attempts=remaining)
        contract.failed_attempts = 0
        return json_response({"contract_id": contract.contract_id, "display_name": contract.holder})


@bp.get("/v1/contracts/<contract_id>")
def contract(contract_id: str) -> Response:
    found = contract_or_404(contract_id)
    return json_response(
        {
            "contract_id": found.contract_id,
            "contract_number": found.contract_number,
            "holder": found.holder,
            "supply_address": found.supply_address,
            "meter_number": found.meter_number,
            "meter_diameter_mm": found.meter_diameter_mm,
            "tariff": found.tariff,
            "started_on": found.started_on.isoformat(),
            "ended_on": _iso(found.ended_on),
            "payment_plan": found.payment_plan,
            "instalments": [
                {"due_date": i.due_date.isoformat(), "amount_cents": i.amount_cents, "paid": i.paid}
                for i in found.instalments
            ],
            "reading_requested_by": _iso(found.reading_requested_by),
        }
    )


# -- readings and consumption ------------------------------------------------------------------


@bp.get("/v1/contracts/<contract_id>/readings")
def readings(contract_id: str) -> Response:
    found = contract_or_404(contract_id)
    ordered = sorted(found.readings, key=lambda r: (r.taken_on, r.index_m3), reverse=True)
    return json_response({"readings": [reading_json(r) for r in ordered]})


@bp.post("/v1/contracts/<contract_id>/readings")
@idempotent
def declare_reading(contract_id: str) -> Response:
    """A reading the resident took: refused below the last actual or declared index, or
    when it would mean more than ten times the household's usual daily use."""
    found = contract_or_404(contract_id)
    body = json_object()
    index = body.get("index_m3")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 99_999_999:
        raise ProblemError(
            422, "invalid_request", "« index_m3 » doit être un nombre entier de mètres cubes."
        )
    taken_on = _date_field(body, "taken_on")
    today = dataset().today
    if taken_on > today:
        raise ProblemError(422, "invalid_request", "Le relevé ne peut pas être daté du futur.")
    if found.ended_on is not None:
        return problem(
            409,
            "contract_closed",
            f"Ce contrat a été résilié le {french_date(found.ended_on)}\u00a0: il n'est plus "
            "possible d'y déclarer un relevé.",
        )
    last = found.last_trusted_reading()
    if last is not None and taken_on < last.taken_on:
        raise ProblemError(
            422,
            "invalid_request",
            f"Le relevé ne peut pas être antérieur au dernier relevé du "
            f"{french_date(last.taken_on)}.",
        )
    if last is not None and index < last.index_m3:
        return problem(
            409,
            "below_last_reading",
            f"L'index indiqué ({index} m³) est inférieur à celui du dernier relevé du "
            f"{french_date(last.taken_on)} ({last.index_m3} m³). Vérifiez les chiffres "
            "noirs du compteur.",
            last_index_m3=last.index_m3,
        )
    if last is not None:
        days = max(1, (taken_on - last.taken_on).days)
        usual = found.average_daily_m3()
        if usual > 0 and (index - last.index_m3) / days > IMPLAUSIBLE_FACTOR * usual:
            return problem(
                409,
                "implausible_reading",
                f"L'index indiqué ({index} m³) correspondrait à une consommation bien "
                "supérieure à votre consommation habituelle. Vérifiez-le\u00a0; en cas de "
                "fuite, contactez le service de l'eau.",
            )
    reading = WaterReading(taken_on, index, "declared")
    found.readings.append(reading)
    found.reading_requested_by = None
    return json_response(reading_json(reading), status=201)


@bp.get("/v1/contracts/<contract_id>/consumption")
def consumption(contract_id: str) -> Response:
    found = contract_or_404(contract_id)
    ordered = sorted(found.periods, key=lambda p: p.start, reverse=True)
    return json_response(
        {
            "periods": [
                {"start": p.start.isoformat(), "end": p.end.isoformat(), "volume_m3": p.volume_m3}
                for p in ordered
            ]
        }
    )


# -- abnormal consumption ----------------------------------------------------------------------


@bp.get("/v1/contracts/<contract_id>/alerts")
def alerts(contract_id: str) -> Response:
    found = contract_or_404(contract_id)
    today = dataset().today
    ordered = sorted(found.alerts.values(), key=lambda a: a.notified_on, reverse=True)
    return json_response({"alerts": [alert_json(a, today) for a in ordered]})


def _attachment(body: dict[str, Any]) -> bytes:
    """The plumber's invoice, decoded and checked: a PDF of at most 5 MB."""
    attachment = body.get("repair_invoice")
    if not isinstance(attachment, dict) or not isinstance(attachment.get("content_base64"), str):
        raise ProblemError(
            422,
            "invalid_request",
            "« repair_invoice » doit contenir la facture en base64 (« content_base64 »).",
        )
    encoded = attachment["content_base64"]
    # Checked before decoding: base64 is 4 characters for 3 bytes.
    if len(encoded) > (MAX_ATTACHMENT_BYTES + 2) // 3 * 4:
        raise ProblemError(422, "attachment_rejected", _too_big())
    try:
        content = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ProblemError(
            422, "invalid_request", "« content_base64 » n'est pas du base64 valide."
        ) from None
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise ProblemError(422, "attachment_rejected", _too_big())
    if attachment.get("content_type", "application/pdf") != "application/pdf" or not (
        content.startswith(b"%PDF-")
    ):
        raise ProblemError(
            422,
            "attachment_rejected",
            "La facture du plombier doit être un document PDF.",
        )
    return content


def _too_big() -> str:
    return (
        f"La facture du plombier dépasse {MAX_ATTACHMENT_BYTES // (1024 * 1024)} Mo\u00a0: "
        "envoyez un fichier PDF plus léger."
    )


@bp.post("/v1/contracts/<contract_id>/alerts/<alert_id>/cap-request")
@idempotent
def cap_request(contract_id: str, alert_id: str) -> Response:
    """Ask for the part above twice the average not to be charged (écrêtement)."""
    found = contract_or_404(contract_id)
    alert = alert_or_404(found, alert_id)
    today = dataset().today
    status = alert.status_on(today)
    if status in ("requested", "accepted", "rejected"):
        return problem(
            409,
            "alert_closed",
            "Une demande d'écrêtement a déjà été faite pour cette alerte.",
        )
    if status == "expired":
        return problem(
            409,
            "deadline_passed",
            f"Le délai pour demander l'écrêtement a pris fin le {french_date(alert.respond_by)}.",
        )
    body = json_object()
    repaired_on = _date_field(body, "repaired_on")
    if repaired_on > today:
        raise ProblemError(
            422, "invalid_request", "La date de réparation ne peut pas être dans le futur."
        )
    location = body.get("repair_location")
    if not isinstance(location, str) or not location.strip() or len(location) > MAX_LOCATION_LENGTH:
        raise ProblemError(
            422,
            "invalid_request",
            f"Indiquez où était la fuite (au plus {MAX_LOCATION_LENGTH} caractères).",
        )
    content = _attachment(body)
    request_ = CapRequest(
        reference="ecr-" + secrets.token_hex(6),
        received_on=today,
        repaired_on=repaired_on,
        repair_location=location.strip(),
        # Only what proves which document was received: the document itself is dropped.
        attachment_sha256=hashlib.sha256(content).hexdigest(),
        attachment_bytes=len(content),
    )
    del content
    alert.cap_request = request_
    alert.status = "requested"
    return json_response(
        {
            "reference": request_.reference,
            "alert_id": alert.alert_id,
            "received_on": today.isoformat(),
        },
        status=201,
    )


# -- invoices and payments ---------------------------------------------------------------------


@bp.get("/v1/contracts/<contract_id>/invoices")
def invoices(contract_id: str) -> Response:
    found = contract_or_404(contract_id)
    ordered = sorted(found.invoices.values(), key=lambda inv: inv.issued_on, reverse=True)
    return json_response({"invoices": [invoice_json(invoice) for invoice in ordered]})


def water_invoice_pdf(issuer: str, contract: WaterContract, invoice: WaterInvoice) -> bytes:
    """The invoice as the household would receive it (fictitious, marked as such)."""
    status = (
        f"Réglée le {french_date(invoice.paid_on)}."
        if invoice.paid_on
        else f"À régler avant le {french_date(invoice.due_date)}."
    )
    return render_pdf(
        issuer,
        [
            (11, "Document fictif produit par le bac à sable\u00a0: ne pas payer."),
            (12, ""),
            (12, f"Facture n° {invoice.invoice_id}"),
            (12, invoice.label),
            (12, f"Émise le {french_date(invoice.issued_on)}"),
            (12, ""),
            (12, f"Titulaire\u00a0: {contract.holder}"),
            (12, f"Contrat n° {contract.contract_number}"),
            (12, f"Référence client\u00a0: {contract.customer_reference}"),
            (12, f"Adresse de fourniture\u00a0: {contract.supply_address}"),
            (12, f"Compteur n° {contract.meter_number}"),
            (12, ""),
            (14, f"Montant\u00a0: {euros(invoice.amount_cents)}"),
            (12, status),
        ],
    )


@bp.get("/v1/contracts/<contract_id>/invoices/<invoice_id>/pdf")
def pdf(contract_id: str, invoice_id: str) -> Response:
    found = contract_or_404(contract_id)
    invoice = invoice_or_404(found, invoice_id)
    if not invoice.pdf_available:
        return problem(
            404,
            "pdf_unavailable",
            "Le document de cette facture n'est plus disponible en ligne\u00a0: demandez-le au "
            "service.",
        )
    response = Response(
        water_invoice_pdf(tenant().title, found, invoice), mimetype="application/pdf"
    )
    response.headers["Content-Disposition"] = f'inline; filename="{invoice.invoice_id}.pdf"'
    return response


@bp.post("/v1/contracts/<contract_id>/invoices/<invoice_id>/payments")
@idempotent
def start_payment(contract_id: str, invoice_id: str) -> Response:
    """Create a payment and hand the browser off to the PayFiP-like page."""
    found = contract_or_404(contract_id)
    invoice = invoice_or_404(found, invoice_id)
    return billing.start_payment(
        "water",
        found.contract_id,
        invoice,
        status_endpoint="backend_water.payment_status",
        account_param="contract_id",
    )


@bp.get("/v1/contracts/<contract_id>/payments/<payment_id>")
def payment_status(contract_id: str, payment_id: str) -> Response:
    found = contract_or_404(contract_id)
    return billing.payment_status("water", found.contract_id, payment_id)
