"""The sandbox's fake back-ends: every operation of every spec answered as the spec says
(errors included), state that changes with actions, idempotent writes, the payment
hand-off, fault injection and deterministic data.

The sandbox is the external system here, so the Flask test client is fine; the few
behaviours only a socket can show (a dropped connection, a hang released from another
thread) use a loopback server.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from flask.testing import FlaskClient
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.validation.response.exceptions import InvalidData
from werkzeug.test import TestResponse
from werkzeug.wrappers import Request

from sandbox import create_app
from sandbox.backends.data import (
    REASON_RESERVED,
    build_dataset,
    change_deadline,
    easter_sunday,
    sandbox_today,
    serves_meals,
)
from sandbox.backends.demo import DEMO_ACCOUNTS, TENANT_PATHS
from sandbox.backends.state import api_key, client_secret
from sandbox.idp.identities import IDENTITIES_BY_KEY
from tests.sandbox.conftest import SPEC_SERVERS, NotificationReceiver, load_spec

METHODS = ("get", "post", "put", "patch", "delete")
KOHA_AUTH = "Basic " + base64.b64encode(b"portal:sandbox-koha-bordeaux-secret").decode()


def key(kind: str, tenant: str) -> dict[str, str]:
    return {"X-Api-Key": api_key(kind, tenant)}


LIB = key("library", "merignac")
PES = key("library", "pessac")
CAN = key("canteen", "bordeaux")
HOU = key("housing", "metropole")
WAT = key("water", "bordeaux")
WPE = key("water", "pessac")
KOHA = {"Authorization": KOHA_AUTH}
MARIE = "/library/merignac/v1/patrons/mer-p-0417"
FAMILY = "/canteen/bordeaux/v1/families/fam-4521"
HOUSING = "/housing/metropole/v1/applications"
KOHA_API = "/koha/bordeaux/api/v1"
WATER = "/water/bordeaux/v1/contracts"
LEAK = WATER + "/ctr-bdx-4521"


def idem(headers: dict[str, str], value: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": value}


# -- contract checking -----------------------------------------------------------------------


class Contract:
    """Calls one spec's back-end and checks every answer against the spec.

    It finds the operation each request hits from the spec's own path templates, and
    remembers which (operationId, status) pairs were exercised, so a walk can prove it
    touched every operation.
    """

    def __init__(self, client: FlaskClient, openapi: OpenAPI, kind: str) -> None:
        self.client = client
        self.openapi = openapi
        file_name, server, _tenants = SPEC_SERVERS[kind]
        self.spec = load_spec(file_name)
        self.base = re.compile(
            "^" + re.escape(urlsplit(server).path).replace(r"\{tenant\}", "[^/]+")
        )
        self.seen: set[tuple[str, int]] = set()

    def operation_id(self, method: str, path: str) -> str:
        relative = self.base.sub("", path)
        for template, item in self.spec["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, relative) and method.lower() in item:
                return item[method.lower()]["operationId"]
        raise AssertionError(f"{method} {path} is not in the spec")

    def call(self, method: str, url: str, expect: int, **kwargs: Any) -> TestResponse:
        response = self.client.open(url, method=method, **kwargs)
        assert response.status_code == expect, (url, response.get_data(as_text=True))
        self.validate(response)
        self.seen.add((self.operation_id(method, urlsplit(url).path), expect))
        return response

    def validate(self, response: TestResponse) -> None:
        # The app has read the request body already; response checks need only the
        # method, URL and headers, so validate against a body-less copy of the request.
        environ = {
            **response.request.environ,
            "wsgi.input": io.BytesIO(b""),
            "CONTENT_LENGTH": "0",
        }
        self.openapi.validate_response(
            WerkzeugOpenAPIRequest(Request(environ)), WerkzeugOpenAPIResponse(response)
        )

    def assert_every_operation_succeeded(self) -> None:
        operation_ids = {
            item[method]["operationId"]
            for item in self.spec["paths"].values()
            for method in METHODS
            if method in item
        }
        succeeded = {op for op, status in self.seen if 200 <= status < 300}
        assert operation_ids == succeeded, operation_ids - succeeded


def wait_for(condition: Any, timeout: float = 5.0) -> Any:
    """Poll ``condition`` until it is truthy (for work done in background threads)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


def problem_code(response: TestResponse) -> str:
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == response.status_code
    assert body["type"] == "urn:compte-territorial:problem:" + body["code"]
    return body["code"]


@pytest.fixture
def client(sandbox_client: FlaskClient) -> FlaskClient:
    return sandbox_client


def loans_by_id(client: FlaskClient, patron: str = MARIE, headers: dict = LIB) -> dict[str, Any]:
    loans = client.get(patron + "/loans", headers=headers).get_json()["loans"]
    return {loan["loan_id"]: loan for loan in loans}


# -- every operation, against its spec --------------------------------------------------------


def test_library_contract(client: FlaskClient, openapi_specs: dict[str, OpenAPI]) -> None:
    api = Contract(client, openapi_specs["library"], "library")
    verify = "/library/merignac/v1/patrons/verify"

    body = api.call(
        "POST", verify, 200, headers=LIB, json={"card_number": "3328 1000 0417 21", "pin": "2408"}
    ).get_json()
    assert body == {"patron_id": "mer-p-0417", "display_name": "Marie-Thérèse Dubois"}
    api.call(
        "POST",
        verify,
        200,
        headers=LIB,
        json={"card_number": "33281000041721", "birthdate": "1962-08-24"},
    )
    wrong = api.call(
        "POST", verify, 401, headers=LIB, json={"card_number": "33281000041721", "pin": "0000"}
    )
    assert problem_code(wrong) == "invalid_proof"
    assert wrong.get_json()["remaining_attempts"] == 4
    assert (
        problem_code(
            api.call("POST", verify, 401, headers=LIB, json={"card_number": "99999", "pin": "1"})
        )
        == "invalid_proof"
    )
    assert (
        problem_code(
            api.call("POST", verify, 422, headers=LIB, json={"card_number": "33281000041721"})
        )
        == "invalid_request"
    )
    locked = api.call(
        "POST",
        "/library/pessac/v1/patrons/verify",
        423,
        headers=PES,
        json={"card_number": "33318000311260", "pin": "3112"},
    )
    assert problem_code(locked) == "card_locked"
    assert problem_code(api.call("POST", verify, 401, json={"card_number": "1", "pin": "1"})) == (
        "unauthorized"
    )

    summary = api.call("GET", MARIE, 200, headers=LIB).get_json()
    assert summary["overdue_count"] == 1 and summary["holds_ready_count"] == 1
    assert problem_code(api.call("GET", MARIE + "x", 404, headers=LIB)) == "unknown_patron"
    api.call("GET", MARIE, 401, headers={"X-Api-Key": "wrong"})

    loans = api.call("GET", MARIE + "/loans", 200, headers=LIB).get_json()["loans"]
    assert len(loans) == 5
    api.call("GET", MARIE + "x/loans", 404, headers=LIB)

    renewal = MARIE + "/loans/mer-l-0417-5/renewal"
    api.call("POST", renewal, 200, headers=idem(LIB, "renew-1"))
    refused = api.call("POST", MARIE + "/loans/mer-l-0417-3/renewal", 409, headers=idem(LIB, "r2"))
    assert problem_code(refused) == "not_renewable"
    assert refused.get_json()["detail"] == REASON_RESERVED
    assert (
        problem_code(api.call("POST", MARIE + "/loans/nope/renewal", 404, headers=idem(LIB, "r3")))
        == "unknown_loan"
    )
    assert problem_code(api.call("POST", renewal, 400, headers=LIB)) == "missing_idempotency_key"
    reused = api.call(
        "POST", MARIE + "/loans/mer-l-0417-2/renewal", 422, headers=idem(LIB, "renew-1")
    )
    assert problem_code(reused) == "idempotency_key_reused"

    holds = api.call("GET", MARIE + "/holds", 200, headers=LIB).get_json()["holds"]
    assert {hold["status"] for hold in holds} == {"ready", "waiting"}
    api.call("DELETE", MARIE + "/holds/mer-h-0417-2", 204, headers=idem(LIB, "cancel-1"))
    transit = api.call(
        "DELETE",
        "/library/merignac/v1/patrons/mer-p-0958/holds/mer-h-0958-1",
        409,
        headers=idem(LIB, "cancel-2"),
    )
    assert problem_code(transit) == "not_cancellable"
    assert (
        problem_code(api.call("DELETE", MARIE + "/holds/nope", 404, headers=idem(LIB, "cancel-3")))
        == "unknown_hold"
    )

    account = api.call("GET", MARIE + "/account", 200, headers=LIB).get_json()
    assert account["balance_cents"] == sum(f["amount_cents"] for f in account["fines"]) == 150

    api.assert_every_operation_succeeded()


