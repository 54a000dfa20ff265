"""A Koha-compatible subset of Koha's REST API, at ``/koha/<tenant>/api/v1``.

Paths, status codes, field names and error bodies follow Koha's own OpenAPI files
(``api/v1/swagger/`` in the Koha repository) and its controllers, as recorded in
``connectors/specs/koha-subset.yaml``; this is what a portal meets on a real Koha, which
predates the territory's standard API. Errors are ``{"error": ..., "error_code": ...}``,
not problem+json; amounts are decimal euros; due dates are date-times.
"""

from __future__ import annotations

import hmac
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, g, request

from sandbox.backends.common import (
    apply_fault,
    backend_state,
    bearer_token,
    dataset,
    hold_answer_back,
    json_response,
    koha_error,
    pop_tenant,
)
from sandbox.backends.data import (
    KOHA_FAILED_LOGIN_ATTEMPTS,
    LOAN_PERIOD_DAYS,
    KohaCheckout,
    KohaHold,
    KohaPatron,
    KohaTenant,
    local_datetime,
)
from sandbox.backends.state import ACCESS_TOKEN_TTL_S, CLIENT_ID, TENANTS, client_secret

KIND = "koha"
bp = Blueprint("backend_koha", __name__, url_prefix="/koha/<tenant>/api/v1")
bp.url_value_preprocessor(pop_tenant)
bp.after_request(hold_answer_back)

CHECKOUT_EMBEDS = {"item", "item.biblio", "library", "patron", "issuer", "renewals"}
HOLD_EMBEDS = {"biblio", "pickup_library", "cancellation_requested"}


