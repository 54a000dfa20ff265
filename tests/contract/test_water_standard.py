"""The standard water connector against the sandbox's two water operators (Bordeaux and
Pessac), over real HTTP.

The instances are declared here rather than read from ``connectors.toml`` (where the
operator declares them), and the type is given explicitly, so these tests do not depend
on the installed entry points.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from connectors.base import (
    CallContext,
    ContractBroken,
    InstanceConfig,
    LinkInvalid,
    LinkRef,
    OutcomeUnknown,
    Refused,
    Unavailable,
    WaterConnector,
)
from connectors.http import MemoryBreakerStore, MemorySnapshotStore
from connectors.registry import Registry
from connectors.water.standard import StandardWaterConnector
from sandbox.backends.data import sandbox_today
from tests.contract.conftest import Backends, account, ctx

MARIE = account("marie-therese", "water", "bordeaux")  # a leak, an open alert
DARTAGNAN = account("dartagnan", "water", "bordeaux")  # monthly instalments
AMINA = account("amina", "water", "bordeaux")  # a reading is asked for
LUCAS = account("lucas", "water", "bordeaux")  # closed contract
JEAN = account("jean-baptiste", "water", "pessac")  # due in a week, an expired alert
PAUL = account("paul-antoine", "water", "pessac")  # locked

PDF = b"%PDF-1.4\n% facture du plombier\n%%EOF\n"
SLUGS = {"eau-bordeaux": "bordeaux", "eau-pessac": "pessac"}


def instances(url: str, **options: object) -> list[InstanceConfig]:
    return [
        InstanceConfig(
            slug=slug,
            type="water-standard",
            title=f"Eau — {tenant}",
            communes=(tenant.capitalize(),),
            base_url=f"{url}/water/{tenant}",
            timeout_s=1.0,
            credentials={"api_key": f"sandbox-water-{tenant}-key"},
            options=dict(options),
        )
        for slug, tenant in SLUGS.items()
    ]


@pytest.fixture
def registry(backends: Backends) -> Iterator[Registry]:
    reg = Registry(
        instances(backends.url, breaker_threshold=1000),
        types={"water-standard": StandardWaterConnector},
        breaker_store=MemoryBreakerStore(),
        snapshot_store=MemorySnapshotStore(),
    )
    yield reg
    reg.close()


@pytest.fixture
def water(registry: Registry) -> StandardWaterConnector:
    return registry.connector("eau-bordeaux")


@pytest.fixture
def pessac(registry: Registry) -> StandardWaterConnector:
    return registry.connector("eau-pessac")


def fault(backends: Backends, tenant: str, **behaviour: object) -> None:
    backends.http.post(
        f"{backends.url}/_admin/faults/water/{tenant}", json=behaviour
    ).raise_for_status()


def key() -> str:
    return uuid.uuid4().hex


def test_the_type_implements_the_water_protocol(water: StandardWaterConnector) -> None:
    assert isinstance(water, WaterConnector)
    assert water.category == "water"


# -- linking -----------------------------------------------------------------------------


def test_a_subscriber_proves_a_contract_with_the_reference_on_invoices(water) -> None:
    verified = water.verify_contract(
        ctx(), MARIE.proof["contract_number"], MARIE.proof["customer_reference"].lower()
    )
    assert verified.external_id == MARIE.external_id
    assert verified.display_name == "Marie-Thérèse Dubois"


def test_a_wrong_reference_is_refused_then_locks_the_contract(water) -> None:
    with pytest.raises(Refused) as raised:
        water.verify_contract(ctx(), MARIE.proof["contract_number"], "ZZZZ-ZZZZ")
    assert raised.value.code == "invalid_proof" and raised.value.reason
    codes = []
    for _ in range(5):
        try:
            water.verify_contract(ctx(), DARTAGNAN.proof["contract_number"], "WRONG")
        except Refused as exc:
            codes.append(exc.code)
    assert codes[-1] == "account_locked"


def test_an_unknown_contract_number_is_the_same_refusal(water) -> None:
    with pytest.raises(Refused) as raised:
        water.verify_contract(ctx(), "CT-00000-000000", "R7K4M2P9")
    assert raised.value.code == "invalid_proof"


def test_a_locked_contract_stays_locked(pessac) -> None:
    with pytest.raises(Refused) as raised:
        pessac.verify_contract(
            ctx(), PAUL.proof["contract_number"], PAUL.proof["customer_reference"]
        )
    assert raised.value.code == "account_locked"


def test_a_contract_of_one_operator_is_unknown_to_the_other(pessac) -> None:
    with pytest.raises(Refused):
        pessac.verify_contract(
            ctx(), MARIE.proof["contract_number"], MARIE.proof["customer_reference"]
        )
    with pytest.raises(LinkInvalid):
        pessac.contract(ctx(), LinkRef(MARIE.external_id))


# -- reads -------------------------------------------------------------------------------


def test_the_contract_its_meter_and_its_plan(water) -> None:
    contract = water.contract(ctx(), LinkRef(MARIE.external_id))
    assert not contract.stale
    data = contract.data
    assert data.number == MARIE.proof["contract_number"]
    assert data.meter_number and data.meter_diameter_mm == 15
    assert data.supply_address.endswith("Bordeaux")
    assert data.payment_plan == "per_invoice" and data.ended_on is None
    monthly = water.contract(ctx(), LinkRef(DARTAGNAN.external_id)).data
    assert monthly.payment_plan == "monthly" and len(monthly.instalments) == 10
    today = sandbox_today()
    assert all(i.paid is (i.due_date < today) for i in monthly.instalments)


def test_a_reading_asked_for_and_a_closed_contract(water) -> None:
    today = sandbox_today()
    asked = water.contract(ctx(), LinkRef(AMINA.external_id)).data
    assert asked.reading_requested_by == today + timedelta(days=10)
    assert water.readings(ctx(), LinkRef(AMINA.external_id)).data[0].kind == "estimated"
    closed = water.contract(ctx(), LinkRef(LUCAS.external_id)).data
    assert closed.ended_on is not None and closed.ended_on < today


def test_the_snapshot_keeps_no_contract_number(water, backends: Backends) -> None:
    link = LinkRef(MARIE.external_id)
    water.contract(ctx(), link)
    fault(backends, "bordeaux", mode="unavailable")
    stale = water.contract(ctx(), link)
    assert stale.stale and stale.data.number == "" and stale.data.meter_number


def test_readings_and_consumption_cover_three_years_and_more(water) -> None:
    link = LinkRef(MARIE.external_id)
    readings = water.readings(ctx(), link).data
    assert readings[0].kind == "actual"
    assert [r.index_m3 for r in readings] == sorted((r.index_m3 for r in readings), reverse=True)
    periods = water.consumption(ctx(), link).data
    assert len(periods) >= 7
    assert periods[0].end - periods[6].start > timedelta(days=3 * 365)
    latest = periods[0]
    same = [p.volume_m3 for p in periods[2:8:2]]
    assert latest.volume_m3 > 2 * sum(same) / 3


def test_the_leak_alert_is_open_and_points_at_its_invoice(water) -> None:
    link = LinkRef(MARIE.external_id)
    (alert,) = water.alerts(ctx(), link).data
    today = sandbox_today()
    assert alert.status == "open"
    assert alert.volume_m3 > 2 * alert.average_m3
    assert today - timedelta(days=7) <= alert.notified_on < today < alert.respond_by
    invoice = next(i for i in water.invoices(ctx(), link).data if i.id == alert.invoice_id)
    assert not invoice.paid


def test_an_old_unanswered_alert_has_expired(pessac) -> None:
    (alert,) = pessac.alerts(ctx(), LinkRef(JEAN.external_id)).data
    assert alert.status == "expired"
    with pytest.raises(Refused) as raised:
        pessac.request_cap(
            ctx(),
            LinkRef(JEAN.external_id),
            alert.id,
            repaired_on=sandbox_today(),
            repair_location="Cave",
            repair_invoice_pdf=PDF,
            idempotency_key=key(),
        )
    assert raised.value.reason_code == "deadline_passed"


def test_a_contract_that_no_longer_exists_asks_for_a_new_link(water) -> None:
    for read in (water.contract, water.readings, water.consumption, water.alerts, water.invoices):
        with pytest.raises(LinkInvalid):
            read(ctx(), LinkRef("ctr-gone"))


# -- declaring a reading -----------------------------------------------------------------


def test_a_declared_reading_is_accepted_and_listed(water) -> None:
    link = LinkRef(AMINA.external_id)
    last_actual = next(r for r in water.readings(ctx(), link).data if r.kind == "actual")
    today = sandbox_today()
    reading = water.declare_reading(
        ctx(), link, last_actual.index_m3 + 40, today, idempotency_key="decl-1"
    )
    assert (reading.index_m3, reading.taken_on, reading.kind) == (
        last_actual.index_m3 + 40,
        today,
        "declared",
    )
    assert water.readings(ctx(), link).data[0] == reading
    assert water.contract(ctx(), link).data.reading_requested_by is None
    # The same key again: the stored answer, nothing recorded twice.
    again = water.declare_reading(
        ctx(), link, last_actual.index_m3 + 40, today, idempotency_key="decl-1"
    )
    assert again == reading
    assert sum(r == reading for r in water.readings(ctx(), link).data) == 1


def test_a_reading_below_the_last_one_is_refused(water) -> None:
    link = LinkRef(MARIE.external_id)
    last = water.readings(ctx(), link).data[0]
    with pytest.raises(Refused) as raised:
        water.declare_reading(
            ctx(), link, last.index_m3 - 1, sandbox_today(), idempotency_key=key()
        )
    assert raised.value.reason_code == raised.value.code == "below_last_reading"
    assert str(last.index_m3) in raised.value.reason


def test_an_implausible_reading_is_refused(water) -> None:
    link = LinkRef(MARIE.external_id)
    last = water.readings(ctx(), link).data[0]
    with pytest.raises(Refused) as raised:
        water.declare_reading(
            ctx(), link, last.index_m3 + 50_000, sandbox_today(), idempotency_key=key()
        )
    assert raised.value.reason_code == "implausible_reading"
    assert water.readings(ctx(), link).data[0] == last


def test_no_reading_on_a_closed_contract(water) -> None:
    link = LinkRef(LUCAS.external_id)
    last = water.readings(ctx(), link).data[0]
    with pytest.raises(Refused) as raised:
        water.declare_reading(
            ctx(), link, last.index_m3 + 1, sandbox_today(), idempotency_key=key()
        )
    assert raised.value.reason_code == "contract_closed"


# -- the cap request -----------------------------------------------------------------------


def cap(
    connector,
    link: LinkRef,
    alert_id: str,
    pdf: bytes = PDF,
    idem: str | None = None,
    context: CallContext | None = None,
):
    return connector.request_cap(
        context or ctx(),
        link,
        alert_id,
        repaired_on=sandbox_today() - timedelta(days=1),
        repair_location="Joint du chauffe-eau, dans le cellier",
        repair_invoice_pdf=pdf,
        idempotency_key=idem or key(),
    )


def test_a_cap_request_is_received_once(water) -> None:
    link = LinkRef(MARIE.external_id)
    (alert,) = water.alerts(ctx(), link).data
    receipt = cap(water, link, alert.id, idem="cap-1")
    assert receipt.alert_id == alert.id and receipt.reference
    assert receipt.received_on == sandbox_today()
    assert water.alerts(ctx(), link).data[0].status == "requested"
    assert cap(water, link, alert.id, idem="cap-1") == receipt  # replayed
    with pytest.raises(Refused) as raised:
        cap(water, link, alert.id)
    assert raised.value.reason_code == "alert_closed"


def test_a_repair_invoice_must_be_a_pdf(water) -> None:
    link = LinkRef(MARIE.external_id)
    (alert,) = water.alerts(ctx(), link).data
    with pytest.raises(Refused) as raised:
        cap(water, link, alert.id, pdf=b"\x89PNG\r\n\x1a\n not a pdf")
    assert raised.value.reason_code == "attachment_rejected"
    assert "PDF" in raised.value.reason
    assert water.alerts(ctx(), link).data[0].status == "open"


def test_a_repair_invoice_over_five_megabytes_is_refused_before_sending(
    water, backends: Backends
) -> None:
    link = LinkRef(MARIE.external_id)
    fault(backends, "bordeaux", mode="error500")  # would fail if anything were sent
    with pytest.raises(Refused) as raised:
        cap(water, link, "alr-bdx-4521-1", pdf=PDF + b"0" * (5 * 1024 * 1024))
    assert raised.value.reason_code == "attachment_rejected"


def test_a_repair_invoice_of_nearly_five_megabytes_goes_through(water) -> None:
    link = LinkRef(MARIE.external_id)
    big = PDF + b"0" * (5 * 1024 * 1024 - len(PDF))
    receipt = water.request_cap(
        CallContext.with_timeout(10),
        link,
        "alr-bdx-4521-1",
        repaired_on=sandbox_today(),
        repair_location="Canalisation enterrée",
        repair_invoice_pdf=big,
        idempotency_key=key(),
    )
    assert receipt.alert_id == "alr-bdx-4521-1"


def test_an_unknown_alert_is_refused_not_a_broken_link(water) -> None:
    with pytest.raises(Refused) as raised:
        cap(water, LinkRef(MARIE.external_id), "alr-nope")
    assert raised.value.code == "unknown_alert"


# -- invoices and payments ----------------------------------------------------------------


def test_invoices_and_their_pdf(water) -> None:
    link = LinkRef(MARIE.external_id)
    invoices = water.invoices(ctx(), link).data
    assert [i.issued_on for i in invoices] == sorted((i.issued_on for i in invoices), reverse=True)
    assert water.invoice_pdf(ctx(), link, invoices[0].id).startswith(b"%PDF-")
    archived = next(i for i in invoices if not i.pdf_available)
    with pytest.raises(Refused) as raised:
        water.invoice_pdf(ctx(), link, archived.id)
    assert "demandez-le au service" in raised.value.reason


def test_an_invoice_due_in_about_a_week(pessac) -> None:
    unpaid = [i for i in pessac.invoices(ctx(), LinkRef(JEAN.external_id)).data if not i.paid]
    assert [i.due_date - sandbox_today() for i in unpaid] == [timedelta(days=7)]


def test_a_subscriber_pays_an_invoice(water, backends: Backends) -> None:
    link = LinkRef(MARIE.external_id)
    unpaid = next(i for i in water.invoices(ctx(), link).data if not i.paid)
    handoff = water.start_payment(
        ctx(),
        link,
        unpaid.id,
        return_url="http://127.0.0.1:5000/services/eau-bordeaux/paid",
        notify_url="http://127.0.0.1:9/hooks/payments",
        idempotency_key="pay-1",
    )
    assert handoff.redirect_url.startswith("http")
    status = water.payment_status(ctx(), link, handoff.payment_id)
    assert (status.invoice_id, status.state) == (unpaid.id, "pending")
    paid = backends.http.post(handoff.redirect_url, data={"action": "pay"}, follow_redirects=False)
    assert paid.status_code == 303
    assert water.payment_status(ctx(), link, handoff.payment_id).state == "paid"
    assert next(i for i in water.invoices(ctx(), link).data if i.id == unpaid.id).paid
    with pytest.raises(Refused) as raised:
        water.start_payment(
            ctx(),
            link,
            unpaid.id,
            return_url="http://127.0.0.1:5000/r",
            notify_url="http://127.0.0.1:9/n",
            idempotency_key="pay-2",
        )
    assert raised.value.code == "already_paid"


def test_an_unknown_payment_is_refused(water) -> None:
    with pytest.raises(Refused) as raised:
        water.payment_status(ctx(), LinkRef(MARIE.external_id), "pay-unknown")
    assert raised.value.code == "unknown_payment"


# -- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["error500", "unavailable", "rate_limit", "reset"])
def test_a_failing_operator_gives_stale_reads_or_unavailable(
    water, backends: Backends, mode: str
) -> None:
    link = LinkRef(MARIE.external_id)
    good = water.consumption(ctx(), link)
    fault(backends, "bordeaux", mode=mode, retry_after=0)
    stale = water.consumption(ctx(), link)
    assert stale.stale and stale.data == good.data
    with pytest.raises(Unavailable):
        water.alerts(ctx(), link)  # never read before: no snapshot
    with pytest.raises(Unavailable):
        water.verify_contract(
            ctx(), MARIE.proof["contract_number"], MARIE.proof["customer_reference"]
        )


@pytest.mark.parametrize("mode", ["malformed", "wrong_schema"])
def test_a_broken_answer_is_a_broken_contract(water, backends: Backends, mode: str) -> None:
    fault(backends, "bordeaux", mode=mode)
    with pytest.raises(ContractBroken):
        water.readings(ctx(), LinkRef(MARIE.external_id))


def test_faults_hit_one_operator_only(water, pessac, backends: Backends) -> None:
    fault(backends, "bordeaux", mode="error500")
    assert not pessac.contract(ctx(), LinkRef(JEAN.external_id)).stale


#: The deadline of a call left unanswered: only the deadline ends it (below the
#: instances' 1 s read timeout, so the deadline is what is tested).
UNANSWERED_S = 0.5


def test_a_write_left_unanswered_has_an_unknown_outcome_then_settles(
    water, backends: Backends
) -> None:
    link = LinkRef(MARIE.external_id)
    last = water.readings(ctx(), link).data[0]
    fault(backends, "bordeaux", mode="answer_late", hang_s=3)
    with pytest.raises(OutcomeUnknown):
        water.declare_reading(
            ctx(UNANSWERED_S), link, last.index_m3 + 5, sandbox_today(), idempotency_key="late-1"
        )
    backends.http.delete(f"{backends.url}/_admin/faults/water/bordeaux").raise_for_status()
    # The same key tells what happened: the reading was recorded, once.
    settled = water.declare_reading(
        ctx(), link, last.index_m3 + 5, sandbox_today(), idempotency_key="late-1"
    )
    assert settled.index_m3 == last.index_m3 + 5
    assert sum(r == settled for r in water.readings(ctx(), link).data) == 1


def test_a_hanging_operator_costs_at_most_the_deadline(water, backends: Backends) -> None:
    fault(backends, "bordeaux", mode="hang", hang_s=5)
    link = LinkRef(MARIE.external_id)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown):
        cap(water, link, "alr-bdx-4521-1", context=ctx(UNANSWERED_S))
    with pytest.raises(Unavailable):
        water.invoices(CallContext.with_timeout(UNANSWERED_S), link)
    assert time.monotonic() - started < 2 * UNANSWERED_S + 0.6


def test_writes_only_faults_leave_reads_working(water, backends: Backends) -> None:
    fault(backends, "bordeaux", mode="unavailable", writes_only=True, retry_after=0)
    link = LinkRef(MARIE.external_id)
    assert not water.readings(ctx(), link).stale
    with pytest.raises(Unavailable):
        water.declare_reading(ctx(), link, 99_999, sandbox_today(), idempotency_key=key())