def test_canteen_contract(client: FlaskClient, openapi_specs: dict[str, OpenAPI]) -> None:
    api = Contract(client, openapi_specs["canteen"], "canteen")
    verify = "/canteen/bordeaux/v1/families/verify"
    proof = {"family_number": "0045217", "invoice_code": "kx4m7p"}

    assert api.call("POST", verify, 200, headers=CAN, json=proof).get_json() == {
        "family_id": "fam-4521",
        "display_name": "Famille Dubois",
    }
    bad = {"family_number": "0066302", "invoice_code": "WRONG"}
    for remaining in (4, 3, 2, 1):
        refused = api.call("POST", verify, 401, headers=CAN, json=bad)
        assert refused.get_json()["remaining_attempts"] == remaining
    assert problem_code(api.call("POST", verify, 423, headers=CAN, json=bad)) == "account_locked"
    good_after_lock = {"family_number": "0066302", "invoice_code": "PT9R2D"}
    api.call("POST", verify, 423, headers=CAN, json=good_after_lock)
    api.call("POST", verify, 422, headers=CAN, json={"family_number": "0045217"})

    family = api.call("GET", FAMILY, 200, headers=CAN).get_json()
    assert [child["first_name"] for child in family["children"]] == ["Chloé", "Hugo"]
    assert problem_code(api.call("GET", FAMILY + "x", 404, headers=CAN)) == "unknown_family"

    month = sandbox_today().strftime("%Y-%m")
    reservations = FAMILY + "/children/enf-4521-1/reservations"
    days = api.call("GET", reservations, 200, headers=CAN, query_string={"month": month})
    assert len(days.get_json()["days"]) >= 28
    api.call("GET", reservations, 422, headers=CAN, query_string={"month": "2026-13"})
    assert (
        problem_code(
            api.call(
                "GET",
                FAMILY + "/children/nope/reservations",
                404,
                headers=CAN,
                query_string={"month": month},
            )
        )
        == "unknown_child"
    )
    wednesday = next_weekday(sandbox_today(), 2)
    results = api.call(
        "POST",
        reservations,
        200,
        headers=idem(CAN, "meals-1"),
        json={"changes": [{"date": wednesday.isoformat(), "book": True}]},
    )
    assert results.get_json()["results"][0]["applied"] is False
    api.call("POST", reservations, 400, json={"changes": []}, headers=CAN)
    api.call("POST", reservations, 422, json={"changes": []}, headers=idem(CAN, "meals-2"))

    invoices = api.call("GET", FAMILY + "/invoices", 200, headers=CAN).get_json()["invoices"]
    assert {invoice["paid"] for invoice in invoices} == {True, False}
    pdf = api.call("GET", FAMILY + "/invoices/fac-4521-2611/pdf", 200, headers=CAN)
    assert pdf.data.startswith(b"%PDF-1.4") and pdf.data.rstrip().endswith(b"%%EOF")
    gone = api.call("GET", FAMILY + "/invoices/fac-4521-2609/pdf", 404, headers=CAN)
    assert problem_code(gone) == "pdf_unavailable"

    urls = {"return_url": "http://127.0.0.1:5000/back", "notify_url": "http://127.0.0.1:9/n"}
    started = api.call(
        "POST",
        FAMILY + "/invoices/fac-4521-2611/payments",
        201,
        headers=idem(CAN, "pay-1"),
        json=urls,
    ).get_json()
    assert urlsplit(started["redirect_url"]).path == f"/payfip/pay/{started['payment_id']}"
    paid = api.call(
        "POST",
        FAMILY + "/invoices/fac-4521-2610/payments",
        409,
        headers=idem(CAN, "pay-2"),
        json=urls,
    )
    assert problem_code(paid) == "already_paid"
    api.call(
        "POST",
        FAMILY + "/invoices/fac-4521-2611/payments",
        422,
        headers=idem(CAN, "pay-3"),
        json={"return_url": "/relative", "notify_url": "x"},
    )
    status = api.call("GET", FAMILY + f"/payments/{started['payment_id']}", 200, headers=CAN)
    assert status.get_json()["state"] == "pending"
    assert problem_code(api.call("GET", FAMILY + "/payments/pay-nope", 404, headers=CAN)) == (
        "unknown_payment"
    )

    api.assert_every_operation_succeeded()


def test_housing_contract(client: FlaskClient, openapi_specs: dict[str, OpenAPI]) -> None:
    api = Contract(client, openapi_specs["housing"], "housing")
    verify = HOUSING + "/verify"

    ok = api.call(
        "POST",
        verify,
        200,
        headers=HOU,
        json={"number": "033-2511-0087-12", "birthdate": "1962-08-24"},
    )
    assert ok.get_json()["application_id"] == "dem-0871"
    assert problem_code(
        api.call(
            "POST",
            verify,
            401,
            headers=HOU,
            json={"number": "0332511008712", "birthdate": "1962-08-25"},
        )
    ) == ("invalid_proof")
    api.call("POST", verify, 422, headers=HOU, json={"number": "0332511008712"})

    application = api.call("GET", HOUSING + "/dem-0871", 200, headers=HOU).get_json()
    assert application["status"] == "renewal_due"
    assert problem_code(api.call("GET", HOUSING + "/nope", 404, headers=HOU)) == (
        "unknown_application"
    )

    api.call("POST", HOUSING + "/dem-0871/renewal", 200, headers=idem(HOU, "h-1"))
    outside = api.call("POST", HOUSING + "/dem-1544/renewal", 409, headers=idem(HOU, "h-2"))
    assert problem_code(outside) == "outside_renewal_window"
    for application_id in ("dem-0932", "dem-0415", "dem-2290"):  # expired, closed, filed
        refused = api.call(
            "POST",
            HOUSING + f"/{application_id}/renewal",
            409,
            headers=idem(HOU, f"h-{application_id}"),
        )
        assert problem_code(refused) == "not_renewable"
    api.call("POST", HOUSING + "/dem-0871/renewal", 400, headers=HOU)

    api.assert_every_operation_succeeded()


def test_koha_contract(client: FlaskClient, openapi_specs: dict[str, OpenAPI]) -> None:
    api = Contract(client, openapi_specs["koha"], "koha")
    token = api.call(
        "POST",
        KOHA_API + "/oauth/token",
        200,
        data={
            "grant_type": "client_credentials",
            "client_id": "portal",
            "client_secret": "sandbox-koha-bordeaux-secret",
        },
    ).get_json()
    assert token["token_type"] == "Bearer"
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    api.call("POST", KOHA_API + "/oauth/token", 400, data={"grant_type": "password"})
    assert api.call(
        "POST",
        KOHA_API + "/oauth/token",
        403,
        data={
            "grant_type": "client_credentials",
            "client_id": "portal",
            "client_secret": "no",
        },
    ).get_json() == {"error": "unauthorized_client"}

    validation = KOHA_API + "/auth/password/validation"
    assert api.call(
        "POST",
        validation,
        201,
        headers=KOHA,
        json={"identifier": "23300000051", "password": "mtd-bdx-2408"},
    ).get_json() == {
        "cardnumber": "23300000051",
        "patron_id": 51,
        "userid": "mtdubois",
    }
    api.call(
        "POST",
        validation,
        201,
        headers=bearer,
        json={"userid": "mtdubois", "password": "mtd-bdx-2408"},
    )
    assert api.call(
        "POST", validation, 400, headers=KOHA, json={"identifier": "23300000051", "password": "no"}
    ).get_json() == {"error": "Validation failed"}
    locked = api.call(
        "POST",
        validation,
        400,
        headers=KOHA,
        json={"identifier": "23300000088", "password": "pac-bdx-3112"},
    )
    assert locked.get_json() == {"error": "Validation failed"}
    both = api.call(
        "POST",
        validation,
        400,
        headers=KOHA,
        json={"identifier": "a", "userid": "b", "password": "c"},
    )
    assert "Only one identifier" in both.get_json()["error"]
    assert api.call(
        "POST", validation, 401, json={"identifier": "a", "password": "b"}
    ).get_json() == {"error": "Authentication failure."}

    patron = api.call("GET", KOHA_API + "/patrons/51", 200, headers=KOHA).get_json()
    assert (patron["firstname"], patron["surname"]) == ("Marie-Thérèse", "Dubois")
    assert (
        api.call("GET", KOHA_API + "/patrons/999", 404, headers=KOHA).get_json()["error_code"]
        == "not_found"
    )

    checkouts = api.call(
        "GET",
        KOHA_API + "/checkouts",
        200,
        headers={**KOHA, "x-koha-embed": "item"},
        query_string={"patron_id": 51, "checked_in": "false"},
    )
    listed = checkouts.get_json()
    assert checkouts.headers["X-Total-Count"] == str(len(listed)) == "4"
    assert all(c["item"]["biblio_id"] and c["item"]["external_id"] for c in listed)
    plain = client.get(KOHA_API + "/checkouts", headers=KOHA, query_string={"patron_id": 51})
    assert "item" not in plain.get_json()[0]
    api.call("GET", KOHA_API + "/checkouts/9002", 200, headers=KOHA)
    api.call("GET", KOHA_API + "/checkouts/1", 404, headers=KOHA)
    allows = api.call("GET", KOHA_API + "/checkouts/9003/allows_renewal", 200, headers=KOHA)
    assert allows.get_json()["allows_renewal"] is False
    assert allows.get_json()["error"] == "on_reserve"
    renewed = api.call("POST", KOHA_API + "/checkouts/9004/renewal", 201, headers=KOHA)
    assert renewed.get_json()["renewals_count"] == 1
    refused = api.call("POST", KOHA_API + "/checkouts/9003/renewal", 403, headers=KOHA)
    assert refused.get_json() == {
        "error": "Renewal not authorized (on_reserve)",
        "error_code": "on_reserve",
    }

    json_accept = {**KOHA, "Accept": "application/json"}
    biblio = api.call("GET", KOHA_API + "/biblios/101", 200, headers=json_accept).get_json()
    assert (biblio["title"], biblio["author"]) == ("Les Bienveillantes", "Littell, Jonathan")
    api.call("GET", KOHA_API + "/biblios/101", 406, headers={**KOHA, "Accept": "application/marc"})
    api.call("GET", KOHA_API + "/biblios/999", 404, headers=json_accept)

    holds = api.call("GET", KOHA_API + "/patrons/51/holds", 200, headers=KOHA).get_json()
    assert {hold["status"] for hold in holds} == {"W", None}
    api.call("DELETE", KOHA_API + "/holds/702", 204, headers=KOHA)
    api.call("DELETE", KOHA_API + "/holds/702", 404, headers=KOHA)

    account = api.call("GET", KOHA_API + "/patrons/51/account", 200, headers=KOHA).get_json()
    assert account["balance"] == account["outstanding_debits"]["total"] == 1.2
    library = api.call("GET", KOHA_API + "/libraries/MERIADECK", 200, headers=KOHA).get_json()
    assert library["name"] == "Bibliothèque Mériadeck"
    api.call("GET", KOHA_API + "/libraries/NOPE", 404, headers=KOHA)

    api.assert_every_operation_succeeded()