def tenant() -> KohaTenant:
    return dataset().koha[g.tenant]


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _d(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _amount(value: Decimal) -> float:
    """Koha sends amounts as JSON numbers (decimal euros)."""
    return float(value)


def _credentials_ok() -> bool:
    """HTTP Basic (``RESTBasicAuth``) or a bearer token from this tenant's
    ``/oauth/token`` (``RESTOAuth2ClientCredentials``)."""
    authorization = request.authorization
    if authorization is not None and authorization.type == "basic":
        return hmac.compare_digest(
            (authorization.username or "").encode(), CLIENT_ID.encode()
        ) and hmac.compare_digest(
            (authorization.password or "").encode(), client_secret(KIND, g.tenant).encode()
        )
    token = bearer_token()
    return token is not None and backend_state().token_valid(token, KIND, g.tenant)


@bp.before_request
def _pipeline() -> Response | None:
    g.kind = KIND
    tenant_name = g.get("tenant", "")
    if tenant_name not in TENANTS[KIND]:
        return koha_error(404, f"Unknown Koha instance: {tenant_name}", "not_found")
    faulty = apply_fault(KIND, tenant_name, koha=True)
    if faulty is not None:
        return faulty
    if request.endpoint == "backend_koha.token":
        return None
    if not _credentials_ok():
        return koha_error(401, "Authentication failure.")
    return None


# -- serialisers (Koha's field names) --------------------------------------------------------


def item_json(koha: KohaTenant, item_id: int) -> dict[str, Any]:
    item = koha.items[item_id]
    return {
        "item_id": item.item_id,
        "biblio_id": item.biblio_id,
        "external_id": item.external_id,
        "home_library_id": item.home_library_id,
        "holding_library_id": item.home_library_id,
        "callnumber": item.callnumber,
        "item_type_id": item.item_type_id,
        "effective_item_type_id": item.item_type_id,
        "location": None,
        "public_notes": None,
        "not_for_loan_status": 0,
        "damaged_status": 0,
        "lost_status": 0,
        "withdrawn": 0,
    }


def library_json(koha: KohaTenant, library_id: str) -> dict[str, Any]:
    return {
        "library_id": library_id,
        "name": koha.libraries[library_id],
        "city": "Bordeaux",
        "postal_code": "33000",
        "country": "France",
        "pickup_location": True,
        "public": True,
    }


def patron_json(patron: KohaPatron) -> dict[str, Any]:
    return {
        "patron_id": patron.patron_id,
        "cardnumber": patron.cardnumber,
        "userid": patron.userid,
        "surname": patron.surname,
        "firstname": patron.firstname,
        "date_of_birth": patron.date_of_birth,
        "library_id": patron.library_id,
        "category_id": patron.category_id,
        "expiry_date": _d(patron.expiry_date),
        "restricted": False,
        "login_attempts": patron.login_attempts,
        "lang": "fr-FR",
        "email": None,
    }


def checkout_json(koha: KohaTenant, checkout: KohaCheckout, embeds: set[str]) -> dict[str, Any]:
    item = koha.items[checkout.item_id]
    body: dict[str, Any] = {
        "checkout_id": checkout.checkout_id,
        "patron_id": checkout.patron_id,
        "item_id": checkout.item_id,
        "external_id": item.external_id,
        "due_date": _dt(checkout.due_date),
        "library_id": checkout.library_id,
        "issuer_id": None,
        "checkin_date": None,
        "checkin_library_id": None,
        "last_renewed_date": _dt(checkout.last_renewed_date),
        "renewals_count": checkout.renewals_count,
        "unseen_renewals": 0,
        "auto_renew": False,
        "auto_renew_error": None,
        "timestamp": _dt(checkout.last_renewed_date or checkout.checkout_date),
        "checkout_date": _dt(checkout.checkout_date),
        "onsite_checkout": False,
        "note": None,
        "note_date": None,
        "note_seen": None,
    }
    if "item" in embeds or "item.biblio" in embeds:
        body["item"] = item_json(koha, checkout.item_id)
        if "item.biblio" in embeds:
            body["item"]["biblio"] = biblio_json(koha, body["item"]["biblio_id"])
    if "library" in embeds:
        body["library"] = library_json(koha, checkout.library_id)
    if "patron" in embeds:
        body["patron"] = patron_json(koha.patrons[checkout.patron_id])
    return body


def biblio_json(koha: KohaTenant, biblio_id: int) -> dict[str, Any] | None:
    biblio = koha.biblios.get(biblio_id)
    if biblio is None:
        return None
    return {
        "biblio_id": biblio.biblio_id,
        "title": biblio.title,
        "subtitle": None,
        "author": biblio.author,
        "publisher": biblio.publisher,
        "copyright_date": biblio.copyright_date,
        "framework_id": "",
        "serial": False,
    }


def hold_json(koha: KohaTenant, hold: KohaHold, embeds: set[str]) -> dict[str, Any]:
    body = {
        "hold_id": hold.hold_id,
        "patron_id": hold.patron_id,
        "hold_date": _d(hold.hold_date),
        "biblio_id": hold.biblio_id,
        "item_group_id": None,
        "pickup_library_id": hold.pickup_library_id,
        "desk_id": None,
        "cancellation_date": None,
        "cancellation_reason": None,
        "notes": None,
        "priority": hold.priority,
        "status": hold.status,
        "timestamp": local_datetime(hold.hold_date, 9, 30).isoformat(),
        "item_id": hold.item_id,
        "waiting_date": _d(hold.waiting_date),
        "expiration_date": _d(hold.expiration_date),
        "lowest_priority": False,
        "suspended": False,
        "suspended_until": None,
        "non_priority": False,
        "item_type": None,
        "item_level": hold.item_id is not None,
    }
    if "biblio" in embeds:
        body["biblio"] = biblio_json(koha, hold.biblio_id)
    if "pickup_library" in embeds:
        body["pickup_library"] = (
            library_json(koha, hold.pickup_library_id)
            if hold.pickup_library_id in koha.libraries
            else None
        )
    return body


def renewal_blocker(koha: KohaTenant, checkout: KohaCheckout) -> str | None:
    """The code Koha's ``CanBookBeRenewed`` would give, or None when renewable."""
    patron = koha.patrons[checkout.patron_id]
    today = dataset().today
    if patron.expiry_date is not None and patron.expiry_date < today:
        return "card_expired"
    if checkout.due_date.date() < today:
        return "overdue"
    if checkout.on_reserve:
        return "on_reserve"
    if checkout.renewals_count >= checkout.max_renewals:
        return "too_many"
    return None


def _embeds() -> set[str]:
    header = request.headers.get("x-koha-embed", "")
    return {part.strip() for part in header.split(",") if part.strip()}


def _patron_or_404(patron_id: int) -> KohaPatron | Response:
    patron = tenant().patrons.get(patron_id)
    if patron is None:
        return koha_error(404, "Patron not found", "not_found")
    return patron


# -- routes ----------------------------------------------------------------------------------


@bp.post("/oauth/token")
def token() -> Response:
    """Koha's client credentials grant: form fields only, 400/403 as Koha answers."""
    if request.form.get("grant_type") != "client_credentials":
        return koha_error(400, "Unimplemented grant type")
    client_id = request.form.get("client_id", "")
    secret = request.form.get("client_secret", "")
    if not (
        hmac.compare_digest(client_id.encode(), CLIENT_ID.encode())
        and hmac.compare_digest(secret.encode(), client_secret(KIND, g.tenant).encode())
    ):
        return koha_error(403, "unauthorized_client")
    access_token = backend_state().issue_token(KIND, g.tenant)
    return json_response(
        {"access_token": access_token, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_TTL_S}
    )


@bp.post("/auth/password/validation")
def password_validation() -> Response:
    """Koha's ``validateUserAndPassword``: 201 with the patron's ids, or 400.

    As on Koha, a patron locked out after ``FailedLoginAttempts`` gets the same
    "Validation failed" as a wrong password, even with the right one.
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("password"), str):
        return koha_error(400, "Bad request. The password is required.")
    if "identifier" in body and "userid" in body:
        return koha_error(400, "Bad request. Only one identifier attribute can be passed.")
    identifier = body.get("identifier")
    userid = body.get("userid")
    password: str = body["password"]
    backend_state().count_proof_check(KIND, g.tenant)
    koha = tenant()
    with backend_state().lock:
        patron: KohaPatron | None = None
        if isinstance(identifier, str):
            patron = next(
                (p for p in koha.patrons.values() if p.userid == identifier), None
            ) or next((p for p in koha.patrons.values() if p.cardnumber == identifier), None)
        elif isinstance(userid, str):
            patron = next((p for p in koha.patrons.values() if p.userid == userid), None)
        if patron is None:
            return koha_error(400, "Validation failed")
        if patron.login_attempts >= KOHA_FAILED_LOGIN_ATTEMPTS:
            return koha_error(400, "Validation failed")
        if not hmac.compare_digest(password.encode(), patron.password.encode()):
            patron.login_attempts += 1
            return koha_error(400, "Validation failed")
        patron.login_attempts = 0
        response = json_response(
            {
                "cardnumber": patron.cardnumber,
                "patron_id": patron.patron_id,
                "userid": patron.userid,
            },
            status=201,
        )
        return response


@bp.get("/patrons/<int:patron_id>")
def get_patron(patron_id: int) -> Response:
    patron = _patron_or_404(patron_id)
    if isinstance(patron, Response):
        return patron
    return json_response(patron_json(patron))


@bp.get("/checkouts")
def list_checkouts() -> Response:
    koha = tenant()
    embeds = _embeds()
    unknown = embeds - CHECKOUT_EMBEDS
    if unknown:
        return koha_error(400, f"Embedding objects is not allowed: {', '.join(sorted(unknown))}")
    patron_id = request.args.get("patron_id", type=int)
    checked_in = request.args.get("checked_in", "false").lower() in ("true", "1")
    if patron_id is not None and patron_id not in koha.patrons:
        return koha_error(404, "Patron not found", "not_found")
    # The sandbox keeps no returned checkouts: checked_in=true lists none.
    found = (
        []
        if checked_in
        else [
            checkout
            for checkout in koha.checkouts.values()
            if patron_id is None or checkout.patron_id == patron_id
        ]
    )
    found.sort(key=lambda checkout: checkout.checkout_id)
    response = json_response([checkout_json(koha, checkout, embeds) for checkout in found])
    response.headers["X-Total-Count"] = str(len(found))
    response.headers["X-Base-Total-Count"] = str(len(found))
    return response


@bp.get("/checkouts/<int:checkout_id>")
def get_checkout(checkout_id: int) -> Response:
    koha = tenant()
    checkout = koha.checkouts.get(checkout_id)
    if checkout is None:
        return koha_error(404, "Checkout not found", "not_found")
    return json_response(checkout_json(koha, checkout, _embeds() & CHECKOUT_EMBEDS))


@bp.get("/checkouts/<int:checkout_id>/allows_renewal")
def allows_renewal(checkout_id: int) -> Response:
    koha = tenant()
    checkout = koha.checkouts.get(checkout_id)
    if checkout is None:
        return koha_error(404, "Checkout not found", "not_found")
    blocker = renewal_blocker(koha, checkout)
    return json_response(
        {
            "allows_renewal": blocker is None,
            "max_renewals": checkout.max_renewals,
            "current_renewals": checkout.renewals_count,
            "unseen_renewals": 0,
            "error": blocker,
        }
    )


@bp.post("/checkouts/<int:checkout_id>/renewal")
def renew_checkout(checkout_id: int) -> Response:
    """201 with the updated checkout, or Koha's 403 "Renewal not authorized (<code>)"."""
    koha = tenant()
    with backend_state().lock:
        checkout = koha.checkouts.get(checkout_id)
        if checkout is None:
            return koha_error(404, "Checkout not found", "not_found")
        blocker = renewal_blocker(koha, checkout)
        if blocker is not None:
            return koha_error(403, f"Renewal not authorized ({blocker})", blocker)
        new_due = checkout.due_date.date() + timedelta(days=LOAN_PERIOD_DAYS)
        checkout.due_date = local_datetime(new_due, 23, 59)
        checkout.renewals_count += 1
        checkout.last_renewed_date = backend_state().now().replace(microsecond=0)
        response = json_response(checkout_json(koha, checkout, set()), status=201)
    response.headers["Location"] = request.path
    return response


@bp.get("/biblios/<int:biblio_id>")
def get_biblio(biblio_id: int) -> Response:
    """Koha serves a biblio in several formats; the sandbox only has the JSON one."""
    if "application/json" not in request.headers.get("Accept", ""):
        response = json_response(["application/json"], status=406)
        return response
    body = biblio_json(tenant(), biblio_id)
    if body is None:
        return koha_error(404, "Bibliographic record not found", "not_found")
    return json_response(body)


@bp.get("/patrons/<int:patron_id>/holds")
def patron_holds(patron_id: int) -> Response:
    embeds = _embeds()
    unknown = embeds - HOLD_EMBEDS
    if unknown:
        return koha_error(400, f"Embedding objects is not allowed: {', '.join(sorted(unknown))}")
    patron = _patron_or_404(patron_id)
    if isinstance(patron, Response):
        return patron
    koha = tenant()
    holds = [hold for hold in koha.holds.values() if hold.patron_id == patron_id]
    holds.sort(key=lambda hold: hold.hold_id)
    response = json_response([hold_json(koha, hold, embeds) for hold in holds])
    response.headers["X-Total-Count"] = str(len(holds))
    return response


@bp.delete("/holds/<int:hold_id>")
def delete_hold(hold_id: int) -> Response:
    koha = tenant()
    with backend_state().lock:
        if koha.holds.pop(hold_id, None) is None:
            return koha_error(404, "Hold not found", "not_found")
    return Response(status=204)


@bp.get("/patrons/<int:patron_id>/account")
def patron_account(patron_id: int) -> Response:
    patron = _patron_or_404(patron_id)
    if isinstance(patron, Response):
        return patron
    debits = [d for d in tenant().debits.values() if d.patron_id == patron_id]
    debits.sort(key=lambda debit: debit.account_line_id)
    total = sum((d.amount_outstanding for d in debits), Decimal("0"))
    lines = [
        {
            "account_line_id": d.account_line_id,
            "checkout_id": d.checkout_id,
            "patron_id": d.patron_id,
            "item_id": d.item_id,
            "date": _dt(d.date),
            "amount": _amount(d.amount),
            "description": d.description,
            "debit_type": d.debit_type,
            "credit_type": None,
            "payment_type": None,
            "amount_outstanding": _amount(d.amount_outstanding),
            "last_increment": None,
            "timestamp": _dt(d.date),
            "internal_note": None,
            "user_id": None,
            "library_id": d.library_id,
            "interface": "cron",
            "status": None,
            "cash_register_id": None,
        }
        for d in debits
    ]
    return json_response(
        {
            "balance": _amount(total),
            "outstanding_debits": {"total": _amount(total), "lines": lines},
            "outstanding_credits": {"total": 0, "lines": []},
        }
    )


@bp.get("/libraries/<library_id>")
def get_library(library_id: str) -> Response:
    koha = tenant()
    if library_id not in koha.libraries:
        return koha_error(404, "Library not found", "not_found")
    return json_response(library_json(koha, library_id))


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(rest: str) -> Response:
    return koha_error(404, "Not Found.", "not_found")
