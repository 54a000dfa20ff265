"""The social housing standard API (``connectors/specs/housing.yaml``), at
``/housing/<tenant>/v1``: an application found by its "numéro unique" and the applicant's
birth date, and its yearly renewal within the window before it expires."""

from __future__ import annotations

from datetime import date

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
from sandbox.backends.data import HousingApplication, HousingTenant, french_date

bp = standard_blueprint("housing", __name__)


def tenant() -> HousingTenant:
    return dataset().housing[g.tenant]


def application_or_404(application_id: str) -> HousingApplication:
    application = tenant().applications.get(application_id)
    if application is None:
        raise ProblemError(
            404,
            "unknown_application",
            "Cette demande de logement n'existe pas ou n'est plus accessible.",
        )
    return application


def normalise_number(value: str) -> str:
    """Numbers are printed with spaces or dashes; compare letters and digits only."""
    return "".join(char for char in value if char.isalnum()).upper()


def one_year_later(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


@bp.post("/v1/applications/verify")
def verify() -> Response:
    backend_state().count_proof_check("housing", g.tenant)
    body = json_object()
    number = body.get("number")
    birthdate = body.get("birthdate")
    if not isinstance(number, str) or not number.strip():
        raise ProblemError(
            422, "invalid_request", "Le numéro unique de la demande est obligatoire."
        )
    try:
        birthdate_value = date.fromisoformat(str(birthdate)).isoformat()
    except ValueError:
        raise ProblemError(
            422, "invalid_request", "La date de naissance doit avoir la forme AAAA-MM-JJ."
        ) from None
    wanted = normalise_number(number)
    application = next(
        (a for a in tenant().applications.values() if normalise_number(a.number) == wanted),
        None,
    )
    if application is None or application.birthdate != birthdate_value:
        return problem(
            401,
            "invalid_proof",
            "Le numéro unique ou la date de naissance ne correspond à aucune demande.",
        )
    return json_response(
        {"application_id": application.application_id, "display_name": application.display_name}
    )


@bp.get("/v1/applications/<application_id>")
def application(application_id: str) -> Response:
    today = dataset().today
    found = application_or_404(application_id)
    return json_response(
        {
            "application_id": found.application_id,
            "number": found.number,
            "status": found.status(today),
            "filed_on": found.filed_on.isoformat(),
            "expires_on": _iso(found.expires_on),
            "renewal_opens_on": _iso(found.renewal_opens_on),
            "renewal_closes_on": _iso(found.renewal_closes_on),
            "closed_reason": found.closed_reason,
            "communes_wanted": list(found.communes_wanted),
            "history": [{"date": on.isoformat(), "label": label} for on, label in found.history],
        }
    )


@bp.post("/v1/applications/<application_id>/renewal")
@idempotent
def renew(application_id: str) -> Response:
    today = dataset().today
    found = application_or_404(application_id)
    status = found.status(today)
    if status == "closed":
        return problem(
            409,
            "not_renewable",
            f"Cette demande est close : {found.closed_reason}",
            title="Application not renewable",
        )
    if status == "filed":
        return problem(
            409,
            "not_renewable",
            "Cette demande est en cours d'enregistrement : elle ne peut pas encore être "
            "renouvelée.",
            title="Application not renewable",
        )
    if status == "expired":
        assert found.expires_on is not None
        return problem(
            409,
            "not_renewable",
            f"Cette demande a expiré le {french_date(found.expires_on)} : il faut déposer une "
            "nouvelle demande.",
            title="Application not renewable",
        )
    opens, closes = found.renewal_opens_on, found.renewal_closes_on
    if opens is None or closes is None or not opens <= today <= closes:
        assert opens is not None
        return problem(
            409,
            "outside_renewal_window",
            f"Le renouvellement de cette demande sera possible à partir du {french_date(opens)}.",
            renewal_opens_on=opens.isoformat(),
        )
    assert found.expires_on is not None
    found.expires_on = one_year_later(found.expires_on)
    found.history.append((today, "Renouvellement de la demande en ligne"))
    return json_response({"number": found.number, "new_expires_on": found.expires_on.isoformat()})