# -- authentication and tenants --------------------------------------------------------------


def token(client: FlaskClient, kind: str, tenant: str, **kwargs: Any) -> TestResponse:
    data = {
        "grant_type": "client_credentials",
        "client_id": "portal",
        "client_secret": client_secret(kind, tenant),
    }
    return client.post(f"/{kind}/{tenant}/oauth/token", data=kwargs.pop("data", data), **kwargs)


def test_a_token_works_on_its_own_tenant_only(client: FlaskClient) -> None:
    response = token(client, "library", "merignac")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get(MARIE, headers=bearer).status_code == 200
    other = client.get("/library/pessac/v1/patrons/pes-p-2207", headers=bearer)
    assert other.status_code == 401 and problem_code(other) == "unauthorized"
    assert other.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_endpoint_accepts_basic_and_refuses_bad_clients(client: FlaskClient) -> None:
    basic = base64.b64encode(b"portal:sandbox-housing-metropole-secret").decode()
    ok = client.post(
        "/housing/metropole/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert ok.status_code == 200
    wrong = base64.b64encode(b"portal:nope").decode()
    refused = client.post(
        "/housing/metropole/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {wrong}"},
    )
    assert refused.status_code == 401 and refused.get_json() == {"error": "invalid_client"}
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    grant = token(
        client,
        "canteen",
        "bordeaux",
        data={
            "grant_type": "password",
            "client_id": "portal",
            "client_secret": client_secret("canteen", "bordeaux"),
        },
    )
    assert grant.status_code == 400 and grant.get_json() == {"error": "unsupported_grant_type"}


def test_each_tenant_has_its_own_api_key(client: FlaskClient) -> None:
    assert client.get("/library/pessac/v1/patrons/pes-p-2207", headers=PES).status_code == 200
    assert client.get("/library/pessac/v1/patrons/pes-p-2207", headers=LIB).status_code == 401
    assert client.get(MARIE, headers=PES).status_code == 401


def test_unknown_tenants_and_addresses_are_problems(client: FlaskClient) -> None:
    unknown = client.get("/library/bordeaux/v1/patrons/x", headers=LIB)
    assert unknown.status_code == 404 and problem_code(unknown) == "not_found"
    nowhere = client.get("/library/merignac/v1/nowhere", headers=LIB)
    assert nowhere.status_code == 404 and problem_code(nowhere) == "not_found"
    koha = client.get("/koha/merignac/api/v1/patrons/51", headers=KOHA)
    assert koha.status_code == 404 and koha.get_json()["error_code"] == "not_found"


def test_koha_bearer_tokens_and_missing_auth(client: FlaskClient) -> None:
    issued = client.post(
        KOHA_API + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "portal",
            "client_secret": "sandbox-koha-bordeaux-secret",
        },
    ).get_json()
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    assert client.get(KOHA_API + "/patrons/51", headers=bearer).status_code == 200
    wrong_basic = "Basic " + base64.b64encode(b"portal:wrong").decode()
    refused = client.get(KOHA_API + "/patrons/51", headers={"Authorization": wrong_basic})
    assert refused.status_code == 401 and refused.get_json() == {"error": "Authentication failure."}
    standard_token = token(client, "library", "merignac").get_json()["access_token"]
    other = client.get(
        KOHA_API + "/patrons/51", headers={"Authorization": f"Bearer {standard_token}"}
    )
    assert other.status_code == 401


# -- state changes ---------------------------------------------------------------------------


def test_a_renewal_moves_the_due_date_and_counts(client: FlaskClient) -> None:
    before = loans_by_id(client)["mer-l-0417-2"]
    assert before["renewable"] and before["renewals_done"] == 1
    response = client.post(MARIE + "/loans/mer-l-0417-2/renewal", headers=idem(LIB, "a"))
    new_due = date.fromisoformat(response.get_json()["new_due_date"])
    assert new_due == date.fromisoformat(before["due_date"]) + timedelta(days=21)
    after = loans_by_id(client)["mer-l-0417-2"]
    assert after["due_date"] == new_due.isoformat()
    assert after["renewals_done"] == 2
    assert after["renewable"] is False  # two renewals allowed, both used
    refused = client.post(MARIE + "/loans/mer-l-0417-2/renewal", headers=idem(LIB, "b"))
    assert refused.status_code == 409
    assert "nombre de fois autorisé" in refused.get_json()["detail"]


def test_cancelling_a_hold_removes_it(client: FlaskClient) -> None:
    assert client.delete(MARIE + "/holds/mer-h-0417-1", headers=idem(LIB, "c")).status_code == 204
    holds = client.get(MARIE + "/holds", headers=LIB).get_json()["holds"]
    assert [hold["hold_id"] for hold in holds] == ["mer-h-0417-2"]
    assert client.get(MARIE, headers=LIB).get_json()["holds_ready_count"] == 0


def bookable_days(client: FlaskClient, child: str) -> list[dict[str, Any]]:
    today = sandbox_today()
    first = today.replace(day=1)
    months = [first, (first + timedelta(days=32)).replace(day=1)]
    days: list[dict[str, Any]] = []
    for month in months:
        response = client.get(
            FAMILY + f"/children/{child}/reservations",
            headers=CAN,
            query_string={"month": month.strftime("%Y-%m")},
        )
        days += [day for day in response.get_json()["days"] if day["bookable"]]
    return days


def test_a_booking_shows_up_and_a_past_day_is_refused_on_its_own(client: FlaskClient) -> None:
    child = "enf-4521-2"  # Hugo: Monday, Tuesday, Thursday by default
    friday = next(
        day
        for day in bookable_days(client, child)
        if date.fromisoformat(day["date"]).weekday() == 4
    )
    assert friday["booked"] is False
    deadline = datetime.fromisoformat(friday["changeable_until"])
    assert deadline == change_deadline(date.fromisoformat(friday["date"]))
    assert (deadline.hour, deadline.minute) == (10, 0)
    past = previous_service_day(sandbox_today() - timedelta(days=7))
    response = client.post(
        FAMILY + f"/children/{child}/reservations",
        headers=idem(CAN, "m"),
        json={
            "changes": [
                {"date": past.isoformat(), "book": False},
                {"date": friday["date"], "book": True},
            ]
        },
    )
    first, second = response.get_json()["results"]
    assert first == {
        "date": past.isoformat(),
        "applied": False,
        "reason": first["reason"],
        "reason_code": "too_late",
    }
    assert "date limite de modification est dépassée" in first["reason"]
    assert second == {"date": friday["date"], "applied": True, "reason": "", "reason_code": ""}
    month = friday["date"][:7]
    days = client.get(
        FAMILY + f"/children/{child}/reservations", headers=CAN, query_string={"month": month}
    ).get_json()["days"]
    assert next(day for day in days if day["date"] == friday["date"])["booked"] is True


def test_housing_renewal_moves_expiry_and_closes_the_window(client: FlaskClient) -> None:
    before = client.get(HOUSING + "/dem-0871", headers=HOU).get_json()
    today = sandbox_today()
    assert before["renewal_opens_on"] <= today.isoformat() <= before["renewal_closes_on"]
    receipt = client.post(HOUSING + "/dem-0871/renewal", headers=idem(HOU, "r")).get_json()
    after = client.get(HOUSING + "/dem-0871", headers=HOU).get_json()
    assert receipt["new_expires_on"] == after["expires_on"] > before["expires_on"]
    assert (
        date.fromisoformat(after["expires_on"]).year
        == date.fromisoformat(before["expires_on"]).year + 1
    )
    assert after["status"] == "active"
    assert after["renewal_opens_on"] > today.isoformat()
    assert after["history"][-1] == {
        "date": today.isoformat(),
        "label": "Renouvellement de la demande en ligne",
    }


def test_koha_renewal_moves_the_due_date(client: FlaskClient) -> None:
    before = client.get(KOHA_API + "/checkouts/9004", headers=KOHA).get_json()
    after = client.post(KOHA_API + "/checkouts/9004/renewal", headers=KOHA).get_json()
    assert after["renewals_count"] == before["renewals_count"] + 1
    old = datetime.fromisoformat(before["due_date"]).date()
    assert datetime.fromisoformat(after["due_date"]).date() == old + timedelta(days=21)
    assert after["last_renewed_date"] is not None


