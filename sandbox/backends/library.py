"""The library standard API (``connectors/specs/library.yaml``) as a commune's library
system would serve it, at ``/library/<tenant>/v1``."""

from __future__ import annotations

import hmac
from datetime import date, timedelta
from typing import Any

from flask import Response, g

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
    LOAN_PERIOD_DAYS,
    MAX_FAILED_PROOFS,
    REASON_CODES,
    REASON_IN_TRANSIT,
    LibraryHold,
    LibraryLoan,
    LibraryPatron,
    LibraryTenant,
)

bp = standard_blueprint("library", __name__)

LOCKED_DETAIL = (
    "Cette carte est bloquée après plusieurs essais infructueux. Adressez-vous à l'accueil "
    "de votre bibliothèque pour la débloquer."
)


def tenant() -> LibraryTenant:
    return dataset().library[g.tenant]


def patron_or_404(patron_id: str) -> LibraryPatron:
    patron = tenant().patrons.get(patron_id)
    if patron is None:
        raise ProblemError(
            404, "unknown_patron", "Ce compte lecteur n'existe pas ou n'est plus valide."
        )
    return patron


def loan_json(patron: LibraryPatron, loan: LibraryLoan, today: date) -> dict[str, Any]:
    reason = patron.renewal_refusal(loan, today)
    return {
        "loan_id": loan.loan_id,
        "title": loan.title,
        "author": loan.author,
        "due_date": loan.due_date.isoformat(),
        "renewable": not reason,
        "not_renewable_reason": reason,
        "not_renewable_code": REASON_CODES.get(reason, "not_renewable") if reason else "",
        "renewals_done": loan.renewals_done,
        "renewals_allowed": loan.renewals_allowed,
        "branch": loan.branch,
    }


def hold_json(hold: LibraryHold) -> dict[str, Any]:
    return {
        "hold_id": hold.hold_id,
        "title": hold.title,
        "author": hold.author,
        "status": hold.status,
        "queue_position": hold.queue_position,
        "pickup_place": hold.pickup_place,
        "waiting_until": hold.waiting_until.isoformat() if hold.waiting_until else None,
        "placed_on": hold.placed_on.isoformat(),
        "cancellable": hold.cancellable,
    }


