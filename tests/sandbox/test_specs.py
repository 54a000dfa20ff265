"""The territory's standard API specs (and the Koha subset) are valid OpenAPI 3.1, share
one set of conventions, and carry every field the connector contract needs."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from connectors import base
from tests.sandbox.conftest import SPECS_DIR, load_spec

STANDARD = ("library.yaml", "canteen.yaml", "housing.yaml", "water.yaml")
ALL_SPECS = (*STANDARD, "koha-subset.yaml")
METHODS = ("get", "post", "put", "patch", "delete")
CONVENTIONS_HEADING = "## Conventions (shared by every standard API of the territory)"


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, item[method])
        for path, item in spec["paths"].items()
        for method in METHODS
        if method in item
    ]


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s (enough for these files)."""
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def schema_properties(spec: dict[str, Any], name: str) -> tuple[set[str], set[str]]:
    """(required, all properties) of a component schema, through ``allOf``."""
    schema = resolve(spec, spec["components"]["schemas"][name])
    required = set(schema.get("required", []))
    properties = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        part = resolve(spec, part)
        required |= set(part.get("required", []))
        properties |= set(part.get("properties", {}))
    return required, properties


@pytest.mark.parametrize("file_name", ALL_SPECS)
def test_spec_is_valid_openapi_3_1(file_name: str) -> None:
    spec = load_spec(file_name)
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_the_validator_does_catch_a_broken_spec() -> None:
    spec = load_spec("library.yaml")
    spec["paths"]["/patrons/{patron_id}"]["get"]["responses"]["200"] = {"content": {}}
    with pytest.raises(OpenAPIValidationError):
        validate(spec)


def test_standard_specs_share_one_text_of_conventions() -> None:
    """A vendor reading any one file gets the same rules (auth, errors, idempotency…)."""
    texts = set()
    for file_name in STANDARD:
        description = load_spec(file_name)["info"]["description"]
        assert CONVENTIONS_HEADING in description, file_name
        texts.add(description.split(CONVENTIONS_HEADING, 1)[1])
    assert len(texts) == 1


@pytest.mark.parametrize("file_name", STANDARD)
def test_every_operation_is_documented_and_secured(file_name: str) -> None:
    spec = load_spec(file_name)
    assert spec["security"] == [{"apiKey": []}, {"oauth2": []}]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "in": "header", "name": "X-Api-Key"}
    assert schemes["oauth2"]["flows"]["clientCredentials"]["tokenUrl"] == "oauth/token"
    assert spec["servers"][0]["url"].endswith("/v1")
    operation_ids = set()
    for path, method, operation in operations(spec):
        where = f"{method.upper()} {path}"
        assert operation.get("operationId"), where
        operation_ids.add(operation["operationId"])
        assert operation.get("summary") and operation.get("description"), where
        assert "security" not in operation, f"{where} must accept both schemes"
        responses = operation["responses"]
        for status in ("401", "429", "500", "503"):
            assert status in responses, f"{where} lacks {status}"
        for status in ("429", "503"):
            headers = resolve(spec, responses[status])["headers"]
            assert resolve(spec, headers["Retry-After"])["required"] is True
        success = [s for s in responses if s.startswith("2")]
        assert success, where
        for status, response in responses.items():
            response = resolve(spec, response)
            content = response.get("content", {})
            if status.startswith("2"):
                if content:
                    examples = [
                        media.get("example") or media.get("examples") for media in content.values()
                    ]
                    if "application/json" in content:
                        assert any(examples), f"{where} {status} has no example"
            else:
                assert list(content) == ["application/problem+json"], f"{where} {status}"
    assert len(operation_ids) == len(operations(spec))


@pytest.mark.parametrize("file_name", STANDARD)
def test_writes_require_an_idempotency_key_and_verifies_do_not(file_name: str) -> None:
    spec = load_spec(file_name)
    for path, method, operation in operations(spec):
        names = {
            resolve(spec, parameter)["name"]: resolve(spec, parameter)
            for parameter in operation.get("parameters", [])
        }
        if path.endswith("/verify") or method == "get":
            assert "Idempotency-Key" not in names, path
            continue
        assert names["Idempotency-Key"]["required"] is True, path
        assert names["Idempotency-Key"]["in"] == "header"
        assert "400" in operation["responses"], f"{path}: missing key answer"
        assert "422" in operation["responses"], f"{path}: reused key answer"


@pytest.mark.parametrize("file_name", STANDARD)
def test_problem_schema_is_rfc_9457_with_a_stable_code(file_name: str) -> None:
    spec = load_spec(file_name)
    required, properties = schema_properties(spec, "Problem")
    assert required == {"type", "title", "status", "code"}
    assert {"detail", "instance", "retry_after"} <= properties


@pytest.mark.parametrize("file_name", STANDARD)
def test_every_schema_allows_unknown_fields(file_name: str) -> None:
    """Forward compatibility: a v1 client never breaks on a field added later."""
    spec = load_spec(file_name)
    for name, schema in spec["components"]["schemas"].items():
        if schema.get("type") == "object":
            assert schema.get("additionalProperties") is True, name


# -- the contract of connectors/base.py is carried by the specs ------------------------------