def test_reset_restores_every_record(client: FlaskClient) -> None:
    original = loans_by_id(client)
    client.post(MARIE + "/loans/mer-l-0417-5/renewal", headers=idem(LIB, "x"))
    client.delete(MARIE + "/holds/mer-h-0417-1", headers=idem(LIB, "y"))
    client.post(HOUSING + "/dem-0871/renewal", headers=idem(HOU, "z"))
    assert client.post("/_admin/reset").status_code == 200
    assert loans_by_id(client) == original
    assert len(client.get(MARIE + "/holds", headers=LIB).get_json()["holds"]) == 2
    assert client.get(HOUSING + "/dem-0871", headers=HOU).get_json()["status"] == "renewal_due"
    # Stored idempotent answers are forgotten too: the same key acts again.
    again = client.post(MARIE + "/loans/mer-l-0417-5/renewal", headers=idem(LIB, "x"))
    assert "Idempotent-Replayed" not in again.headers


# -- idempotency -----------------------------------------------------------------------------


def test_the_same_key_twice_renews_once(client: FlaskClient) -> None:
    url = MARIE + "/loans/mer-l-0417-5/renewal"
    first = client.post(url, headers=idem(LIB, "same"))
    second = client.post(url, headers=idem(LIB, "same"))
    assert second.status_code == first.status_code == 200
    assert second.data == first.data
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert loans_by_id(client)["mer-l-0417-5"]["renewals_done"] == 1
    third = client.post(url, headers=idem(LIB, "another"))
    assert third.get_json()["new_due_date"] > first.get_json()["new_due_date"]
    assert loans_by_id(client)["mer-l-0417-5"]["renewals_done"] == 2


def test_a_refusal_is_replayed_too(client: FlaskClient) -> None:
    url = MARIE + "/loans/mer-l-0417-3/renewal"
    first = client.post(url, headers=idem(LIB, "k"))
    second = client.post(url, headers=idem(LIB, "k"))
    assert first.status_code == second.status_code == 409
    assert second.data == first.data and second.headers["Idempotent-Replayed"] == "true"


def test_keys_are_scoped_per_tenant(client: FlaskClient) -> None:
    client.post(MARIE + "/loans/mer-l-0417-5/renewal", headers=idem(LIB, "shared"))
    other = client.post(
        "/library/pessac/v1/patrons/pes-p-2207/loans/pes-l-2207-1/renewal",
        headers=idem(PES, "shared"),
    )
    assert other.status_code == 200 and "Idempotent-Replayed" not in other.headers


def test_the_same_key_twice_starts_one_payment(client: FlaskClient) -> None:
    url = FAMILY + "/invoices/fac-4521-2612/payments"
    body = {"return_url": "http://127.0.0.1:5000/r", "notify_url": "http://127.0.0.1:9/n"}
    first = client.post(url, headers=idem(CAN, "p"), json=body)
    second = client.post(url, headers=idem(CAN, "p"), json=body)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    different = client.post(url, headers=idem(CAN, "p"), json={**body, "return_url": "http://x/"})
    assert different.status_code == 422 and problem_code(different) == "idempotency_key_reused"
    new = client.post(url, headers=idem(CAN, "q"), json=body)
    assert new.get_json()["payment_id"] != first.get_json()["payment_id"]


def test_the_same_key_twice_cancels_once(client: FlaskClient) -> None:
    url = MARIE + "/holds/mer-h-0417-2"
    assert client.delete(url, headers=idem(LIB, "d")).status_code == 204
    replay = client.delete(url, headers=idem(LIB, "d"))
    assert replay.status_code == 204 and replay.headers["Idempotent-Replayed"] == "true"
    assert client.delete(url, headers=idem(LIB, "e")).status_code == 404


def test_the_same_key_twice_books_once(client: FlaskClient) -> None:
    child = "enf-4521-2"
    day = next(d for d in bookable_days(client, child) if not d["booked"])
    url = FAMILY + f"/children/{child}/reservations"
    body = {"changes": [{"date": day["date"], "book": True}]}
    first = client.post(url, headers=idem(CAN, "b"), json=body)
    second = client.post(url, headers=idem(CAN, "b"), json=body)
    assert second.data == first.data and second.headers["Idempotent-Replayed"] == "true"


def test_concurrent_requests_with_one_key_act_once(live_sandbox: str) -> None:
    url = live_sandbox + MARIE + "/loans/mer-l-0417-5/renewal"
    answers: list[httpx.Response] = []

    def renew() -> None:
        answers.append(httpx.post(url, headers=idem(LIB, "race"), timeout=10))

    threads = [threading.Thread(target=renew) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.text for answer in answers}) == 1
    loans = httpx.get(live_sandbox + MARIE + "/loans", headers=LIB).json()["loans"]
    assert next(loan for loan in loans if loan["loan_id"] == "mer-l-0417-5")["renewals_done"] == 1


# -- the payment hand-off --------------------------------------------------------------------


def start_payment(client: FlaskClient, receiver: NotificationReceiver, invoice: str) -> str:
    response = client.post(
        FAMILY + f"/invoices/{invoice}/payments",
        headers=idem(CAN, invoice),
        json={
            "return_url": "http://127.0.0.1:5000/paiement/retour?s=1",
            "notify_url": receiver.url,
        },
    )
    assert response.status_code == 201
    return response.get_json()["redirect_url"]