def _iso_date(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ProblemError(422, "invalid_request", f"« {name} » doit être une date AAAA-MM-JJ.")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ProblemError(
            422, "invalid_request", f"« {name} » doit être une date AAAA-MM-JJ."
        ) from None


@bp.post("/v1/patrons/verify")
def verify() -> Response:
    """Check a card number with its PIN and/or the holder's birth date.

    Every wrong proof counts; after ``MAX_FAILED_PROOFS`` in a row the card is locked,
    as library systems do to stop PIN guessing.
    """
    backend_state().count_proof_check("library", g.tenant)
    body = json_object()
    card_number = body.get("card_number")
    pin = body.get("pin")
    birthdate = body.get("birthdate")
    if not isinstance(card_number, str) or not card_number.strip():
        raise ProblemError(422, "invalid_request", "Le numéro de carte est obligatoire.")
    if pin is None and birthdate is None:
        raise ProblemError(
            422, "invalid_request", "Indiquez le code de la carte ou la date de naissance."
        )
    if pin is not None and not isinstance(pin, str):
        raise ProblemError(422, "invalid_request", "Le code doit être une chaîne de caractères.")
    if birthdate is not None:
        birthdate = _iso_date(birthdate, "birthdate")
    normalised = "".join(card_number.split())
    with backend_state().lock:
        patron = next((p for p in tenant().patrons.values() if p.card_number == normalised), None)
        if patron is None:
            return problem(401, "invalid_proof", "Le numéro de carte ou le code ne correspond pas.")
        if patron.locked:
            return problem(423, "card_locked", LOCKED_DETAIL)
        pin_ok = pin is None or hmac.compare_digest(pin.encode(), patron.pin.encode())
        birthdate_ok = birthdate is None or birthdate == patron.birthdate
        if not (pin_ok and birthdate_ok):
            patron.failed_attempts += 1
            remaining = MAX_FAILED_PROOFS - patron.failed_attempts
            if remaining <= 0:
                patron.locked = True
                return problem(423, "card_locked", LOCKED_DETAIL)
            return problem(
                401,
                "invalid_proof",
                "Le numéro de carte ou le code ne correspond pas.",
                remaining_attempts=remaining,
            )
        patron.failed_attempts = 0
        return json_response({"patron_id": patron.patron_id, "display_name": patron.display_name})


@bp.get("/v1/patrons/<patron_id>")
def patron_summary(patron_id: str) -> Response:
    today = dataset().today
    patron = patron_or_404(patron_id)
    return json_response(
        {
            "patron_id": patron.patron_id,
            "display_name": patron.display_name,
            "card_expires_on": (
                patron.card_expires_on.isoformat() if patron.card_expires_on else None
            ),
            "loans_count": len(patron.loans),
            "overdue_count": sum(1 for loan in patron.loans if loan.due_date < today),
            "holds_ready_count": sum(1 for hold in patron.holds if hold.status == "ready"),
            "balance_cents": patron.balance_cents,
        }
    )


@bp.get("/v1/patrons/<patron_id>/loans")
def loans(patron_id: str) -> Response:
    today = dataset().today
    patron = patron_or_404(patron_id)
    ordered = sorted(patron.loans, key=lambda loan: (loan.due_date, loan.loan_id))
    return json_response({"loans": [loan_json(patron, loan, today) for loan in ordered]})


@bp.post("/v1/patrons/<patron_id>/loans/<loan_id>/renewal")
@idempotent
def renew(patron_id: str, loan_id: str) -> Response:
    today = dataset().today
    patron = patron_or_404(patron_id)
    loan = next((item for item in patron.loans if item.loan_id == loan_id), None)
    if loan is None:
        return problem(404, "unknown_loan", "Cet emprunt n'existe pas ou a déjà été rendu.")
    reason = patron.renewal_refusal(loan, today)
    if reason:
        return problem(
            409,
            "not_renewable",
            reason,
            title="Loan not renewable",
            reason_code=REASON_CODES.get(reason, "not_renewable"),
        )
    loan.due_date += timedelta(days=LOAN_PERIOD_DAYS)
    loan.renewals_done += 1
    return json_response(
        {"loan_id": loan.loan_id, "renewed": True, "new_due_date": loan.due_date.isoformat()}
    )


@bp.get("/v1/patrons/<patron_id>/holds")
def holds(patron_id: str) -> Response:
    patron = patron_or_404(patron_id)
    return json_response({"holds": [hold_json(hold) for hold in patron.holds]})


@bp.delete("/v1/patrons/<patron_id>/holds/<hold_id>")
@idempotent
def cancel_hold(patron_id: str, hold_id: str) -> Response:
    patron = patron_or_404(patron_id)
    hold = next((item for item in patron.holds if item.hold_id == hold_id), None)
    if hold is None:
        return problem(404, "unknown_hold", "Cette réservation n'existe pas ou a déjà pris fin.")
    if not hold.cancellable:
        return problem(409, "not_cancellable", REASON_IN_TRANSIT)
    patron.holds.remove(hold)
    return Response(status=204)


@bp.get("/v1/patrons/<patron_id>/account")
def account(patron_id: str) -> Response:
    patron = patron_or_404(patron_id)
    return json_response(
        {
            "balance_cents": patron.balance_cents,
            "fines": [
                {
                    "fine_id": fine.fine_id,
                    "label": fine.label,
                    "amount_cents": fine.amount_cents,
                    "date": fine.on.isoformat(),
                }
                for fine in patron.fines
            ],
        }
    )
