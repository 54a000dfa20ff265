"""Runtime contract checks: a back-end's answer is held to the territory's OpenAPI spec,
and a breach is reported with where it happened but never with the data itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing.exceptions import Unresolvable

from connectors.base import ContractBroken
from connectors.contract import SPEC_DIR, Contract, load_contract
from tests.contract.support import connector_logs_enabled  # noqa: F401 (autouse)

SPEC = """
openapi: 3.1.0
info: {title: test, version: 1.0.0}
servers:
  - url: "{instance}/v1"
    variables: {instance: {default: "https://example.test"}}
paths:
  /patrons/{id}/loans:
    get:
      responses:
        200:
          description: loans
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Loans"}
        404: {$ref: "#/components/responses/NotFound"}
  /patrons/{id}/holds/{hold_id}:
    delete:
      responses:
        "204": {description: cancelled}
  /patrons/{id}/account:
    get:
      responses:
        "200": {$ref: "#/components/responses/Account"}
components:
  responses:
    NotFound:
      description: not found
      content:
        application/problem+json:
          schema: {type: object, required: [code]}
    Account:
      description: the account
      content:
        application/json:
          schema:
            type: object
            required: [balance_cents]
            properties: {balance_cents: {type: integer}}
  schemas:
    Loans:
      type: object
      required: [loans]
      properties:
        loans: {type: array, items: {$ref: "#/components/schemas/Loan"}}
    Loan:
      type: object
      required: [loan_id, title, due_date, renewable]
      properties:
        loan_id: {type: string}
        title: {type: string}
        due_date: {type: string, format: date}
        renewable: {type: boolean}
        since: {const: 2024-05-01}