@pytest.mark.parametrize(
    ("action", "state", "paid"),
    [("pay", "paid", True), ("refuse", "refused", False), ("abandon", "abandoned", False)],
)
def test_payment_page_ends_the_payment_notifies_and_returns(
    client: FlaskClient, notify_receiver: NotificationReceiver, action: str, state: str, paid: bool
) -> None:
    redirect_url = start_payment(client, notify_receiver, "fac-4521-2611")
    payment_id = redirect_url.rsplit("/", 1)[1]
    page = client.get(urlsplit(redirect_url).path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and '<html lang="fr">' in html
    assert 'method="post"' in html and "88,35 €" in html
    for label in ("Payer", "Simuler un refus de paiement", "Abandonner"):
        assert label in html

    done = client.post(urlsplit(redirect_url).path, data={"action": action})
    assert done.status_code == 303
    back = urlsplit(done.headers["Location"])
    assert back.path == "/paiement/retour"
    assert parse_qs(back.query) == {"s": ["1"], "payment_id": [payment_id]}

    assert notify_receiver.wait(1) == [{"payment_id": payment_id, "state": state}]
    status = client.get(FAMILY + f"/payments/{payment_id}", headers=CAN).get_json()
    assert status["state"] == state
    assert bool(status["reason"]) is (not paid)
    invoices = client.get(FAMILY + "/invoices", headers=CAN).get_json()["invoices"]
    invoice = next(i for i in invoices if i["invoice_id"] == "fac-4521-2611")
    assert invoice["paid"] is paid
    assert (invoice["paid_on"] is not None) is paid
    again = client.post(
        FAMILY + "/invoices/fac-4521-2611/payments",
        headers=idem(CAN, "again"),
        json={"return_url": "http://a/", "notify_url": "http://b/"},
    )
    assert again.status_code == (409 if paid else 201)
    finished = client.post(urlsplit(redirect_url).path, data={"action": "pay"})
    assert finished.status_code == 409 and "déjà terminé" in finished.get_data(as_text=True)
    # The sandbox records the receiver's answer once its background request returns.
    assert wait_for(lambda: client.get("/_admin/payfip").get_json()["notifications"][0]["status"])
    assert client.get("/_admin/payfip").get_json()["notifications"][0]["status"] == 204


def test_a_browser_that_never_comes_back(
    client: FlaskClient, notify_receiver: NotificationReceiver
) -> None:
    assert client.post("/_admin/payfip", json={"suppress_redirect": True}).status_code == 200
    assert client.get("/_admin/payfip").get_json()["suppress_redirect"] is True
    redirect_url = start_payment(client, notify_receiver, "fac-4521-2612")
    done = client.post(urlsplit(redirect_url).path, data={"action": "pay"})
    assert done.status_code == 200
    assert "Paiement terminé, vous pouvez fermer cette page" in done.get_data(as_text=True)
    assert notify_receiver.wait(1)[0]["state"] == "paid"
    client.post("/_admin/reset")
    assert client.get("/_admin/payfip").get_json() == {
        "suppress_redirect": False,
        "session_lifetime_s": None,
        "payments": [],
        "notifications": [],
    }


def test_payment_page_for_unknown_payment_and_bad_action(
    client: FlaskClient, notify_receiver: NotificationReceiver
) -> None:
    assert client.get("/payfip/pay/pay-nope").status_code == 404
    redirect_url = start_payment(client, notify_receiver, "fac-4521-2612")
    assert client.post(urlsplit(redirect_url).path, data={"action": "steal"}).status_code == 400
    assert client.post("/_admin/payfip", json={"suppress_redirect": "yes"}).status_code == 400
    for lifetime in (-1, "10", True):
        answer = client.post("/_admin/payfip", json={"session_lifetime_s": lifetime})
        assert answer.status_code == 400
    assert client.get("/_admin/payfip").get_json()["session_lifetime_s"] is None


def test_the_payment_page_refuses_an_invoice_paid_meanwhile(
    client: FlaskClient, notify_receiver: NotificationReceiver
) -> None:
    """Two payments of one invoice (two tabs, the other parent): once one is paid, the
    other's page takes nothing, says why, and the payment ends refused."""
    first = urlsplit(start_payment(client, notify_receiver, "fac-4521-2612")).path
    second_url = client.post(
        FAMILY + "/invoices/fac-4521-2612/payments",
        headers=idem(CAN, "second"),
        json={"return_url": "http://127.0.0.1:5000/retour", "notify_url": notify_receiver.url},
    ).get_json()["redirect_url"]
    second = urlsplit(second_url).path
    opened = client.get(second)  # the second tab shows its page before the first pays
    assert opened.status_code == 200 and "Payer 24,60" in opened.get_data(as_text=True)
    assert client.post(first, data={"action": "pay"}).status_code == 303

    page = client.get(second)
    html = unescape(page.get_data(as_text=True))
    assert page.status_code == 409
    assert "Cette facture est déjà réglée\u00a0: ce paiement n'a pas été effectué" in html
    assert "Payer 24,60" not in html and 'method="post"' not in html
    assert "Revenir au site de la collectivité" in html
    pay_again = client.post(second, data={"action": "pay"})
    assert pay_again.status_code == 409 and "déjà terminé" in pay_again.get_data(as_text=True)

    status = client.get(FAMILY + f"/payments/{second.rsplit('/', 1)[1]}", headers=CAN).get_json()
    assert status["state"] == "refused" and "déjà réglée" in status["reason"]
    listed = client.get("/_admin/payfip").get_json()["payments"]
    assert sorted(p["state"] for p in listed) == ["paid", "refused"]
    assert {p["invoice_id"] for p in listed} == {"fac-4521-2612"}


def test_a_decision_on_a_page_left_open_while_the_invoice_was_paid_takes_nothing(
    client: FlaskClient, notify_receiver: NotificationReceiver
) -> None:
    first = urlsplit(start_payment(client, notify_receiver, "fac-4521-2612")).path
    second = urlsplit(
        client.post(
            FAMILY + "/invoices/fac-4521-2612/payments",
            headers=idem(CAN, "second"),
            json={"return_url": "http://127.0.0.1:5000/retour", "notify_url": notify_receiver.url},
        ).get_json()["redirect_url"]
    ).path
    assert client.post(first, data={"action": "pay"}).status_code == 303
    done = client.post(second, data={"action": "pay"})  # the button of a page left open
    assert done.status_code == 303
    assert urlsplit(done.headers["Location"]).path == "/retour"
    states = sorted(n["state"] for n in notify_receiver.wait(2))
    assert states == ["paid", "refused"]
    status = client.get(FAMILY + f"/payments/{second.rsplit('/', 1)[1]}", headers=CAN).get_json()
    assert status["state"] == "refused" and "aucune somme n'a été prélevée" in status["reason"]


def test_a_payment_left_pending_beyond_its_session_lifetime_is_forgotten(
    client: FlaskClient, notify_receiver: NotificationReceiver
) -> None:
    settings = client.post("/_admin/payfip", json={"session_lifetime_s": 0.2}).get_json()
    assert settings["session_lifetime_s"] == 0.2
    page = urlsplit(start_payment(client, notify_receiver, "fac-4521-2612")).path
    payment_id = page.rsplit("/", 1)[1]
    assert client.get(FAMILY + f"/payments/{payment_id}", headers=CAN).status_code == 200
    time.sleep(0.3)
    gone = client.get(FAMILY + f"/payments/{payment_id}", headers=CAN)
    assert gone.status_code == 404 and problem_code(gone) == "unknown_payment"
    expired = client.get(page)
    assert expired.status_code == 404
    assert "n'existe pas ou a expiré" in unescape(expired.get_data(as_text=True))
    assert client.post(page, data={"action": "pay"}).status_code == 404
    assert client.get("/_admin/payfip").get_json()["payments"] == []
    # A payment that ended is kept: only an unfinished one expires.
    client.post("/_admin/payfip", json={"session_lifetime_s": 5})
    other = urlsplit(start_payment(client, notify_receiver, "fac-4521-2611")).path
    assert client.post(other, data={"action": "refuse"}).status_code == 303
    client.post("/_admin/payfip", json={"session_lifetime_s": 0})
    ended = client.get(FAMILY + f"/payments/{other.rsplit('/', 1)[1]}", headers=CAN)
    assert ended.status_code == 200 and ended.get_json()["state"] == "refused"


# -- fault injection -------------------------------------------------------------------------

FAULT_TARGETS = [
    ("library", "merignac", MARIE, LIB),
    ("library", "pessac", "/library/pessac/v1/patrons/pes-p-2207", PES),
    ("canteen", "bordeaux", FAMILY, CAN),
    ("housing", "metropole", HOUSING + "/dem-0871", HOU),
    ("koha", "bordeaux", KOHA_API + "/patrons/51", KOHA),
    ("water", "bordeaux", LEAK, WAT),
    ("water", "pessac", "/water/pessac/v1/contracts/ctr-pes-0101", WPE),
]
TARGET_IDS = [f"{kind}-{tenant}" for kind, tenant, _url, _headers in FAULT_TARGETS]


def set_fault(client: FlaskClient, kind: str, tenant: str, **fault: Any) -> dict[str, Any]:
    response = client.post(f"/_admin/faults/{kind}/{tenant}", json=fault)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize(("kind", "tenant", "url", "headers"), FAULT_TARGETS, ids=TARGET_IDS)
def test_error500_rate_limit_and_unavailable(
    client: FlaskClient,
    openapi_specs: dict[str, OpenAPI],
    kind: str,
    tenant: str,
    url: str,
    headers: dict[str, str],
) -> None:
    api = Contract(client, openapi_specs[kind], kind)
    set_fault(client, kind, tenant, mode="error500")
    broken = client.get(url, headers=headers)
    assert broken.status_code == 500
    set_fault(client, kind, tenant, mode="rate_limit", retry_after=7)
    limited = client.get(url, headers=headers)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    set_fault(client, kind, tenant, mode="unavailable", retry_after=3)
    down = client.get(url, headers=headers)
    assert down.status_code == 503 and down.headers["Retry-After"] == "3"
    if kind == "koha":
        assert broken.get_json()["error_code"] == "internal_server_error"
        assert limited.get_json()["error_code"] == "too_many_requests"
        assert down.get_json()["error_code"] == "under_maintenance"
        api.validate(broken)
        api.validate(down)
    else:
        assert problem_code(broken) == "internal_error"
        assert problem_code(limited) == "rate_limited" and limited.get_json()["retry_after"] == 7
        assert problem_code(down) == "unavailable" and down.get_json()["retry_after"] == 3
        for response in (broken, limited, down):
            api.validate(response)


@pytest.mark.parametrize(("kind", "tenant", "url", "headers"), FAULT_TARGETS, ids=TARGET_IDS)
def test_malformed_and_wrong_schema(
    client: FlaskClient,
    openapi_specs: dict[str, OpenAPI],
    kind: str,
    tenant: str,
    url: str,
    headers: dict[str, str],
) -> None:
    api = Contract(client, openapi_specs[kind], kind)
    set_fault(client, kind, tenant, mode="malformed")
    malformed = client.get(url, headers=headers)
    assert malformed.status_code == 200 and malformed.mimetype == "application/json"
    with pytest.raises(ValueError):
        json.loads(malformed.data)
    set_fault(client, kind, tenant, mode="wrong_schema")
    wrong = client.get(url, headers=headers)
    assert wrong.status_code == 200 and isinstance(wrong.get_json(), dict)
    with pytest.raises(InvalidData):
        api.validate(wrong)
    client.delete(f"/_admin/faults/{kind}/{tenant}")
    api.validate(client.get(url, headers=headers))


@pytest.mark.parametrize(("kind", "tenant", "url", "headers"), FAULT_TARGETS, ids=TARGET_IDS)
def test_latency_and_a_short_hang(
    client: FlaskClient, kind: str, tenant: str, url: str, headers: dict[str, str]
) -> None:
    set_fault(client, kind, tenant, latency_ms=150)
    started = time.monotonic()
    assert client.get(url, headers=headers).status_code == 200
    assert time.monotonic() - started >= 0.15
    set_fault(client, kind, tenant, mode="hang", hang_s=0.3)
    started = time.monotonic()
    hung = client.get(url, headers=headers)
    assert time.monotonic() - started >= 0.3
    assert hung.status_code == 503


def test_faults_hit_one_tenant_only_and_come_before_authentication(client: FlaskClient) -> None:
    set_fault(client, "library", "merignac", mode="error500")
    assert client.get(MARIE).status_code == 500  # no credentials: the server is down anyway
    assert client.get("/library/pessac/v1/patrons/pes-p-2207", headers=PES).status_code == 200
    assert client.post("/library/merignac/oauth/token").status_code == 500


def test_reset_drops_the_connection_without_an_answer(
    client: FlaskClient, live_sandbox: str
) -> None:
    httpx.post(live_sandbox + "/_admin/faults/library/merignac", json={"mode": "reset"})
    with pytest.raises(httpx.TransportError):
        httpx.get(live_sandbox + MARIE, headers=LIB, timeout=5)
    # The sandbox itself keeps serving, other tenants included.
    assert httpx.get(live_sandbox + "/library/pessac/v1/patrons/pes-p-2207", headers=PES).is_success
    # Through a test client there is no socket to drop: the call fails all the same.
    set_fault(client, "library", "merignac", mode="reset")
    with pytest.raises(ConnectionAbortedError):
        client.get(MARIE, headers=LIB)


def test_a_hang_lasts_until_the_fault_is_cleared(live_sandbox: str) -> None:
    httpx.post(live_sandbox + "/_admin/faults/housing/metropole", json={"mode": "hang"})
    outcome: dict[str, Any] = {}

    def call() -> None:
        started = time.monotonic()
        outcome["status"] = httpx.get(
            live_sandbox + HOUSING + "/dem-0871", headers=HOU, timeout=20
        ).status_code
        outcome["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), "the request should still be hanging"
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(live_sandbox + HOUSING + "/dem-0871", headers=HOU, timeout=0.3)
    httpx.delete(live_sandbox + "/_admin/faults/housing/metropole")
    thread.join(5)
    assert outcome["status"] == 503 and outcome["elapsed"] < 5


def test_fault_admin_api(client: FlaskClient) -> None:
    assert client.get("/_admin/faults/canteen/bordeaux").get_json() == {
        "mode": None,
        "latency_ms": 0,
        "retry_after": 10,
        "hang_s": 30.0,
        "writes_only": False,
    }
    shown = set_fault(client, "canteen", "bordeaux", mode="hang", hang_s=600)
    assert shown["hang_s"] == 60.0
    assert client.get("/_admin/faults/canteen/bordeaux").get_json()["mode"] == "hang"
    assert "canteen/bordeaux" in client.get("/_admin/faults").get_json()["faults"]
    assert client.delete("/_admin/faults/canteen/bordeaux").status_code == 200
    assert client.get("/_admin/faults/canteen/bordeaux").get_json()["mode"] is None
    set_fault(client, "koha", "bordeaux", mode="error500")
    set_fault(client, "library", "pessac", latency_ms=10)
    client.post("/_admin/reset")
    assert client.get("/_admin/faults").get_json()["faults"] == {}

    for bad in (
        {"mode": "explode"},
        {"mode": "hang", "hang_s": -1},
        {"latency_ms": "x"},
        {"retry_after": True},
        {"mood": "hang"},
        {"mode": "error500", "writes_only": "yes"},
    ):
        response = client.post("/_admin/faults/library/merignac", json=bad)
        assert response.status_code == 400, bad
    assert client.get("/_admin/faults/library/merignac").get_json()["mode"] is None
    assert client.post("/_admin/faults/library/lyon", json={}).status_code == 404
    assert client.post("/_admin/faults/library/merignac", data="x").status_code == 400


def test_a_fault_on_writes_only_leaves_reads_working(client: FlaskClient) -> None:
    set_fault(client, "canteen", "bordeaux", mode="error500", writes_only=True)
    reservations = FAMILY + "/children/enf-4521-1/reservations"
    read = client.get(reservations, headers=CAN, query_string={"month": "2026-11"})
    assert read.status_code == 200
    write = client.post(
        reservations,
        headers=idem(CAN, "writes-only-1"),
        json={"changes": [{"date": "2026-11-26", "book": True}]},
    )
    assert write.status_code == 500


def test_the_admin_api_can_be_switched_off(sandbox_config: dict) -> None:
    client = create_app({**sandbox_config, "SANDBOX_ADMIN": False}).test_client()
    assert client.get("/_admin/faults").status_code == 404
    assert client.post("/_admin/payfip", json={"suppress_redirect": True}).status_code == 404


# -- deterministic data ----------------------------------------------------------------------

READS = [
    (MARIE, LIB),
    (MARIE + "/loans", LIB),
    (MARIE + "/holds", LIB),
    (MARIE + "/account", LIB),
    ("/library/pessac/v1/patrons/pes-p-0101/loans", PES),
    (FAMILY, CAN),
    (FAMILY + "/invoices", CAN),
    (HOUSING + "/dem-0415", HOU),
    (KOHA_API + "/checkouts?patron_id=51", {**KOHA, "x-koha-embed": "item"}),
    (KOHA_API + "/patrons/51/holds", KOHA),
    (LEAK, WAT),
    (LEAK + "/readings", WAT),
    (LEAK + "/consumption", WAT),
    (LEAK + "/alerts", WAT),
    (LEAK + "/invoices", WAT),
    ("/water/pessac/v1/contracts/ctr-pes-0101/alerts", WPE),
]


def test_two_sandboxes_hold_the_same_records_for_the_same_day(sandbox_config: dict) -> None:
    first = create_app(sandbox_config).test_client()
    second = create_app(sandbox_config).test_client()
    for url, headers in READS:
        assert first.get(url, headers=headers).data == second.get(url, headers=headers).data, url
    day = date(2027, 3, 15)
    assert build_dataset(day) == build_dataset(day)


def test_records_follow_the_day_they_are_built_for(sandbox_config: dict) -> None:
    early = create_app({**sandbox_config, "SANDBOX_TODAY": "2030-03-04"}).test_client()
    later = create_app({**sandbox_config, "SANDBOX_TODAY": "2030-03-14"}).test_client()
    one = loans_by_id(early)["mer-l-0417-1"]
    two = loans_by_id(later)["mer-l-0417-1"]
    assert one["due_date"] == "2030-02-28" and two["due_date"] == "2030-03-10"
    assert {k: v for k, v in one.items() if k != "due_date"} == {
        k: v for k, v in two.items() if k != "due_date"
    }
    housing = later.get(HOUSING + "/dem-0871", headers=HOU).get_json()
    assert housing["status"] == "renewal_due"


# -- the records the portal's journeys need --------------------------------------------------


@pytest.fixture
def today() -> date:
    return sandbox_today()


def test_marie_therese_has_something_to_do_in_every_service(
    client: FlaskClient, today: date
) -> None:
    loans = list(loans_by_id(client).values())
    dues = [date.fromisoformat(loan["due_date"]) for loan in loans]
    assert sum(due < today for due in dues) == 1
    assert any(today <= due <= today + timedelta(days=3) for due in dues)
    assert any(loan["not_renewable_reason"] == REASON_RESERVED for loan in loans)
    holds = client.get(MARIE + "/holds", headers=LIB).get_json()["holds"]
    ready = next(hold for hold in holds if hold["status"] == "ready")
    assert date.fromisoformat(ready["waiting_until"]) > today
    assert next(hold for hold in holds if hold["status"] == "waiting")["queue_position"] == 3
    koha = client.get(KOHA_API + "/checkouts", headers=KOHA, query_string={"patron_id": 51})
    koha_dues = [datetime.fromisoformat(c["due_date"]).date() for c in koha.get_json()]
    assert any(due < today for due in koha_dues)

    family = client.get(FAMILY, headers=CAN).get_json()
    assert len(family["children"]) == 2
    invoices = client.get(FAMILY + "/invoices", headers=CAN).get_json()["invoices"]
    assert sum(not i["paid"] for i in invoices) == 2 and sum(i["paid"] for i in invoices) == 2

    application = client.get(HOUSING + "/dem-0871", headers=HOU).get_json()
    assert application["renewal_opens_on"] <= today.isoformat() <= application["renewal_closes_on"]


def test_other_identities_cover_the_other_cases(client: FlaskClient, today: date) -> None:
    statuses = {
        app_id: client.get(HOUSING + f"/{app_id}", headers=HOU).get_json()
        for app_id in ("dem-1544", "dem-0932", "dem-0415", "dem-2290")
    }
    assert statuses["dem-1544"]["status"] == "active"
    assert statuses["dem-1544"]["renewal_opens_on"] > today.isoformat()
    assert statuses["dem-0932"]["status"] == "expired"
    assert statuses["dem-0415"]["status"] == "closed"
    assert "logement attribué" in statuses["dem-0415"]["closed_reason"]
    assert statuses["dem-2290"]["status"] == "filed"
    assert statuses["dem-2290"]["expires_on"] is None
    eloise = client.get("/library/merignac/v1/patrons/mer-p-1290/loans", headers=LIB).get_json()
    assert "carte de lecteur a expiré" in eloise["loans"][0]["not_renewable_reason"]
    jean = client.get("/library/pessac/v1/patrons/pes-p-0101", headers=PES).get_json()
    assert jean["card_expires_on"] is None and jean["balance_cents"] == 570


def test_demo_accounts_prove_ownership_with_their_proofs(client: FlaskClient) -> None:
    assert len(DEMO_ACCOUNTS) >= 5
    assert set(DEMO_ACCOUNTS) <= set(IDENTITIES_BY_KEY)
    kinds = {account.kind for accounts in DEMO_ACCOUNTS.values() for account in accounts}
    assert kinds == {"library", "koha", "canteen", "housing", "water"}
    for identity, accounts in DEMO_ACCOUNTS.items():
        birthdate = IDENTITIES_BY_KEY[identity].birthdate
        for kind, tenant, external_id, proof in accounts:
            base = TENANT_PATHS[(kind, tenant)]
            if kind == "koha":
                response = client.post(
                    base + "/api/v1/auth/password/validation", headers=KOHA, json=proof
                )
                if response.status_code == 400:  # the locked-out patron
                    assert identity == "paul-antoine"
                    continue
                assert response.status_code == 201
                assert str(response.get_json()["patron_id"]) == external_id
                continue
            verify = {
                "library": "/v1/patrons/verify",
                "canteen": "/v1/families/verify",
                "housing": "/v1/applications/verify",
                "water": "/v1/contracts/verify",
            }[kind]
            if "birthdate" in proof:
                assert proof["birthdate"] == birthdate
            response = client.post(base + verify, headers=key(kind, tenant), json=proof)
            if response.status_code == 423:
                assert identity == "paul-antoine"
                continue
            assert response.status_code == 200, (identity, kind, response.get_json())
            assert external_id in response.get_json().values()


# -- the canteen calendar --------------------------------------------------------------------


def next_weekday(start: date, weekday: int) -> date:
    return start + timedelta(days=(weekday - start.weekday()) % 7 or 7)


def previous_service_day(start: date) -> date:
    day = start
    while not serves_meals(day):
        day -= timedelta(days=1)
    return day


@pytest.mark.parametrize(
    ("meal", "deadline"),
    [
        (date(2026, 11, 26), date(2026, 11, 24)),  # Thursday -> Tuesday
        (date(2026, 11, 23), date(2026, 11, 19)),  # Monday -> previous Thursday
        (date(2026, 11, 13), date(2026, 11, 10)),  # Friday -> Tuesday (11 Nov is a holiday)
    ],
)
def test_changes_close_at_ten_two_working_days_before(meal: date, deadline: date) -> None:
    closes = change_deadline(meal)
    assert closes.date() == deadline and (closes.hour, closes.minute) == (10, 0)
    assert closes.utcoffset() is not None


def test_no_meals_on_wednesdays_weekends_and_public_holidays() -> None:
    assert easter_sunday(2027) == date(2027, 3, 28)
    assert not serves_meals(date(2026, 11, 25))  # Wednesday
    assert not serves_meals(date(2026, 11, 28))  # Saturday
    assert not serves_meals(date(2026, 11, 11))  # Armistice
    assert not serves_meals(date(2027, 3, 29))  # Easter Monday
    assert serves_meals(date(2026, 11, 26))


def test_a_month_lists_every_calendar_day(client: FlaskClient) -> None:
    response = client.get(
        FAMILY + "/children/enf-4521-1/reservations", headers=CAN, query_string={"month": "2028-02"}
    )
    days = response.get_json()["days"]
    assert [d["date"] for d in days] == [f"2028-02-{n:02d}" for n in range(1, 30)]
    wednesday = next(d for d in days if d["date"] == "2028-02-02")
    assert wednesday == {
        "date": "2028-02-02",
        "booked": False,
        "served": False,
        "bookable": False,
        "changeable_until": None,
        "note": "Pas de restauration scolaire le mercredi.",
    }


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    """Notification threads are daemons with a short timeout; give them a moment."""
    yield
    for thread in threading.enumerate():
        if thread.name.startswith("payfip-notify-"):
            thread.join(5)


def test_answer_late_does_the_write_first_then_holds_its_answer_back(
    client: FlaskClient,
) -> None:
    """A server that processed a renewal and then stalled: the application is renewed
    before the answer leaves, a replay of the key is held back the same way, and reads
    answer at once."""
    before = client.get(HOUSING + "/dem-0871", headers=HOU).get_json()["expires_on"]
    set_fault(client, "housing", "metropole", mode="answer_late", hang_s=0.4)
    seen: dict[str, Any] = {}

    def renew() -> None:
        started = time.monotonic()
        seen["answer"] = client.post(HOUSING + "/dem-0871/renewal", headers=idem(HOU, "late-1"))
        seen["took"] = time.monotonic() - started

    thread = threading.Thread(target=renew)
    thread.start()
    deadline = time.monotonic() + 0.3
    renewed = False
    while time.monotonic() < deadline and not renewed:
        current = client.get(HOUSING + "/dem-0871", headers=HOU)
        renewed = current.get_json()["expires_on"] != before
        time.sleep(0.02)
    thread.join(2)
    assert renewed, "the write is applied before its answer is held back"
    assert seen["took"] >= 0.4 and seen["answer"].status_code == 200
    started = time.monotonic()
    replay = client.post(HOUSING + "/dem-0871/renewal", headers=idem(HOU, "late-1"))
    assert time.monotonic() - started >= 0.4
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == seen["answer"].get_json()


# -- water -----------------------------------------------------------------------------------

PDF_B64 = base64.b64encode(b"%PDF-1.4\n% facture\n%%EOF\n").decode()


def cap_body(content_base64: str = PDF_B64, **changes: Any) -> dict[str, Any]:
    return {
        "repaired_on": (sandbox_today() - timedelta(days=2)).isoformat(),
        "repair_location": "Joint du chauffe-eau",
        "repair_invoice": {"content_type": "application/pdf", "content_base64": content_base64},
        **changes,
    }


def test_water_contract(client: FlaskClient, openapi_specs: dict[str, OpenAPI]) -> None:
    api = Contract(client, openapi_specs["water"], "water")
    verify = WATER + "/verify"
    proof = {"contract_number": "ct-33063-004521", "customer_reference": "r7k4-m2p9"}
    assert api.call("POST", verify, 200, headers=WAT, json=proof).get_json() == {
        "contract_id": "ctr-bdx-4521",
        "display_name": "Marie-Thérèse Dubois",
    }
    bad = {"contract_number": "CT-33063-006630", "customer_reference": "WRONG"}
    for remaining in (4, 3, 2, 1):
        refused = api.call("POST", verify, 401, headers=WAT, json=bad)
        assert refused.get_json()["remaining_attempts"] == remaining
    assert problem_code(api.call("POST", verify, 423, headers=WAT, json=bad)) == "account_locked"
    api.call("POST", verify, 422, headers=WAT, json={"contract_number": "CT-33063-004521"})
    api.call("POST", verify, 401, json=proof)

    contract = api.call("GET", LEAK, 200, headers=WAT).get_json()
    assert contract["payment_plan"] == "per_invoice" and contract["ended_on"] is None
    assert problem_code(api.call("GET", LEAK + "x", 404, headers=WAT)) == "unknown_contract"
    readings = api.call("GET", LEAK + "/readings", 200, headers=WAT).get_json()["readings"]
    periods = api.call("GET", LEAK + "/consumption", 200, headers=WAT).get_json()["periods"]
    assert len(periods) == 10 and len(readings) == 11
    alerts = api.call("GET", LEAK + "/alerts", 200, headers=WAT).get_json()["alerts"]
    assert [a["status"] for a in alerts] == ["open"]

    last = readings[0]
    today = sandbox_today().isoformat()
    declared = api.call(
        "POST",
        LEAK + "/readings",
        201,
        headers=idem(WAT, "r-1"),
        json={"index_m3": last["index_m3"] + 3, "taken_on": today},
    ).get_json()
    assert declared == {"taken_on": today, "index_m3": last["index_m3"] + 3, "kind": "declared"}
    below = api.call(
        "POST",
        LEAK + "/readings",
        409,
        headers=idem(WAT, "r-2"),
        json={"index_m3": last["index_m3"], "taken_on": today},
    )
    assert problem_code(below) == "below_last_reading"
    assert below.get_json()["last_index_m3"] == last["index_m3"] + 3
    api.call("POST", LEAK + "/readings", 400, headers=WAT, json={"index_m3": 1})
    api.call("POST", LEAK + "/readings", 422, headers=idem(WAT, "r-3"), json={"index_m3": "douze"})

    cap = LEAK + "/alerts/alr-bdx-4521-1/cap-request"
    api.call("POST", cap, 422, headers=idem(WAT, "c-0"), json=cap_body("pas du base64 !"))
    receipt = api.call("POST", cap, 201, headers=idem(WAT, "c-1"), json=cap_body()).get_json()
    assert receipt["alert_id"] == "alr-bdx-4521-1" and receipt["received_on"] == today
    closed = api.call("POST", cap, 409, headers=idem(WAT, "c-2"), json=cap_body())
    assert problem_code(closed) == "alert_closed"
    unknown = api.call(
        "POST", LEAK + "/alerts/nope/cap-request", 404, headers=idem(WAT, "c-3"), json=cap_body()
    )
    assert problem_code(unknown) == "unknown_alert"
    api.call("POST", cap, 400, headers=WAT, json=cap_body())

    invoices = api.call("GET", LEAK + "/invoices", 200, headers=WAT).get_json()["invoices"]
    assert {invoice["paid"] for invoice in invoices} == {True, False}
    unpaid = next(i["invoice_id"] for i in invoices if not i["paid"])
    paid = next(i["invoice_id"] for i in invoices if i["paid"])
    pdf = api.call("GET", LEAK + f"/invoices/{unpaid}/pdf", 200, headers=WAT)
    assert pdf.data.startswith(b"%PDF-1.4") and pdf.data.rstrip().endswith(b"%%EOF")
    archived = next(i["invoice_id"] for i in invoices if not i["pdf_available"])
    gone = api.call("GET", LEAK + f"/invoices/{archived}/pdf", 404, headers=WAT)
    assert problem_code(gone) == "pdf_unavailable"
    urls = {"return_url": "http://127.0.0.1:5000/back", "notify_url": "http://127.0.0.1:9/n"}
    started = api.call(
        "POST", LEAK + f"/invoices/{unpaid}/payments", 201, headers=idem(WAT, "p-1"), json=urls
    ).get_json()
    assert urlsplit(started["redirect_url"]).path == f"/payfip/pay/{started['payment_id']}"
    again = api.call(
        "POST", LEAK + f"/invoices/{paid}/payments", 409, headers=idem(WAT, "p-2"), json=urls
    )
    assert problem_code(again) == "already_paid"
    api.call(
        "POST",
        LEAK + f"/invoices/{unpaid}/payments",
        422,
        headers=idem(WAT, "p-3"),
        json={"return_url": "/relative", "notify_url": "x"},
    )
    status = api.call("GET", LEAK + f"/payments/{started['payment_id']}", 200, headers=WAT)
    assert status.get_json()["state"] == "pending"
    assert problem_code(api.call("GET", LEAK + "/payments/pay-nope", 404, headers=WAT)) == (
        "unknown_payment"
    )
    api.assert_every_operation_succeeded()


def test_water_pessac_answers_as_the_spec_says(
    client: FlaskClient, openapi_specs: dict[str, OpenAPI]
) -> None:
    api = Contract(client, openapi_specs["water"], "water")
    base = "/water/pessac/v1/contracts"
    for contract_id in ("ctr-pes-0101", "ctr-pes-1290", "ctr-pes-3112"):
        for suffix in ("", "/readings", "/consumption", "/alerts", "/invoices"):
            api.call("GET", f"{base}/{contract_id}{suffix}", 200, headers=WPE)
    late = api.call(
        "POST",
        base + "/ctr-pes-0101/alerts/alr-pes-0101-1/cap-request",
        409,
        headers=idem(WPE, "late"),
        json=cap_body(),
    )
    assert problem_code(late) == "deadline_passed"
    # Each operator has its own key, and its own contracts.
    assert client.get(base + "/ctr-pes-0101", headers=WAT).status_code == 401
    assert client.get(base + "/ctr-bdx-4521", headers=WPE).status_code == 404


def test_a_cap_request_checks_the_pdf_and_keeps_only_its_digest(client: FlaskClient) -> None:
    cap = LEAK + "/alerts/alr-bdx-4521-1/cap-request"
    not_pdf = base64.b64encode(b"GIF89a nope").decode()
    refused = client.post(cap, headers=idem(WAT, "a"), json=cap_body(not_pdf))
    assert refused.status_code == 422 and problem_code(refused) == "attachment_rejected"
    assert "PDF" in refused.get_json()["detail"]
    too_big = base64.b64encode(b"%PDF-1.4" + b"0" * (5 * 1024 * 1024)).decode()
    refused = client.post(cap, headers=idem(WAT, "b"), json=cap_body(too_big))
    assert refused.status_code == 422 and problem_code(refused) == "attachment_rejected"
    assert "5 Mo" in refused.get_json()["detail"]
    typed = cap_body()
    typed["repair_invoice"]["content_type"] = "image/png"
    assert problem_code(client.post(cap, headers=idem(WAT, "c"), json=typed)) == (
        "attachment_rejected"
    )
    future = (sandbox_today() + timedelta(days=1)).isoformat()
    assert (
        client.post(cap, headers=idem(WAT, "d"), json=cap_body(repaired_on=future)).status_code
        == 422
    )
    assert (
        client.post(cap, headers=idem(WAT, "e"), json=cap_body(repair_location=" ")).status_code
        == 422
    )
    listed = client.get(LEAK + "/alerts", headers=WAT).get_json()["alerts"][0]
    assert listed["status"] == "open" and listed["requested_on"] is None

    content = b"%PDF-1.4\n% facture\n%%EOF\n"
    assert client.post(cap, headers=idem(WAT, "f"), json=cap_body()).status_code == 201
    app = client.application
    from sandbox.backends.common import STATE_KEY

    alert = app.extensions[STATE_KEY].dataset.water["bordeaux"].contracts["ctr-bdx-4521"]
    kept = alert.alerts["alr-bdx-4521-1"].cap_request
    assert kept.attachment_bytes == len(content)
    assert kept.attachment_sha256 == hashlib.sha256(content).hexdigest()
    assert not any(isinstance(value, bytes) for value in vars(kept).values())
    listed = client.get(LEAK + "/alerts", headers=WAT).get_json()["alerts"][0]
    assert listed["status"] == "requested" and listed["requested_on"] == sandbox_today().isoformat()


def test_a_declared_reading_must_be_plausible_and_dated(client: FlaskClient) -> None:
    url = WATER + "/ctr-bdx-0958/readings"
    readings = client.get(url, headers=WAT).get_json()["readings"]
    assert [r["kind"] for r in readings[:3]] == ["estimated", "estimated", "actual"]
    last_actual = readings[2]
    today = sandbox_today()
    # Below an estimate is fine: only actual and declared readings count.
    below_estimate = readings[0]["index_m3"] - 1
    assert below_estimate > last_actual["index_m3"]
    for body, status, code in (
        (
            {"index_m3": below_estimate, "taken_on": (today + timedelta(days=1)).isoformat()},
            422,
            "invalid_request",
        ),
        (
            {"index_m3": last_actual["index_m3"] - 1, "taken_on": today.isoformat()},
            409,
            "below_last_reading",
        ),
        (
            {"index_m3": last_actual["index_m3"] + 5000, "taken_on": today.isoformat()},
            409,
            "implausible_reading",
        ),
        ({"index_m3": below_estimate, "taken_on": "2001-01-01"}, 422, "invalid_request"),
    ):
        answer = client.post(url, headers=idem(WAT, str(body)), json=body)
        assert (answer.status_code, problem_code(answer)) == (status, code), body
    assert client.get(WATER + "/ctr-bdx-0958", headers=WAT).get_json()["reading_requested_by"]
    ok = client.post(
        url,
        headers=idem(WAT, "ok"),
        json={"index_m3": below_estimate, "taken_on": today.isoformat()},
    )
    assert ok.status_code == 201
    assert client.get(url, headers=WAT).get_json()["readings"][0] == ok.get_json()
    assert (
        client.get(WATER + "/ctr-bdx-0958", headers=WAT).get_json()["reading_requested_by"] is None
    )
    closed = client.post(
        WATER + "/ctr-bdx-0415/readings",
        headers=idem(WAT, "closed"),
        json={"index_m3": 999_999, "taken_on": today.isoformat()},
    )
    assert closed.status_code == 409 and problem_code(closed) == "contract_closed"


def test_the_water_households_the_portal_needs(client: FlaskClient, today: date) -> None:
    def get(path: str, headers: dict[str, str] = WAT) -> Any:
        return client.get(path, headers=headers).get_json()

    periods = get(LEAK + "/consumption")["periods"]
    latest, same = periods[0]["volume_m3"], [p["volume_m3"] for p in periods[2:8:2]]
    assert latest > 2 * sum(same) / 3
    (alert,) = get(LEAK + "/alerts")["alerts"]
    notified = date.fromisoformat(alert["notified_on"])
    assert today - timedelta(days=7) <= notified < today
    respond_by = date.fromisoformat(alert["respond_by"])
    assert respond_by.day == notified.day or respond_by.month != notified.month
    assert 28 <= (respond_by - notified).days <= 31
    assert alert["average_m3"] == round(sum(same) / 3)
    unpaid = {i["invoice_id"] for i in get(LEAK + "/invoices")["invoices"] if not i["paid"]}
    assert alert["invoice_id"] in unpaid

    monthly = get(WATER + "/ctr-bdx-6630")
    assert monthly["payment_plan"] == "monthly" and len(monthly["instalments"]) == 10
    asked = date.fromisoformat(get(WATER + "/ctr-bdx-0958")["reading_requested_by"])
    assert asked == today + timedelta(days=10)
    assert date.fromisoformat(get(WATER + "/ctr-bdx-0415")["ended_on"]) < today
    pessac = "/water/pessac/v1/contracts"
    dues = [
        date.fromisoformat(i["due_date"])
        for i in get(pessac + "/ctr-pes-0101/invoices", WPE)["invoices"]
        if not i["paid"]
    ]
    assert dues == [today + timedelta(days=7)]
    new = get(pessac + "/ctr-pes-1290/consumption", WPE)["periods"]
    assert len(new) == 2 and get(pessac + "/ctr-pes-1290", WPE)["payment_plan"] == "direct_debit"


def test_a_water_invoice_is_paid_on_the_payment_page(
    client: FlaskClient, notify_receiver: NotificationReceiver
) -> None:
    """The same PayFiP stand-in as the canteen's, with the water operator as issuer."""
    invoices = client.get(LEAK + "/invoices", headers=WAT).get_json()["invoices"]
    invoice = next(i["invoice_id"] for i in invoices if not i["paid"])
    started = client.post(
        LEAK + f"/invoices/{invoice}/payments",
        headers=idem(WAT, "pay"),
        json={"return_url": "http://127.0.0.1:5000/retour", "notify_url": notify_receiver.url},
    ).get_json()
    page = client.get(urlsplit(started["redirect_url"]).path).get_data(as_text=True)
    assert "Régie de l&#39;eau de Bordeaux" in page or "Régie de l'eau de Bordeaux" in page
    assert (
        client.post(urlsplit(started["redirect_url"]).path, data={"action": "pay"}).status_code
        == 303
    )
    assert notify_receiver.wait(1)[0]["state"] == "paid"
    status = client.get(LEAK + f"/payments/{started['payment_id']}", headers=WAT).get_json()
    assert status["state"] == "paid"
    listed = client.get(LEAK + "/invoices", headers=WAT).get_json()["invoices"]
    assert next(i for i in listed if i["invoice_id"] == invoice)["paid"] is True
    # A canteen family's payments are not the water operator's, and vice versa.
    gone = client.get(FAMILY + f"/payments/{started['payment_id']}", headers=CAN)
    assert gone.status_code == 404