# (spec file, schema, dataclass, dataclass field -> JSON field when the names differ).
# Fields a connector fills from elsewhere (an error's detail, the link) are left out.
CONTRACT = [
    ("library.yaml", "VerifiedPatron", base.VerifiedAccount, {"external_id": "patron_id"}),
    ("library.yaml", "PatronSummary", base.PatronSummary, {}),
    ("library.yaml", "Loan", base.Loan, {"id": "loan_id"}),
    # A refused renewal is a problem: its reason and code come from there.
    (
        "library.yaml",
        "RenewalResult",
        base.RenewalOutcome,
        {"reason": None, "reason_code": None},
    ),
    ("library.yaml", "Hold", base.Hold, {"id": "hold_id"}),
    ("library.yaml", "Fine", base.Fine, {"id": "fine_id"}),
    ("library.yaml", "Account", base.LibraryAccount, {}),
    ("canteen.yaml", "VerifiedFamily", base.VerifiedAccount, {"external_id": "family_id"}),
    ("canteen.yaml", "Family", base.Family, {"id": "family_id"}),
    ("canteen.yaml", "Child", base.Child, {"id": "child_id"}),
    ("canteen.yaml", "MealDay", base.MealDay, {"day": "date"}),
    ("canteen.yaml", "MealChange", base.MealChange, {"day": "date"}),
    ("canteen.yaml", "MealChangeResult", base.MealChangeOutcome, {"day": "date"}),
    ("canteen.yaml", "Invoice", base.Invoice, {"id": "invoice_id"}),
    ("canteen.yaml", "PaymentHandoff", base.PaymentHandoff, {}),
    ("canteen.yaml", "PaymentStatus", base.PaymentStatus, {}),
    (
        "housing.yaml",
        "VerifiedApplication",
        base.VerifiedAccount,
        {"external_id": "application_id"},
    ),
    ("housing.yaml", "Application", base.HousingApplication, {}),
    ("housing.yaml", "HistoryEvent", base.ApplicationEvent, {"on": "date"}),
    ("housing.yaml", "RenewalReceipt", base.RenewalReceipt, {}),
    ("water.yaml", "VerifiedContract", base.VerifiedAccount, {"external_id": "contract_id"}),
    ("water.yaml", "Contract", base.WaterContract, {"number": "contract_number"}),
    ("water.yaml", "Instalment", base.Instalment, {}),
    ("water.yaml", "Reading", base.MeterReading, {}),
    ("water.yaml", "ConsumptionPeriod", base.ConsumptionPeriod, {}),
    ("water.yaml", "Alert", base.ConsumptionAlert, {"id": "alert_id"}),
    ("water.yaml", "CapRequestReceipt", base.CapRequestReceipt, {}),
    ("water.yaml", "Invoice", base.Invoice, {"id": "invoice_id"}),
    ("water.yaml", "PaymentHandoff", base.PaymentHandoff, {}),
    ("water.yaml", "PaymentStatus", base.PaymentStatus, {}),
]


@pytest.mark.parametrize(
    ("file_name", "schema", "dataclass", "renames"),
    CONTRACT,
    ids=[f"{row[1]}->{row[2].__name__}" for row in CONTRACT],
)
def test_specs_carry_every_field_the_connector_dataclasses_need(
    file_name: str, schema: str, dataclass: type, renames: dict[str, str | None]
) -> None:
    spec = load_spec(file_name)
    required, _properties = schema_properties(spec, schema)
    for item in dataclasses.fields(dataclass):
        if item.name == "secret":
            continue
        json_name = renames.get(item.name, item.name)
        if json_name is None:
            continue
        assert json_name in required, f"{schema}.{json_name} feeds {dataclass.__name__}"


def test_enumerations_match_the_connector_literals() -> None:
    library = load_spec("library.yaml")["components"]["schemas"]
    canteen = load_spec("canteen.yaml")["components"]["schemas"]
    housing = load_spec("housing.yaml")["components"]["schemas"]
    assert set(library["Hold"]["properties"]["status"]["enum"]) == set(
        base.HoldStatus.__args__  # type: ignore[attr-defined]
    )
    assert set(canteen["PaymentStatus"]["properties"]["state"]["enum"]) == set(
        base.PaymentState.__args__  # type: ignore[attr-defined]
    )
    assert set(housing["Application"]["properties"]["status"]["enum"]) == set(
        base.ApplicationStatus.__args__  # type: ignore[attr-defined]
    )
    water = load_spec("water.yaml")["components"]["schemas"]
    for schema, field_name, literal in (
        ("Contract", "payment_plan", base.PaymentPlan),
        ("Reading", "kind", base.ReadingKind),
        ("Alert", "status", base.AlertStatus),
        ("PaymentStatus", "state", base.PaymentState),
    ):
        assert set(water[schema]["properties"][field_name]["enum"]) == set(
            literal.__args__  # type: ignore[attr-defined]
        ), schema


def test_water_documents_its_refusal_codes() -> None:
    """The stable codes the portal translates are each named in the spec."""
    text = (SPECS_DIR / "water.yaml").read_text(encoding="utf-8")
    for code in (
        "below_last_reading",
        "implausible_reading",
        "contract_closed",
        "alert_closed",
        "deadline_passed",
        "attachment_rejected",
        "already_paid",
        "unknown_payment",
        "unknown_contract",
        "unknown_alert",
    ):
        assert f"`{code}`" in text, code


def test_koha_subset_records_where_each_part_comes_from() -> None:
    spec = load_spec("koha-subset.yaml")
    for path, item in spec["paths"].items():
        assert "api/v1/swagger/" in item["x-koha-source"] or "Koha/" in item["x-koha-source"], path
    for name, schema in spec["components"]["schemas"].items():
        assert schema.get("x-koha-source"), name
    checkout_required, _ = schema_properties(spec, "Checkout")
    assert {
        "checkout_id",
        "patron_id",
        "item_id",
        "due_date",
        "renewals_count",
    } <= checkout_required