"""

ROUTE = "/v1/patrons/{patron_id}/loans"


def loan(**overrides: Any) -> dict[str, Any]:
    body = {"loan_id": "l-1", "title": "Le Petit Prince", "due_date": "2026-12-01"}
    body["renewable"] = True
    body.update(overrides)
    return body


@pytest.fixture
def contract(tmp_path: Path) -> Contract:
    path = tmp_path / "library.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return Contract.from_file(path)


def test_an_answer_that_keeps_the_contract_passes(contract: Contract) -> None:
    contract.check("bib-test", "GET", ROUTE, 200, {"loans": [loan(), loan(extra="ok")]})


def test_a_missing_field_names_instance_route_path_and_field(contract: Contract) -> None:
    body = {"loans": [loan(), {"loan_id": "l-2", "title": "Secret title", "renewable": True}]}
    with pytest.raises(ContractBroken) as raised:
        contract.check("bib-test", "GET", ROUTE, 200, body)
    message = str(raised.value)
    assert "instance 'bib-test'" in message
    assert "GET /v1/patrons/{patron_id}/loans 200" in message
    assert "$.loans[1]" in message
    assert "'due_date'" in message
    assert "Secret title" not in message and "l-2" not in message


def test_a_wrong_type_names_the_path_but_not_the_value(contract: Contract) -> None:
    with pytest.raises(ContractBroken) as raised:
        contract.check("bib-test", "GET", ROUTE, 200, {"loans": [loan(renewable="Marie Dupont")]})
    message = str(raised.value)
    assert "$.loans[0].renewable" in message
    assert "boolean" in message
    assert "Marie Dupont" not in message


def test_formats_are_checked(contract: Contract) -> None:
    with pytest.raises(ContractBroken, match=r"\$\.loans\[0\]\.due_date.*format"):
        contract.check("bib-test", "GET", ROUTE, 200, {"loans": [loan(due_date="le 3 mai")]})


def test_dates_in_the_spec_stay_strings(contract: Contract) -> None:
    contract.check("bib-test", "GET", ROUTE, 200, {"loans": [loan(since="2024-05-01")]})


def test_parameter_names_and_the_server_prefix_may_differ(contract: Contract) -> None:
    assert contract.spec_path("/v1/patrons/{patron_id}/loans") == "/patrons/{id}/loans"
    assert contract.spec_path("/patrons/{x}/loans") == "/patrons/{id}/loans"
    assert contract.spec_path("/v2/patrons/{x}/loans") is None


def test_shared_responses_are_resolved(contract: Contract) -> None:
    route = "/v1/patrons/{patron_id}/account"
    contract.check("bib-test", "GET", route, 200, {"balance_cents": 120})
    with pytest.raises(ContractBroken, match=r"\$\.balance_cents"):
        contract.check("bib-test", "GET", route, 200, {"balance_cents": "1,20 €"})


def test_an_answer_without_a_body_needs_only_a_declared_status(contract: Contract) -> None:
    route = "/v1/patrons/{patron_id}/holds/{hold_id}"
    contract.check("bib-test", "DELETE", route, 204, None)
    with pytest.raises(ContractBroken, match="status not declared"):
        contract.check("bib-test", "DELETE", route, 200, {"status": "ok"})


def test_an_undeclared_route_or_method_breaks_the_contract(contract: Contract) -> None:
    with pytest.raises(ContractBroken, match=r"route not in library\.yaml"):
        contract.check("bib-test", "GET", "/v1/elsewhere", 200, {})
    with pytest.raises(ContractBroken, match="method not in"):
        contract.check("bib-test", "POST", ROUTE, 200, {})


def test_a_missing_spec_disables_checks_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert load_contract(str(tmp_path / "nowhere.yaml")) is None
    assert "not found" in caplog.text


def test_a_spec_is_loaded_once(tmp_path: Path) -> None:
    path = tmp_path / "once.yaml"
    path.write_text(SPEC, encoding="utf-8")
    assert load_contract(str(path)) is load_contract(str(path))


# -- the specs shipped in connectors/specs ---------------------------------------------------

SHIPPED = ["library.yaml", "canteen.yaml", "housing.yaml", "koha-subset.yaml"]
CONNECTOR_ROUTES = {
    "library.yaml": [
        ("POST", "/v1/patrons/verify", 200),
        ("GET", "/v1/patrons/{patron_id}", 200),
        ("GET", "/v1/patrons/{patron_id}/loans", 200),
        ("POST", "/v1/patrons/{patron_id}/loans/{loan_id}/renewal", 200),
        ("GET", "/v1/patrons/{patron_id}/holds", 200),
        ("DELETE", "/v1/patrons/{patron_id}/holds/{hold_id}", 204),
        ("GET", "/v1/patrons/{patron_id}/account", 200),
    ],
    "canteen.yaml": [
        ("POST", "/v1/families/verify", 200),
        ("GET", "/v1/families/{family_id}", 200),
        ("GET", "/v1/families/{family_id}/children/{child_id}/reservations", 200),
        ("POST", "/v1/families/{family_id}/children/{child_id}/reservations", 200),
        ("GET", "/v1/families/{family_id}/invoices", 200),
        ("GET", "/v1/families/{family_id}/invoices/{invoice_id}/pdf", 200),
        ("POST", "/v1/families/{family_id}/invoices/{invoice_id}/payments", 201),
        ("GET", "/v1/families/{family_id}/payments/{payment_id}", 200),
    ],
    "housing.yaml": [
        ("POST", "/v1/applications/verify", 200),
        ("GET", "/v1/applications/{application_id}", 200),
        ("POST", "/v1/applications/{application_id}/renewal", 200),
    ],
    "koha-subset.yaml": [
        ("POST", "/api/v1/auth/password/validation", 201),
        ("GET", "/api/v1/patrons/{patron_id}", 200),
        ("GET", "/api/v1/checkouts", 200),
        ("GET", "/api/v1/checkouts/{checkout_id}/allows_renewal", 200),
        ("POST", "/api/v1/checkouts/{checkout_id}/renewal", 201),
        ("GET", "/api/v1/biblios/{biblio_id}", 200),
        ("GET", "/api/v1/patrons/{patron_id}/holds", 200),
        ("DELETE", "/api/v1/holds/{hold_id}", 204),
        ("GET", "/api/v1/patrons/{patron_id}/account", 200),
        ("GET", "/api/v1/libraries/{library_id}", 200),
    ],
}


def shipped(name: str) -> Contract:
    if not (SPEC_DIR / name).is_file():
        pytest.fail(f"connectors/specs/{name} is missing: its connector type runs unchecked")
    contract = load_contract(name)
    assert contract is not None
    return contract


@pytest.mark.parametrize("name", SHIPPED)
def test_every_schema_of_a_shipped_spec_resolves(name: str) -> None:
    contract = shipped(name)
    for path, item in contract.document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status in operation["responses"]:
                code = int(status) if status.isdigit() else 200
                route = path
                try:
                    validator = contract._validator("check", method, route, code)
                    if validator is not None:
                        list(validator.iter_errors({}))
                except Unresolvable as exc:  # pragma: no cover - the failure message
                    pytest.fail(f"{name}: {method} {path} {status}: unresolvable $ref {exc}")


@pytest.mark.parametrize("name", SHIPPED)
def test_every_call_a_connector_makes_is_in_its_spec(name: str) -> None:
    contract = shipped(name)
    for method, route, status in CONNECTOR_ROUTES[name]:
        contract._validator(f"{method} {route}", method.lower(), route, status)


def test_the_shipped_specs_are_openapi_3_1() -> None:
    for name in SHIPPED:
        if (SPEC_DIR / name).is_file():
            document = shipped(name).document
            assert str(document.get("openapi", "")).startswith("3.1"), name
            for schema in (document.get("components") or {}).get("schemas", {}).values():
                Draft202012Validator.check_schema(schema)


# -- the cost of a check --------------------------------------------------------------------


def test_a_body_full_of_errors_stops_at_the_first(contract: Contract, monkeypatch) -> None:
    walked: list[object] = []
    iter_errors = Draft202012Validator.iter_errors

    def counting(self: Draft202012Validator, instance: Any, *args: Any) -> Any:
        for error in iter_errors(self, instance, *args):
            walked.append(error)
            yield error

    monkeypatch.setattr(Draft202012Validator, "iter_errors", counting)
    body = {"loans": [loan(renewable="oui", due_date="le 3 mai") for _ in range(500)]}
    with pytest.raises(ContractBroken) as raised:
        contract.check("bib-test", "GET", ROUTE, 200, body)
    # The top-level walk yielded one error, not a thousand: it stopped there.
    assert len(walked) == 1
    assert "$.loans[0]" in str(raised.value) and "oui" not in str(raised.value)


def test_a_choice_none_of_whose_branches_fit_names_the_field_inside() -> None:
    koha = load_contract("koha-subset.yaml")
    assert koha is not None
    checkout = {
        "checkout_id": 1,
        "patron_id": 2,
        "item_id": 3,
        "due_date": "2026-12-01T23:59:00+01:00",
        "renewals_count": 0,
        "library_id": "CENTRAL",
        "item": {"item_id": 3, "external_id": "x"},  # no biblio_id: neither Item nor null
    }
    with pytest.raises(ContractBroken) as raised:
        koha.check("bib-test", "GET", "/api/v1/checkouts", 200, [checkout])
    message = str(raised.value)
    assert "$[0].item" in message and "'biblio_id'" in message


def test_a_body_found_valid_is_not_walked_again(contract: Contract, monkeypatch) -> None:
    import connectors.contract as module

    walks: list[object] = []
    first_error = module.first_error
    monkeypatch.setattr(module, "first_error", lambda v, b: walks.append(b) or first_error(v, b))
    content = b'{"loans": []}'
    for _ in range(3):
        contract.check("bib-test", "GET", ROUTE, 200, {"loans": []}, content)
    assert len(walks) == 1
    contract.check("bib-test", "GET", ROUTE, 200, {"loans": [loan()]}, b"other bytes")
    assert len(walks) == 2
    broken = b'{"loans": 1}'
    for _ in range(2):  # what failed is never remembered as valid
        with pytest.raises(ContractBroken):
            contract.check("bib-test", "GET", ROUTE, 200, {"loans": 1}, broken)
    assert len(walks) == 4


def test_each_response_schema_is_checked_and_compiled_once(contract: Contract, monkeypatch) -> None:
    checked: list[object] = []
    check_schema = Draft202012Validator.check_schema
    monkeypatch.setattr(
        Draft202012Validator,
        "check_schema",
        classmethod(lambda cls, schema, **kw: checked.append(schema) or check_schema(schema)),
    )
    for _ in range(3):
        contract.check("bib-test", "GET", ROUTE, 200, {"loans": [loan()]})
        # The same operation through another spelling of its route: the same validator.
        contract.check("bib-test", "GET", "/patrons/{id}/loans", 200, {"loans": []})
    assert len(checked) == 1
